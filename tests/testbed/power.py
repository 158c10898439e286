#!/usr/bin/python3
"""The test bed's power switch: what a hypervisor does when a server's OS powers off.

Test bed hosts share the machine's kernel and PID namespace, so a power-off inside a host must never reach the
machine. Two layers make sure of it:

1. Every process of a host runs without CAP_SYS_BOOT in its capability bounding set (host.py starts sshd, dockerd
   and internal commands under `setpriv --bounding-set -sys_boot`; sudo and containers cannot regain it), so the
   reboot(2) system call fails with EPERM whatever calls it (`reboot -ff`, a raw syscall, kexec).
2. Inside each host this file is bound over /usr/bin/systemctl, the binary that shutdown, poweroff, halt, reboot
   and telinit link to. Called as a power command it records the request in the host's power log and powers the
   host off the way a stopped EC2 instance looks from outside: the engine stops its containers, then every process
   of the host is killed (sshd included: port 22 closes) and its disks (loop devices) are unmounted. Any other
   systemctl call goes to the real binary.

Run by root inside a host only; it reads which host it is from HOST_FILE (written by host.py). Standard library only:
it runs with the machine's /usr/bin/python3, not the project's venv.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HOST_FILE = Path("/run/.labstack-testbed-host.json")   # inside the host (its /run is private)
REAL_SYSTEMCTL = "/run/.labstack-testbed-systemctl"    # the machine's systemctl, bound here before the switch
POWER_LOG = "power.log"                                # in the host's data dir, one JSON object per line
ENGINE_STOP_SECONDS = 40

POWER_OFF_VERBS = {"poweroff": "poweroff", "halt": "poweroff", "kexec": "reboot", "reboot": "reboot"}


def requested_action(argv: list[str]) -> tuple[str, float] | None:
    """(\"poweroff\"|\"reboot\", delay seconds) for a power command line, None for anything else.
    argv[0] is the name it was called by (shutdown, poweroff, halt, reboot, telinit or systemctl)."""
    name = os.path.basename(argv[0])
    words = [a for a in argv[1:] if not a.startswith("-")]
    flags = [a for a in argv[1:] if a.startswith("-")]
    if name in ("poweroff", "halt"):
        return "poweroff", 0.0
    if name == "reboot":
        return "reboot", 0.0
    if name == "telinit":
        return {"0": ("poweroff", 0.0), "6": ("reboot", 0.0)}.get(words[0] if words else "")
    if name == "shutdown":
        if any(f in ("-c", "--cancel", "-k") for f in flags):
            return None
        action = "reboot" if any(f in ("-r", "--reboot") for f in flags) else "poweroff"
        when = words[0] if words else "+1"   # shutdown's own default is one minute
        return action, _delay_seconds(when)
    if name == "systemctl" and words and words[0] in POWER_OFF_VERBS:
        return POWER_OFF_VERBS[words[0]], 0.0
    return None


def _delay_seconds(when: str) -> float:
    if when == "now":
        return 0.0
    if when.startswith("+") and when[1:].isdigit():
        return int(when[1:]) * 60.0
    hours, _, minutes = when.partition(":")
    if hours.isdigit() and minutes.isdigit():
        now = datetime.datetime.now()
        at = now.replace(hour=int(hours), minute=int(minutes), second=0, microsecond=0)
        if at < now:
            at += datetime.timedelta(days=1)
        return (at - now).total_seconds()
    raise ValueError(f"shutdown: invalid time {when!r}")


def processes_in(netns_ino: int | None, mntns_ino: int | None, exclude: set[int] = frozenset()) -> list[int]:
    """PIDs whose network or mount namespace is the host's, plus all their descendants (container processes
    live in their own namespaces but descend from the host's containerd shims)."""
    parents: dict[int, int] = {}
    roots: set[int] = set()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        pid = int(d.name)
        if pid in exclude:
            continue
        try:
            parents[pid] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if (netns_ino and os.stat(d / "ns/net").st_ino == netns_ino) or \
               (mntns_ino and os.stat(d / "ns/mnt").st_ino == mntns_ino):
                roots.add(pid)
        except (OSError, ValueError, IndexError):
            continue
    found = set(roots)
    changed = True
    while changed:
        changed = False
        for pid, ppid in parents.items():
            if ppid in found and pid not in found:
                found.add(pid)
                changed = True
    return sorted(found)


def _record(host: dict, entry: dict) -> None:
    entry = {"time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), **entry}
    with open(Path(host["data_dir"]) / POWER_LOG, "a") as log:
        log.write(json.dumps(entry) + "\n")


def _pid_running(pid: int) -> bool:
    """True while pid exists and is not a zombie (dockerd's parent, a test process, may not reap it at once)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def power_off(host: dict, action: str, command: str) -> None:
    """Stop the engine gracefully (it stops its containers), then kill every process of the host but its
    namespace holder and this one. Runs detached from the caller, who is killed with everything else."""
    engine = Path("/run/docker.pid")
    with contextlib.suppress(OSError, ValueError):
        pid = int(engine.read_text().split()[0])
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + ENGINE_STOP_SECONDS
        while time.monotonic() < deadline and _pid_running(pid):
            time.sleep(0.2)
    spare = {os.getpid(), host["holder_pid"]}
    for _ in range(5):
        left = processes_in(host["netns_ino"], host["mntns_ino"], exclude=spare)
        if not left:
            break
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.3)
    _unmount_block_devices(host)
    _record(host, {"state": "off", "action": action, "command": command})


def _unmount_block_devices(host: dict) -> None:
    """What a shutdown does last: unmount the host's disks, so a stopped instance's EBS volume can be detached and
    attached elsewhere. The only block devices a test bed host has are the loop devices given to it
    (TestbedHost.give_block_device); only its own mount namespace is touched (checked, never the machine's)."""
    if os.stat("/proc/self/ns/mnt").st_ino != host["mntns_ino"]:
        return
    mounted = [line.split(" - ", 1) for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    targets = [left.split()[4] for left, right in mounted if right.split()[1].startswith("/dev/loop")]
    for target in reversed(targets):   # the deepest first
        subprocess.run(["umount", target], check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main(argv: list[str]) -> int:
    try:
        wanted = requested_action(argv)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 1
    if wanted is None:
        os.execv(REAL_SYSTEMCTL, argv)
    if os.geteuid() != 0:
        print("Failed to power off: Access denied (the test bed's power switch needs root, like systemd)",
              file=sys.stderr)
        return 1
    host = json.loads(HOST_FILE.read_text())
    action, delay = wanted
    command = " ".join([os.path.basename(argv[0])] + argv[1:])
    _record(host, {"state": "requested", "action": action, "command": command, "delaySeconds": delay})
    if os.fork():   # like systemd, return to the caller at once; the power-off happens behind its back
        return 0
    os.setsid()
    if os.fork():
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    time.sleep(delay)
    power_off(host, action, command)
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
