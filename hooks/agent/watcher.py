"""The auto-stop watcher (labstack:autoStop, labstack:budget.total): one check, run every minute by
labstack-auto-stop.timer (or by hand: `sudo REMOTE_HOOKS/auto-stop.sh`).

The server powers itself off (shutdown behaviour `stop`: disks, address and data volume stay) when for IDLE_SECONDS
(0: never) there was no SSH connection, no running job, no Ray task, no HTTP request to an app, no app saying it is
busy and CPU stayed under CPU_PERCENT; MAX_SECONDS after this boot's first check in any case; and when the spend
since launch reaches BUDGET_TOTAL. It fails safe: a signal it cannot read counts as activity.
Settings: WATCHER_ETC/watcher.env. Records: WATCHER_STATE (watcher.log: events; stops.log: one JSON line per stop;
status: the last check; last-active, run-seconds, budget-warned-*), WATCHER_RUN (this boot: started, cpu,
last-check, lifetime-warned). Prints the check's outcome on one line.
"""
from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional

from . import contract, layout
from .node import Fail, docker, now_utc

LIFETIME_WARNING = 3600  # seconds before the lifetime cap (half the cap when that is 2 hours or less)
MAX_BILLED_STEP = 300  # a suspended or late timer never bills more than it saw


@dataclass
class Settings:
    idle_seconds: int
    max_seconds: Optional[int]
    cpu_percent: int
    busy_apps: List[str]
    hourly_price: str
    budget_total: str


@dataclass
class Check:
    """One check's view: when, the activity found (`busy`: reasons), when the server was last active."""
    now: int
    started: int
    last_active: int
    busy: List[str] = field(default_factory=list)


def read_settings(path: str) -> Optional[Settings]:
    """watcher.env's KEY='value' lines (components/remote/watcher.py writes them); None: no file, the watcher is off."""
    try:
        with open(path) as handle:
            text = handle.read()
    except FileNotFoundError:
        return None
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key in contract.WATCHER_SETTINGS:
            values[key] = value[1:-1] if len(value) >= 2 and value[0] == value[-1] == "'" else value
    idle = values.get("IDLE_SECONDS", "")
    if not idle.isdigit():
        raise Fail(f"IDLE_SECONDS='{idle}' in {path}: expected whole seconds")
    cpu = values.get("CPU_PERCENT") or str(contract.DEFAULT_CPU_PERCENT)
    if not cpu.isdigit():
        raise Fail(f"CPU_PERCENT='{cpu}' in {path}: expected 1-100")
    max_seconds = values.get("MAX_SECONDS", "")
    return Settings(idle_seconds=int(idle), max_seconds=int(max_seconds) if max_seconds.isdigit() else None,
                    cpu_percent=int(cpu), busy_apps=values.get("BUSY_COMMANDS", "").split(),
                    hourly_price=values.get("HOURLY_PRICE", ""), budget_total=values.get("BUDGET_TOTAL", ""))


# --- small record files -----------------------------------------------------------------------------------------------

def _state(name: str) -> str:
    return os.path.join(layout.WATCHER_STATE, name)


def _run(name: str) -> str:
    return os.path.join(layout.WATCHER_RUN, name)


def read_text(path: str) -> Optional[str]:
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return None


def read_int(path: str, default: int) -> int:
    text = read_text(path)
    return int(text) if text and re.fullmatch(r"-?\d+", text) else default


