"""Server names from hooks/layout.sh (generated from components/layout.py): the same file the bash hooks source.

Its lines are `NAME=value` and `NAME=$LABSTACK_ROOT/path`; LABSTACK_ROOT (empty on servers; a temporary folder in
tests, which then need no root) prefixes every path, as in bash.
"""
from __future__ import annotations

import os

LAYOUT_SH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "layout.sh")
_KEY = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def read_layout(path: str = LAYOUT_SH, root: str = "") -> dict:
    """NAME=value lines (not the functions, arrays or the LABSTACK_ROOT default line)."""
    names = {}
    with open(path) as handle:
        for line in handle:
            key, sep, value = line.rstrip("\n").partition("=")
            if sep and key[:1].isupper() and set(key) <= _KEY and value and not value.startswith(("${", "(")) \
                    and not any(char.isspace() for char in value):
                names[key] = value.replace("$LABSTACK_ROOT", root)
    return names


ROOT = os.environ.get("LABSTACK_ROOT", "")
NAMES = read_layout(root=ROOT)
JOBS_SRV = NAMES["JOBS_SRV"]
JOBS_STORE = NAMES["JOBS_STORE"]
WATCHER_ETC = NAMES["WATCHER_ETC"]
WATCHER_STATE = NAMES["WATCHER_STATE"]
WATCHER_RUN = NAMES["WATCHER_RUN"]
WATCHER_UNIT = NAMES["WATCHER_UNIT"]
PROXY_ACCESS_LOG = NAMES["PROXY_ACCESS_LOG"]
LABEL_APP = NAMES["LABEL_APP"]
LABEL_ROLE = NAMES["LABEL_ROLE"]
SERVER_APP = NAMES["SERVER_APP"]
# dockerd's pid file (the packaged service's default): which engine runs a job's container.
DOCKER_PID = ROOT + "/run/docker.pid"
PROC_STAT = ROOT + "/proc/stat"
