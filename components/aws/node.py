"""An EC2 node: the instance, its address (an Elastic IP) and its desired power state."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_aws as aws


@dataclass
class NodeArgs:
    ami_id: str
    instance_type: str
    storage_gb: int
    desired_state: str  # running | stopped
    key_name: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    subnet_id: pulumi.Input[Optional[str]] = None
    user_data: pulumi.Input[Optional[str]] = None
    tags: dict[str, str] = field(default_factory=dict)
    volume_tags: dict[str, str] = field(default_factory=dict)


class Node(pulumi.ComponentResource):
    instance_id: pulumi.Output[str]
    public_ip: pulumi.Output[str]
    private_ip: pulumi.Output[str]

    def __init__(self, name: str, args: NodeArgs, opts: Optional[pulumi.ResourceOptions] = None):
        # Was labstack:index:Server: the alias keeps deployed stacks' instances (and their children) where they are.
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(aliases=[pulumi.Alias(type_="labstack:index:Server")]))
        super().__init__("labstack:index:Node", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        instance = aws.ec2.Instance(
            f"{name}-instance",
            ami=args.ami_id,
            instance_type=args.instance_type,
            key_name=args.key_name,
            vpc_security_group_ids=[args.security_group_id],
            subnet_id=args.subnet_id,
            user_data=args.user_data,
            # A new cloud-init payload (e.g. new host keys) only takes effect on a fresh instance.
            user_data_replace_on_change=True,
            # IMDSv2 only, and a hop limit of 1 so no container can get a token: the user data holds the SSH host
            # key, and a request forged through the experiment's web app must not be able to read it.
            metadata_options=aws.ec2.InstanceMetadataOptionsArgs(http_tokens="required", http_endpoint="enabled",
                                                                 http_put_response_hop_limit=1),
            root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
                volume_size=args.storage_gb, volume_type="gp3", encrypted=True, delete_on_termination=True,
                # Volumes carry the same tags as the instance so cost reports and inventory find them.
                tags=args.volume_tags),
            tags=args.tags,
            # The default AMI is an SSM path that moves when Canonical publishes a new image; following it would
            # replace the server and delete its disk. Keep the AMI it was made from.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["ami"]),
        )
        # An Elastic IP keeps the address (and so DNS, known_hosts and firewall allow-lists) across stop/start.
        address = aws.ec2.Eip(f"{name}-ip", domain="vpc", instance=instance.id, tags=args.tags, opts=child)
        # Power state is its own resource so `invoke stop` is a config change, not a replacement. (The provider
        # files aws_ec2_instance_state under the ec2transitgateway module, for historical reasons.)
        power = aws.ec2transitgateway.InstanceState(f"{name}-state", instance_id=instance.id, state=args.desired_state,
                                                    opts=child)

        # Remote steps wait for this: after `invoke start` the instance must be running before SSH is tried.
        self.power_state = power
        self.instance_id = instance.id
        self.public_ip = address.public_ip
        self.private_ip = instance.private_ip
        self.register_outputs({"instanceId": self.instance_id, "publicIp": self.public_ip,
                               "privateIp": self.private_ip})
