"""Host setup: prepares a node for apps over SSH: hooks installed, boot finished, Docker present, disk grown, proxy running."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_command as command

from components.render.bundle import directory_files, make_bundle
from components.config import ProxyConfig
from components.layout import HOOKS_DIR, REMOTE_HOOKS, hook
from components.nodes import NodeHandle
from components.remote.data_mount import DataMount, DataMountArgs
from components.render.proxy import proxy_files


@dataclass
class HostSetupArgs:
    node: NodeHandle
    storage_gb: int
    # Caddy (hooks/proxy-up.sh) serves apps and the Ray dashboard from the head; a cluster worker serves nothing
    # over HTTP, so None there: no proxy step, no Caddy container, ports 80/443 left alone.
    proxy: Optional[ProxyConfig]
    # labstack:dataVolume on this node: (volume id, size GB, its attachment); mounted before Docker starts.
    data_volume: Optional[tuple[pulumi.Input[str], int, list[pulumi.Resource]]] = None
    # labstack:containerMetadata: the containers that run user code may reach the instance metadata service.
    container_metadata: bool = False


class HostSetup(pulumi.ComponentResource):
    """`ready` is what app deployments depend on: every step here has run when it is done. `docker_ready`: Docker
    runs (hooks installed, boot done, data volume mounted), for a container that needs neither Caddy nor the grown
    disk, such as a node's Ray."""

    ready: list[pulumi.Resource]
    docker_ready: list[pulumi.Resource]

    def __init__(self, name: str, args: HostSetupArgs, opts: Optional[pulumi.ResourceOptions] = None):
        # Was labstack:index:DockerHost: the alias keeps deployed stacks' steps from running again.
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(aliases=[pulumi.Alias(type_="labstack:index:DockerHost")]))
        super().__init__("labstack:index:HostSetup", name, None, opts)

        node = args.node

        def step(step_name: str, create: str, after: list[pulumi.Resource], triggers: Optional[list] = None,
                 **kwargs) -> command.remote.Command:
            # None of these steps has a delete command, so a trigger's replacement simply runs them again. A
            # replaced instance (same address, same host key) is a new, empty server: every step runs again there.
            if node.instance_id is not None:
                triggers = [*(triggers or []), node.instance_id]
            return command.remote.Command(
                f"{name}-{step_name}", connection=node.connection, create=create, triggers=triggers,
                # Outputs of earlier runs in the environment can exceed the kernel's limit (E2BIG).
                add_previous_output_in_env=False,
                opts=pulumi.ResourceOptions(parent=self, depends_on=after), **kwargs)

        hooks = directory_files(HOOKS_DIR)
        # Unpacks the hooks so every later step (and an operator, by hand) runs the same scripts on the server.
        installed = step("hooks", f"sudo -n mkdir -p {REMOTE_HOOKS} && base64 -d | sudo -n tar -xzf - -C {REMOTE_HOOKS}"
                                  " --no-same-owner", node.ready, stdin=make_bundle(hooks, modes=_modes(hooks)))
        ready = step("ready", hook("wait-ready.sh", "600"), [installed])
        before_docker = [ready]
        if args.data_volume is not None:
            volume_id, size_gb, attached = args.data_volume
            before_docker += DataMount(name, DataMountArgs(node=node, volume_id=volume_id, size_gb=size_gb,
                                                           after=[ready, *attached]),
                                       pulumi.ResourceOptions(parent=self)).ready
        docker = step("docker", hook("install-docker.sh", node.login_user), before_docker)
        # Before any container that runs user code (Ray's start waits for docker_ready): the instance metadata
        # service (role credentials, the user data with the host key) for root on the host only. The setting is
        # the trigger, so changing it runs the step again.
        mode = "allow" if args.container_metadata else "block"
        guard = step("metadata-guard", hook("metadata-guard.sh", mode), [docker], triggers=[mode])
        self.docker_ready = [docker, guard]
        self.ready = [docker, guard]
        if args.proxy is not None:
            self.ready.append(step("proxy", hook("proxy-up.sh"), [docker], stdin=make_bundle(proxy_files(args.proxy))))
        if node.instance_id is not None:
            # Only for servers labstack made (an existing server's disks are its operator's business), and only a
            # bigger volume needs the filesystem grown, so the size is the trigger.
            self.ready.append(step("grow-fs", hook("grow-fs.sh"), [ready], triggers=[args.storage_gb]))
        self.register_outputs({"hooksVersion": _version(hooks)})


def _modes(files: dict[str, bytes]) -> dict[str, int]:
    """Hooks (scripts with a shebang) are executable; the files they source (lib.sh, layout.sh, deploy-steps.sh) not."""
    return {path: 0o755 if path.endswith(".sh") and files[path].startswith(b"#!") else 0o644 for path in files}


def _version(files: dict[str, bytes]) -> str:
    return hashlib.sha256(b"".join(files[path] for path in sorted(files))).hexdigest()[:12]
