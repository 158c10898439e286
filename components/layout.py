"""Where labstack keeps things on a server: the Python side of the layout hooks/lib.sh uses (and the README shows)."""
from __future__ import annotations

from pathlib import Path

# The hooks as they are in this project; the deploy steps copy them to REMOTE_HOOKS on every server.
HOOKS_DIR = Path(__file__).resolve().parent.parent / "hooks"

REMOTE_HOOKS = "/opt/labstack/hooks"
APPS_ETC = "/etc/labstack/apps"  # per app: compose files, secrets.env, db.env, release records (root-only)
APPS_SRV = "/srv/labstack/apps"  # per app: data, postgres, redis


def hook(name: str, *args: str) -> str:
    """The command line that runs one hook on the server, as an operator would by hand."""
    return " ".join(["sudo", "-n", f"{REMOTE_HOOKS}/{name}", *args])
