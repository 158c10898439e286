"""The final snapshot of a data volume (labstack:dataVolume onDestroy: snapshot), taken by the delete step of a local
command (components/aws/data_volume.py) when `pulumi destroy` removes the volume: the snapshot is complete and tagged
before Pulumi deletes the volume, and a failure stops the destroy with the volume still there.

Run by Pulumi with LABSTACK_VOLUME_ID, LABSTACK_REGION, LABSTACK_STACK, LABSTACK_CREATOR in the environment; by hand:
`LABSTACK_VOLUME_ID=vol-… LABSTACK_REGION=eu-west-3 LABSTACK_STACK=lab LABSTACK_CREATOR=me venv/bin/python -m
labstack.data.volume_snapshot`.
"""
from __future__ import annotations

import datetime
import os
import sys
from typing import Any, Optional

from labstack.stacks.lifecycle import ec2_client


def final_snapshot(ec2: Any, volume_id: str, stack: str, creator: str,
                   today: Optional[datetime.date] = None, poll_seconds: float = 15) -> str:
    """Snapshot the volume, wait until the snapshot is `completed` (EBS keeps copying after the call returns; a
    volume deleted before that would leave a snapshot that can still fail), and return its id. The tags go on at
    creation, so the snapshot is never untagged."""
    date = (today or datetime.datetime.now(datetime.timezone.utc).date()).isoformat()
    tags = {"Name": f"{stack}-data-final-{date}", "labstack:stack": stack, "labstack:creator": creator,
            "labstack:role": "data-final-snapshot", "labstack:date": date, "labstack:volume": volume_id}
    snapshot = ec2.create_snapshot(
        VolumeId=volume_id, Description=f"labstack {stack}: final snapshot of the data volume {volume_id} ({date})",
        TagSpecifications=[{"ResourceType": "snapshot",
                            "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}])
    snapshot_id = snapshot["SnapshotId"]
    ec2.get_waiter("snapshot_completed").wait(
        SnapshotIds=[snapshot_id], WaiterConfig={"Delay": poll_seconds, "MaxAttempts": 24 * 3600 // max(poll_seconds, 1)})
    return snapshot_id


def main() -> int:
    env = os.environ
    ec2 = ec2_client(env["LABSTACK_REGION"])
    snapshot_id = final_snapshot(ec2, env["LABSTACK_VOLUME_ID"], env["LABSTACK_STACK"], env["LABSTACK_CREATOR"])
    print(f"labstack: final snapshot {snapshot_id} of {env['LABSTACK_VOLUME_ID']} is complete; make a new volume "
          f"from it with labstack:dataVolume.fromSnapshot: {snapshot_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
