"""Where the server lives: the region's default VPC, a VPC of its own, or a subnet the operator already has."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_aws as aws

from components.config import DEFAULT_VPC_CIDR


@dataclass
class NetworkArgs:
    mode: str  # default | create | subnet
    tags: dict[str, str] = field(default_factory=dict)
    vpc_cidr: str = DEFAULT_VPC_CIDR
    subnet_id: Optional[str] = None
    subnet_vpc_id: Optional[str] = None  # looked up before any resource was declared
    availability_zone: Optional[str] = None  # the created subnet's zone (labstack:dataVolume.id's); None: AWS picks


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[Optional[str]]
    subnet_id: pulumi.Output[Optional[str]]

    def __init__(self, name: str, args: NetworkArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("labstack:index:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        if args.mode == "create":
            vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=args.vpc_cidr, enable_dns_support=True,
                              enable_dns_hostnames=True, tags=args.tags, opts=child)
            gateway = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags=args.tags, opts=child)
            # A /24 at the start of the VPC is plenty for one server and leaves room for clusters later.
            first_subnet = next(ipaddress.IPv4Network(args.vpc_cidr).subnets(new_prefix=24))
            subnet = aws.ec2.Subnet(f"{name}-public", vpc_id=vpc.id, cidr_block=str(first_subnet),
                                    map_public_ip_on_launch=True, availability_zone=args.availability_zone,
                                    tags=args.tags, opts=child)
            routes = aws.ec2.RouteTable(f"{name}-routes", vpc_id=vpc.id, tags=args.tags,
                                        routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0",
                                                                            gateway_id=gateway.id)],
                                        opts=child)
            aws.ec2.RouteTableAssociation(f"{name}-public-routes", subnet_id=subnet.id, route_table_id=routes.id,
                                          opts=child)
            self.vpc_id = vpc.id
            self.subnet_id = subnet.id
        elif args.mode == "subnet":
            self.vpc_id = pulumi.Output.from_input(args.subnet_vpc_id)
            self.subnet_id = pulumi.Output.from_input(args.subnet_id)
        else:
            # Default VPC: EC2 picks the default subnet; the security group lands in the default VPC by itself.
            self.vpc_id = pulumi.Output.from_input(None)
            self.subnet_id = pulumi.Output.from_input(None)

        self.register_outputs({"vpcId": self.vpc_id, "subnetId": self.subnet_id})
