"""Each app's files on a server, rendered from its config: compose files, release settings, secrets, commands.

Compose files are built as data and dumped as YAML, never assembled from strings, so an env value with quotes,
colons or newlines cannot break them. `$` is doubled because compose interpolates `${...}` in the file.
"""
from __future__ import annotations

import hashlib
from typing import Optional

import yaml

from components.config import AppConfig, env_text, is_compound
from components.layout import DB_PASSWORD_MOUNT, HOOKS_DIR, STATE_FILES, app_file, labels, name
from components.render.images import infra_image


def _escape(value: str) -> str:
    return value.replace("$", "$$")


def app_environment(app: AppConfig) -> dict[str, str]:
    env = {name: _escape(env_text(value)) for name, value in app.env.items()}
    env.update(LABSTACK_APP=app.name, LABSTACK_DATA_DIR="/data", PORT=str(app.port))
    if app.postgres:
        # Interpolated by compose from db.env on the server: the password never leaves the server. Apps read
        # DATABASE_URL from their environment (Dallinger does), so the app's containers carry it, and `docker
        # inspect` shows it to whoever can run docker (root-equivalent anyway); Postgres itself reads a file.
        env["DATABASE_URL"] = f"postgresql://{app.name}:${{LABSTACK_DB_PASSWORD}}@postgres:5432/{app.name}"
    if app.redis:
        env["REDIS_URL"] = "redis://redis:6379/0"
    return env


def app_commands(app: AppConfig) -> dict[str, str]:
    """Commands the deploy hook runs in containers of the app image; files, so any shell text survives."""
    return {STATE_FILES["INIT_CMD"]: app.init_command or "",
            STATE_FILES["POST_DEPLOY_CMD"]: (app.post_deploy.command if app.post_deploy else None) or "",
            STATE_FILES["EXPORT_CMD"]: app.export_command or ""}


def secrets_env(secrets: dict) -> str:
    """The app's secrets as a compose env file (written 0600 by the deploy hook): double-quoted with escapes, which
    compose v2 reads back byte for byte, `$` included (it interpolates nothing escaped)."""
    def quoted(value: str) -> str:
        for raw, escaped in (("\\", "\\\\"), ('"', '\\"'), ("$", "\\$"), ("\n", "\\n"), ("\r", "\\r"),
                             ("\t", "\\t")):
            value = value.replace(raw, escaped)
        return f'"{value}"'
    return "".join(f"{name}={quoted(env_text(value))}\n" for name, value in sorted(secrets.items()))


# The deploy hook runs each release as its own compose project and sets LABSTACK_COLOR; compose puts it in the web
# alias (Caddy's upstream) and in the colour label.
COLOR_VARIABLE = "${LABSTACK_COLOR}"


def process_command(command: str) -> list[str]:
    """The argv of a web, worker or clock service. A single command is exec'd by the shell, so the process the
    container's init (`init: true`, app_compose) forwards `docker stop`'s SIGTERM to is the program itself, not a
    shell that would swallow it until the end of the grace period. Shell syntax (`&&`, `;`, pipes, a leading
    `NAME=value`) keeps the shell; components.config.stack warns about those."""
    return ["sh", "-c", _escape(command if is_compound(command) or command.startswith("exec ") else f"exec {command}")]


