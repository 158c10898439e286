"""What every agent command needs: its one-line errors, UTC times, process identity, the container engine."""
from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
import sys
import time


class Fail(Exception):
    """One clear line for the operator (`labstack: error: ...`) and the command's exit code."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def log(message: str) -> None:
    sys.stderr.write(f"labstack: {message}\n")


def now_utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def process_start(pid: int) -> str | None:
    """The start time (clock ticks after boot, field 22 of /proc/<pid>/stat) of a live, non-zombie process: with the
    pid, it names one process, whatever reuses the pid later. A killed process not yet reaped is a zombie: gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else fields[19]


def process_alive(pid: int, start: str) -> bool:
    return process_start(pid) == start


def read_identity(path: str) -> tuple | None:
    """A "PID START" record (the job's supervisor): (pid, start), or None when there is none."""
    try:
        with open(path) as handle:
            pid, start = handle.read().split()[:2]
        return int(pid), start
    except (OSError, ValueError):
        return None


def docker(*args: str, timeout: float | None = None, capture: bool = True) -> subprocess.CompletedProcess:
    """One engine command; its output captured, a failure returned (the callers decide what it means)."""
    out = subprocess.PIPE if capture else subprocess.DEVNULL
    return subprocess.run(["docker", *args], stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=timeout,
                          text=True)


def docker_quiet(*args: str) -> bool:
    """An engine command whose output nobody reads (rm -f, kill): did it succeed?"""
    return subprocess.run(["docker", *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def spawn_detached(argv: Sequence[str], log_path: str) -> subprocess.Popen:
    """A process in its own session (no terminal, stdio off the SSH channel): the SSH session can end at once and a
    killed connection does not reach it."""
    with open(log_path, "ab") as out:
        return subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
                                close_fds=True)


AGENT_FLAGS = ("-I", "-S", "-B")  # as hooks/lib.sh's run_agent


def agent_argv(*args: str) -> list:
    """This agent run again (the supervisor, the waiting container's starter), by the same python3."""
    folder = os.path.dirname(os.path.abspath(__file__))
    return [sys.executable, *AGENT_FLAGS, folder, *args]
