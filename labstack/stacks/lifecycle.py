"""Stop, start, restart and grow a stack's server.

stop/start/storage change the stack's config and run `pulumi up`, so Pulumi's state stays the truth (the Elastic IP
keeps the address, so DNS keeps working across a stop). restart is a reboot through EC2 (boto3): nothing in the
stack changes, so it needs no `pulumi up`; it waits until the instance runs again and SSH answers, within a bound.
"""
from __future__ import annotations

import os
import time
from typing import Callable, Optional

from components.config import MAX_STORAGE_GB, StackConfig
from labstack.ssh import commands as remote_commands
from labstack.stacks.pulumi_cli import PulumiCli

Progress = Callable[[str], None]


class LifecycleError(RuntimeError):
    pass


def ec2_client(region: str, endpoint_url: Optional[str] = None):
    """boto3 EC2 client; LABSTACK_AWS_ENDPOINT_URL points every task at another endpoint (moto in the tests). The
    region is checked offline first (botocore's own list), so a typo is one line instead of a DNS error."""
    import boto3

    check_region(region)
    return boto3.client("ec2", region_name=region,
                        endpoint_url=endpoint_url or os.environ.get("LABSTACK_AWS_ENDPOINT_URL") or None)


def check_region(region: str) -> str:
    from components.config.aws_names import did_you_mean, known_regions

    regions = known_regions()
    if region not in regions:
        meant = did_you_mean(region, regions)
        raise LifecycleError(f"--region {region!r} is no AWS region" + (f": did you mean {meant}?" if meant else
                             "; `invoke list.regions` lists those your account can use, e.g. eu-west-3"))
    return region


def set_desired_state(stack: str, state: str, cli: Optional[PulumiCli] = None, yes: bool = False) -> None:
    cli = cli or PulumiCli()
    cli.can_update(stack, yes)
    cli.set_config(stack, "labstack:desiredState", state)
    cli.up(stack, yes=yes)


def grow_storage(config: StackConfig, gb: int, cli: Optional[PulumiCli] = None, yes: bool = False) -> int:
    """Set labstack:storageGb to a larger size and apply it; returns the previous size. Never shrinks."""
    stack, current = config.stack, config.storage_gb
    if gb < current:
        raise LifecycleError(f"refusing to shrink stack {stack!r} from {current} GB to {gb} GB: EBS volumes can only "
                             f"grow. Keep {current} GB, or export the data and make a new stack with the smaller disk")
    if gb == current:
        raise LifecycleError(f"stack {stack!r} already has {current} GB; give a larger size to grow it")
    if gb > MAX_STORAGE_GB:
        raise LifecycleError(f"{gb} GB is more than a gp3 volume can hold ({MAX_STORAGE_GB} GB)")
    cli = cli or PulumiCli()
    cli.can_update(stack, yes)
    cli.set_config(stack, "labstack:storageGb", str(gb))
    cli.up(stack, yes=yes)
    return current


def instance_state(ec2, instance_id: str, stack: str = "STACK") -> str:
    from botocore.exceptions import ClientError

    try:
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    except ClientError as error:
        raise LifecycleError(f"instance {instance_id} not found ({error.response['Error'].get('Code')}); was the "
                             f"stack destroyed? `invoke pulumi -s {stack} -- refresh` updates its state") from None
    instances = [i for r in reservations for i in r["Instances"]]
    if not instances:
        raise LifecycleError(f"instance {instance_id} not found; was the stack destroyed?")
    return instances[0]["State"]["Name"]


def restart(stack: str, instance_id: str, region: str, *, ec2=None, wait_ssh: Callable[[float], bool],
            timeout: float = 600, poll: float = 5, progress: Progress = lambda line: None,
            clock=time.monotonic, sleep=time.sleep) -> float:
    """Reboot the instance, wait until it is running and `wait_ssh(seconds_left)` says SSH answers.

    Returns the seconds it took. `wait_ssh` is given the time left and must stop by then (the caller's bound).
    """
    ec2 = ec2 or ec2_client(region)
    state = instance_state(ec2, instance_id, stack)
    if state != "running":
        raise LifecycleError(f"stack {stack!r} has no running instance ({instance_id} is {state}); "
                             f"start it with `invoke start -s {stack}`")
    started = clock()
    progress(f"rebooting {instance_id} in {region}")
    ec2.reboot_instances(InstanceIds=[instance_id])
    deadline = started + timeout
    while True:
        state = instance_state(ec2, instance_id, stack)
        if state == "running":
            break
        if state in ("stopped", "stopping", "terminated", "shutting-down"):
            raise LifecycleError(f"{instance_id} is {state} instead of rebooting; look at the EC2 console")
        if clock() > deadline:
            raise LifecycleError(f"{instance_id} was not running again within {timeout:.0f}s (it is {state})")
        sleep(poll)
    progress(f"{instance_id} is running; waiting for SSH")
    if not wait_ssh(max(deadline - clock(), 1)):
        raise LifecycleError(f"{instance_id} is running but SSH did not answer within {timeout:.0f}s; try "
                             f"`invoke stats -s {stack}` in a minute, or look at the instance's console output")
    return clock() - started


def ssh_waiter(target, previous_boot: Optional[str], poll: float = 5) -> Callable[[float], bool]:
    """SSH answers *after* the reboot: a new boot id, so a reboot that has not begun yet does not count."""

    def wait(seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                result = target.run(remote_commands.boot_id(), check=False, timeout=20)
                boot = result.stdout.decode().strip() if result.returncode == 0 else None
            except Exception:  # noqa: BLE001 - unreachable while rebooting: keep waiting
                boot = None
            if boot and boot != previous_boot:
                return True
            time.sleep(poll)
        return False

    return wait
