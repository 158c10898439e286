"""Operator tasks around the stacks (`invoke --list`). Thin entry points; the logic lives in ops/ and is tested."""
from invoke import Exit, task


@task(help={"stack": "stack name as in stacks/Pulumi.<stack>.yaml (default: every stack file)"})
def check(c, stack=None):
    """Evaluate stack files offline under Pulumi mocks: resources they would declare, or their config errors."""
    from ops.check import check_stacks

    if not check_stacks(stack):
        raise Exit(code=1)
