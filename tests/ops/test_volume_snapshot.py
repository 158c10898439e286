"""The data volume's final snapshot (labstack/data/volume_snapshot.py) against moto server: complete and tagged before the
volume may go."""
from __future__ import annotations

import datetime

import pytest

from labstack.data import volume_snapshot

pytestmark = pytest.mark.testbed  # moto_server is a test bed service


@pytest.fixture
def ec2(moto_ec2):
    return moto_ec2("eu-west-3")


def test_final_snapshot_is_complete_and_tagged_with_stack_creator_and_date(ec2):
    volume = ec2.create_volume(AvailabilityZone="eu-west-3a", Size=20, VolumeType="gp3", Encrypted=True)["VolumeId"]
    snapshot_id = volume_snapshot.final_snapshot(ec2, volume, "paris-batch2", "ada",
                                                 today=datetime.date(2026, 11, 28), poll_seconds=1)
    found = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
    assert (found["VolumeId"], found["State"]) == (volume, "completed")
    tags = {tag["Key"]: tag["Value"] for tag in found["Tags"]}
    assert tags == {"Name": "paris-batch2-data-final-2026-11-28", "labstack:stack": "paris-batch2",
                    "labstack:creator": "ada", "labstack:role": "data-final-snapshot", "labstack:date": "2026-11-28",
                    "labstack:volume": volume}


def test_main_reads_the_environment_the_delete_step_sets(ec2, monkeypatch, capsys):
    volume = ec2.create_volume(AvailabilityZone="eu-west-3a", Size=8)["VolumeId"]
    for key, value in {"LABSTACK_VOLUME_ID": volume, "LABSTACK_REGION": "eu-west-3", "LABSTACK_STACK": "lab",
                       "LABSTACK_CREATOR": "ada"}.items():
        monkeypatch.setenv(key, value)
    assert volume_snapshot.main() == 0
    snapshots = ec2.describe_snapshots(Filters=[{"Name": "volume-id", "Values": [volume]}])["Snapshots"]
    assert len(snapshots) == 1
    assert f"labstack:dataVolume.fromSnapshot: {snapshots[0]['SnapshotId']}" in capsys.readouterr().out
