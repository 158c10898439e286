"""Operator tasks around the stacks (`invoke --list`). Thin entry points; the logic lives in ops/ and is tested."""
from invoke import Exit, task


@task(help={"stack": "stack name as in stacks/Pulumi.<stack>.yaml (default: every stack file)"})
def check(c, stack=None):
    """Evaluate stack files offline under Pulumi mocks: resources they would declare, or their config errors."""
    from ops.check import check_stacks

    if not check_stacks(stack):
        raise Exit(code=1)


@task(help={"stack": "stack name (stacks/Pulumi.<stack>.yaml)", "yes": "skip pulumi's confirmation prompt"})
def up(c, stack, yes=False):
    """Bring a stack up: local state backend unless you chose another, stack created if new, then `pulumi up`."""
    from ops.offline import read_stack_config
    from ops.pulumi_cli import PulumiCli, PulumiError

    try:
        read_stack_config(stack)
        PulumiCli().up(stack, yes=yes)
    except (FileNotFoundError, PulumiError) as error:
        raise Exit(f"labstack: {error}", code=1)
