"""Registry logins: one `docker login` per registry of labstack:registryAuth on a node, before its apps are pulled.
ECR is not among them: the node's instance role reaches it (components/aws/registry_access.py, hooks/ecr-login.sh)."""
from __future__ import annotations

import re
from typing import Mapping, Optional

import pulumi
import pulumi_command as command

from components.config.registry import RegistryLogin
from components.layout import hook
from components.nodes import NodeHandle


class RegistryLogins(pulumi.ComponentResource):
    """`ready` is what the node's apps wait for: every login has run."""

    ready: list[pulumi.Resource]

    def __init__(self, name: str, node: NodeHandle, logins: Mapping[str, RegistryLogin],
                 after: list[pulumi.Resource], opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("labstack:index:RegistryLogins", name, None, opts)
        self.ready = []
        for registry, login in sorted(logins.items()):
            password = pulumi.Output.secret(login.password.get_secret_value())
            # The password is stdin, so a new one must replace the step to run it again; a replaced instance is a new
            # server that needs the login too.
            triggers = [login.username, password, *([node.instance_id] if node.instance_id is not None else [])]
            self.ready.append(command.remote.Command(
                f"{name}-{re.sub(r'[^a-z0-9.-]', '-', registry.lower())}", connection=node.connection,
                create=hook("registry-login.sh", registry, login.username),
                stdin=password, triggers=triggers, add_previous_output_in_env=False,
                opts=pulumi.ResourceOptions(parent=self, depends_on=after)))
        self.register_outputs({})
