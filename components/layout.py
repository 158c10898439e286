"""The server layout contract: every path, compose project, network, label and state file labstack uses on a server.

This module is the one place those names are written. The hooks read the same names from `hooks/layout.sh`, which
is generated from here (`python -m components.layout > hooks/layout.sh`; a unit test fails when it is stale), the
renderers and the operator tasks import them, and the README shows them. Names that depend on an app (or a
release colour) are templates with `{app}` and `{color}`; the bash side gets one function per template.
"""
from __future__ import annotations

import shlex

import sys
from pathlib import Path

# The hooks as they are in this project; the host setup copies them to REMOTE_HOOKS on every server.
HOOKS_DIR = Path(__file__).resolve().parent.parent / "hooks"
LAYOUT_SH = HOOKS_DIR / "layout.sh"

# --- paths -----------------------------------------------------------------------------------------------------
REMOTE_HOOKS = "/opt/labstack/hooks"
ETC = "/etc/labstack"  # configuration and records (root-only where they hold secrets)
SRV = "/srv/labstack"  # data that must survive redeploys
APPS_ETC = f"{ETC}/apps"  # per app: compose files, secrets.env, db.env, release records (root-only)
APPS_SRV = f"{SRV}/apps"  # per app: data, postgres, redis
PROXY_ETC = f"{ETC}/proxy"  # the PROXY_FILES below
PROXY_SITES = f"{PROXY_ETC}/sites"  # one <app>.caddy per app
PROXY_SRV = f"{SRV}/proxy"
PROXY_DATA = f"{PROXY_SRV}/data"  # Caddy's /data: certificates
PROXY_CONFIG = f"{PROXY_SRV}/config"  # Caddy's /config: its autosaved configuration
EXPORT_SCRATCH = f"{SRV}/export-scratch"  # 0700: each app's own-export folder while `invoke export` fetches it
PROXY_DOCKER_API = f"{PROXY_SRV}/docker-api"  # the log viewer's read-only Docker API socket (0700)
PROXY_RAY_GATE = f"{PROXY_SRV}/ray-gate"  # 0700: the socket of Ray's dashboard gate (ray-site.sh), Caddy's alone
RAY_GATE_DIR = "/run/labstack-ray-gate"  # PROXY_RAY_GATE as Caddy and the gate see it
CADDY_LOCAL_ROOT_CA = f"{PROXY_DATA}/caddy/pki/authorities/local/root.crt"  # with tls: internal
CADDY_ETC = "/etc/caddy"  # PROXY_ETC as the Caddy container sees it (the whole directory is mounted)
DB_PASSWORD_MOUNT = "/run/secrets/db-password"  # STATE_FILES["DB_PASSWORD"] as Postgres sees it

# --- docker names ------------------------------------------------------------------------------------------------
PROXY_NETWORK = "labstack"  # Caddy and the log viewer only; Caddy also joins each app's APP_NETWORK
PROXY_PROJECT = "labstack-proxy"
COLORS = ("blue", "green")  # the two releases of an app; one serves, the other is the next

# Per-app templates ({app}, {color}).
TEMPLATES = {
    "APP_ETC": APPS_ETC + "/{app}",
    "APP_SRV": APPS_SRV + "/{app}",
    "APP_DATA": APPS_SRV + "/{app}/data",  # the app's /data
    "APP_POSTGRES": APPS_SRV + "/{app}/postgres",  # Postgres's data directory
    "APP_REDIS": APPS_SRV + "/{app}/redis",  # Redis's append-only files
    "APP_VOLUMES": APPS_SRV + "/{app}/volumes",  # one folder per extra volume the app declares (`volumes`)
    # A copy of the app's DB_ENV beside its data (0600): on a data volume, a replaced instance finds the database
    # and its password together.
    "APP_KEPT_DB_ENV": APPS_SRV + "/{app}/db.env",
    "APP_SITE": PROXY_SITES + "/{app}.caddy",
    # One release's files (RELEASE_CONF, APP_COMPOSE, SITE_TEMPLATE, INIT_CMD, POST_DEPLOY_CMD, SECRETS_ENV): the
    # serving colour's folder, and beside it the candidate's until the switch (hooks/app-state.bash).
    "RELEASE_ETC": APPS_ETC + "/{app}/{color}",
    "APP_NETWORK": "labstack-{app}",  # the app's web, workers, clock, Postgres and Redis, and Caddy
    "DATA_PROJECT": "{app}-data",  # Postgres and Redis
    "INIT_PROJECT": "{app}-init",  # the one-off container of the init command
    "RELEASE_PROJECT": "{app}-{color}",  # web, workers and clock of one release
    "WEB_ALIAS": "{app}-{color}-web",  # the release's web on the app's network (Caddy's upstream)
}

