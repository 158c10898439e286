"""What each operator task does, with rich output. tasks.py parses flags; labstack/tasks/errors.py turns
ops_errors() into one line.

Every dependency that touches the outside (docker engine, Pulumi CLI, SSH target, EC2 client) can be passed in,
so the tests drive these functions against the test bed, moto and a recording `pulumi`.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator, Optional

from rich.console import Console
from rich.table import Table

from components.config import ConfigError
from labstack import images
from labstack.data import export as export_mod
from labstack.local import key_value
from labstack.terminal import print_json, results_console
from labstack.ssh import commands as remote_commands
from labstack.ssh.target import RemoteError, SshTarget, stack_outputs, target_for_stack
from labstack.stack import Stack
from labstack.stacks import inventory, lifecycle, stackfile
from labstack.stacks.pulumi_cli import PulumiCli, PulumiError

console = Console(stderr=True, highlight=False)  # progress and notes on stderr; tables and results on stdout


def _out() -> Console:
    """Results on stdout; piped or captured, never wrapped (labstack/terminal.py)."""
    return results_console()


@contextlib.contextmanager
def progress(title: str) -> Iterator[Callable[[str], None]]:
    """A spinner with the latest step; steps are also printed, so the log of a long run stays on screen."""
    with console.status(title) as status:
        def report(line: str) -> None:
            status.update(f"{title}: {line[:100]}")
            console.print(f"  {line}", style="dim", markup=False)
        yield report


def docker_client():
    import docker

    try:
        client = docker.from_env()
        client.ping()
        return client
    except docker.errors.DockerException as error:
        raise images.ImageError(f"cannot reach the Docker engine ({error}); is Docker running, and may you use it "
                                "(docker group, or DOCKER_HOST)?") from None


# --- build and push -----------------------------------------------------------------------------------------------

def image_repository(stack: str, app: str, repo: Optional[str]) -> str:
    if repo:
        return repo.rstrip("/")
    _, settings = stackfile.image_settings(stack, app)
    current = settings.get("image")
    if not current:
        raise images.ImageError(f"no image repository for app {app!r}: give one with --repo (e.g. --repo "
                                f"ghcr.io/<lab>/{app}); push pins it in labstack:apps.{app}.image for next time")
    return images.repository_of(str(current))


def parse_build_args(pairs) -> dict[str, str]:
    return dict(key_value(pair, "--build-arg", images.ImageError, "VERSION=2") for pair in pairs or [])


def build(stack: str, app: str, *, repo: Optional[str] = None, force: bool = False, build_args=None,
          base_image: str = images.DEFAULT_BASE_IMAGE, client=None) -> images.BuiltImage:
    app, _ = stackfile.image_settings(stack, app)
    context = stackfile.build_context(stack, app)
    repository = image_repository(stack, app, repo)
    client = client or docker_client()  # after the stack checks: their errors say more than Docker's
    with progress(f"build {app}") as report:
        built = images.build(client, context, repository, build_args=parse_build_args(build_args), force=force,
                             base_image=base_image, progress=report)
    console.print(f"{'reused' if built.reused else 'built'} [bold]{built.reference}[/] (source {built.source_hash[:16]})")
    return built


def push(stack: str, app: str, *, repo: Optional[str] = None, force: bool = False, build_args=None,
         base_image: str = images.DEFAULT_BASE_IMAGE, client=None) -> str:
    """Build (reusing the image of an unchanged source), push, and pin the digest in the stack file."""
    app, _ = stackfile.image_settings(stack, app)  # stack and app first: their errors say more than Docker's
    image_repository(stack, app, repo)
    client = client or docker_client()
    built = build(stack, app, repo=repo, force=force, build_args=build_args, base_image=base_image, client=client)
    with progress(f"push {built.reference}") as report:
        pinned = images.push(client, built, progress=report)
    previous = stackfile.set_app_image(stack, app, pinned)
    console.print(f"pinned labstack:apps.{app}.image = [bold]{pinned}[/] in {stackfile.stack_file(stack)}")
    if previous and previous != pinned:
        console.print(f"  (was {previous})", style="dim", markup=False)
    console.print(f"next: [bold]invoke up -s {stack}[/] deploys exactly this image")
    print(pinned)  # plain: one unwrapped line scripts can read
    return pinned


# --- export -------------------------------------------------------------------------------------------------------

def export(stack: str, app: Optional[str] = None, *, target: Optional[SshTarget] = None,
           exports_dir: Optional[Path] = None) -> list[export_mod.ExportResult]:
    server = Stack(stack)
    if target is not None:
        server.use_target(target)
    with progress(f"export {stack}") as report:
        results = server.export(app, dest=exports_dir, progress=report)
    for result in results:
        sizes = ", ".join(f"{name} {entry['bytes']:,} B" for name, entry in result.manifest["files"].items())
        _out().print(f"{result.path}  ({sizes})", soft_wrap=True)
    return results


# --- lifecycle ----------------------------------------------------------------------------------------------------

def up(stack: str, *, yes: bool = False, cli: Optional[PulumiCli] = None) -> None:
    Stack(stack, cli=cli).up(yes=yes)


def stop_or_start(stack: str, state: str, *, yes: bool = False, cli: Optional[PulumiCli] = None) -> None:
    server = Stack(stack, cli=cli)
    server.assert_powerable()  # an unknown stack, a broken stack file or an existing server: before anything else
    console.print(f"setting labstack:desiredState = {state} and running pulumi up for {stack}")
    if state == "stopped":
        server.stop(yes=yes)
    else:
        server.start(yes=yes)


def storage(stack: str, gb: int, *, yes: bool = False, cli: Optional[PulumiCli] = None) -> None:
    previous = lifecycle.grow_storage(stackfile.load(stack), gb, cli=cli, yes=yes)
    console.print(f"grew {stack} from {previous} GB to {gb} GB (with apps deployed, that pulumi up grew the file system too)")


def restart(stack: str, *, timeout: float = 600, cli: Optional[PulumiCli] = None, ec2=None,
            wait_ssh: Optional[Callable[[float], bool]] = None) -> float:
    config = stackfile.load(stack)
    outputs = stack_outputs(stack, cli)
    instance, region = outputs.get("instanceId"), outputs.get("region")
    if not instance or not region:
        raise lifecycle.LifecycleError(f"stack {stack!r} has no EC2 instance in its outputs (instanceId, region): "
                                       "an existing server is rebooted by its owner, not by labstack")
    if wait_ssh is None:
        target = target_for_stack(stack, outputs, config=config)
        try:
            previous_boot = target.text(remote_commands.boot_id(), timeout=30).strip()
        except RemoteError:
            previous_boot = None  # unreachable now: any answer after the reboot counts
        wait_ssh = lifecycle.ssh_waiter(target, previous_boot)
    with progress(f"restart {stack}") as report:
        seconds = lifecycle.restart(stack, instance, region, ec2=ec2, wait_ssh=wait_ssh, timeout=timeout,
                                    progress=report)
    console.print(f"{stack} ({instance}) is back: running and answering SSH after {seconds:.0f}s")
    return seconds


# --- inventory ----------------------------------------------------------------------------------------------------

def default_region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def list_regions(client_for=lifecycle.ec2_client, as_json: bool = False) -> list[str]:
    names = inventory.regions(client_for(default_region()))
    if as_json:
        print_json(names)
        return names
    table = Table("region")
    for name in names:
        table.add_row(name)
    _out().print(table)
    return names


def list_types(region: str, client_for=lifecycle.ec2_client, as_json: bool = False) -> list[dict]:
    rows = inventory.instance_types(region, client_for(region))
    if as_json:
        print_json(rows)
        return rows
    table = Table("type", "vCPUs", "memory GiB", "arch", "USD/h", title=f"instance types in {region}",
                  caption=inventory.PRICE_NOTE)
    for row in rows:
        table.add_row(row["type"], str(row["vcpus"]), f"{row['memory_gib']:g}", row["arch"], row["hourly"])
    _out().print(table)
    return rows


def list_instances(region: Optional[str] = None, states=None, key_name: Optional[str] = None,
                   client_for=lifecycle.ec2_client, as_json: bool = False) -> list[inventory.InstanceRow]:
    regions = [lifecycle.check_region(region)] if region else inventory.regions(client_for(default_region()))
    with progress("listing instances") as report:
        report(f"{len(regions)} region(s)")
        rows = inventory.instances(regions, states=states, key_name=key_name, client_for=client_for)
    if as_json:
        print_json(rows)
        return rows
    self_stopped = any(inventory.STOP_CAUSES["Client.InstanceInitiatedShutdown"] in r.stopped for r in rows)
    table = Table("name", "stack", "state", "type", "region", "public IP", "uptime", "USD/h", "id", "stopped (UTC)",
                  caption=inventory.PRICE_NOTE + ("\n" + inventory.SELF_STOP_NOTE if self_stopped else ""))
    for r in rows:
        table.add_row(r.name, r.stack, r.state, r.instance_type, r.region, r.public_ip, r.uptime, r.hourly,
                      r.instance_id, r.stopped)
    _out().print(table if rows else "no labstack instances" + (f" with key pair {key_name}" if key_name else ""))
    return rows


def apps(stack: str, *, target: Optional[SshTarget] = None) -> list[dict]:
    config = stackfile.load(stack)
    target = target or target_for_stack(stack, config=config)
    with target:
        rows = inventory.apps_status(target, [app.name for app in config.apps])
    table = Table("app", "serving", "release", "deployed", "image", "containers")
    for row in rows:
        containers = ", ".join(f"{c['service']}: {c['status']}" for c in row["containers"]) or "-"
        table.add_row(row["app"], row["color"], row["release"], row["deployed"], row["image"], containers)
    _out().print(table)
    return rows


def logs(stack: str, app: str, service: str = "web", *, tail: int = 200, follow: bool = False,
         target: Optional[SshTarget] = None) -> int:
    config = stackfile.load(stack)
    app = stackfile.app_config(config, app).name
    target = target or target_for_stack(stack, config=config)
    with target:
        container = inventory.service_container(target, app, service)
        # Streamed straight to this terminal (stdout and stderr as the container wrote them).
        return subprocess.run(target.ssh_argv(remote_commands.docker_logs(container, tail, follow)),
                              stdin=subprocess.DEVNULL).returncode


def stats(stack: str, *, target: Optional[SshTarget] = None) -> dict:
    target = target or target_for_stack(stack)
    with target:
        data = inventory.stats(target)
    _out().print(f"load {' '.join(data['load'])}   memory {data['memory_mb']['used']}/{data['memory_mb']['total']} MB   "
              f"disk / {data['disk_mb']['used']}/{data['disk_mb']['total']} MB   up {data['uptime']}")
    table = Table("container", "CPU", "memory")
    for c in data["containers"]:
        table.add_row(c["name"], c["cpu"], c["memory"])
    _out().print(table)
    return data


def ssh(stack: str, app: Optional[str] = None, service: str = "web", *, target: Optional[SshTarget] = None,
        node: Optional[str] = None) -> None:
    """A shell on the server (or a cluster node: `worker-2`), or in an app's container; replaces this process with
    ssh."""
    config = stackfile.load(stack)
    if node is not None and target is None:
        from labstack.clusters import node_target

        if app is not None:
            raise RemoteError("--app and --node go separately: apps run on the head")
        target = node_target(stack, node, stack_outputs(stack), config)
    target = target or target_for_stack(stack, config=config)
    command = None
    if app is not None:
        app = stackfile.app_config(config, app).name
        container = inventory.service_container(target, app, service)
        command = remote_commands.container_shell(container)
    sys.stdout.flush()
    target.exec_interactive(command)


def exec_in_app(stack: str, app: Optional[str], service: str, command: str, *,
                target: Optional[SshTarget] = None) -> int:
    """Run a command line in the app's serving container (web, or a worker, clock, postgres, redis), streaming its
    output; returns its exit code. Like `ssh host CMD`, the words are one line for the container's sh."""
    if not command.strip():
        raise RemoteError("give the command after --, e.g. `invoke exec -s STACK --app APP -- dallinger-housekeeper`")
    config = stackfile.load(stack)
    target = target or target_for_stack(stack, config=config)
    container = inventory.service_container(target, stackfile.app_config(config, app).name, service)
    sys.stdout.flush()
    # Not target.run: that captures the output, and a one-off script's progress belongs on the operator's screen.
    return subprocess.run(target.ssh_argv(remote_commands.container_command(container, command)),
                          stdin=subprocess.DEVNULL).returncode