def write_text(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(f"{text}\n")


def event(message: str) -> None:
    """The watcher's log (and the system's, where there is one)."""
    with open(_state("watcher.log"), "a") as handle:
        handle.write(f"{now_utc()} {message}\n")
    if shutil.which("logger"):
        subprocess.run(["logger", "-t", layout.WATCHER_UNIT, "--", message], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)


# --- signals: each adds a reason to check.busy, or moves check.last_active to when it last saw activity ------------

def ssh_connections(check: Check, settings: Settings) -> None:
    try:
        result = subprocess.run(["ss", "-Htn", "state", "established", "( sport = :22 )"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    except OSError:
        result = None
    if result is None or result.returncode != 0:
        check.busy.append("ssh: cannot list connections")
        return
    count = len(result.stdout.splitlines())
    if count:
        check.busy.append(f"ssh: {count} connection(s)")


def running_jobs(check: Check, settings: Settings) -> None:
    if not os.path.isdir(layout.JOBS_SRV):
        return
    from . import jobs  # the status read settles jobs whose supervisor is gone: a dead job never keeps it up
    try:
        count = sum(1 for record in jobs.all_statuses() if record.get("state") in contract.ACTIVE)
    except (OSError, ValueError, Fail):
        check.busy.append("jobs: cannot read their status")
        return
    if count:
        check.busy.append(f"jobs: {count} running")


def ray_tasks(check: Check, settings: Settings) -> None:
    """Ray names a worker process after what it runs (ray::<task or actor>), ray::IDLE... while it waits; a job's
    supervisor is an actor. Only processes in this server's network namespace count (Ray runs with host networking)."""
    mine = os.readlink("/proc/self/ns/net")
    count = 0
    for proc in glob.glob("/proc/[0-9]*"):
        try:
            with open(f"{proc}/cmdline", "rb") as handle:
                title = handle.read().replace(b"\0", b" ").decode(errors="replace")
            if title.startswith("ray::") and not title.startswith("ray::IDLE") \
                    and os.readlink(f"{proc}/ns/net") == mine:
                count += 1
        except OSError:
            continue
    if count:
        check.busy.append(f"ray: {count} task/actor process(es)")


def http_requests(check: Check, settings: Settings) -> None:
    """Caddy's access log (and its rotated files): the last request is when the newest one was written."""
    base = layout.PROXY_ACCESS_LOG
    newest = 0
    for log_file in [base, *sorted(glob.glob(base[:-len(".log")] + "-*.log"))]:
        try:
            newest = max(newest, int(os.stat(log_file).st_mtime))
        except FileNotFoundError:
            continue
        except OSError:
            check.busy.append(f"http: cannot read {log_file}")
            return
    check.last_active = max(check.last_active, newest)


def app_busy_signals(check: Check, settings: Settings) -> None:
    """Each app's busy command, in its running web container: exit 1 means not busy; anything else is busy."""
    for app in settings.busy_apps:
        command = read_text(os.path.join(layout.WATCHER_ETC, contract.busy_command_file(app)))
        if command is None:
            check.busy.append(f"{app}: busy command unreadable")
            continue
        listed = docker("ps", "-q", "--filter", f"label={layout.LABEL_APP}={app}", "--filter",
                        f"label={layout.LABEL_ROLE}=web")
        container = (listed.stdout or "").split("\n")[0].strip()
        if not container:
            continue  # no web container runs: the app serves nobody
        try:
            status = subprocess.run(["docker", "exec", container, "sh", "-c", command], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30).returncode
        except subprocess.TimeoutExpired:
            status = 124
        if status != contract.BUSY_EXIT_IDLE:
            check.busy.append(f"{app}: busy (exit {status})")


def cpu_use(check: Check, settings: Settings) -> None:
    """CPU use since the last check, from /proc/stat's first line; the first sample of a boot counts as busy."""
    try:
        with open(layout.PROC_STAT) as handle:
            values = [int(v) for v in handle.readline().split()[1:9]]
    except (OSError, ValueError):
        check.busy.append("cpu: cannot read /proc/stat")
        return
    total, idle = sum(values), values[3]
    previous = read_text(_run("cpu"))
    write_text(_run("cpu"), f"{total} {idle}")
    if not previous:
        check.busy.append("cpu: first sample")
        return
    previous_total, previous_idle = (int(v) for v in previous.split())
    used, idled = total - previous_total, idle - previous_idle
    if used <= 0:
        return
    percent = (used - idled) * 100 // used
    if percent >= settings.cpu_percent:
        check.busy.append(f"cpu: {percent}%")


SIGNALS: List[Callable[[Check, Settings], None]] = [ssh_connections, running_jobs, ray_tasks, http_requests,
                                                    app_busy_signals, cpu_use]


# --- decisions --------------------------------------------------------------------------------------------------------

class Stop(Exception):
    """The server stops now, for this reason."""


def begin(settings: Settings, now: int) -> Check:
    """This boot's first check marks the boot as activity, and the lifetime cap counts from it."""
    for folder in (layout.WATCHER_STATE, layout.WATCHER_RUN):
        os.makedirs(folder, mode=0o700, exist_ok=True)
        os.chmod(folder, 0o700)
    if not os.path.exists(_run("started")):
        write_text(_run("started"), str(now))
        write_text(_state("last-active"), str(now))
        limit = f", at most {settings.max_seconds}s per start" if settings.max_seconds is not None else ""
        event(f"watching: idle after {settings.idle_seconds}s{limit}")
    return Check(now=now, started=read_int(_run("started"), now), last_active=read_int(_state("last-active"), now))


def record(check: Check) -> int:
    """Activity now moves the last active time to now; the idle time is recorded with the reasons (status)."""
    if check.busy:
        check.last_active = check.now
    write_text(_state("last-active"), str(check.last_active))
    idle = check.now - check.last_active
    with open(_state("status"), "w") as handle:
        handle.write(f"CHECKED={check.now}\nIDLE_SECONDS={idle}\nBUSY='{' '.join(check.busy)}'\n")
    return idle


def budget(check: Check, settings: Settings) -> None:
    """The spend since launch at the stack's hourly price, over the running time the watcher counted: warnings at
    50% and 80%, a stop at 100%."""
    if settings.hourly_price and settings.budget_total:
        ran = read_int(_state("run-seconds"), 0)
        step = min(check.now - read_int(_run("last-check"), check.now), MAX_BILLED_STEP)
        ran += step
        write_text(_state("run-seconds"), str(ran))
        spent = f"{ran / 3600 * float(settings.hourly_price):.2f}"
        total = float(settings.budget_total)
        for mark in contract.BUDGET_WARNINGS:
            warned = _state(f"budget-warned-{mark}")
            if not os.path.exists(warned) and float(spent) >= total * mark / 100:
                open(warned, "a").close()
                event(f"warning: ${spent} spent of the ${settings.budget_total} budget ({mark}%); at 100% this "
                      "server stops")
        if float(spent) >= total:
            raise Stop(f"budget: ${spent} spent, labstack:budget.total is ${settings.budget_total}")
    write_text(_run("last-check"), str(check.now))


def lifetime(check: Check, settings: Settings) -> None:
    """The lifetime cap, busy or not, with a warning an hour before (half-way for caps of 2 hours or less)."""
    if settings.max_seconds is None:
        return
    cap = settings.max_seconds
    running = check.now - check.started
    warn_at = cap - LIFETIME_WARNING if cap > 2 * LIFETIME_WARNING else cap // 2
    if running >= cap:
        raise Stop(f"running for {running}s, labstack:autoStop.maxHours allows {cap}s per start")
    if running >= warn_at and not os.path.exists(_run("lifetime-warned")):
        open(_run("lifetime-warned"), "a").close()
        left = (cap - running) // 60
        event(f"warning: this server stops in {left} minute(s) (labstack:autoStop.maxHours), busy or not")
        if shutil.which("wall"):
            subprocess.run(["wall", f"labstack: this server stops in {left} minute(s) (autoStop.maxHours)"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def idle_stop(idle: int, settings: Settings) -> None:
    if settings.idle_seconds > 0 and idle >= settings.idle_seconds:
        raise Stop(f"idle for {idle}s (no SSH, job, Ray task, HTTP request, busy app or CPU above "
                   f"{settings.cpu_percent}%)")


def stop_server(reason: str, say: Callable[[str], None]) -> str:
    """Recorded and said before the power-off, which may end this process."""
    event(f"stopping: {reason}")
    with open(_state("stops.log"), "a") as handle:
        handle.write(json.dumps({"time": now_utc(), "reason": reason}) + "\n")
    line = f"auto-stop: stopping: {reason}"
    say(line)
    subprocess.run(["shutdown", "-h", "now", f"labstack auto-stop: {reason}"], stdin=subprocess.DEVNULL)
    return line


def _print(line: str) -> None:
    print(line, flush=True)


def check_once(now: Optional[int] = None, say: Callable[[str], None] = _print) -> str:
    """One check: its outcome, said in one line (and returned)."""
    path = os.path.join(layout.WATCHER_ETC, contract.WATCHER_ENV)
    settings = read_settings(path)
    if settings is None:
        say(f"auto-stop: off (no {path})")
        return f"auto-stop: off (no {path})"
    check = begin(settings, int(time.time()) if now is None else now)
    for signal in SIGNALS:
        signal(check, settings)
    idle = record(check)
    try:
        budget(check, settings)
        lifetime(check, settings)
        idle_stop(idle, settings)
    except Stop as stop:
        return stop_server(str(stop), say)
    line = (f"auto-stop: busy: {' '.join(check.busy)}" if check.busy
            else f"auto-stop: idle for {idle}s of {settings.idle_seconds}s")
    say(line)
    return line


def main(args: List[str]) -> int:
    if args:
        raise Fail("usage: auto-stop.sh")
    os.environ["PATH"] = os.environ.get("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin"
    check_once()
    return 0
