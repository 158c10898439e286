"""`invoke cost`: what each stack has cost since its resources were created, and what it costs per month as it is.

Found by labstack's tags (`labstack:stack`) in the stack's region: instances (on-demand or spot), EBS volumes (root and
data, gp3 per GB-month), Elastic IPs (public IPv4 per hour), the own public IPv4 of
instances without one (cluster workers) and snapshots. Rates:
  * the past is priced at the rate recorded on the resource when it was created (tags `labstack:hourly-usd` and
    `labstack:gb-month-usd`, components/config/cost.py), so a later price change or a retired type never rewrites
    it; a resource without the tag (older than the tag, or resized since) is priced at today's rate, and says so;
    spot instances at the spot price history of their zone;
  * the projection at today's rate (labstack/cost/pricing.py: the AWS Pricing API, else the built-in table as an estimate).

What EC2 says about running time, and so what the report can know:
  * an instance's first launch is its root volume's attach time; `LaunchTime` is its last start; a stopped instance's
    `StateTransitionReason` dates its last stop. So it surely ran from its last start to now (or to its last stop),
    and between its first launch and its last start it ran for an unknown part. The report gives compute as a range,
    "at least" (known running time) and "at most" (as if it never stopped before its last start); budget warnings
    use the "at most" figure, so they come early rather than late.
  * disks and addresses cost from creation whether the instance runs or not. Snapshots are billed for the blocks
    they hold, which EC2 does not report: a snapshot counts at its volume's size, an upper bound.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Optional

from rich.console import Console
from rich.table import Table

from components.config.cost import GB_MONTH_TAG, HOURLY_TAG
from components.config.prices import HOURS_PER_MONTH
from labstack.cost import pricing
from labstack.stacks.inventory import tag
from labstack.stacks.lifecycle import ec2_client

WARN_AT = (0.5, 0.8)  # shares of labstack:budget.total `invoke cost` warns at
STOPPED_AT = re.compile(r"\((\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) (?:GMT|UTC)\)")  # AWS says GMT, moto UTC


@dataclass
class Line:
    """One resource: what it has cost (a range for compute), what it costs per month as it is now."""

    kind: str  # instance | volume | address | snapshot
    resource_id: str
    detail: str  # type and state, size, ...
    rate: str  # the rate the past is priced at, as shown
    since: Optional[datetime]
    low: float
    high: float
    monthly: float
    note: str = ""


@dataclass
class StackCost:
    stack: str
    region: str
    lines: list[Line] = field(default_factory=list)
    budget_total: Optional[float] = None
    budget_hourly: Optional[float] = None
    hourly_now: float = 0.0  # the running instances' price per hour today
    warnings: list[str] = field(default_factory=list)

    @property
    def low(self) -> float:
        return sum(line.low for line in self.lines)

    @property
    def high(self) -> float:
        return sum(line.high for line in self.lines)

    @property
    def monthly(self) -> float:
        return sum(line.monthly for line in self.lines)


def _hours(start: datetime, end: datetime) -> float:
    return max((end - start) / timedelta(hours=1), 0.0)


def _recorded(resource: dict, key: str, instance_type: Optional[str] = None) -> Optional[float]:
    """The rate recorded at creation; for an instance only while it is still the type it was priced as."""
    value = tag(resource, key).split()
    if not value:
        return None
    if instance_type is not None and value[1:] != [instance_type]:
        return None
    try:
        return float(value[0])
    except ValueError:
        return None


def first_launch(instance: dict) -> datetime:
    """When the instance was created: its root volume's attach time survives stops and starts; LaunchTime does
    not."""
    attached = [mapping["Ebs"]["AttachTime"] for mapping in instance.get("BlockDeviceMappings", [])
                if mapping.get("Ebs", {}).get("AttachTime")]
    return min([*attached, instance["LaunchTime"]])


def last_stop(instance: dict) -> Optional[datetime]:
    found = STOPPED_AT.search(instance.get("StateTransitionReason") or "")
    return datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc) if found else None


Intervals = list[tuple[datetime, datetime]]


def running_time(instance: dict, now: datetime) -> tuple[Intervals, Intervals]:
    """(surely running, perhaps running) intervals, from what EC2 tells (module docstring)."""
    state = instance["State"]["Name"]
    started, created = instance["LaunchTime"], first_launch(instance)
    unknown = [(created, started)] if started - created > timedelta(minutes=1) else []
    if state in ("running", "pending", "stopping", "shutting-down"):
        return [(started, now)], unknown
    stopped = last_stop(instance)
    if stopped is None:  # stopped, and EC2 does not say when: anything from nothing to always
        return [], [(created, now)]
    return [(started, max(stopped, started))], unknown


def _instance_line(ec2, pricer: pricing.Pricer, region: str, instance: dict, now: datetime) -> tuple[Line, float]:
    """The instance's line and its price per hour today (0 when stopped)."""
    instance_type, state = instance["InstanceType"], instance["State"]["Name"]
    sure, unknown = running_time(instance, now)
    sure_hours = sum(_hours(a, b) for a, b in sure)
    unknown_hours = sum(_hours(a, b) for a, b in unknown)
    today = pricer.instance_hourly(region, instance_type)
    note = ""
    if instance.get("InstanceLifecycle") == "spot":
        zone = instance["Placement"]["AvailabilityZone"]
        history = pricing.spot_history(ec2, instance_type, zone, first_launch(instance), now)
        if history:
            low = pricing.spot_cost(history, sure)
            high = low + pricing.spot_cost(history, unknown)
            current = history[-1][1]
            rate = f"spot ${current:.4f}/h now"
            note = f"spot price history of {zone}"
        else:  # no history returned: price at the cap, the most it can have cost
            current = today.usd or 0.0
            low, high = current * sure_hours, current * (sure_hours + unknown_hours)
            rate = f"spot, at most ${current:.4f}/h"
            note = "no spot price history: priced at the on-demand cap"
    else:
        recorded = _recorded(instance, HOURLY_TAG, instance_type)
        past = recorded if recorded is not None else today.usd
        current = today.usd if today.usd is not None else (recorded or 0.0)
        if past is None:
            low = high = 0.0
            rate = "?"
            note = f"no price for {instance_type} in {region}: not counted"
        else:
            low, high = past * sure_hours, past * (sure_hours + unknown_hours)
            rate = f"${past:.4f}/h"
            note = ("price recorded at creation" if recorded is not None else
                    f"no price recorded at creation: today's ({today.source})")
    running = state in ("running", "pending")
    if unknown_hours:
        note += f"; {unknown_hours:.0f} h before its last start with unknown stops"
    line = Line("instance", instance["InstanceId"], f"{instance_type} {state}", rate, first_launch(instance), low,
                high, current * HOURS_PER_MONTH if running else 0.0, note.lstrip("; "))
    return line, current if running else 0.0


