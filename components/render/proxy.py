"""The proxy's files on a server: Caddy's main file, its compose project (with the optional log viewer) and one
site file per app."""
from __future__ import annotations

import hashlib
from typing import Optional

import bcrypt
import yaml

from components.config import ProxyConfig
from components.layout import HOOKS_DIR, REMOTE_HOOKS


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
