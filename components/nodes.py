"""Node handles: what the rest of the program needs to know about one server, however it came to exist.

A handle is made by the EC2 node component (`components.aws.node.Node.handle`) or, for a server the operator already
has, by `existing_server_node`. Host setup, apps and the stack outputs take handles, never an EC2 instance, so a
cluster is the same code run over more handles, and the existing-server mode is no second code path.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_command as command

HEAD = "head"  # the node that serves the apps (and, in a cluster, the one the workers join)
WORKER = "worker"

# EC2 reports "running" well before sshd answers; 60 dials of 10 s cover a slow first boot.
DIAL_ERROR_LIMIT = 60
PER_DIAL_TIMEOUT_SECONDS = 10


def connection(host: pulumi.Input[str], user: str, private_key: pulumi.Input[Optional[str]],
               host_key: pulumi.Input[str], port: int = 22) -> command.remote.ConnectionArgs:
    """SSH connection that pins the server's host key: without host_key the provider trusts any key."""
    return command.remote.ConnectionArgs(host=host, user=user, port=port, private_key=pulumi.Output.secret(private_key),
                                         host_key=host_key, dial_error_limit=DIAL_ERROR_LIMIT,
                                         per_dial_timeout=PER_DIAL_TIMEOUT_SECONDS)


@dataclass(frozen=True)
class NodeHandle:
    name: str  # the resource name prefix of everything made for this node (the head's is the server name)
    role: str  # HEAD | WORKER
    public_address: pulumi.Output[str]  # what SSH connects to: the Elastic IP, or the existing server's name or IP
    private_address: pulumi.Output[Optional[str]]  # inside the VPC (None for an existing server)
    host_key: pulumi.Output[str]  # OpenSSH public host key, pinned by every connection
    login_user: str
    ssh_port: int
    connection: command.remote.ConnectionArgs
    ready: list[pulumi.Resource]  # what must exist (and run) before SSH is tried
    instance_id: Optional[pulumi.Output[str]]  # None: a server labstack did not make, so not ours to resize
    availability_zone: pulumi.Output[Optional[str]]

    def known_hosts(self, *names: pulumi.Input[Optional[str]]) -> pulumi.Output[str]:
        """One known_hosts line for the given names (e.g. the DNS host) and the node's address; ssh writes
        [name]:port for ports other than 22."""
        def line(values: list) -> str:
            *hosts, key = values
            unique = dict.fromkeys(host for host in hosts if host)
            return ",".join(host if self.ssh_port == 22 else f"[{host}]:{self.ssh_port}" for host in unique) + f" {key}"
        return pulumi.Output.all(*names, self.public_address, self.host_key).apply(line)

    def ssh_command(self, key_file: str, host: Optional[pulumi.Input[str]] = None) -> pulumi.Output[str]:
        """The command an operator types to log in (to `host`, by default the node's address)."""
        port_option = f" -p {self.ssh_port}" if self.ssh_port != 22 else ""
        return pulumi.Output.from_input(host if host is not None else self.public_address).apply(
            lambda target: f"ssh -i {key_file}{port_option} {self.login_user}@{target}")


def existing_server_node(name: str, host: str, host_key: str, user: str, port: int,
                         private_key: Optional[str]) -> NodeHandle:
    """The seeds' docker-ssh mode: a server the operator already has. Nothing is declared for it."""
    return NodeHandle(
        name=name, role=HEAD, public_address=pulumi.Output.from_input(host),
        private_address=pulumi.Output.from_input(None), host_key=pulumi.Output.from_input(host_key),
        login_user=user, ssh_port=port, connection=connection(host, user, private_key, host_key, port),
        ready=[], instance_id=None, availability_zone=pulumi.Output.from_input(None))
