"""The proxy's files on a server: Caddy's main file, its compose project (with the optional log viewer) and one
site file per app."""
from __future__ import annotations

import hashlib
import hmac
from typing import Optional

import bcrypt
import yaml

from components.config import ProxyConfig
from components.render.images import infra_image
from components.layout import (CADDY_ACCESS_LOG, CADDY_ETC, HOOKS_DIR, LABEL_APP, PROXY_CONFIG, PROXY_DATA, PROXY_DOCKER_API, PROXY_ETC,
                               PROXY_FILES, PROXY_NETWORK, PROXY_PROJECT, PROXY_RAY_GATE, PROXY_SITES, RAY_GATE_DIR,
                               REMOTE_HOOKS, SERVER_APP, labels)

CADDYFILE = f"{CADDY_ETC}/{PROXY_FILES['PROXY_CADDYFILE']}"
CADDY_SITES = CADDY_ETC + PROXY_SITES.removeprefix(PROXY_ETC)  # PROXY_SITES as Caddy sees it


def proxy_files(proxy: ProxyConfig) -> dict[str, str]:
    options = []
    if proxy.tls == "internal":
        # Caddy's own CA: for tests and servers without a public name. Clients trust it by its root file (the hooks
        # pass it to curl); installing it into the container's trust store took ~2 s of every reload, i.e. of every
        # switch.
        options += ["local_certs", "skip_install_trust"]
    elif proxy.acme_email:
        options.append(f"email {proxy.acme_email}")
    # HTTP/1.1 only (`h1` in Caddy's protocol names): a reload (every switch) shuts the previous configuration's server down gracefully, but Go's
    # http.Server.Shutdown closes the connections it sees as idle, and x/net/http2 marks a connection idle right
    # after its preface, before its first request is read: a client that had just connected to the old server
    # loses its request (curl: "Error in the HTTP2 framing layer"; 4 of 1206 requests over 50 switches on the test
    # bed, each in the old server's last moment). An HTTP/1.1 connection stays new until its request is read, and
    # is served. HTTP/3 goes too (`protocols` lists what is served).
    options.append("servers {\n\t\tprotocols h1\n\t}")
    caddyfile = "# Managed by labstack (proxy-up.sh); one site file per app in sites/.\n"
    caddyfile += "{\n" + "".join(f"\t{option}\n" for option in options) + "}\n"
    caddyfile += f"import {CADDY_SITES}/*.caddy\n"
    return {PROXY_FILES["PROXY_CADDYFILE"]: caddyfile, PROXY_FILES["PROXY_COMPOSE"]: proxy_compose(proxy)}


def proxy_compose(proxy: ProxyConfig) -> str:
    services = {"caddy": {
        "image": infra_image("caddy"),
        "restart": "unless-stopped",
        "command": ["caddy", "run", "--config", CADDYFILE, "--adapter", "caddyfile"],
        "ports": ["80:80", "443:443", "443:443/udp"],
        # The whole directory, not single files: files proxy-up.sh and deploy-app.sh replace keep reaching Caddy.
        # PROXY_RAY_GATE: the socket of Ray's dashboard gate (hooks/ray-site.sh), which no other container mounts.
        "volumes": [f"{PROXY_ETC}:{CADDY_ETC}:ro", f"{PROXY_DATA}:/data", f"{PROXY_CONFIG}:/config",
                    f"{PROXY_RAY_GATE}:{RAY_GATE_DIR}"],
        "labels": labels(SERVER_APP, "proxy"),
        "networks": ["proxy"],
    }}
    title = "The host's Caddy proxy"
    if proxy.log_viewer:
        services["logviewer"] = _log_viewer()
        services["docker-api"] = _docker_api_gate()
        title += " and labstack's log viewer (behind a read-only Docker API gate)"
    header = (f"# {title} (project {PROXY_PROJECT}), rendered by labstack.\n"
              f"# proxy-up.sh writes it to {PROXY_ETC}/{PROXY_FILES['PROXY_COMPOSE']}.\n")
    return header + yaml.safe_dump({"services": services, "networks": {"proxy": {"name": PROXY_NETWORK,
                                                                                 "external": True}}},
                                   sort_keys=False, width=1000)


LOG_VIEWER_HOST = "labstack-logviewer"
LOG_VIEWER_PATH = "/labstack-logs"


TEMPLATES = "/opt/labstack-templates"  # REMOTE_HOOKS/templates in the viewer's and the gate's containers
DOCKER_API_DIR = "/run/labstack-docker"  # PROXY_DOCKER_API in both
DOCKER_API_SOCKET = f"{DOCKER_API_DIR}/docker.sock"


def _script_service(script_name: str, role: str) -> dict:
    """A service running one of hooks/templates' scripts in the Python image; a new script version changes the
    sha256 label, so compose recreates the container."""
    script = HOOKS_DIR / "templates" / script_name
    return {
        "image": infra_image("python"),
        "restart": "unless-stopped",
        "command": ["python3", f"{TEMPLATES}/{script_name}"],
        "labels": {**labels(SERVER_APP, role),
                   f"org.labstack.{role}-sha256": hashlib.sha256(script.read_bytes()).hexdigest()},
    }


def _log_viewer() -> dict:
    return {
        **_script_service("logviewer.py", "logviewer"),
        # It finds an app's containers by this label (labstack's own carry SERVER_APP, never an app's name).
        "environment": {"LABSTACK_LABEL_APP": LABEL_APP, "LABSTACK_DOCKER_SOCKET": DOCKER_API_SOCKET},
        # Never the Docker socket (root on the server): the read-only gate's socket. It listens on the proxy
        # network, which only Caddy shares (no published port), and Caddy puts basic auth in front of it.
        "volumes": [f"{PROXY_DOCKER_API}:{DOCKER_API_DIR}", f"{REMOTE_HOOKS}/templates:{TEMPLATES}:ro"],
        "depends_on": ["docker-api"],
        "networks": {"proxy": {"aliases": [LOG_VIEWER_HOST]}},
    }


