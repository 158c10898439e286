"""Ray on one cluster node: hooks/ray-start.sh over SSH (the head's GCS, or a worker joining it), and for a worker a
delete step (hooks/ray-drain.sh) that drains the node so its tasks are rescheduled before the instance goes. On the
head, with a dashboard password, hooks/ray-site.sh serves the dashboard and Jobs API through Caddy at ray.<host>."""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_command as command

from components.config import ProxyConfig
from components.layout import RAY_USER, hook
from components.nodes import HEAD, NodeHandle
from components.render.images import infra_image
from components.render.proxy import dashboard_password_hash, ray_login_mark, ray_site_file
from components.remote.state_secret import state_secret

# How long a removed worker's running tasks get to finish before its Ray stops (they are retried elsewhere after).
DRAIN_DEADLINE_S = 60


def ray_token(name: str, opts: Optional[pulumi.ResourceOptions] = None) -> pulumi.Output[str]:
    """The cluster's Ray auth token: a secret kept in the stack's state, the same on every node."""
    return state_secret(f"{name}-ray-token", b"labstack ray token", opts=opts)


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
    dashboard_key: Optional[pulumi.Input[str]] = None  # secret (components.remote.state_secret.dashboard_key)
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
        # server that needs Ray too; RAY_USER: a Ray started as another user (root, before the metadata guard)
        # is started again as this one.
        triggers = [args.token, RAY_USER, *([node.instance_id] if node.instance_id is not None else [])]
        start = command.remote.Command(
            f"{name}-ray", connection=node.connection, create=create, delete=delete, stdin=args.token,
            triggers=triggers, add_previous_output_in_env=False,
            # Drain the old node before a replacement starts Ray again under the same container name.
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.after, delete_before_replace=True,
                                        additional_secret_outputs=["stdin"]))
        self.ready = [start]
        if args.role == HEAD and args.site_host is not None and args.proxy and args.proxy.dashboard_password:
            password = args.proxy.dashboard_password.get_secret_value()
            # The site holds the password's bcrypt hash and the login mark: kept encrypted in the state, like the
            # password.
            site = pulumi.Output.secret(pulumi.Output.all(args.site_host, args.dashboard_key).apply(
                lambda values: ray_site_file(values[0], args.proxy, dashboard_password_hash(password, "ray", values[1]),
                                             ray_login_mark(password, values[1]))))
            # Not in `ready`: workers join the head's Ray without waiting for its site.
            command.remote.Command(
                f"{name}-ray-site", connection=node.connection, create=hook("ray-site.sh", infra_image("caddy")),
                stdin=site, triggers=[*([node.instance_id] if node.instance_id is not None else [])],
                add_previous_output_in_env=False, opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[start, *args.site_after], additional_secret_outputs=["stdin"]))
        self.register_outputs({})
