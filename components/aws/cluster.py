"""A cluster's workers (issue 11): N EC2 nodes next to the head, in its subnet and security group, plus the group's
self rule that lets the members reach each other on every port (Ray's included) and nothing new from outside."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_aws as aws

from components.aws.host_key import HostKey
from components.aws.node import Node, NodeArgs
from components.config.cost import SpotSettings
from components.nodes import WORKER, NodeHandle

INDEX_TAG = "labstack:index"  # a worker's index, 1..workers


@dataclass
class ClusterArgs:
    worker_names: list[str]  # `<server>-worker-<i>`, i from 1 (components/config/cluster.py)
    instance_type: str
    storage_gb: int
    ami_id: str
    desired_state: str
    key_name: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    subnet_id: pulumi.Input[str]  # the head's: one subnet, one AZ (no cross-AZ traffic charges, lowest latency)
    login_user: str
    private_key: pulumi.Input[Optional[str]]
    tags: dict[str, str]  # the workers' (labstack:role=worker); each also gets its Name and labstack:index
    # False when the security group is the operator's (labstack:securityGroup): labstack does not add rules to a
    # group it does not own; the README says which rule it must have.
    owns_security_group: bool = True
    iam_instance_profile: pulumi.Input[Optional[str]] = None
    region: str = ""
    spot: Optional[SpotSettings] = None


class Cluster(pulumi.ComponentResource):
    """`workers`: one handle per worker, in index order."""

    workers: list[NodeHandle]

    def __init__(self, name: str, args: ClusterArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("labstack:index:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        if args.owns_security_group:
            # Source = the group itself: only instances in it (the head and the workers) get in, on every port and
            # protocol. No CIDR, so nothing opens to labstack:ingressCidrs or the internet.
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-members", security_group_id=args.security_group_id,
                referenced_security_group_id=args.security_group_id, ip_protocol="-1",
                description="cluster members reach each other on every port (Ray)",
                tags={**args.tags, "Name": f"{name}-members"},
                opts=child)
        self.workers = []
        # Each worker is named by its index: raising the count declares only new names, lowering it drops the
        # highest ones; the others keep their names, hence their URNs and inputs, and are never replaced.
        for index, worker_name in enumerate(args.worker_names, start=1):
            # On the instance AND its volumes (flambe's tags): inventory and cost find a worker's disk by them too.
            tags = {**args.tags, "Name": worker_name, INDEX_TAG: str(index)}
            host_key = HostKey(worker_name, opts=child)
            self.workers.append(Node(worker_name, NodeArgs(
                role=WORKER, ami_id=args.ami_id, instance_type=args.instance_type, storage_gb=args.storage_gb,
                desired_state=args.desired_state, key_name=args.key_name, security_group_id=args.security_group_id,
                subnet_id=args.subnet_id, user_data=host_key.cloud_init(), host_key=host_key.public_key,
                iam_instance_profile=args.iam_instance_profile, login_user=args.login_user,
                private_key=args.private_key, tags=tags, volume_tags=tags, region=args.region, spot=args.spot,
                elastic_ip=False), opts=child).handle)
        self.register_outputs({"workers": [worker.name for worker in self.workers]})
