"""`invoke list.volumes` and `invoke list.snapshots`: labstack's EBS volumes and snapshots (tag labstack:stack) of
one region, with size, stack, state and monthly cost (gp3 / standard snapshot price per GB-month from the built-in
table, components/config/prices.py; snapshots are priced at their volume's size, an upper bound: EBS bills the
blocks they hold)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from components.config.prices import ebs_gb_month, snapshot_gb_month

STACK_TAG = "labstack:stack"


@dataclass(frozen=True)
class StorageRow:
    id: str
    stack: str
    role: str
    size_gb: int
    state: str
    monthly_usd: Optional[float]  # None: no price for the region
    detail: str  # volumes: zone and the instance attached; snapshots: the volume and date


def _tags(item: dict) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in item.get("Tags", [])}


def _ours(ec2: Any, operation: str, key: str, **kwargs) -> list[dict]:
    pages = ec2.get_paginator(operation).paginate(Filters=[{"Name": "tag-key", "Values": [STACK_TAG]}], **kwargs)
    return [item for page in pages for item in page[key]]


def volume_rows(ec2: Any, region: str) -> list[StorageRow]:
    price, _ = ebs_gb_month(region)
    rows = []
    for volume in _ours(ec2, "describe_volumes", "Volumes"):
        tags = _tags(volume)
        attached = ", ".join(a["InstanceId"] for a in volume.get("Attachments", [])) or "not attached"
        rows.append(StorageRow(volume["VolumeId"], tags[STACK_TAG], tags.get("labstack:role", "-"), volume["Size"],
                               volume["State"], None if price is None else round(price * volume["Size"], 2),
                               f"{volume['AvailabilityZone']}, {attached}"))
    return sorted(rows, key=lambda r: (r.stack, r.id))


def snapshot_rows(ec2: Any, region: str) -> list[StorageRow]:
    price, _ = snapshot_gb_month(region)
    rows = []
    for snapshot in _ours(ec2, "describe_snapshots", "Snapshots", OwnerIds=["self"]):
        tags = _tags(snapshot)
        rows.append(StorageRow(snapshot["SnapshotId"], tags[STACK_TAG], tags.get("labstack:role", "-"),
                               snapshot["VolumeSize"], snapshot["State"],
                               None if price is None else round(price * snapshot["VolumeSize"], 2),
                               f"{snapshot.get('VolumeId', '-')}, {snapshot['StartTime']:%Y-%m-%d}"))
    return sorted(rows, key=lambda r: (r.stack, r.id))


def print_rows(rows: list[StorageRow], kind: str, region: str, out: Callable[[Any], None]) -> None:
    from rich.table import Table

    if not rows:
        out(f"no labstack {kind} in {region}")
        return
    table = Table("id", "stack", "role", "GB", "state", "USD/month", "where" if kind == "volumes" else "from",
                  caption="USD/month from the built-in price table (an estimate)")
    for r in rows:
        table.add_row(r.id, r.stack, r.role, str(r.size_gb), r.state,
                      "-" if r.monthly_usd is None else f"{r.monthly_usd:.2f}", r.detail)
    out(table)


def list_storage(kind: str, region: Optional[str] = None, as_json: bool = False) -> list[StorageRow]:
    """The task's action: `kind` is volumes or snapshots; region: the stack's default region when not given."""
    from labstack.tasks.actions import default_region
    from labstack.terminal import print_json, results_console
    from labstack.stacks.lifecycle import ec2_client

    region = region or default_region()
    ec2 = ec2_client(region)
    rows = volume_rows(ec2, region) if kind == "volumes" else snapshot_rows(ec2, region)
    if as_json:
        print_json(rows)
    else:
        print_rows(rows, kind, region, results_console().print)
    return rows
