"""The stack outputs: the head under the names the labstack package reads (publicIp, knownHosts, instanceId, region),
and every node in `nodes`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi

from components.config import StackConfig
from components.nodes import NodeHandle
from components.remote.app import App


@dataclass(frozen=True)
class Reach:
    """How operators reach the nodes over SSH."""

    head: NodeHandle
    key_file: str
    # The DNS host names the head only when labstack points it there (its Route53 record); for an existing server
    # the record is the user's, so SSH outputs name the address labstack really connects to.
    dns_host: Optional[str]

    @staticmethod
    def of(cfg: StackConfig, head: NodeHandle) -> "Reach":
        key_file = str(cfg.key_pair.pem_path) if cfg.key_pair.pem_path else f"~/.ssh/{cfg.key_pair.existing_name}.pem"
        return Reach(head=head, key_file=key_file, dns_host=None if cfg.existing_server else cfg.dns.host)

    def login_name(self, node: NodeHandle) -> pulumi.Output[str]:
        """The name operators log in to: the DNS host for the head, when labstack made its record."""
        return pulumi.Output.from_input(self.dns_host if node is self.head and self.dns_host else node.public_address)

    def known_hosts(self, node: NodeHandle) -> pulumi.Output[str]:
        """For ~/.ssh/known_hosts: operators verify the server exactly as labstack's own connections do."""
        return node.known_hosts(self.dns_host if node is self.head else None)

    def ssh_command(self, node: NodeHandle) -> pulumi.Output[str]:
        return node.ssh_command(self.key_file, self.login_name(node))


def export_outputs(cfg: StackConfig, reach: Reach, nodes: list[NodeHandle], apps: list[App]) -> None:
    head = reach.head
    if head.instance_id is not None:
        pulumi.export("instanceId", head.instance_id)
        pulumi.export("region", cfg.region)
        pulumi.export("instanceType", cfg.instance_type)
    pulumi.export("publicIp", head.public_address)
    pulumi.export("dnsHost", cfg.dns.host or head.public_address)
    # Where Caddy serves the head: the DNS host, else <ip>.nip.io (a bare IP has no certificate).
    pulumi.export("url", head.public_address.apply(lambda address: f"https://{cfg.base_host(address)}"))
    pulumi.export("sshCommand", reach.ssh_command(head))
    pulumi.export("knownHosts", reach.known_hosts(head))
    pulumi.export("appUrls", {app.app_name: app.url for app in apps})
    pulumi.export("postDeploy", {app.app_name: app.post_deploy for app in apps})  # the last answers, secrets masked
    if cfg.cluster and cfg.cluster.engine == "ray" and cfg.proxy.dashboard_password:
        # Ray's dashboard and Jobs API, served by the head's Caddy at ray.<base host>, behind the dashboard password
        # (without one, no site: the ray.* tasks use their SSH tunnel).
        pulumi.export("rayDashboardUrl", head.public_address.apply(
            lambda address: f"https://ray.{cfg.base_host(address)}"))
    pulumi.export("nodes", {node.name: {
        "role": node.role, "publicIp": node.public_address, "privateIp": node.private_address,
        "instanceId": node.instance_id, "availabilityZone": node.availability_zone,
        "knownHosts": reach.known_hosts(node), "sshCommand": reach.ssh_command(node),
    } for node in nodes})
