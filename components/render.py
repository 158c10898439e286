"""The files a server receives: Caddy configuration and each app's compose files, rendered from the stack config.

Compose files are built as data and dumped as YAML, never assembled from strings, so an env value with quotes,
colons or newlines cannot break them. `$` is doubled because compose interpolates `${...}` in the file.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Optional

import bcrypt
import yaml

from components.config import AppConfig, ProxyConfig, env_text
from components.layout import APPS_ETC, APPS_SRV, REMOTE_HOOKS

HOOKS_DIR = Path(__file__).resolve().parent.parent / "hooks"
POSTGRES_IMAGE = "postgres:16"
REDIS_IMAGE = "redis:7"


def proxy_files(proxy: ProxyConfig) -> dict[str, str]:
    options = []
    if proxy.tls == "internal":
        options.append("local_certs")  # Caddy's own CA: for tests and servers without a public name
    elif proxy.acme_email:
        options.append(f"email {proxy.acme_email}")
    caddyfile = "# Managed by labstack (proxy-up.sh); one site file per app in sites/.\n"
    if options:
        caddyfile += "{\n" + "".join(f"\t{option}\n" for option in options) + "}\n"
    caddyfile += "import /etc/caddy/sites/*.caddy\n"
    compose = (HOOKS_DIR / "templates" / "proxy.compose.yaml").read_text()
    if proxy.log_viewer:
        compose = _with_log_viewer(compose)
    return {"Caddyfile": caddyfile, "compose.yaml": compose}


LOG_VIEWER_HOST = "labstack-logviewer"
LOG_VIEWER_PATH = "/labstack-logs"


def _with_log_viewer(compose_text: str) -> str:
    script = HOOKS_DIR / "templates" / "logviewer.py"
    compose = yaml.safe_load(compose_text)
    compose["services"]["logviewer"] = {
        "image": "python:3.11-slim",
        "restart": "unless-stopped",
        "command": ["python3", "/opt/labstack-templates/logviewer.py"],
        # It only sends GET requests, but the Docker socket is root on the server: it listens on the proxy network
        # alone (no published port) and Caddy puts basic auth in front of it.
        "volumes": ["/var/run/docker.sock:/var/run/docker.sock:ro",
                    f"{REMOTE_HOOKS}/templates:/opt/labstack-templates:ro"],
        # A new script version changes this label, so compose recreates the container.
        "labels": {"org.labstack.logviewer-sha256": hashlib.sha256(script.read_bytes()).hexdigest()},
        "networks": {"proxy": {"aliases": [LOG_VIEWER_HOST]}},
    }
    return "# The host's Caddy proxy and labstack's log viewer (project labstack-proxy).\n" + yaml.safe_dump(
        compose, sort_keys=False, width=1000)


def site_file(host: str, proxy: ProxyConfig, dashboard_hash: Optional[str], app: str = "") -> str:
    """Caddy site for one app; the deploy hook fills in {{UPSTREAM}} with the release that passed its health check."""
    lines = [f"{host} {{"]
    protected = []
    if dashboard_hash:
        protected += [proxy.dashboard_path, f"{proxy.dashboard_path}/*"]
        if proxy.log_viewer:
            protected += [LOG_VIEWER_PATH, f"{LOG_VIEWER_PATH}/*"]
        lines += [f"\t@protected path {' '.join(protected)}",
                  "\tbasicauth @protected {", f"\t\t{proxy.dashboard_user} {dashboard_hash}", "\t}"]
    if dashboard_hash and proxy.log_viewer:
        lines += [f"\t@logs path {LOG_VIEWER_PATH} {LOG_VIEWER_PATH}/*",
                  "\thandle @logs {", f"\t\treverse_proxy {LOG_VIEWER_HOST}:8080 {{",
                  f"\t\t\theader_up X-Labstack-App {app}", "\t\t}", "\t}",
                  "\thandle {", "\t\treverse_proxy {{UPSTREAM}}", "\t}", "}", ""]
    else:
        lines += ["\treverse_proxy {{UPSTREAM}}", "}", ""]
    return "\n".join(lines)


def dashboard_password_hash(password: str, app: str) -> str:
    """bcrypt hash with a salt derived from the password and app, so the same password renders the same site file
    (a random salt would redeploy every app on every `pulumi up`)."""
    salt_source = hashlib.sha256(f"labstack-dashboard:{app}:{password}".encode()).digest()
    alphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    # bcrypt salts are 22 chars of its base64 alphabet; the last one may only carry 4 bits, so keep it in ".Oeu".
    salt = "".join(alphabet[b % 64] for b in salt_source[:21]) + ".Oeu"[salt_source[21] % 4]
    return bcrypt.hashpw(password.encode(), f"$2b$12${salt}".encode()).decode()


def _escape(value: str) -> str:
    return value.replace("$", "$$")


def app_environment(app: AppConfig) -> dict[str, str]:
    env = {name: _escape(env_text(value)) for name, value in app.env.items()}
    env.update(LABSTACK_APP=app.name, LABSTACK_DATA_DIR="/data", PORT=str(app.port))
    if app.postgres:
        # Interpolated by compose from db.env on the server: the password never leaves the server.
        env["DATABASE_URL"] = f"postgresql://{app.name}:${{LABSTACK_DB_PASSWORD}}@postgres:5432/{app.name}"
    if app.redis:
        env["REDIS_URL"] = "redis://redis:6379/0"
    return env


def app_commands(app: AppConfig) -> dict[str, str]:
    """Commands the deploy hook runs in containers of the app image; files, so any shell text survives."""
    return {"init.cmd": app.init_command or "",
            "post-deploy.cmd": (app.post_deploy.command if app.post_deploy else None) or ""}


SECRETS_FILE = APPS_ETC + "/{app}/secrets.env"


def secrets_env(secrets: dict) -> str:
    """The app's secrets as a compose env file (written 0600 by the deploy hook): double-quoted with escapes, which
    compose v2 reads back byte for byte, `$` included (it interpolates nothing escaped)."""
    def quoted(value: str) -> str:
        for raw, escaped in (("\\", "\\\\"), ('"', '\\"'), ("$", "\\$"), ("\n", "\\n"), ("\r", "\\r"),
                             ("\t", "\\t")):
            value = value.replace(raw, escaped)
        return f'"{value}"'
    return "".join(f"{name}={quoted(env_text(value))}\n" for name, value in sorted(secrets.items()))


def app_compose(app: AppConfig) -> str:
    environment = app_environment(app)
    common = {
        "image": app.image,
        "restart": "unless-stopped",  # back after a reboot or an engine restart
        # Secrets come from a root-only env file, not from this file (nor from Pulumi's logs).
        "env_file": [SECRETS_FILE.format(app=app.name)],
        "environment": environment,
        "volumes": [f"{APPS_SRV}/{app.name}/data:/data"],
    }
    web = dict(common, networks={"app": {}, "proxy": {"aliases": [f"{app.name}-${{LABSTACK_COLOR}}-web"]}})
    if app.command:
        web["command"] = ["sh", "-c", _escape(app.command)]
    services = {"web": web}
    if app.workers:
        services["worker"] = dict(common, command=["sh", "-c", _escape(app.worker_command or "")],
                                  networks=["app"], scale=app.workers)
    if app.clock_command:
        services["clock"] = dict(common, command=["sh", "-c", _escape(app.clock_command)], networks=["app"])
    return yaml.safe_dump({
        "services": services,
        "networks": {"app": {"name": f"labstack-{app.name}", "external": True},
                     "proxy": {"name": "labstack", "external": True}},
    }, sort_keys=False, width=1000)


def data_compose(app: AppConfig) -> str:
    services = {}
    if app.postgres:
        services["postgres"] = {
            "image": POSTGRES_IMAGE, "restart": "unless-stopped",
            "environment": {"POSTGRES_USER": app.name, "POSTGRES_DB": app.name,
                            "POSTGRES_PASSWORD": "${LABSTACK_DB_PASSWORD}",
                            "PGDATA": "/var/lib/postgresql/data/pgdata"},
            "volumes": [f"{APPS_SRV}/{app.name}/postgres:/var/lib/postgresql/data"],
            "networks": {"app": {"aliases": ["postgres"]}},
        }
    if app.redis:
        services["redis"] = {
            "image": REDIS_IMAGE, "restart": "unless-stopped",
            "command": ["redis-server", "--appendonly", "yes", "--dir", "/data"],
            "volumes": [f"{APPS_SRV}/{app.name}/redis:/data"],
            "networks": {"app": {"aliases": ["redis"]}},
        }
    return yaml.safe_dump({"services": services,
                           "networks": {"app": {"name": f"labstack-{app.name}", "external": True}}},
                          sort_keys=False, width=1000)


def release_conf(app: AppConfig, host: str, tls_internal: bool, server_id: Optional[str] = None) -> str:
    hooks_version = hashlib.sha256(b"".join((HOOKS_DIR / name).read_bytes()
                                            for name in ("lib.sh", "deploy-app.sh"))).hexdigest()[:12]
    values = {
        "IMAGE": app.image, "PORT": app.port, "HEALTH_PATH": app.health_path,
        "HEALTH_TIMEOUT": app.health_timeout_seconds, "HOST": host, "WORKERS": app.workers,
        "POSTGRES": str(app.postgres).lower(), "REDIS": str(app.redis).lower(),
        "HOOKS_VERSION": hooks_version,  # a fixed deploy hook redeploys (blue/green, so safely)
        "TLS_INTERNAL": str(tls_internal).lower(),
        "SERVER_ID": server_id or "",
        "INIT_RUN": app.init_run,
    }
    hook = app.post_deploy
    if hook:
        values.update(POST_DEPLOY_WHEN=hook.when, POST_DEPLOY_METHOD=hook.method, POST_DEPLOY_PATH=hook.path or "",
                      POST_DEPLOY_STATUS=hook.expect_status, POST_DEPLOY_RETRIES=hook.retries)
    return "".join(f"{key}={value}\n" for key, value in values.items())