# Files in PROXY_ETC (Caddy's main file imports the site files).
PROXY_FILES = {"PROXY_CADDYFILE": "Caddyfile", "PROXY_COMPOSE": "compose.yaml"}

# Files in an app's APP_ETC directory.
STATE_FILES = {
    "APP_COMPOSE": "app.compose.yaml",
    "DATA_COMPOSE": "data.compose.yaml",
    "RELEASE_CONF": "release.conf",
    "SITE_TEMPLATE": "site.caddy",
    "INIT_CMD": "init.cmd",
    "POST_DEPLOY_CMD": "post-deploy.cmd",
    "EXPORT_CMD": "export.cmd",  # the app's own export (exportCommand); not a release file: no new release
    "SECRETS_ENV": "secrets.env",  # the app's secrets (0600)
    "DB_ENV": "db.env",  # the database password, made on the server (0600), for compose's interpolation
    # The same password alone, mounted into Postgres as POSTGRES_PASSWORD_FILE (0644 in the 0700 APP_ETC: the
    # container's postgres user reads it, nobody else on the host can reach it).
    "DB_PASSWORD": "db-password",
    # What serves: COLOR, RELEASE, IMAGE, WORKERS, SWITCHED_AT lines, renamed into place at the switch
    # (hooks/app-state.bash).
    "APP_STATE": "state.conf",
    # The serving colour and release id as labstack recorded them before APP_STATE: read once, to convert a server.
    "ACTIVE_COLOR": "active-color",
    "ACTIVE_RELEASE": "active-release",
    "RELEASES_LOG": "releases.log",  # "<utc time> <release> <image>" per deploy
    "INIT_DONE": "init-done",  # the last init run that succeeded
    "POST_DEPLOY_DONE": "post-deploy-done",  # when the post-deploy hook last succeeded
    # Its answer (the POST_DEPLOY_MARK line), printed again by every later deploy: the program reads the answer
    # from the deploy's stdout, and a deploy that sends no request must not blank it.
    "POST_DEPLOY_ANSWER": "post-deploy-answer",
}

# The deploy hook's one stdout line after a post-deploy request: "<mark> <status> <base64 of the body's first lines>".
POST_DEPLOY_MARK = "labstack-post-deploy"
POST_DEPLOY_LINES = 20

# --- Ray on cluster nodes: every port pinned, so the firewall rule and the README can name them --------------------
# Members reach each other on every port (the security group's self rule); none of these is ever open to the world.
# The dashboard and the Jobs API listen on the head's 127.0.0.1 only; Caddy serves them at ray.<host>, behind auth.
RAY_PORTS = {
    "RAY_GCS_PORT": 6379,  # the head's GCS; workers join <head private ip>:6379
    "RAY_DASHBOARD_PORT": 8265,  # dashboard and Jobs API (head, 127.0.0.1)
    "RAY_CLIENT_PORT": 10001,  # Ray Client server (head)
    "RAY_NODE_MANAGER_PORT": 6380,
    "RAY_OBJECT_MANAGER_PORT": 6381,
    "RAY_RUNTIME_ENV_AGENT_PORT": 6382,
    "RAY_DASHBOARD_AGENT_GRPC_PORT": 6383,
    "RAY_DASHBOARD_AGENT_LISTEN_PORT": 52365,
    "RAY_METRICS_EXPORT_PORT": 6384,
    "RAY_MIN_WORKER_PORT": 11000,  # worker processes: RAY_MIN_WORKER_PORT..RAY_MAX_WORKER_PORT
    "RAY_MAX_WORKER_PORT": 11999,
}
RAY_PROJECT = "labstack-ray"  # the compose project (or container name) of the Ray node on every cluster node
RAY_ETC = f"{ETC}/ray"  # 0700 root: the Ray token and the node's recorded run settings
RAY_TOKEN_FILE = f"{RAY_ETC}/token"  # 0400 RAY_USER: Ray's auth token (RAY_AUTH_MODE=token), the same on every node
# Ray runs as the official image's `ray` user, never root: with host networking only the user tells its processes
# from the host's own, and the metadata guard (hooks/metadata-guard.sh) lets only root reach the metadata service.
RAY_USER = "1000:100"
LABEL_RAY_SETTINGS = "org.labstack.ray-settings"  # on the Ray container: a hash of what it was started with

