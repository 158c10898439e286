"""`invoke new/preview/destroy/outputs/config/pulumi`: the Pulumi verbs besides `up`, with the project's state backend
and passphrase (labstack/stacks/verbs.py), so every command labstack prints works as printed in a new shell."""
import json as jsonlib
import shlex

from invoke import Exit

from labstack.tasks.errors import call as _call
from labstack.tasks.invoke_support import task

STACK = "stack name (stacks/Pulumi.<stack>.yaml)"


@task(help={"stack": "the new stack's name, e.g. rome-pilot", "like": "the stack file to copy, e.g. paris-batch2"})
def new(c, stack, like):
    """Start a stack: copy stacks/Pulumi.<like>.yaml to stacks/Pulumi.<stack>.yaml (comments kept), before any `up`."""
    from labstack.stacks import verbs

    path = _call(verbs.new, stack, like)
    print(f"wrote {path}: edit it (or `invoke config -s {stack} --set KEY=VALUE`), then `invoke check -s {stack}` "
          f"and `invoke up -s {stack}`")


@task(help={"stack": STACK})
def preview(c, stack):
    """What `invoke up` would change, asking AWS (`pulumi preview` with the project's state and policies)."""
    from labstack.stacks import verbs

    _call(verbs.preview, stack)


@task(help={"stack": STACK, "yes": "skip pulumi's confirmation prompt"})
def destroy(c, stack, yes=False):
    """Remove the stack's resources (`pulumi destroy`); every app's data is exported first, as the stack says."""
    from labstack.stacks import verbs

    _call(verbs.destroy, stack, yes=yes)


@task(help={"stack": STACK, "json": "the outputs as JSON", "key": "one output's value alone, e.g. sshCommand"})
def outputs(c, stack, json=False, key=None):
    """The stack's outputs (url, sshCommand, publicIp, ...); secret ones stay [secret]."""
    from rich.table import Table

    from labstack.stacks import verbs
    from labstack.tasks.actions import _out

    values = _call(verbs.outputs, stack)
    if key is not None:
        if key not in values:
            known = ", ".join(sorted(values)) or "none"
            raise Exit(f"labstack: stack {stack!r} has no output {key!r} (it has: {known})", code=1)
        value = values[key]
        print(value if isinstance(value, str) else jsonlib.dumps(value))
        return
    if json:
        print(jsonlib.dumps(values, indent=2, sort_keys=True))
        return
    table = Table("output", "value")
    for name, value in sorted(values.items()):
        table.add_row(name, value if isinstance(value, str) else jsonlib.dumps(value))
    _out().print(table)


@task(iterable=["set"], help={"stack": STACK, "secret": "store the values encrypted",
                              "set": "KEY=VALUE to set (repeatable), e.g. labstack:instanceType=t3.large or "
                                     "'labstack:autoStop.idleMinutes=60'"})
def config(c, stack, set=None, secret=False):
    """Set config values of a stack (`pulumi config set`; works before the first `up`); without --set, show them."""
    from labstack.stacks import verbs

    _call(verbs.config, stack, set or [], secret=secret)


@task(name="pulumi", help={"stack": "stack name, passed to pulumi as --stack"})
def pulumi_(c, stack=None):
    """Any pulumi command with the project's state backend and passphrase: `invoke pulumi -s S -- stack export`."""
    from labstack.stacks import verbs

    code = _call(verbs.passthrough, stack, shlex.split(c.remainder))
    if code:
        raise Exit(code=code)
