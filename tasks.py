"""labstack's invoke tasks: thin entry points (flags, messages) over the tested labstack package. Groups of tasks for one kind
of work (ray.*, job.*, ...) live in labstack/tasks/<group>.py and are added to `ns` at the bottom of this file."""
from invoke import Collection, Exit

from labstack.tasks.invoke_support import name_tasks, task

from labstack.tasks import cost as cost_tasks
from labstack.tasks import debug as debug_tasks
from labstack.tasks import jobs as job_tasks
from labstack.tasks import clusters as ray_tasks
from labstack.tasks import stacks as stack_tasks
from labstack.tasks.errors import call as _run


@task(help={"stack": "stack name as in stacks/Pulumi.<stack>.yaml (default: every stack file)"})
def check(c, stack=None):
    """Evaluate stack files offline under Pulumi mocks: resources they would declare, or their config errors."""
    from labstack.stacks.check import check_stacks

    if not check_stacks(stack):
        raise Exit(code=1)


@task(help={"stack": "stack name (stacks/Pulumi.<stack>.yaml)", "yes": "skip pulumi's confirmation prompt"})
def up(c, stack, yes=False):
    """Bring a stack up: local state backend unless you chose another, stack created if new, then `pulumi up`."""
    from labstack.tasks import actions as commands

    _run(commands.up, stack, yes=yes)


# --- images, data, lifecycle, inventory. The work happens in labstack/tasks/actions.py. ------------------------

STACK_HELP = "stack name (stacks/Pulumi.<stack>.yaml)"
JSON_HELP = "the rows as JSON, for scripts"
BUILD_HELP = {
    "stack": STACK_HELP, "app": "app name in labstack:apps (default: the stack's only app)",
    "repo": "image repository to push to, e.g. ghcr.io/lab/elif (default: the one in the app's image)",
    "force": "rebuild even if an image of the same source exists", "build_arg": "KEY=VALUE (repeatable)",
    "base": "base image when the app folder has no Dockerfile (default python:3.11-slim)",
}


def _image_task(name, stack, app, repo, force, build_arg, base):
    from labstack.tasks import actions as commands
    from labstack import images

    if stack is None:
        raise Exit(f"labstack: {name} needs -s/--stack (and --app when the stack has several apps)", code=1)
    _run(getattr(commands, name), stack, app, repo=repo, force=force, build_args=build_arg,
         base_image=base or images.DEFAULT_BASE_IMAGE)


@task(help=BUILD_HELP, iterable=["build_arg"])
def build(c, stack=None, app=None, repo=None, force=False, build_arg=None, base=None):
    """Build the app's image (tag = hash of its build context); `invoke build push -s S --app A` in one line."""
    _image_task("build", stack, app, repo, force, build_arg, base)


@task(help=BUILD_HELP, iterable=["build_arg"])
def push(c, stack=None, app=None, repo=None, force=False, build_arg=None, base=None):
    """Push the app's image (building it if its source changed) and pin repo@sha256:… in the stack file."""
    _image_task("push", stack, app, repo, force, build_arg, base)


@task(name="export", help={"stack": STACK_HELP, "app": "only this app (default: every app of the stack)"})
def export_(c, stack, app=None):
    """Export each app's database (pg_dump, verified by a restore) and data folder into exports/<stack>/<app>/."""
    from labstack.tasks import actions as commands

    _run(commands.export, stack, app)


@task(help={"stack": STACK_HELP, "yes": "skip pulumi's confirmation prompt"})
def stop(c, stack, yes=False):
    """Stop the stack's server (labstack:desiredState = stopped, then pulumi up); disk and address are kept."""
    from labstack.tasks import actions as commands

    _run(commands.stop_or_start, stack, "stopped", yes=yes)


@task(help={"stack": STACK_HELP, "yes": "skip pulumi's confirmation prompt"})
def start(c, stack, yes=False):
    """Start the stack's server again (labstack:desiredState = running, then pulumi up)."""
    from labstack.tasks import actions as commands

    _run(commands.stop_or_start, stack, "running", yes=yes)


@task(help={"stack": STACK_HELP, "timeout": "seconds to wait for the server to answer SSH again (default 600)"})
def restart(c, stack, timeout=600):
    """Reboot the stack's server through EC2 and wait until it runs and answers SSH."""
    from labstack.tasks import actions as commands

    _run(commands.restart, stack, timeout=float(timeout))


@task(help={"stack": STACK_HELP, "gb": "new root disk size in GB (grow only)", "yes": "skip pulumi's prompt"})
def storage(c, stack, gb, yes=False):
    """Grow the server's encrypted disk to --gb N (never shrinks), then pulumi up."""
    from labstack.tasks import actions as commands

    try:
        size = int(gb)
    except ValueError:
        raise Exit(f"labstack: --gb {gb!r}: expected a whole number of GB", code=1)
    _run(commands.storage, stack, size, yes=yes)


