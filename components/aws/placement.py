"""Where a stack's EC2 nodes go: its network, security group, key pair and (for private ECR images) instance role.

Not a component: these keep the top-level names deployed stacks have, and the cluster only reads them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi

from components.aws.firewall import Firewall, FirewallArgs
from components.aws.keypair import KeyPair, KeyPairArgs
from components.aws.network import Network, NetworkArgs
from components.aws.registry_access import RegistryAccess
from components.config import StackConfig
from components.config.cloud import CloudFacts


@dataclass(frozen=True)
class Placement:
    subnet_id: pulumi.Output[Optional[str]]  # None on the default network: EC2 picks the subnet
    security_group_id: pulumi.Output[str]
    owns_security_group: bool  # False: the operator's labstack:securityGroup, which labstack adds no rules to
    key_name: pulumi.Output[str]
    instance_profile: Optional[pulumi.Output[str]]  # the ECR pull role; None without a private ECR image


def place(cfg: StackConfig, facts: CloudFacts) -> Placement:
    name = cfg.server_name
    network = Network(name, NetworkArgs(mode=cfg.network.mode, vpc_cidr=cfg.network.vpc_cidr,
                                        subnet_id=cfg.network.subnet_id, subnet_vpc_id=facts.vpc_id,
                                        availability_zone=facts.data_volume_zone, tags=cfg.tags("network")))
    if cfg.firewall.existing_id:
        security_group_id = pulumi.Output.from_input(cfg.firewall.existing_id)
    else:
        security_group_id = Firewall(name, FirewallArgs(
            description=f"labstack {cfg.stack}: ssh, http, https and the app port",
            ports=cfg.firewall.ports, cidrs=cfg.firewall.cidrs, ipv6_cidrs=cfg.firewall.ipv6_cidrs,
            ssh_cidrs=cfg.firewall.ssh_cidrs, vpc_id=network.vpc_id, tags=cfg.tags("firewall"))).security_group_id
    key_pair = KeyPair(name, KeyPairArgs(existing_name=cfg.key_pair.existing_name,
                                         public_key=cfg.key_pair.public_key, tags=cfg.tags("key")))
    # Private ECR images are pulled with the nodes' instance role; no ECR image, no role.
    registry_access = (RegistryAccess(name, cfg.ecr_repositories, tags=cfg.tags("registry-access"))
                       if cfg.ecr_repositories else None)
    return Placement(subnet_id=network.subnet_id, security_group_id=security_group_id,
                     owns_security_group=not cfg.firewall.existing_id, key_name=key_pair.key_name,
                     instance_profile=registry_access.profile_name if registry_access else None)
