"""Ray on one cluster node: hooks/ray-start.sh over SSH (the head's GCS, or a worker joining it), and for a worker a
delete step (hooks/ray-drain.sh) that drains the node so its tasks are rescheduled before the instance goes. On the
head, with a dashboard password, hooks/ray-site.sh serves the dashboard and Jobs API through Caddy at ray.<host>."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_command as command
import pulumi_tls as tls

from components.config import ProxyConfig
from components.layout import hook
from components.nodes import HEAD, NodeHandle
from components.render.images import infra_image
from components.render.proxy import dashboard_password_hash, ray_site_file

# How long a removed worker's running tasks get to finish before its Ray stops (they are retried elsewhere after).
DRAIN_DEADLINE_S = 60


def ray_token(name: str, opts: Optional[pulumi.ResourceOptions] = None) -> pulumi.Output[str]:
    """The cluster's Ray auth token: a secret kept in the stack's state, the same on every node.

    Derived from a generated ED25519 key (pulumi-tls, already pinned): 256 bits of randomness made once and stored
    encrypted in the state, so the token stays the same across updates and never appears in the program's source or
    a command line."""
    seed = tls.PrivateKey(f"{name}-ray-token", algorithm="ED25519", opts=opts)
    return pulumi.Output.secret(seed.private_key_openssh.apply(
        lambda key: hashlib.sha256(b"labstack ray token\0" + key.encode()).hexdigest()))


@dataclass
class RayNodeArgs:
    node: NodeHandle
    role: str  # HEAD | WORKER
    head_address: pulumi.Input[str]  # the head's private IP (workers join <it>:RAY_GCS_PORT)
    image: str
    token: pulumi.Input[str]  # secret
    after: list[pulumi.Resource] = field(default_factory=list)  # the node's Docker ready: all Ray's start needs
    # The head only: ray.<host> through Caddy, behind proxy.dashboard_password (None: no site, SSH tunnel only).
    site_host: Optional[pulumi.Input[str]] = None
    proxy: Optional[ProxyConfig] = None
    site_after: list[pulumi.Resource] = field(default_factory=list)  # Caddy running (the site step also waits for Ray)


class RayNode(pulumi.ComponentResource):
    """`ready`: Ray runs on the node (and, for a worker, has joined the head)."""

    ready: list[pulumi.Resource]

    def __init__(self, name: str, args: RayNodeArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("labstack:index:RayNode", name, None, opts)
        node = args.node
        node_ip = node.private_address

        def start_command(values: list) -> str:
            ip, head_ip = values
            extra = [head_ip] if args.role != HEAD else []
            return hook("ray-start.sh", "head" if args.role == HEAD else "worker", ip, args.image, *extra)

        create = pulumi.Output.all(node_ip, args.head_address).apply(start_command)
        # A removed worker is drained first; the head goes with the whole cluster (nothing left to reschedule onto).
        delete = (node_ip.apply(lambda ip: hook("ray-drain.sh", ip, DRAIN_DEADLINE_S))
                  if args.role != HEAD else None)
        # The token is stdin: a new token must replace the step to run it again; a replaced instance is a new
        # server that needs Ray too.
        triggers = [args.token, *([node.instance_id] if node.instance_id is not None else [])]
        start = command.remote.Command(
            f"{name}-ray", connection=node.connection, create=create, delete=delete, stdin=args.token,
            triggers=triggers, add_previous_output_in_env=False,
            # Drain the old node before a replacement starts Ray again under the same container name.
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.after, delete_before_replace=True,
                                        additional_secret_outputs=["stdin"]))
        self.ready = [start]
        if args.role == HEAD and args.site_host is not None and args.proxy and args.proxy.dashboard_password:
            password = args.proxy.dashboard_password.get_secret_value()
            # The site holds the password's bcrypt hash: kept encrypted in the state, like the password.
            site = pulumi.Output.secret(pulumi.Output.from_input(args.site_host).apply(
                lambda host: ray_site_file(host, args.proxy, dashboard_password_hash(password, "ray"))))
            # Not in `ready`: workers join the head's Ray without waiting for its site.
            command.remote.Command(
                f"{name}-ray-site", connection=node.connection, create=hook("ray-site.sh", infra_image("caddy")),
                stdin=site, triggers=[*([node.instance_id] if node.instance_id is not None else [])],
                add_previous_output_in_env=False, opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[start, *args.site_after], additional_secret_outputs=["stdin"]))
        self.register_outputs({})