@task(name="regions", help={"json": JSON_HELP})
def list_regions(c, json=False):
    """The AWS regions your account can use."""
    from labstack.tasks import actions as commands

    _run(commands.list_regions, as_json=json)


@task(name="types", help={"region": "AWS region, e.g. eu-west-3", "json": JSON_HELP})
def list_types(c, region, json=False):
    """Instance types of a region with vCPUs, memory and an hourly price estimate."""
    from labstack.tasks import actions as commands

    _run(commands.list_types, region, as_json=json)


@task(name="volumes", help={"region": "AWS region (default: the default region)", "json": JSON_HELP})
def list_volumes(c, region=None, json=False):
    """labstack's EBS volumes (tag labstack:stack) with size, stack, state and monthly cost."""
    from labstack.data import volumes

    _run(volumes.list_storage, "volumes", region, as_json=json)


@task(name="snapshots", help={"region": "AWS region (default: the default region)", "json": JSON_HELP})
def list_snapshots(c, region=None, json=False):
    """labstack's EBS snapshots (e.g. data volumes' final snapshots) with size, stack, state and monthly cost."""
    from labstack.data import volumes

    _run(volumes.list_storage, "snapshots", region, as_json=json)


@task(name="instances", help={"region": "one region (default: every region)", "running": "only running ones",
                              "stopped": "only stopped ones", "terminated": "only terminated ones",
                              "key_name": "instances launched with this EC2 key pair instead of labstack's tag",
                              "json": JSON_HELP})
def list_instances(c, region=None, running=False, stopped=False, terminated=False, key_name=None, json=False):
    """labstack's instances (tag labstack:stack) with name, state, uptime and hourly cost."""
    from labstack.tasks import actions as commands

    states = [name for name, wanted in (("running", running), ("stopped", stopped), ("terminated", terminated))
              if wanted]
    _run(commands.list_instances, region, states=states or None, key_name=key_name, as_json=json)


@task(help={"stack": STACK_HELP})
def apps(c, stack):
    """The stack's apps on its server: serving colour, release, image, containers."""
    from labstack.tasks import actions as commands

    _run(commands.apps, stack)


@task(help={"stack": STACK_HELP, "app": "app name", "service": "web (default), worker, postgres or redis",
            "tail": "lines to show (default 200)", "follow": "keep following"})
def logs(c, stack, app=None, service="web", tail=200, follow=False):
    """Logs of one service of an app (the serving release's containers)."""
    from labstack.tasks import actions as commands

    code = _run(commands.logs, stack, app, service, tail=int(tail), follow=follow)
    if code:
        raise Exit(code=code)


@task(help={"stack": STACK_HELP})
def stats(c, stack):
    """Load, memory, disk and per-container CPU/memory of the stack's server."""
    from labstack.tasks import actions as commands

    _run(commands.stats, stack)


@task(help={"stack": STACK_HELP, "app": "open a shell in this app's container instead of the server",
            "service": "the app's service (default web)",
            "node": "a cluster node instead of the head: worker-2 (or head)"})
def ssh(c, stack, app=None, service="web", node=None):
    """A shell on the server (host key pinned from the stack), or in an app's container with --app."""
    from labstack.tasks import actions as commands

    _run(commands.ssh, stack, app, service, node=node)


@task(name="exec", help={"stack": STACK_HELP, "app": "app name (default: the stack's only app)",
                         "service": "web (default), worker, clock, postgres or redis"})
def exec_(c, stack, app=None, service="web"):
    """Run the command after -- in the app's serving container, without a terminal; exits with its exit code.
    E.g. `invoke exec -s paris-batch2 --app elif -- dallinger export --local`."""
    from labstack.tasks import actions as commands

    code = _run(commands.exec_in_app, stack, app, service, c.remainder)
    if code:
        raise Exit(code=code)


ns = Collection(check, up, build, push, export_, stop, start, restart, storage, apps, logs, stats, ssh, exec_)
ns.add_collection(Collection("list", list_regions, list_types, list_instances, list_volumes, list_snapshots))
ns.add_collection(Collection.from_module(cost_tasks, name="cost"))
ns.add_collection(Collection.from_module(job_tasks, name="job"))  # job.submit/status/... and job.run
ns.add_collection(Collection.from_module(ray_tasks, name="ray"))
for verb in (stack_tasks.new, stack_tasks.preview, stack_tasks.destroy, stack_tasks.outputs, stack_tasks.config,
             stack_tasks.pulumi_):
    ns.add_task(verb)  # the Pulumi verbs besides up (labstack/tasks/stacks.py)
ns.add_task(debug_tasks.debug)  # invoke debug: an app locally as on its server (labstack/stacks/debug.py)
name_tasks(ns)
# `invoke build push -s S --app A`: invoke.yaml makes build borrow push's flags (labstack/tasks/invoke_support.py).