def _volume_line(pricer: pricing.Pricer, region: str, volume: dict, now: datetime) -> Line:
    today = pricer.gp3_gb_month(region)
    recorded = _recorded(volume, GB_MONTH_TAG)
    past = recorded if recorded is not None else today.usd
    size = volume["Size"]
    current = today.usd if today.usd is not None else (past or 0.0)
    accrued = size * (past or 0.0) * _hours(volume["CreateTime"], now) / HOURS_PER_MONTH
    note = "price recorded at creation" if recorded is not None else f"today's price ({today.source})"
    if volume.get("VolumeType") != "gp3":
        note += f"; a {volume.get('VolumeType')} volume priced as gp3"
    return Line("volume", volume["VolumeId"], f"{size} GB {volume.get('VolumeType', '')}",
                f"${past:.4f}/GB-mo" if past is not None else "?", volume["CreateTime"], accrued, accrued,
                size * current, note)


def _address_line(pricer: pricing.Pricer, region: str, address: dict, since: Optional[datetime],
                  now: datetime) -> Line:
    today = pricer.public_ipv4_hourly(region)
    recorded = _recorded(address, HOURLY_TAG)
    past = recorded if recorded is not None else today.usd
    accrued = (past or 0.0) * _hours(since, now) if since else 0.0
    note = "since its instance's first launch" if since else "allocation time unknown: not counted"
    return Line("address", address.get("AllocationId", address.get("PublicIp", "?")), address.get("PublicIp", ""),
                f"${past:.4f}/h" if past is not None else "?", since, accrued, accrued,
                (today.usd or past or 0.0) * HOURS_PER_MONTH, note)


def _own_address_line(pricer: pricing.Pricer, region: str, instance: dict, now: datetime) -> Line:
    """The public IPv4 EC2 gives an instance without an Elastic IP (cluster workers): billed while it runs, released
    at a stop, so only the hours since the last start are known."""
    rate = pricer.public_ipv4_hourly(region).usd or 0.0
    accrued = rate * _hours(instance["LaunchTime"], now)
    return Line("address", instance["InstanceId"], instance["PublicIpAddress"], f"${rate:.4f}/h",
                instance["LaunchTime"], accrued, accrued, rate * HOURS_PER_MONTH,
                "the instance's own public IPv4 (no Elastic IP): since its last start; earlier runs not counted")


def _snapshot_line(pricer: pricing.Pricer, region: str, snapshot: dict, now: datetime) -> Line:
    today = pricer.snapshot_gb_month(region)
    size = snapshot.get("VolumeSize", 0)
    rate = today.usd or 0.0
    accrued = size * rate * _hours(snapshot["StartTime"], now) / HOURS_PER_MONTH
    return Line("snapshot", snapshot["SnapshotId"], f"{size} GB (at most)", f"${rate:.4f}/GB-mo",
                snapshot["StartTime"], accrued, accrued, size * rate,
                "billed for the blocks it holds; counted at the volume's size")


