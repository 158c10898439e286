"""invoke plumbing for tasks.py: `invoke build push -s S --app A` as one line.

invoke gives flags to the task they follow, so in `invoke build push -s S --app A` the flags belong to `push` and
`build` gets none. This executor (tasks.py names it in its collection config) lets a task that got none of its own
flags borrow the flags of the next task on the line that has them, for the parameters both tasks share.
"""
from __future__ import annotations

from invoke import Executor

SHARING = {"build": ("push",)}  # task -> the later tasks it may borrow flags from


class SharedFlagsExecutor(Executor):
    def normalize(self, tasks):
        calls = super().normalize(tasks)
        for index, call in enumerate(calls):
            lenders = SHARING.get(call.called_as or call.task.name)
            if not lenders or any(value not in (None, False, [], ()) for value in call.kwargs.values()):
                continue
            for later in calls[index + 1:]:
                if (later.called_as or later.task.name) in lenders:
                    shared = {key: value for key, value in later.kwargs.items() if key in call.kwargs}
                    call.kwargs.update(shared)
                    break
        return calls