def ops_errors() -> tuple[type[BaseException], ...]:
    """Everything a task turns into one `labstack: …` line instead of a traceback (labstack/tasks/errors.py)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from labstack.jobs.server import JobError
    from labstack.jobs.throwaway import JobRunError
    from labstack.stacks.debug import DebugError

    return (images.ImageError, stackfile.StackFileError, ConfigError, RemoteError, export_mod.ExportError,
            lifecycle.LifecycleError, inventory.InventoryError, PulumiError, ClientError, BotoCoreError, JobError,
            JobRunError, DebugError)


def error_message(error: BaseException) -> str:
    """The text a task prints for one of ops_errors(): a broken stack file as the same problem lines `pulumi up`
    prints (key = value: fix), anything else as one `labstack: …` line."""
    from botocore.exceptions import NoCredentialsError, NoRegionError

    if isinstance(error, NoCredentialsError):
        return ("labstack: no AWS credentials found: run `aws configure` (or `aws configure --profile <name>` and "
                "`export AWS_PROFILE=<name>`), or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    if isinstance(error, NoRegionError):
        return "labstack: no AWS region given: pass --region (e.g. --region eu-west-3) or `export AWS_REGION=eu-west-3`"
    if isinstance(error, ConfigError):
        return (f"labstack: the stack configuration has {len(error.problems)} problem(s):\n"
                + "\n".join(f"  - {problem}" for problem in error.problems))
    return f"labstack: {error}"
