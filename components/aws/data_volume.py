"""The data volume (labstack:dataVolume): an encrypted gp3 EBS volume in the instance's availability zone, its
attachment, and what `pulumi destroy` does with it (docs/lifecycle.md, README "Data volume").

The replacement trap: Pulumi creates a replacing instance before deleting the old one, and attaching the volume to
the new instance fails while it is still attached to the old. The attachment is therefore delete-before-replace and
stops the old instance before detaching (`stop_instance_before_detaching`): the OS shuts down cleanly (Docker stops
the apps, the filesystem is unmounted), the volume is detached, then attached to the new instance, whose mount step
(hooks/mount-data.sh) waits for the device to appear. Attaching at boot (the instance attaching its own volume from
user data) was not chosen: it needs an instance role allowed to attach volumes and hides the attachment from Pulumi.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_aws as aws
import pulumi_command as command

from components.config.cost import GB_MONTH_TAG, recorded_volume_tags
from components.config.data_volume import DataVolumeConfig
from components.operator_side import VOLUME_SNAPSHOT, OperatorSide

DEVICE_NAME = "/dev/sdf"  # what EC2 requires in the API; on Nitro the device is found by volume id, never by this


@dataclass
class DataVolumeArgs:
    config: DataVolumeConfig
    instance_id: pulumi.Input[str]
    availability_zone: pulumi.Input[str]
    region: str
    stack: str
    creator: str
    operator_side: OperatorSide  # runs the final snapshot when Pulumi deletes the volume
    tags: dict[str, str] = field(default_factory=dict)


class DataVolume(pulumi.ComponentResource):
    volume_id: pulumi.Output[str]

    def __init__(self, name: str, args: DataVolumeArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("labstack:aws:DataVolume", name, None, opts)
        cfg = args.config
        if cfg.existing_id:
            # Not ours: no resource for the volume, so no destroy step can ever snapshot or delete it.
            self.volume_id = pulumi.Output.from_input(cfg.existing_id)
        else:
            volume = aws.ebs.Volume(
                f"{name}-data", availability_zone=args.availability_zone, size=cfg.size_gb, type="gp3",
                encrypted=True, snapshot_id=cfg.from_snapshot,
                tags={**args.tags, **recorded_volume_tags(args.region)},
                # `retain`: Pulumi forgets the volume on destroy, AWS keeps it (and bills it).
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=cfg.on_destroy == "retain",
                                            ignore_changes=[f'tags["{GB_MONTH_TAG}"]']))
            self.volume_id = volume.id
        attachment = aws.ec2.VolumeAttachment(
            f"{name}-data-attachment", device_name=DEVICE_NAME, volume_id=self.volume_id,
            instance_id=args.instance_id, stop_instance_before_detaching=True,
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True))
        if not cfg.existing_id and cfg.on_destroy == "snapshot":
            # Only its delete does something: it depends on the volume (not the attachment, so replacing the instance
            # takes no snapshot), so Pulumi runs it before deleting the volume; a failed snapshot fails the destroy
            # with the volume still there.
            command.local.Command(
                f"{name}-data-final-snapshot", delete=args.operator_side.command(VOLUME_SNAPSHOT),
                dir=args.operator_side.project_dir,
                environment={"LABSTACK_VOLUME_ID": self.volume_id, "LABSTACK_REGION": args.region,
                             "LABSTACK_STACK": args.stack, "LABSTACK_CREATOR": args.creator},
                add_previous_output_in_env=False,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[volume]))
        self.ready = [attachment]
        self.register_outputs({"volumeId": self.volume_id})
