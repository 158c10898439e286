"""The server's security group: what may reach it, over IPv4 and IPv6."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_aws as aws


@dataclass
class FirewallArgs:
    description: str
    ports: tuple[int, ...]
    cidrs: tuple[str, ...]
    ipv6_cidrs: tuple[str, ...]
    ssh_cidrs: tuple[str, ...] = ()  # IPv4 and IPv6 networks for port 22, which opens to these instead
    vpc_id: pulumi.Input[Optional[str]] = None
    tags: dict[str, str] = field(default_factory=dict)


class Firewall(pulumi.ComponentResource):
    security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: FirewallArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("labstack:index:Firewall", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        group = aws.ec2.SecurityGroup(f"{name}-sg", description=args.description, vpc_id=args.vpc_id,
                                      tags=args.tags, opts=child)
        # One rule resource per port and network (not inline rules): adding a CIDR later changes one rule
        # instead of replacing the whole list, and the rules can be tagged and read one by one.
        for port in args.ports:
            cidrs, ipv6_cidrs = args.cidrs, args.ipv6_cidrs
            if port == 22:  # SSH: only the networks the stack names for it (labstack:sshCidrs)
                cidrs = tuple(cidr for cidr in args.ssh_cidrs if ":" not in cidr)
                ipv6_cidrs = tuple(cidr for cidr in args.ssh_cidrs if ":" in cidr)
            for cidr in cidrs:
                aws.vpc.SecurityGroupIngressRule(
                    f"{name}-in-{port}-{_slug(cidr)}", security_group_id=group.id, ip_protocol="tcp",
                    from_port=port, to_port=port, cidr_ipv4=cidr, tags=args.tags, opts=child)
            for cidr in ipv6_cidrs:
                aws.vpc.SecurityGroupIngressRule(
                    f"{name}-in-{port}-{_slug(cidr)}", security_group_id=group.id, ip_protocol="tcp",
                    from_port=port, to_port=port, cidr_ipv6=cidr, tags=args.tags, opts=child)
        # The server must reach package mirrors, image registries and ACME, so all egress is open.
        aws.vpc.SecurityGroupEgressRule(f"{name}-out-ipv4", security_group_id=group.id, ip_protocol="-1",
                                        cidr_ipv4="0.0.0.0/0", tags=args.tags, opts=child)
        aws.vpc.SecurityGroupEgressRule(f"{name}-out-ipv6", security_group_id=group.id, ip_protocol="-1",
                                        cidr_ipv6="::/0", tags=args.tags, opts=child)
        self.security_group_id = group.id
        self.register_outputs({"securityGroupId": self.security_group_id})


def _slug(cidr: str) -> str:
    """A resource-name-safe spelling of a CIDR; stable, so reordering the config list replaces nothing."""
    if cidr in ("0.0.0.0/0", "::/0"):
        return "ipv4-any" if "." in cidr else "ipv6-any"
    return cidr.replace(":", "x").replace("/", "-").replace(".", "-")
