"""An EC2 node: the instance, its address (an Elastic IP) and, when Pulumi owns it, its power state."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_aws as aws

from components.aws.baseline import NODE_SHUTDOWN, instance_metadata, instance_root_volume
from components.config.cost import (GB_MONTH_TAG, HOURLY_TAG, SpotSettings, recorded_address_tags,
                                    recorded_price_tags, recorded_volume_tags)
from components.nodes import HEAD, NodeHandle, connection

# labstack:desiredState values. With AUTO, Pulumi does not own the power state (docs/lifecycle.md): no InstanceState
# resource, so a node that stopped itself is neither started by the next `pulumi up` nor reported as drift.
AUTO = "auto"
# The price tags keep the value they were created with (see components/config/cost.py): later `pulumi up`s with a
# newer price table must not rewrite what a running node cost.
PRICE_TAGS_KEPT = [f'tags["{HOURLY_TAG}"]']


def spot_market(spot: Optional[SpotSettings]) -> Optional[aws.ec2.InstanceInstanceMarketOptionsArgs]:
    """A persistent spot request: when AWS reclaims the capacity the instance stops (disks, Elastic IP and data
    volume stay) and the request starts it again when capacity returns; a one-time request would end it for good."""
    if spot is None:
        return None
    return aws.ec2.InstanceInstanceMarketOptionsArgs(
        market_type="spot",
        spot_options=aws.ec2.InstanceInstanceMarketOptionsSpotOptionsArgs(
            spot_instance_type="persistent", instance_interruption_behavior="stop",
            # Plain decimals: EC2 reads the price as text, never in exponent form.
            max_price=f"{spot.max_price:.6f}".rstrip("0").rstrip(".") if spot.max_price is not None else None))


@dataclass
class NodeArgs:
    ami_id: str
    instance_type: str
    storage_gb: int
    desired_state: str  # running | stopped | auto
    key_name: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    host_key: pulumi.Input[str]  # the public host key cloud-init installs (in user_data); every connection pins it
    login_user: str
    private_key: pulumi.Input[Optional[str]]  # the operator's login key, for the node's SSH connection
    role: str = HEAD
    subnet_id: pulumi.Input[Optional[str]] = None
    user_data: pulumi.Input[Optional[str]] = None
    # The ECR pull role (components/aws/registry_access.py); the provider attaches or swaps it in place.
    iam_instance_profile: pulumi.Input[Optional[str]] = None
    tags: dict[str, str] = field(default_factory=dict)
    volume_tags: dict[str, str] = field(default_factory=dict)
    region: str = ""  # prices the node at creation (components/config/cost.py's price tags)
    spot: Optional[SpotSettings] = None  # None: on-demand
    # False (cluster workers): no Elastic IP; the instance gets its own public IPv4 from EC2, which changes on a
    # stop/start but needs no allocation (README, Clusters: how workers reach the internet).
    elastic_ip: bool = True
    # labstack:dataVolume.id on the default network: the zone of that volume (EC2 then picks the default subnet there)
    availability_zone: Optional[str] = None


class Node(pulumi.ComponentResource):
    instance_id: pulumi.Output[str]
    public_ip: pulumi.Output[str]
    private_ip: pulumi.Output[str]
    subnet_id: pulumi.Output[str]
    availability_zone: pulumi.Output[str]
    handle: NodeHandle

    def __init__(self, name: str, args: NodeArgs, opts: Optional[pulumi.ResourceOptions] = None):
        # Was labstack:index:Server: the alias keeps deployed stacks' instances (and their children) where they are.
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(aliases=[pulumi.Alias(type_="labstack:index:Server")]))
        super().__init__("labstack:index:Node", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # Never give this instance a launch_template: that input forces a replacement (a new server, its root disk
        # deleted). It gets the same settings as the job template from components/aws/baseline.py instead.
        instance = aws.ec2.Instance(
            f"{name}-instance",
            ami=args.ami_id,
            instance_type=args.instance_type,
            key_name=args.key_name,
            vpc_security_group_ids=[args.security_group_id],
            subnet_id=args.subnet_id,
            availability_zone=args.availability_zone,
            user_data=args.user_data,
            iam_instance_profile=args.iam_instance_profile,
            # A new cloud-init payload (e.g. new host keys) only takes effect on a fresh instance.
            user_data_replace_on_change=True,
            metadata_options=instance_metadata(),
            root_block_device=instance_root_volume(args.storage_gb,
                                                   {**args.volume_tags, **recorded_volume_tags(args.region)}),
            instance_initiated_shutdown_behavior=NODE_SHUTDOWN,
            associate_public_ip_address=None if args.elastic_ip else True,
            # Switching spot on or off replaces the instance (the provider cannot change the market in place).
            instance_market_options=spot_market(args.spot),
            tags={**args.tags, **recorded_price_tags(args.region, args.instance_type, args.spot)},
            # The default AMI is an SSM path that moves when Canonical publishes a new image; following it would
            # replace the server and delete its disk. Keep the AMI it was made from.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=[
                "ami", *PRICE_TAGS_KEPT, f'rootBlockDevice.tags["{GB_MONTH_TAG}"]']),
        )
        # An Elastic IP keeps the address (and so DNS, known_hosts and firewall allow-lists) across stop/start.
        public_ip = instance.public_ip
        if args.elastic_ip:
            public_ip = aws.ec2.Eip(f"{name}-ip", domain="vpc", instance=instance.id,
                                    tags={**args.tags, **recorded_address_tags(args.region)},
                                    opts=pulumi.ResourceOptions(parent=self, ignore_changes=PRICE_TAGS_KEPT)).public_ip
        # Remote steps wait for the instance: EC2 creates it running. When Pulumi owns the power state they wait for
        # that instead, so after `invoke start` the instance runs again before SSH is tried.
        ready: list[pulumi.Resource] = [instance]
        if args.desired_state != AUTO:
            # Its own resource so `invoke stop` is a config change, not a replacement. (The provider files
            # aws_ec2_instance_state under the ec2transitgateway module, for historical reasons.) Dropping it (a
            # switch to auto) leaves the instance as it is: the provider's delete only forgets the resource.
            ready = [aws.ec2transitgateway.InstanceState(f"{name}-state", instance_id=instance.id,
                                                         state=args.desired_state, opts=child)]

        self.instance_id = instance.id
        self.public_ip = public_ip
        self.private_ip = instance.private_ip
        self.subnet_id = instance.subnet_id  # where EC2 put it (its default subnet when none was given)
        self.availability_zone = instance.availability_zone
        self.handle = NodeHandle(
            name=name, role=args.role, public_address=self.public_ip, private_address=self.private_ip,
            host_key=pulumi.Output.from_input(args.host_key), login_user=args.login_user, ssh_port=22,
            connection=connection(self.public_ip, args.login_user, args.private_key, args.host_key),
            ready=ready, instance_id=self.instance_id, availability_zone=self.availability_zone)
        self.register_outputs({"instanceId": self.instance_id, "publicIp": self.public_ip,
                               "privateIp": self.private_ip, "availabilityZone": self.availability_zone})
