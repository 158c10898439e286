"""`invoke cost [-s STACK]`: what each stack has cost since launch and costs per month (labstack/cost/report.py)."""
from invoke import Exit

from labstack.tasks.invoke_support import task


@task(default=True, help={"stack": "stack name as in stacks/Pulumi.<stack>.yaml (default: every stack file)"})
def report(c, stack=None):
    """Per stack: instances (on-demand or spot), volumes, addresses and snapshots, cost since launch, per month now,
    and labstack:budget warnings (50%, 80%)."""
    from labstack.tasks import actions as commands
    from labstack.cost import report as cost
    from labstack.stacks import stackfile

    out = commands._out()
    failed = False
    for name in [stack] if stack else stackfile.list_stacks():
        try:
            cost.show(cost.report([name], stackfile.load), out)
        except commands.ops_errors() as error:
            if stack:
                raise Exit(commands.error_message(error), code=1)
            failed = True  # one unreadable stack file or unreachable region does not hide the others
            out.print(f"{name}: {commands.error_message(error)}", style="red", markup=False, highlight=False)
    if failed:
        raise Exit(code=1)