# --- script jobs (invoke job.*): one folder per job, <id>/ = the uploaded files, status.json, job.log, .labstack/ ----
JOBS_SRV = f"{SRV}/jobs"
# Large uploaded files, hard links named by their sha256, so the next job that uploads the same file gets a copy made on
# the server instead (hooks/job-have.sh, job-submit.sh); an entry no job folder links any more is removed.
JOBS_STORE = f"{JOBS_SRV}/.files"

# --- The auto-stop watcher (hooks/auto-stop.sh, every minute from a systemd timer) -----------------------------------
WATCHER_ETC = f"{ETC}/watcher"  # watcher.env: its settings (IDLE_SECONDS, MAX_SECONDS, CPU_PERCENT, budget)
WATCHER_STATE = "/var/lib/labstack/watcher"  # survives a stop: last activity, running seconds, its log, the stops
WATCHER_RUN = "/run/labstack-watcher"  # gone at every boot: when this boot's watching began, the last CPU sample
WATCHER_UNIT = "labstack-auto-stop"  # .service + .timer
METADATA_GUARD_UNIT = "labstack-metadata-guard"  # .service: hooks/metadata-guard.sh's rules again at every boot
METADATA_SERVICE = "169.254.169.254"  # EC2's instance metadata service (IMDS)
PROXY_ACCESS_LOG = f"{PROXY_DATA}/access.log"  # Caddy's access log (its /data/access.log): the apps' HTTP activity
CADDY_ACCESS_LOG = "/data/access.log"  # PROXY_ACCESS_LOG as the Caddy container sees it

# --- labels on every container labstack starts (the tasks filter by them instead of rebuilding names) -----------
LABEL_APP = "org.labstack.app"
LABEL_COLOR = "org.labstack.color"  # blue | green on release services; absent elsewhere
LABEL_ROLE = "org.labstack.role"
ROLES = ("web", "worker", "clock", "postgres", "redis", "init", "proxy", "logviewer", "docker-api", "job")
# The app label of the server's own services (Caddy, the log viewer). It is not a valid app name (those start with
# a letter), so filtering by an app's name never finds them and the log viewer never serves their logs.
SERVER_APP = "_labstack"


def name(template: str, app: str, color: str = "") -> str:
    """One per-app name, e.g. name("RELEASE_PROJECT", "elif", "blue") == "elif-blue"."""
    return TEMPLATES[template].format(app=app, color=color)


def app_file(app: str, state_file: str) -> str:
    """The path of one of an app's files, e.g. app_file("elif", "RELEASES_LOG")."""
    return f"{name('APP_ETC', app)}/{STATE_FILES[state_file]}"


def labels(app: str, role: str, color: str = "") -> dict[str, str]:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; known: {', '.join(ROLES)}")
    result = {LABEL_APP: app, LABEL_ROLE: role}
    if color:
        result[LABEL_COLOR] = color
    return result


