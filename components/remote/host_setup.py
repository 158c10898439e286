"""Host setup: prepares a node for apps over SSH: hooks installed, boot finished, Docker present, disk grown, proxy running."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_command as command

from components.render.bundle import directory_files, make_bundle
from components.config import ProxyConfig
from components.layout import HOOKS_DIR, REMOTE_HOOKS, hook
from components.render.proxy import proxy_files

# EC2 reports "running" well before sshd answers; 60 dials of 10 s cover a slow first boot.
DIAL_ERROR_LIMIT = 60
PER_DIAL_TIMEOUT_SECONDS = 10


def connection(host: pulumi.Input[str], user: str, private_key: pulumi.Input[str], host_key: pulumi.Input[str],
               port: int = 22) -> command.remote.ConnectionArgs:
    """SSH connection that pins the server's host key: without host_key the provider trusts any key."""
    return command.remote.ConnectionArgs(host=host, user=user, port=port, private_key=pulumi.Output.secret(private_key),
                                         host_key=host_key, dial_error_limit=DIAL_ERROR_LIMIT,
                                         per_dial_timeout=PER_DIAL_TIMEOUT_SECONDS)


@dataclass
class HostSetupArgs:
    connection: command.remote.ConnectionArgs
    login_user: str
    storage_gb: int
    proxy: ProxyConfig
    server: list[pulumi.Resource] = field(default_factory=list)  # what must exist and run before SSH is tried
    # Only for servers labstack made: an existing server's disks are its operator's business.
    grow_filesystem: bool = True
    # The EC2 instance id: a replaced instance (same address, same host key) is a new, empty server, so every step
    # must run again there. None for an existing server.
    server_id: pulumi.Input[Optional[str]] = None


class HostSetup(pulumi.ComponentResource):
    """`ready` is what app deployments depend on: every step here has run when it is done."""

    ready: list[pulumi.Resource]

    def __init__(self, name: str, args: HostSetupArgs, opts: Optional[pulumi.ResourceOptions] = None):
        # Was labstack:index:DockerHost: the alias keeps deployed stacks' steps from running again.
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(aliases=[pulumi.Alias(type_="labstack:index:DockerHost")]))
        super().__init__("labstack:index:HostSetup", name, None, opts)

        def step(step_name: str, create: str, after: list[pulumi.Resource], triggers: Optional[list] = None,
                 **kwargs) -> command.remote.Command:
            # None of these steps has a delete command, so a trigger's replacement simply runs them again.
            if args.server_id is not None:
                triggers = [*(triggers or []), args.server_id]
            return command.remote.Command(
                f"{name}-{step_name}", connection=args.connection, create=create, triggers=triggers,
                # Outputs of earlier runs in the environment can exceed the kernel's limit (E2BIG).
                add_previous_output_in_env=False,
                opts=pulumi.ResourceOptions(parent=self, depends_on=after), **kwargs)

        hooks = directory_files(HOOKS_DIR)
        # Unpacks the hooks so every later step (and an operator, by hand) runs the same scripts on the server.
        installed = step("hooks", f"sudo -n mkdir -p {REMOTE_HOOKS} && base64 -d | sudo -n tar -xzf - -C {REMOTE_HOOKS}"
                                  " --no-same-owner", args.server, stdin=make_bundle(hooks, modes=_modes(hooks)))
        ready = step("ready", hook("wait-ready.sh", "600"), [installed])
        docker = step("docker", hook("install-docker.sh", args.login_user), [ready])
        proxy = step("proxy", hook("proxy-up.sh"), [docker], stdin=make_bundle(proxy_files(args.proxy)))
        self.ready = [docker, proxy]
        if args.grow_filesystem:
            # Only a bigger volume needs the filesystem grown, so the size is the trigger.
            self.ready.append(step("grow-fs", hook("grow-fs.sh"), [ready], triggers=[args.storage_gb]))
        self.register_outputs({"hooksVersion": _version(hooks)})


def _modes(files: dict[str, bytes]) -> dict[str, int]:
    return {path: 0o755 if path.endswith(".sh") and path not in ("lib.sh", "layout.sh") else 0o644 for path in files}


def _version(files: dict[str, bytes]) -> str:
    return hashlib.sha256(b"".join(files[path] for path in sorted(files))).hexdigest()[:12]
