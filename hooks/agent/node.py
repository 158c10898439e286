"""What every agent command needs: its one-line errors, UTC times, process identity, the container engine."""
from __future__ import annotations

import os
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


def docker(*args: str, timeout: float | None = None, capture: bool = True):
    """One engine command (a subprocess.CompletedProcess); its output captured, a failure returned (the callers
    decide what it means)."""
    import subprocess

    out = subprocess.PIPE if capture else subprocess.DEVNULL
    return subprocess.run(["docker", *args], stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=timeout,
                          text=True)


def docker_quiet(*args: str) -> bool:
    """An engine command whose output nobody reads (rm -f, kill): did it succeed?"""
    import subprocess

    return subprocess.run(["docker", *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def start(argv: list, fds: dict | None = None, cwd: str | None = None, env: dict | None = None,
          new_session: bool = False) -> int:
    """A process started by fork and exec, its pid: the paths a job's start waits for need no subprocess module
    (its import costs more than the rest of a submit). `fds`: target fd -> fd to put there."""
    pid = os.fork()
    if pid == 0:
        try:
            if new_session:
                os.setsid()
            for target, source in (fds or {}).items():
                os.dup2(source, target)
            if cwd:
                os.chdir(cwd)
            os.execvpe(argv[0], argv, os.environ if env is None else env)
        finally:
            os._exit(127)
    return pid


def wait(pid: int) -> int:
    """The exit code of a process `start` started; 128+N for a signal N, as a shell says it."""
    _, status = os.waitpid(pid, 0)
    return 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def daemonize(log_path: str) -> None:
    """This (forked) process in its own session, stdio off the SSH channel: stdin /dev/null, output to log_path. The
    SSH session can end at once and a killed connection does not reach it."""
    os.setsid()
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(null)
    os.close(out)


def spawn_detached(argv: list, log_path: str) -> int:
    """A process in its own session (no terminal, stdio off the SSH channel); its pid."""
    out = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        return start(argv, fds={0: null, 1: out, 2: out}, new_session=True)
    finally:
        os.close(out)
        os.close(null)


AGENT_FLAGS = ("-I", "-S", "-B")  # as hooks/lib.sh's run_agent


def agent_argv(*args: str) -> list:
    """This agent run again (the supervisor, the waiting container's starter), by the same python3."""
    folder = os.path.dirname(os.path.abspath(__file__))
    return [sys.executable, *AGENT_FLAGS, folder, *args]
