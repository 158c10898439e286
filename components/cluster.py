"""A stack's EC2 nodes, whole: the head (a plain server is a cluster without workers) and `labstack:cluster.workers`
workers beside it, each with its host set up and its auto-stop watcher, the head's data volume, and Ray on every node
when the cluster runs it (hooks/ray-start.sh).

Workers share the head's subnet (one AZ: no cross-AZ charges, lowest latency) and security group, whose one self rule
lets the members reach each other on every port (Ray's included) and opens nothing new from outside.

Deployed stacks declared the head's pieces, the host setups, watchers, alarms and Ray at the top level; they moved in
here with aliases, so their URNs (and so the servers) stay what they were (tests/unit/test_urns_kept.py)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_aws as aws

from components.aws.data_volume import DataVolume, DataVolumeArgs
from components.aws.host_key import HostKey
from components.aws.idle_alarm import IdleAlarm, IdleAlarmArgs
from components.aws.node import Node, NodeArgs
from components.aws.placement import Placement
from components.config import LOGIN_USER, StackConfig
from components.config.cloud import CloudFacts
from components.config.cost import watcher_budget_env
from components.nodes import HEAD, WORKER, NodeHandle
from components.operator_side import OperatorSide
from components.remote.host_setup import HostSetup, HostSetupArgs
from components.remote.ray_node import RayNode, RayNodeArgs, ray_token
from components.remote.watcher import Watcher, WatcherArgs
from components.render.images import infra_image

INDEX_TAG = "labstack:index"  # a worker's index, 1..workers


@dataclass
class ClusterArgs:
    config: StackConfig
    facts: CloudFacts
    placement: Placement
    operator_side: OperatorSide  # where the data volume's destroy step runs its snapshot
    dashboard_key: Optional[pulumi.Input[str]] = None  # secret (components.remote.state_secret.dashboard_key)


class Cluster(pulumi.ComponentResource):
    """`head` and `nodes` (the head first, then the workers in index order); `head_ready`: the head is set up for
    apps (Docker, the proxy, the grown disk)."""

    head: NodeHandle
    nodes: list[NodeHandle]
    head_ready: list[pulumi.Resource]

    def __init__(self, name: str, args: ClusterArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("labstack:index:Cluster", name, None, opts)
        cfg, self._args = args.config, args

        # The head keeps the server's name, so its resources keep their names.
        head = self._node(name, HEAD, subnet_id=args.placement.subnet_id, tags=cfg.tags("server"), moved=True)
        self.head, self.nodes = head.handle, [head.handle]
        data_volume = None
        if cfg.data_volume:
            # The apps' data outlives the instance (README, Data volume); mounted by hooks/mount-data.sh.
            data_volume = DataVolume(name, DataVolumeArgs(
                config=cfg.data_volume, instance_id=head.instance_id, availability_zone=head.availability_zone,
                region=cfg.region, stack=cfg.stack, creator=cfg.creator, operator_side=args.operator_side,
                tags=cfg.tags("data")), opts=self._moved())
        if cfg.cluster:
            self.nodes += self._workers(name, head.subnet_id)

        # Caddy only where it serves something: the head's apps, or Ray's dashboard at ray.<host>.
        ray = cfg.cluster is not None and cfg.cluster.engine == "ray"
        serves_http = bool(cfg.apps) or (ray and cfg.proxy.dashboard_password is not None)
        setups = {node.name: HostSetup(node.name, HostSetupArgs(
            node=node, storage_gb=cfg.cluster.worker_storage_gb if node.role == WORKER else cfg.storage_gb,
            proxy=cfg.proxy if node.role == HEAD and serves_http else None,
            container_metadata=cfg.container_metadata, data_volume=(data_volume.volume_id, cfg.data_volume.size_gb, data_volume.ready)
            if data_volume and node.role == HEAD else None), opts=self._moved("labstack:index:DockerHost"))
            for node in self.nodes}
        self.head_ready = setups[name].ready
        self._watchers(setups)
        if ray:
            self._ray(name, setups)
        self.register_outputs({"workers": [node.name for node in self.nodes[1:]]})

    def _moved(self, *old_types: str) -> pulumi.ResourceOptions:
        """A child that deployed stacks hold at the top level (under its present type, or an old one)."""
        was = [None, *old_types]
        return pulumi.ResourceOptions(parent=self, aliases=[
            pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE, **({"type_": t} if t else {})) for t in was])

    def _node(self, name: str, role: str, subnet_id: pulumi.Input[Optional[str]], tags: dict[str, str],
              moved: bool = False) -> Node:
        """One EC2 node with its own SSH host key, delivered by cloud-init and pinned by every connection. `moved`:
        the head, which deployed stacks hold at the top level."""
        cfg, facts, placement = self._args.config, self._args.facts, self._args.placement
        worker = role == WORKER
        host_key = HostKey(name, opts=self._moved() if moved else pulumi.ResourceOptions(parent=self))
        return Node(name, NodeArgs(
            role=role, ami_id=facts.ami_id, instance_type=cfg.cluster.worker_type if worker else cfg.instance_type,
            storage_gb=cfg.cluster.worker_storage_gb if worker else cfg.storage_gb, desired_state=cfg.desired_state,
            key_name=placement.key_name, security_group_id=placement.security_group_id, subnet_id=subnet_id,
            user_data=host_key.cloud_init(), host_key=host_key.public_key, iam_instance_profile=placement.instance_profile,
            login_user=LOGIN_USER, private_key=cfg.key_pair.private_key(), tags=tags, volume_tags=tags,
            region=cfg.region, spot=cfg.spot,
            # Workers get EC2's own public IPv4, no Elastic IP (README, Clusters: how workers reach the internet).
            elastic_ip=not worker,
            # With the default network EC2 picks a subnet: in the zone of an attached labstack:dataVolume.id.
            availability_zone=facts.data_volume_zone if not worker and cfg.network.mode == "default" else None),
            opts=self._moved("labstack:index:Server") if moved else pulumi.ResourceOptions(parent=self))

    def _workers(self, name: str, subnet_id: pulumi.Output[str]) -> list[NodeHandle]:
        cfg, placement = self._args.config, self._args.placement
        if placement.owns_security_group:
            # Source = the group itself: only instances in it (the head and the workers) get in, on every port and
            # protocol. No CIDR, so nothing opens to labstack:ingressCidrs or the internet. An operator's group
            # gets no rule from labstack; the README says which rule it must have.
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-members", security_group_id=placement.security_group_id,
                referenced_security_group_id=placement.security_group_id, ip_protocol="-1",
                description="cluster members reach each other on every port (Ray)",
                tags={**cfg.tags(WORKER), "Name": f"{name}-members"}, opts=pulumi.ResourceOptions(parent=self))
        # Each worker is named by its index: raising the count declares only new names, lowering it drops the
        # highest ones; the others keep their names, hence their URNs and inputs, and are never replaced. The tags go
        # on the instance AND its volumes (flambe's): inventory and cost find a worker's disk by them too.
        return [self._node(worker_name, WORKER, subnet_id,
                           {**cfg.tags(WORKER), "Name": worker_name, INDEX_TAG: str(index)}).handle
                for index, worker_name in enumerate(cfg.cluster.worker_names(name), start=1)]

    def _watchers(self, setups: dict[str, HostSetup]) -> None:
        """labstack:autoStop and labstack:budget.total: each node stops itself (hooks/auto-stop.sh)."""
        cfg = self._args.config
        budget_env = watcher_budget_env(cfg)
        for node in self.nodes:
            head = node.role == HEAD
            Watcher(node.name, WatcherArgs(
                node=node, auto_stop=cfg.auto_stop, budget_env=budget_env, after=setups[node.name].ready,
                busy_commands={app.name: app.busy_command for app in cfg.apps if app.busy_command} if head else {}),
                opts=self._moved())
            # CloudWatch's backstop, should the watcher die; it sees only CPU, so never on a node serving apps.
            if cfg.auto_stop and not (head and cfg.apps):
                IdleAlarm(node.name, IdleAlarmArgs(instance_id=node.instance_id, region=cfg.region,
                                                   auto_stop=cfg.auto_stop, tags=cfg.tags("alarm")),
                          opts=self._moved())

    def _ray(self, name: str, setups: dict[str, HostSetup]) -> None:
        """Ray on every node: each worker joins the head's private IP. Every node's Ray starts as soon as its own
        Docker is ready (the head's does not wait for Caddy, only its ray.<host> site does), workers beside the
        head, not after it: a worker's Ray retries the head's GCS until it answers (the hook waits, bounded, until
        the node is in the cluster), so a cluster comes up in one Ray start instead of two in a row. One token, kept
        secret in the state, reaches every node on stdin."""
        cfg, head = self._args.config, self.head
        image = cfg.cluster.image or infra_image("ray")
        token = ray_token(name, opts=self._moved())
        RayNode(name, RayNodeArgs(
            node=head, role=HEAD, head_address=head.private_address, image=image, token=token,
            after=setups[name].docker_ready, proxy=cfg.proxy, dashboard_key=self._args.dashboard_key,
            site_after=setups[name].ready,
            site_host=head.public_address.apply(lambda address: f"ray.{cfg.base_host(address)}")), opts=self._moved())
        for worker in self.nodes[1:]:
            RayNode(worker.name, RayNodeArgs(node=worker, role=WORKER, head_address=head.private_address, image=image,
                                             token=token, after=setups[worker.name].docker_ready), opts=self._moved())
