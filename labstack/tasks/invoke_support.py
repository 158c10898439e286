"""invoke plumbing for tasks.py: `invoke build push -s S --app A` as one line.

invoke gives flags to the task they follow, so in `invoke build push -s S --app A` the flags belong to `push` and
`build` gets none. This executor (invoke.yaml names it) lets a task that got none of its own flags borrow those of
its partner on the same line, for the parameters both share: `invoke build -s S --app A push` works as well.
"""
from __future__ import annotations

from invoke import Executor

PARTNERS = {"build": "push", "push": "build"}


def _given(call) -> bool:
    return any(value not in (None, False, [], ()) for value in call.kwargs.values())


class SharedFlagsExecutor(Executor):
    def normalize(self, tasks):
        calls = super().normalize(tasks)
        names = [call.called_as or call.task.name for call in calls]
        for call, name in zip(calls, names):
            partner = PARTNERS.get(name)
            if partner is None or _given(call):
                continue
            lender = next((other for other, other_name in zip(calls, names) if other_name == partner
                           and _given(other)), None)
            if lender is not None:
                call.kwargs.update({key: value for key, value in lender.kwargs.items() if key in call.kwargs})
        return calls
