"""One experiment app on a server: its compose project deployed (blue/green) and removed by hooks over SSH."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_command as command

from components.bundle import make_bundle
from components.config import AppConfig, ProxyConfig
from components.docker_host import hook
from components.render import (app_commands, app_compose, dashboard_password_hash, data_compose, release_conf,
                               site_file)


@dataclass
class AppArgs:
    app: AppConfig
    connection: command.remote.ConnectionArgs
    host: pulumi.Input[str]  # the public name Caddy serves the app under
    proxy: ProxyConfig
    secrets: pulumi.Input[dict] = field(default_factory=dict)
    dashboard_password: pulumi.Input[Optional[str]] = None
    depends_on: list[pulumi.Resource] = field(default_factory=list)


class App(pulumi.ComponentResource):
    url: pulumi.Output[str]

    def __init__(self, name: str, args: AppArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("labstack:index:App", name, None, opts)
        app = args.app

        def bundle(values: list) -> str:
            host, secrets, password = values
            dashboard = dashboard_password_hash(password, app.name) if password else None
            return make_bundle({
                **app_commands(app),
                "release.conf": release_conf(app, host, tls_internal=args.proxy.tls == "internal"),
                "app.compose.yaml": app_compose(app, secrets or {}),
                "data.compose.yaml": data_compose(app),
                "site.caddy": site_file(host, args.proxy, dashboard),
            })

        # The bundle goes on stdin (never on the command line or in logs) and is a secret in Pulumi's state.
        # Only its content decides whether the app is redeployed: no triggers, because a replacement would run
        # the old resource's delete (remove-app.sh) after the new one's create.
        payload = pulumi.Output.secret(
            pulumi.Output.all(args.host, args.secrets, args.dashboard_password).apply(bundle))
        command.remote.Command(
            f"{name}-deploy", connection=args.connection, stdin=payload,
            create=hook("deploy-app.sh", app.name), delete=hook("remove-app.sh", app.name),
            add_previous_output_in_env=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on))
        self.url = pulumi.Output.from_input(args.host).apply(lambda host: f"https://{host}")
        self.register_outputs({"url": self.url})