def hook(hook_name: str, *args: object) -> str:
    """The command line that runs one hook on the server, as an operator would by hand; every argument quoted for
    the remote shell (the program's steps and the operator side's commands alike)."""
    return shlex.join(["sudo", "-n", f"{REMOTE_HOOKS}/{hook_name}", *map(str, args)])


BASH_HEADER = """\
# shellcheck shell=bash
# GENERATED from components/layout.py by `python -m components.layout > hooks/layout.sh`; do not edit.
# The server layout contract: paths, compose projects, networks, labels and state files.
# LABSTACK_ROOT prefixes every path and is empty on servers. Tests point it at a temp dir to run the hooks (and
# their functions) without root; sudo resets the environment (env_reset), so `sudo .../deploy-app.sh` always uses
# the real paths. It moves only the files the hooks read and write: paths inside compose files stay absolute.
# shellcheck disable=SC2034  # used by the scripts that source lib.sh
"""


def bash_layout() -> str:
    """hooks/layout.sh: the same names for the hooks, as variables and one function per template."""
    paths = {
        "LABSTACK_HOOKS": REMOTE_HOOKS, "LABSTACK_ETC": ETC, "LABSTACK_SRV": SRV, "APPS_ETC": APPS_ETC,
        "APPS_SRV": APPS_SRV, "PROXY_ETC": PROXY_ETC, "PROXY_SITES": PROXY_SITES, "PROXY_SRV": PROXY_SRV,
        "PROXY_DATA": PROXY_DATA, "PROXY_CONFIG": PROXY_CONFIG, "PROXY_DOCKER_API": PROXY_DOCKER_API,
        "PROXY_RAY_GATE": PROXY_RAY_GATE,
        "CADDY_LOCAL_ROOT_CA": CADDY_LOCAL_ROOT_CA, "EXPORT_SCRATCH": EXPORT_SCRATCH,
        "RAY_ETC": RAY_ETC, "RAY_TOKEN_FILE": RAY_TOKEN_FILE, "JOBS_SRV": JOBS_SRV, "JOBS_STORE": JOBS_STORE,
        "WATCHER_ETC": WATCHER_ETC, "WATCHER_STATE": WATCHER_STATE, "WATCHER_RUN": WATCHER_RUN,
        "PROXY_ACCESS_LOG": PROXY_ACCESS_LOG,
    }
    names = {
        "CADDY_ETC": CADDY_ETC, "PROXY_NETWORK": PROXY_NETWORK, "PROXY_PROJECT": PROXY_PROJECT,
        "LABEL_APP": LABEL_APP, "LABEL_COLOR": LABEL_COLOR, "LABEL_ROLE": LABEL_ROLE,
        **PROXY_FILES, **STATE_FILES, **RAY_PORTS, "RAY_PROJECT": RAY_PROJECT, "RAY_GATE_DIR": RAY_GATE_DIR,
        "RAY_USER": RAY_USER, "METADATA_GUARD_UNIT": METADATA_GUARD_UNIT, "METADATA_SERVICE": METADATA_SERVICE,
        "POST_DEPLOY_MARK": POST_DEPLOY_MARK, "POST_DEPLOY_LINES": POST_DEPLOY_LINES, "LABEL_RAY_SETTINGS": LABEL_RAY_SETTINGS,
        "SERVER_APP": SERVER_APP, "WATCHER_UNIT": WATCHER_UNIT,
    }
    lines = [BASH_HEADER, "LABSTACK_ROOT=${LABSTACK_ROOT:-}"]
    lines += [f"{key}=$LABSTACK_ROOT{value}" for key, value in paths.items()]
    lines += [f"{key}={value}" for key, value in names.items()]
    lines.append(f"COLORS=({' '.join(COLORS)})")
    lines.append("")
    for key, template in TEMPLATES.items():
        function = key.lower()
        body = template.replace("{app}", "$1").replace("{color}", "$2")
        if body.startswith("/"):
            body = "$LABSTACK_ROOT" + body
        usage = "APP COLOR" if "{color}" in template else "APP"
        lines.append(f"{function}() {{ printf '%s\\n' \"{body}\"; }}  # {function} {usage}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(bash_layout())