def app_compose(app: AppConfig) -> str:
    environment = app_environment(app)
    common = {
        "image": app.image,
        # Docker's minimal init (tini) as PID 1: the kernel drops a signal sent to a PID 1 that installed no handler
        # for it (a clock process, a plain script), so without it `docker stop` waits the whole grace period and
        # kills. The init forwards SIGTERM to the command, whose default action ends it, and reaps its children.
        "init": True,
        "restart": "unless-stopped",  # back after a reboot or an engine restart
        # Secrets come from a root-only env file, not from this file (nor from Pulumi's logs): the release's own, so
        # a candidate's new secrets never reach the serving release (compose resolves the colour in the path).
        "env_file": [f"{name('RELEASE_ETC', app.name, COLOR_VARIABLE)}/{STATE_FILES['SECRETS_ENV']}"],
        "environment": environment,
        "volumes": [f"{name('APP_DATA', app.name)}:/data",
                    *(f"{name('APP_VOLUMES', app.name)}/{volume}:{path}" for volume, path in sorted(app.volumes.items()))],
        # compose's stop and down wait this long after SIGTERM: a worker finishes its job, a web its requests.
        "stop_grace_period": f"{app.stop_grace_seconds}s",
    }

    def service(role: str, **settings) -> dict:
        return dict(common, labels=labels(app.name, role, COLOR_VARIABLE), **settings)

    # Only the app's own network: Caddy joins it (deploy-app.sh) to reach the web by its alias, and no other app's
    # container can reach this app's web (nor its dashboard) without going through Caddy and its password.
    web = service("web", networks={"app": {"aliases": [name("WEB_ALIAS", app.name, COLOR_VARIABLE)]}})
    if app.command:
        web["command"] = process_command(app.command)
    services = {"web": web}
    if app.workers:
        services["worker"] = service("worker", command=process_command(app.worker_command or ""),
                                     networks=["app"], scale=app.workers)
    if app.clock_command:
        services["clock"] = service("clock", command=process_command(app.clock_command), networks=["app"])
    if app.init_command or app.export_command:
        # The one-off container of the init command (deploy-app.sh runs it with the command from init.cmd, in a
        # project of its own) and of the app's own export (app-export.sh): the app's image, env and data, no colour,
        # and only the app's network, where its database is. The profile keeps `up` from starting it.
        services["init"] = dict(common, labels=labels(app.name, "init"), networks=["app"], profiles=["init"])
    return yaml.safe_dump({
        "services": services,
        "networks": {"app": {"name": name("APP_NETWORK", app.name), "external": True}},
    }, sort_keys=False, width=1000)


def data_compose(app: AppConfig) -> str:
    services = {}
    if app.postgres:
        services["postgres"] = {
            "image": infra_image("postgres"), "restart": "unless-stopped",
            # The password as a file (the image's POSTGRES_PASSWORD_FILE), so neither this file nor `docker
            # inspect` of Postgres holds it.
            "environment": {"POSTGRES_USER": app.name, "POSTGRES_DB": app.name,
                            "POSTGRES_PASSWORD_FILE": DB_PASSWORD_MOUNT,
                            "PGDATA": "/var/lib/postgresql/data/pgdata"},
            "volumes": [f"{name('APP_POSTGRES', app.name)}:/var/lib/postgresql/data",
                        f"{app_file(app.name, 'DB_PASSWORD')}:{DB_PASSWORD_MOUNT}:ro"],
            "labels": labels(app.name, "postgres"),
            "networks": {"app": {"aliases": ["postgres"]}},
        }
    if app.redis:
        services["redis"] = {
            "image": infra_image("redis"), "restart": "unless-stopped",
            "command": ["redis-server", "--appendonly", "yes", "--dir", "/data"],
            "volumes": [f"{name('APP_REDIS', app.name)}:/data"],
            "labels": labels(app.name, "redis"),
            "networks": {"app": {"aliases": ["redis"]}},
        }
    return yaml.safe_dump({"services": services,
                           "networks": {"app": {"name": name("APP_NETWORK", app.name), "external": True}}},
                          sort_keys=False, width=1000)


# The hooks a deploy runs: their hash is in release.conf, so a changed deploy hook redeploys (blue/green, so safely).
DEPLOY_HOOKS = ("layout.sh", "lib.sh", "app-state.bash", "deploy-steps.sh", "deploy-app.sh")


def release_conf(app: AppConfig, host: str, tls_internal: bool, server_id: Optional[str] = None) -> str:
    hooks_version = hashlib.sha256(b"".join((HOOKS_DIR / hook).read_bytes() for hook in DEPLOY_HOOKS)).hexdigest()[:12]
    values = {
        "IMAGE": app.image, "PORT": app.port, "HEALTH_PATH": app.health_path,
        "HEALTH_TIMEOUT": app.health_timeout_seconds, "HOST": host, "WORKERS": app.workers,
        "POSTGRES": str(app.postgres).lower(), "REDIS": str(app.redis).lower(),
        "HOOKS_VERSION": hooks_version,
        "TLS_INTERNAL": str(tls_internal).lower(),
        "SERVER_ID": server_id or "",
        "INIT_RUN": app.init_run,
        "WORKER_SETTLE": app.worker_settle_seconds,
        "WORKER_HEALTH_COMMAND": app.worker_health_command or "",
    }
    hook = app.post_deploy
    if hook:
        values.update(POST_DEPLOY_WHEN=hook.when, POST_DEPLOY_METHOD=hook.method, POST_DEPLOY_PATH=hook.path or "",
                      POST_DEPLOY_STATUS=hook.expect_status, POST_DEPLOY_RETRIES=hook.retries)
    return "".join(f"{key}={value}\n" for key, value in values.items())
