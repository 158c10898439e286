"""What runs where: regions, instance types, labstack's instances (with uptime and an hourly cost estimate),
and on a stack's server its apps, logs and resource use.

Prices come from the built-in table (components/config/prices.py): on-demand Linux list prices of the region, estimates
for "what is this costing me" at a glance, never a bill; types or regions not in the table show "?". `invoke cost`
(labstack/cost/report.py) is the report priced from the AWS Pricing API.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterable, Optional

import components.layout as layout
from components.config.prices import hourly_price, prices_as_of
from labstack.ssh import commands as remote_commands
from labstack.stacks.lifecycle import ec2_client
from labstack.ssh.target import SshTarget, active_color, checked_app, container_ids, last_release

PRICE_NOTE = f"on-demand Linux estimate, USD/h (AWS list prices of {prices_as_of()}; `invoke cost` asks AWS)"
STATES = ("running", "stopped", "terminated")


class InventoryError(RuntimeError):
    pass


@dataclass
class InstanceRow:
    region: str
    instance_id: str
    name: str
    stack: str
    state: str
    instance_type: str
    public_ip: str
    key_name: str
    uptime: str
    hourly: str
    stopped: str = "-"  # when and why a stopped instance stopped (stop_reason)


# EC2's StateReason codes of a stop, in words: who stopped the instance. Short: they are a cell of a wide table.
STOP_CAUSES = {
    "Client.InstanceInitiatedShutdown": "stopped itself (watcher)",
    "Client.UserInitiatedShutdown": "API stop (invoke stop, console or idle alarm)",
    "Server.SpotInstanceShutdown": "spot interruption",
    "Server.SpotInstanceTermination": "spot interruption (terminated)",
    "Server.ScheduledStop": "AWS scheduled maintenance",
    "Server.InternalError": "AWS internal error",
}
# Under the table when an instance stopped itself: the OS powered off, and only the server knows why.
SELF_STOP_NOTE = (f"stopped itself: labstack's watcher powered the OS off (idle, autoStop.maxHours or budget); why: "
                  f"{layout.WATCHER_STATE}/stops.log on the server")
TRANSITION_TIME = re.compile(r"\((\d{4}-\d\d-\d\d \d\d:\d\d):\d\d (GMT|UTC)\)")


def stop_reason(instance: dict) -> str:
    """`<UTC time to the minute>: <who>` for a stopped (or stopping, terminated) instance, from EC2's
    StateTransitionReason (which carries the time) and StateReason (which carries the cause); "-" for a running one."""
    if instance["State"]["Name"] in ("pending", "running"):
        return "-"
    when = TRANSITION_TIME.search(instance.get("StateTransitionReason") or "")
    reason = instance.get("StateReason") or {}
    cause = STOP_CAUSES.get(reason.get("Code", ""), reason.get("Message") or "cause not given by EC2")
    return f"{when.group(1)}: {cause}" if when else cause


def hourly_text(region: str, instance_type: str) -> str:
    price, _ = hourly_price(region, instance_type)
    return f"${price:.4f}" if price is not None else "?"


def format_uptime(seconds: float) -> str:
    """Days count on (no wrap at 24 h, unlike `%H:%M` of a timedelta's seconds)."""
    seconds = max(int(seconds), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    return f"{days}d {hours}h {minutes:02d}m" if days else f"{hours}h {minutes:02d}m"


def tag(instance: dict, key: str) -> str:
    return next((t["Value"] for t in instance.get("Tags") or [] if t["Key"] == key), "")


def regions(ec2=None, region: str = "us-east-1") -> list[str]:
    ec2 = ec2 or ec2_client(region)
    return sorted(r["RegionName"] for r in ec2.describe_regions()["Regions"])


def instance_types(region: str, ec2=None) -> list[dict]:
    ec2 = ec2 or ec2_client(region)
    rows = []
    for page in ec2.get_paginator("describe_instance_types").paginate():
        for item in page["InstanceTypes"]:
            name = item["InstanceType"]
            rows.append({"type": name, "vcpus": item.get("VCpuInfo", {}).get("DefaultVCpus", 0),
                         "memory_gib": item.get("MemoryInfo", {}).get("SizeInMiB", 0) / 1024,
                         "arch": ",".join(item.get("ProcessorInfo", {}).get("SupportedArchitectures", [])),
                         "hourly": hourly_text(region, name)})
    return sorted(rows, key=lambda r: (r["type"].split(".")[0], r["vcpus"], r["memory_gib"], r["type"]))


def instances(region_names: Iterable[str], *, states: Optional[Iterable[str]] = None, key_name: Optional[str] = None,
              client_for: Callable[[str], object] = ec2_client,
              now: Optional[datetime] = None) -> list[InstanceRow]:
    """labstack's instances (tag labstack:stack), or those launched with a given key pair, in these regions."""
    now = now or datetime.now(timezone.utc)
    filters = [{"Name": "key-name", "Values": [key_name]}] if key_name else \
        [{"Name": "tag-key", "Values": ["labstack:stack"]}]
    if states:
        filters.append({"Name": "instance-state-name", "Values": list(states)})
    rows = []
    for region in region_names:
        ec2 = client_for(region)
        for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
            for reservation in page["Reservations"]:
                for item in reservation["Instances"]:
                    state = item["State"]["Name"]
                    launched = item.get("LaunchTime")
                    running = state == "running" and launched is not None
                    rows.append(InstanceRow(
                        region=region, instance_id=item["InstanceId"], name=tag(item, "Name") or "-",
                        stack=tag(item, "labstack:stack") or "-", state=state, instance_type=item["InstanceType"],
                        public_ip=item.get("PublicIpAddress") or "-", key_name=item.get("KeyName") or "-",
                        uptime=format_uptime((now - launched).total_seconds()) if running else "-",
                        hourly=hourly_text(region, item["InstanceType"]) if state == "running" else "-",
                        stopped=stop_reason(item)))
    return sorted(rows, key=lambda r: (r.region, r.stack, r.name, r.instance_id))


# --- on the server ----------------------------------------------------------------------------------------------

# The services an app's compose files run (their role label), and which of them belong to no release colour.
APP_SERVICES = ("web", "worker", "clock", "postgres", "redis")
DATA_SERVICES = ("postgres", "redis")


def apps_status(target: SshTarget, apps: Iterable[str]) -> list[dict]:
    """Per app: serving colour, current release and image (releases log), and the states of its data services'
    and serving release's containers (found by their labels)."""
    rows = []
    for app in map(checked_app, apps):
        color = active_color(target, app)
        last = last_release(target, app)
        listing = target.text(remote_commands.app_containers(app), what="listing containers")
        containers = []
        for line in listing.splitlines():
            entry = json.loads(line)
            labels = dict(part.split("=", 1) for part in entry.get("Labels", "").split(",") if "=" in part)
            role = labels.get(layout.LABEL_ROLE)
            serving = role in DATA_SERVICES or (color is not None and labels.get(layout.LABEL_COLOR) == color)
            if role in APP_SERVICES and serving:
                containers.append({"service": role, "state": entry.get("State"), "status": entry.get("Status")})
        rows.append({"app": app, "color": color or "-", "deployed": last[0] if last else "-",
                     "release": last[1] if len(last) > 1 else "-", "image": last[2] if len(last) > 2 else "-",
                     "containers": sorted(containers, key=lambda c: c["service"])})
    return rows


def service_container(target: SshTarget, app: str, service: str) -> str:
    """The running container of an app's service: web/worker/clock of the serving release, or postgres/redis."""
    checked_app(app)
    if service not in APP_SERVICES:
        raise InventoryError(f"bad service name {service!r}: one of {', '.join(APP_SERVICES)}")
    color = None
    if service not in DATA_SERVICES:
        color = active_color(target, app)
        if color is None:
            raise InventoryError(f"app {app!r} is not deployed on {target.host} (no active release)")
    ids = container_ids(target, app, role=service, color=color)
    if not ids:
        where = f"serving release: {color}" if color else "data services"
        raise InventoryError(f"no running {service!r} container for app {app!r} on {target.host} ({where})")
    return ids[0]


def stats(target: SshTarget) -> dict:
    """One snapshot: load, memory, root disk and each container's CPU/memory."""
    host = target.text(remote_commands.host_stats(), what="reading host stats").split()
    containers = [json.loads(line) for line in target.text(remote_commands.container_stats(), what="docker stats")
                  .splitlines() if line.strip()]
    return {"load": host[:3], "memory_mb": {"total": int(host[5]), "used": int(host[6])},
            "disk_mb": {"total": int(host[7]), "used": int(host[8])}, "uptime": format_uptime(float(host[9])),
            "containers": [{"name": c.get("Name"), "cpu": c.get("CPUPerc"), "memory": c.get("MemUsage")}
                           for c in containers]}
