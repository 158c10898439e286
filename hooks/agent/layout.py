"""Server names from hooks/layout.sh (generated from components/layout.py): the same file the bash hooks source.

Its lines are `NAME=value` and `NAME=$LABSTACK_ROOT/path`; LABSTACK_ROOT (empty on servers; a temporary folder in
tests, which then need no root) prefixes every path, as in bash.
"""
from __future__ import annotations

import os
import re

LAYOUT_SH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "layout.sh")
_LINE = re.compile(r"^([A-Z][A-Z0-9_]*)=(\S*)$")


def read_layout(path: str = LAYOUT_SH, root: str = "") -> dict:
    names = {}
    with open(path) as handle:
        for line in handle:
            found = _LINE.match(line.rstrip("\n"))
            if found and not found.group(2).startswith("${"):
                names[found.group(1)] = found.group(2).replace("$LABSTACK_ROOT", root)
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