def _docker_api_gate() -> dict:
    """The Docker socket behind a gate that passes only the viewer's GET calls (hooks/templates/docker_api_proxy.py);
    no network at all: the viewer reaches it through a socket in a directory only the two of them mount."""
    service = _script_service("docker_api_proxy.py", "docker-api")
    service["command"].append(DOCKER_API_SOCKET)
    return {**service, "network_mode": "none",
            "volumes": ["/var/run/docker.sock:/var/run/docker.sock:ro", f"{PROXY_DOCKER_API}:{DOCKER_API_DIR}",
                        f"{REMOTE_HOOKS}/templates:{TEMPLATES}:ro"]}


# Every site logs its requests to one file: the auto-stop watcher reads the apps' HTTP activity from its mtime.
ACCESS_LOG = ["\tlog {", f"\t\toutput file {CADDY_ACCESS_LOG} {{", "\t\t\troll_size 10MiB", "\t\t\troll_keep 1",
              "\t\t}", "\t}"]


def site_file(host: str, proxy: ProxyConfig, dashboard_hash: Optional[str], app: str = "") -> str:
    """Caddy site for one app; the deploy hook fills in {{UPSTREAM}} with the release that passed its health check."""
    lines = [f"{host} {{", *ACCESS_LOG]
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


RAY_SITE = "_ray.caddy"  # in PROXY_SITES; app names start with a letter, so no app's site file takes this name


RAY_LOGIN_COOKIE = "labstack-ray-login"  # the mark of a browser that gave the password (ray_site_file)
RAY_LOGIN_PATH = "/api/authenticate"  # where Ray's dashboard page posts the token; Ray answers with its cookie


def ray_site_file(host: str, proxy: ProxyConfig, dashboard_hash: str, mark: str) -> str:
    """Caddy site for Ray's dashboard and Jobs API on the head; hooks/ray-site.sh fills in {{UPSTREAM}} (the
    host-network gate in front of Ray's 127.0.0.1 port). The dashboard password guards the whole site. Clients send
    Ray's token in Proxy-Authorization (which Caddy's logs redact, unlike a custom header); it reaches Ray as its
    Authorization header, replacing the basic-auth one, which Ray would take for a wrong token. A browser instead
    gets Ray's own prompt: the page posts the token to RAY_LOGIN_PATH as `Authorization: Bearer`, which takes the
    place of the password in that one request, so that request passes on the mark the site gives every browser that
    gave the password (a cookie holding MARK, ray_login_mark, never the token); Ray answers with its token cookie
    (made Secure here: Ray sees plain HTTP), which Ray then reads on every call after the password."""
    return "\n".join([
        f"{host} {{", *ACCESS_LOG,
        "\t@login {", "\t\tmethod POST", f"\t\tpath {RAY_LOGIN_PATH}", '\t\theader Authorization "Bearer *"',
        f'\t\theader Cookie "*{RAY_LOGIN_COOKIE}={mark}*"', "\t}", "\t@token header Proxy-Authorization *",
        "\thandle @login {", "\t\treverse_proxy {{UPSTREAM}} {", "\t\t\theader_up -Cookie",
        '\t\t\theader_down Set-Cookie "^(ray-authentication-token=.+)$" "$1; Secure"', "\t\t}", "\t}",
        "\thandle {", "\t\troute {",  # in this order: no mark and no request to Ray before the password passed
        "\t\t\tbasicauth {", f"\t\t\t\t{proxy.dashboard_user} {dashboard_hash}", "\t\t\t}",
        (f'\t\t\theader +Set-Cookie "{RAY_LOGIN_COOKIE}={mark}; Path={RAY_LOGIN_PATH}; Secure; HttpOnly; '
         'SameSite=Strict"'),
        "\t\t\trequest_header -Authorization",
        "\t\t\trequest_header @token Authorization {http.request.header.Proxy-Authorization}",
        "\t\t\trequest_header -Proxy-Authorization", "\t\t\treverse_proxy {{UPSTREAM}}", "\t\t}", "\t}", "}", ""])


def dashboard_password_hash(password: str, app: str, key: str) -> str:
    """bcrypt (cost 12) with a salt keyed by the stack's dashboard key (components.remote.state_secret), never by
    the password: a guess against a site file, a backup or the state costs a bcrypt per app and stack, and no
    precomputed table serves two stacks. The key is kept in the state, so the same password renders the same site
    file (a fresh random salt would redeploy every app on every `pulumi up`)."""
    salt_source = hmac.new(key.encode(), f"labstack-dashboard-salt:{app}".encode(), hashlib.sha256).digest()
    alphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    # bcrypt salts are 22 chars of its base64 alphabet; the last one may only carry 4 bits, so keep it in ".Oeu".
    salt = "".join(alphabet[b % 64] for b in salt_source[:21]) + ".Oeu"[salt_source[21] % 4]
    return bcrypt.hashpw(password.encode(), f"$2b$12${salt}".encode()).decode()


def ray_login_mark(password: str, key: str) -> str:
    """The cookie value marking a browser that gave the dashboard password (ray_site_file): keyed by the stack's
    dashboard key, so no file on the server or in a backup (the bcrypt hash included) yields it, and a new
    password makes a new mark, logging every browser out."""
    return hmac.new(key.encode(), f"{RAY_LOGIN_COOKIE}:{password}".encode(), hashlib.sha256).hexdigest()
