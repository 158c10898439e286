"""What every labstack EC2 instance is launched with, written once for the two ways instances come to exist: the
nodes Pulumi makes (`aws.ec2.Instance`, components/aws/node.py) and the throwaway job instances the operator side
will launch from the stack's launch template (components/aws/job_template.py). A test checks both carry the same.
"""
from __future__ import annotations

import pulumi
import pulumi_aws as aws

# IMDSv2 only, and a hop limit of 1 so no container can get a token: the user data holds the SSH host key, and a
# request forged through the experiment's web app must not be able to read it.
METADATA = {"http_tokens": "required", "http_endpoint": "enabled", "http_put_response_hop_limit": 1}
# Encrypted gp3, gone with the instance: data that must outlive an instance belongs on a data volume.
ROOT_VOLUME = {"volume_type": "gp3", "encrypted": True, "delete_on_termination": True}
# What `shutdown` on the machine means. A node that stops itself (idle watcher, an operator's `sudo poweroff`) keeps
# its disk and address and is started again by `invoke start`; a job instance that ends itself is gone, so a
# finished job stops costing money even with the operator's laptop closed.
NODE_SHUTDOWN = "stop"
JOB_SHUTDOWN = "terminate"


def instance_metadata() -> aws.ec2.InstanceMetadataOptionsArgs:
    return aws.ec2.InstanceMetadataOptionsArgs(**METADATA)


def instance_root_volume(size_gb: int, tags: dict[str, str]) -> aws.ec2.InstanceRootBlockDeviceArgs:
    # Volumes carry the same tags as the instance so cost reports and inventory find them.
    return aws.ec2.InstanceRootBlockDeviceArgs(volume_size=size_gb, tags=tags, **ROOT_VOLUME)


def template_metadata() -> aws.ec2.LaunchTemplateMetadataOptionsArgs:
    return aws.ec2.LaunchTemplateMetadataOptionsArgs(**METADATA)


def template_root_volume(device_name: pulumi.Input[str], size_gb: int) -> aws.ec2.LaunchTemplateBlockDeviceMappingArgs:
    """The root volume of a launch template: the same settings, mapped onto the AMI's root device name (another
    name would add a second volume instead). A template spells its booleans as strings ("true": unset is allowed)."""
    return aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
        device_name=device_name,
        ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
            volume_size=size_gb, volume_type=ROOT_VOLUME["volume_type"],
            encrypted=str(ROOT_VOLUME["encrypted"]).lower(),
            delete_on_termination=str(ROOT_VOLUME["delete_on_termination"]).lower()))