def stack_cost(stack: str, region: str, *, ec2=None, pricer: Optional[pricing.Pricer] = None,
               budget_total: Optional[float] = None, budget_hourly: Optional[float] = None,
               now: Optional[datetime] = None) -> StackCost:
    """Price every resource of `stack` in `region` found by its labstack:stack tag."""
    ec2 = ec2 or ec2_client(region)
    pricer = pricer or pricing.Pricer()
    now = now or datetime.now(timezone.utc)
    mine = [{"Name": "tag:labstack:stack", "Values": [stack]}]
    report = StackCost(stack, region, budget_total=budget_total, budget_hourly=budget_hourly)
    created: dict[str, datetime] = {}
    instances = []
    for page in ec2.get_paginator("describe_instances").paginate(Filters=mine + [
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}]):
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                line, hourly = _instance_line(ec2, pricer, region, instance, now)
                report.lines.append(line)
                report.hourly_now += hourly
                created[instance["InstanceId"]] = first_launch(instance)
                instances.append(instance)
    for page in ec2.get_paginator("describe_volumes").paginate(Filters=mine):
        report.lines += [_volume_line(pricer, region, volume, now) for volume in page["Volumes"]]
    elastic = set()
    for address in ec2.describe_addresses(Filters=mine)["Addresses"]:
        report.lines.append(_address_line(pricer, region, address, created.get(address.get("InstanceId", "")), now))
        elastic.add(address.get("PublicIp"))
    for instance in instances:
        if instance.get("PublicIpAddress") and instance["PublicIpAddress"] not in elastic and \
                instance["State"]["Name"] in ("pending", "running"):
            report.lines.append(_own_address_line(pricer, region, instance, now))
    for page in ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"], Filters=mine):
        report.lines += [_snapshot_line(pricer, region, snapshot, now) for snapshot in page["Snapshots"]]
    report.warnings = budget_warnings(report)
    if pricer.unreachable:
        report.warnings.append(f"the AWS Pricing API could not be reached ({pricer.unreachable}): today's prices are "
                               "the built-in table's estimates")
    return report


def budget_warnings(report: StackCost) -> list[str]:
    warnings = []
    total = report.budget_total
    if total:
        share = report.high / total
        if share >= 1:
            warnings.append(f"spend since launch (at most ${report.high:.2f}) has reached labstack:budget.total "
                            f"${total:.2f}: the server's watcher stops the server at it; if it still runs, "
                            f"`invoke stop -s {report.stack}`")
        else:
            passed = [level for level in WARN_AT if share >= level]
            if passed:
                warnings.append(f"spend since launch (at most ${report.high:.2f}) is past {passed[-1]:.0%} of "
                                f"labstack:budget.total ${total:.2f}")
    if report.budget_hourly and report.hourly_now > report.budget_hourly:
        warnings.append(f"the running instances cost ${report.hourly_now:.4f}/h at today's prices, above "
                        f"labstack:budget.hourly ${report.budget_hourly:.4f} (the table `pulumi up` checked against "
                        "is older)")
    return warnings


def report(stacks: list[str], load: Callable[[str], object], *, client_for: Callable[[str], object] = ec2_client,
           pricer: Optional[pricing.Pricer] = None, now: Optional[datetime] = None) -> list[StackCost]:
    """Each stack's cost; `load(stack)` gives its StackConfig (region, budget)."""
    pricer = pricer or pricing.Pricer()
    reports = []
    for stack in stacks:
        cfg = load(stack)
        budget = getattr(cfg, "budget", None)
        if not cfg.region:  # an existing server: nothing of it is in AWS
            continue
        reports.append(stack_cost(stack, cfg.region, ec2=client_for(cfg.region), pricer=pricer,
                                  budget_total=budget.total if budget else None,
                                  budget_hourly=budget.hourly if budget else None, now=now))
    return reports


def _when(moment: Optional[datetime]) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "?"


def show(reports: list[StackCost], console: Console) -> None:
    if not reports:
        console.print("no stacks in AWS to price")
    for item in reports:
        table = Table("resource", "id", "what", "rate", "since", "cost so far", "per month now", "how priced",
                      title=f"{item.stack} ({item.region})", title_justify="left")
        for line in item.lines:
            spent = f"${line.low:.2f}" if abs(line.high - line.low) < 0.005 else f"${line.low:.2f}–${line.high:.2f}"
            table.add_row(line.kind, line.resource_id, line.detail, line.rate, _when(line.since), spent,
                          f"${line.monthly:.2f}", line.note)
        spent = f"${item.low:.2f}" if abs(item.high - item.low) < 0.005 else f"${item.low:.2f}–${item.high:.2f}"
        table.add_row("total", "", "", f"${item.hourly_now:.4f}/h running", "", spent, f"${item.monthly:.2f}", "",
                      style="bold")
        console.print(table if item.lines else f"{item.stack} ({item.region}): no labstack resources found")
        for warning in item.warnings:
            console.print(f"  ! {warning}", style="yellow", markup=False, highlight=False, soft_wrap=True)
