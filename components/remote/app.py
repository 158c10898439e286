"""One experiment app on a server: its compose project deployed (blue/green) and removed by hooks over SSH."""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pulumi
import pulumi_command as command

from components.render.bundle import make_bundle
from components.config import AppConfig, ProxyConfig, StackConfig
from components.layout import hook
from components.nodes import NodeHandle
from components.operator_side import DESTROY_EXPORT, OperatorSide
from components.render.app_files import app_commands, app_compose, data_compose, release_conf, secrets_env
from components.render.post_deploy import post_deploy_summary
from components.render.proxy import dashboard_password_hash, site_file

DEPLOY_SECRET_OUTPUTS = ["stdout", "stderr"]


@dataclass
class ExportOnDelete:
    """What the operator's machine needs, besides the node's address and login, to export the app before a delete."""

    stack: str
    key_file: str
    known_hosts: pulumi.Input[str]
    exports_dir: str
    operator_side: OperatorSide  # runs the export on the operator's machine
    discard_data: bool = False


@dataclass
class AppArgs:
    app: AppConfig
    node: NodeHandle  # the node the app runs on
    host: pulumi.Input[str]  # the public name Caddy serves the app under
    proxy: ProxyConfig
    secrets: pulumi.Input[dict] = field(default_factory=dict)
    dashboard_password: pulumi.Input[Optional[str]] = None
    dashboard_key: pulumi.Input[Optional[str]] = None  # secret (components.remote.state_secret.dashboard_key)
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    export: Optional[ExportOnDelete] = None


class App(pulumi.ComponentResource):
    app_name: str
    url: pulumi.Output[str]
    post_deploy: pulumi.Output[Optional[str]]

    def __init__(self, name: str, args: AppArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("labstack:index:App", name, None, opts)
        app = args.app
        self.app_name = app.name

        def bundle(values: list) -> str:
            host, secrets, password, key, server_id = values
            dashboard = dashboard_password_hash(password, app.name, key) if password else None
            return make_bundle({
                **app_commands(app),
                "release.conf": release_conf(app, host, tls_internal=args.proxy.tls == "internal",
                                             server_id=server_id),
                "app.compose.yaml": app_compose(app),
                "secrets.env": secrets_env(secrets or {}),
                "data.compose.yaml": data_compose(app),
                "site.caddy": site_file(host, args.proxy, dashboard, app=app.name),
            })

        # The bundle goes on stdin (never on the command line or in logs) and is a secret in Pulumi's state.
        # Only its content decides whether the app is redeployed: no triggers, because a replacement would run
        # the old resource's delete (remove-app.sh) after the new one's create. The instance id is in the bundle,
        # so a new instance changes the input and the deploy runs again there as an update.
        payload = pulumi.Output.secret(
            pulumi.Output.all(args.host, args.secrets, args.dashboard_password, args.dashboard_key,
                              args.node.instance_id).apply(bundle))
        # Its output can hold what an app prints (the init command's output, a failing release's logs, post-deploy
        # response bodies): not streamed into Pulumi's log, and secret in the state.
        deployed = command.remote.Command(
            f"{name}-deploy", connection=args.node.connection, stdin=payload,
            create=hook("deploy-app.sh", app.name), delete=hook("remove-app.sh", app.name),
            add_previous_output_in_env=False, logging=command.remote.Logging.NONE,
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on,
                                        additional_secret_outputs=DEPLOY_SECRET_OUTPUTS))
        if args.export:
            self._export_before_delete(name, app, args.node, args.export, deployed)
        self.url = pulumi.Output.from_input(args.host).apply(lambda host: f"https://{host}")
        # What the post-deploy request answered (Dallinger's recruitment message and links): the deploy's output is
        # secret as a whole, this line is shown in `pulumi up` and the stack outputs, with the app's secrets masked.
        summary = pulumi.Output.all(deployed.stdout, args.secrets, args.dashboard_password).apply(
            lambda values: post_deploy_summary(values[0], [*(values[1] or {}).values(), values[2]]))
        self.post_deploy = pulumi.Output.unsecret(summary)
        self.post_deploy.apply(lambda text: text and pulumi.log.info(f"{app.name}: post-deploy answered {text}", self))
        self.register_outputs({"url": self.url, "postDeploy": self.post_deploy})

    def _export_before_delete(self, name: str, app: AppConfig, node: NodeHandle, export: ExportOnDelete,
                              deployed: command.remote.Command) -> None:
        """A local command whose only job is its delete: it depends on the deploy, so Pulumi deletes it first, and
        its delete exports the app's database and data directory to this machine. If the export fails, the
        delete fails and Pulumi stops before remove-app.sh runs. Its inputs are what the delete will use, taken
        from the state, so `labstack:discardDataOnDestroy` must be applied (`pulumi up`) before a destroy."""
        command.local.Command(
            f"{name}-export-on-delete",
            delete=export.operator_side.command(DESTROY_EXPORT),
            dir=export.operator_side.project_dir,
            environment={
                "LABSTACK_STACK": export.stack, "LABSTACK_APP": app.name, "LABSTACK_HOST": node.public_address,
                "LABSTACK_PORT": str(node.ssh_port), "LABSTACK_USER": node.login_user,
                "LABSTACK_KEY_FILE": export.key_file,
                "LABSTACK_KNOWN_HOSTS": export.known_hosts, "LABSTACK_POSTGRES": str(app.postgres).lower(),
                "LABSTACK_EXPORTS_DIR": export.exports_dir,
                "LABSTACK_DISCARD_DATA": str(export.discard_data).lower(),
            },
            add_previous_output_in_env=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[deployed]))


@dataclass
class AppsArgs:
    config: StackConfig
    head: NodeHandle  # every app runs on the head
    known_hosts: pulumi.Input[str]  # the head's line, for the export's SSH
    operator_side: OperatorSide
    after: list[pulumi.Resource] = field(default_factory=list)  # the head set up (and logged in to registries)
    dashboard_key: Optional[pulumi.Input[str]] = None  # secret (components.remote.state_secret.dashboard_key)


def deploy_apps(args: AppsArgs) -> list[App]:
    """Every labstack:apps entry on the head. Apps stay declared while the server is stopped: unchanged, they run
    nothing (and are not deleted)."""
    cfg = args.config
    password = cfg.proxy.dashboard_password.get_secret_value() if cfg.proxy.dashboard_password else None
    export = ExportOnDelete(stack=cfg.stack, key_file=str(cfg.key_pair.pem_path), known_hosts=args.known_hosts,
                            exports_dir=str(Path(args.operator_side.project_dir) / cfg.exports_dir),
                            operator_side=args.operator_side, discard_data=cfg.discard_data_on_destroy)
    return [App(f"{cfg.server_name}-{app.name}", AppArgs(
        app=app, node=args.head, host=args.head.public_address.apply(functools.partial(cfg.app_host, app)),
        proxy=cfg.proxy, secrets=pulumi.Output.secret({k: v.get_secret_value() for k, v in app.secrets.items()}),
        dashboard_password=pulumi.Output.secret(password), dashboard_key=args.dashboard_key, depends_on=args.after,
        export=export))
        for app in cfg.apps]
