"""invoke list.volumes / list.snapshots (labstack/data/volumes.py) against moto server."""
from __future__ import annotations

import pytest

from components.config.prices import ebs_gb_month, snapshot_gb_month
from labstack.data import volumes

pytestmark = pytest.mark.testbed  # moto_server is a test bed service


@pytest.fixture
def ec2(moto_ec2):
    return moto_ec2("eu-west-3")


def tagged(stack: str, role: str) -> list[dict]:
    return [{"ResourceType": kind, "Tags": [{"Key": "labstack:stack", "Value": stack},
                                             {"Key": "labstack:role", "Value": role}]}
            for kind in ("volume",)]


def test_volumes_and_snapshots_of_labstack_with_size_stack_state_and_monthly_cost(ec2):
    ours = ec2.create_volume(AvailabilityZone="eu-west-3a", Size=100, VolumeType="gp3",
                             TagSpecifications=tagged("paris-batch2", "data"))["VolumeId"]
    ec2.create_volume(AvailabilityZone="eu-west-3a", Size=7)  # not labstack's
    rows = volumes.volume_rows(ec2, "eu-west-3")
    gp3, _ = ebs_gb_month("eu-west-3")
    assert [(r.id, r.stack, r.role, r.size_gb, r.state) for r in rows] == [
        (ours, "paris-batch2", "data", 100, "available")]
    assert rows[0].monthly_usd == round(gp3 * 100, 2) and rows[0].monthly_usd > 0
    assert rows[0].detail == "eu-west-3a, not attached"

    snapshot = ec2.create_snapshot(VolumeId=ours, TagSpecifications=[{"ResourceType": "snapshot", "Tags": [
        {"Key": "labstack:stack", "Value": "paris-batch2"},
        {"Key": "labstack:role", "Value": "data-final-snapshot"}]}])["SnapshotId"]
    ec2.create_snapshot(VolumeId=ours)  # untagged: not listed
    [row] = volumes.snapshot_rows(ec2, "eu-west-3")
    price, _ = snapshot_gb_month("eu-west-3")
    assert (row.id, row.stack, row.role, row.size_gb, row.state) == (
        snapshot, "paris-batch2", "data-final-snapshot", 100, "completed")
    assert row.monthly_usd == round(price * 100, 2) and row.detail.startswith(f"{ours}, ")


def test_the_task_action_prints_the_region_s_volumes(ec2, capsys):
    ec2.create_volume(AvailabilityZone="eu-west-3a", Size=30, TagSpecifications=tagged("lab", "data"))
    rows = volumes.list_storage("volumes", "eu-west-3")
    assert [(r.stack, r.size_gb) for r in rows] == [("lab", 30)]
    assert volumes.list_storage("snapshots", "eu-west-3") == []
    assert "no labstack snapshots in eu-west-3" in capsys.readouterr().out
