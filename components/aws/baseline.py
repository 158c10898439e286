"""What every labstack EC2 instance is launched with (`aws.ec2.Instance`, components/aws/node.py): metadata, root
volume, what `shutdown` means; the policy pack (policy/rules.py) checks the program really declares them."""
from __future__ import annotations

import pulumi_aws as aws

# IMDSv2 only, and a hop limit of 1 so no container can get a token: the user data holds the SSH host key, and a
# request forged through the experiment's web app must not be able to read it.
METADATA = {"http_tokens": "required", "http_endpoint": "enabled", "http_put_response_hop_limit": 1}
# Encrypted gp3, gone with the instance: data that must outlive an instance belongs on a data volume.
ROOT_VOLUME = {"volume_type": "gp3", "encrypted": True, "delete_on_termination": True}
# What `shutdown` on the machine means: a node that stops itself (idle watcher, an operator's `sudo poweroff`) keeps
# its disk and address and is started again by `invoke start`.
NODE_SHUTDOWN = "stop"


def instance_metadata() -> aws.ec2.InstanceMetadataOptionsArgs:
    return aws.ec2.InstanceMetadataOptionsArgs(**METADATA)


def instance_root_volume(size_gb: int, tags: dict[str, str]) -> aws.ec2.InstanceRootBlockDeviceArgs:
    # Volumes carry the same tags as the instance so cost reports and inventory find them.
    return aws.ec2.InstanceRootBlockDeviceArgs(volume_size=size_gb, tags=tags, **ROOT_VOLUME)
