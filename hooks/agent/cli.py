"""The agent's commands, each named as the hook that runs it (hooks/*.sh: `run_agent job-status "$@"`)."""
from __future__ import annotations

import importlib
import sys

# command -> (module, function); a module is imported only for its command (each start costs the job's latency).
COMMANDS = {
    "job-submit": ("run", "submit"), "job-supervise": ("run", "supervise"), "job-spare": ("run", "spare"),
    "job-have": ("store", "have"), "job-status": ("jobs", "status"), "job-logs": ("jobs", "logs"),
    "job-fetch": ("fetch", "fetch"), "job-cancel": ("jobs", "cancel"), "auto-stop": ("watcher", "main"),
}


def main(argv: list[str]) -> int:
    from .node import Fail

    if not argv or argv[0] not in COMMANDS:
        sys.stderr.write(f"labstack: error: usage: agent {{{'|'.join(COMMANDS)}}} ARGS...\n")
        return 2
    module, function = COMMANDS[argv[0]]
    command = getattr(importlib.import_module(f".{module}", __package__), function)
    try:
        return command(argv[1:])
    except Fail as failure:
        sys.stdout.flush()
        sys.stderr.write(f"labstack: error: {failure}\n")
        return failure.code
    except BrokenPipeError:
        return 141  # the reader went away (a killed ssh session)
