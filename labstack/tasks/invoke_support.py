"""invoke plumbing for tasks.py: one meaning per flag, named options only, and `invoke build push -s S --app A`.

Flags: every task argument is a named option (`--job ID`, never a bare word), so `invoke TASK --help` is never taken
for a value, and a missing required one is one `labstack:` line. Short flags come from one table (SHORT_FLAGS)
instead of invoke's first-free-letter rule, which gave `-s` three meanings across tasks; tests/ops/test_task_flags.py
builds the table from the collection and fails on a clash.

Executor: invoke gives flags to the task they follow, so in `invoke build push -s S --app A` the flags belong to
`push` and `build` gets none. SharedFlagsExecutor (invoke.yaml names it) lets a task that got none of its own flags
borrow those of its partner on the same line, for the parameters both share: `invoke build -s S --app A push` works
as well.
"""
from __future__ import annotations

import inspect

import invoke
from invoke import Executor, Exit

# The only short flags, each with one meaning in every task. `-h` stays invoke's --help.
SHORT_FLAGS = {"stack": "s", "app": "a", "yes": "y", "job": "j", "region": "r", "follow": "f"}


class LabTask(invoke.Task):
    """A task whose arguments are all named options (short flags from SHORT_FLAGS only); the parameters without a
    default are required: their absence is one `labstack: …` line naming the flag and a usage line."""

    def __init__(self, body, *args, **kwargs):
        kwargs["positional"] = []
        kwargs["auto_shortflags"] = False
        super().__init__(body, *args, **kwargs)
        self.full_name = self.name  # set to e.g. `job.logs` by name_tasks()
        self.described = dict(kwargs.get("help") or {})  # invoke consumes its own copy of help= when parsing

    def required(self) -> list[str]:
        parameters = list(inspect.signature(self.body).parameters.values())[1:]  # after the context
        return [p.name for p in parameters if p.default is inspect.Parameter.empty]

    def arg_opts(self, name, default, taken_names):
        opts = super().arg_opts(name, default, taken_names)
        short = SHORT_FLAGS.get(name)
        if short and short not in taken_names:
            opts["names"] = [*opts["names"], short]
        return opts

    def __call__(self, *args, **kwargs):
        missing = [name for name in self.required() if kwargs.get(name) is None]
        if missing:
            needs = " and ".join(self._flag(name) + (f" ({self.described[name]})" if name in self.described else "")
                                 for name in missing)
            raise Exit(f"labstack: invoke {self.full_name} needs {needs}; usage: {self.usage()}", code=1)
        return super().__call__(*args, **kwargs)

    @staticmethod
    def _flag(name: str) -> str:
        return "-s STACK" if name == "stack" else f"--{name.replace('_', '-')} {name.upper()}"

    def usage(self) -> str:
        return " ".join([f"invoke {self.full_name}", *(self._flag(name) for name in self.required())])


def task(*args, **kwargs):
    """invoke's @task, making LabTasks."""
    kwargs.setdefault("klass", LabTask)
    return invoke.task(*args, **kwargs)


def name_tasks(collection: invoke.Collection) -> invoke.Collection:
    """Give each task its dotted name (`job.logs`) for its messages."""
    for name in collection.task_names:
        found = collection[name]
        if isinstance(found, LabTask):
            found.full_name = name
    return collection


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
