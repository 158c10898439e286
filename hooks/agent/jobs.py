"""Reading and stopping jobs: status (settling jobs whose supervisor is gone), logs, cancel."""
from __future__ import annotations

import os
import signal
import sys
import time

from . import contract, records
from .node import Fail, docker_quiet, log, now_utc, process_alive, read_identity

SUPERVISOR_GRACE = 60  # seconds a just-submitted job's supervisor may take to record its pid
CANCEL_WAIT = 30  # seconds cancel waits for the supervisor to record the end


def supervisor_alive(job_id: str) -> bool:
    """Is the job's supervisor still the process submit started (pid and start time)?"""
    identity = read_identity(records.meta_path(job_id, "supervisor"))
    return identity is not None and process_alive(*identity)


def stop_job_process(job_id: str, job: dict[str, str]) -> None:
    """Kill what runs the script: the container, or the script's process group on the host."""
    if job["mode"] == "container":
        docker_quiet("kill", records.container_of(job_id))
        return
    child = records.optional_int(_read(records.meta_path(job_id, "child")))
    if child:
        try:
            os.killpg(child, signal.SIGTERM)
        except OSError:
            pass


def _read(path: str):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return None


def is_orphan(job_id: str, job: dict[str, str], now: float) -> bool:
    """An active job whose supervisor is gone (engine restart, reboot, kill). A just-submitted job's supervisor may
    not have written its pid yet."""
    if job["state"] not in contract.ACTIVE or supervisor_alive(job_id):
        return False
    if os.path.exists(records.meta_path(job_id, "supervisor")):
        return True
    return now - os.stat(records.meta_path(job_id, "state")).st_mtime > SUPERVISOR_GRACE


def reconcile(job_id: str) -> None:
    """An orphaned job ends as interrupted (its container or processes stopped first)."""
    with records.locked(job_id):
        job = records.load(job_id)
        if is_orphan(job_id, job, time.time()):
            stop_job_process(job_id, job)
            if job["mode"] == "container":
                docker_quiet("rm", "-f", records.container_of(job_id))
            records.set_state(job_id, state=contract.INTERRUPTED, endedAt=now_utc())


def all_statuses() -> list[dict]:
    import json

    result = []
    for job_id in records.job_ids():
        reconcile(job_id)
        result.append(json.loads(records.read_status(job_id)))
    return result


def status(args: list[str]) -> int:
    """[ID...]: the status records of the jobs named, in that order (every one checked before any is printed), or
    of every job, oldest first (one JSON line each); orphans settled."""
    ids = [records.need_job(job_id) for job_id in args] if args else records.job_ids()
    for job_id in ids:
        reconcile(job_id)
        sys.stdout.write(records.read_status(job_id))
    return 0


def logs(args: list[str]) -> int:
    """ID [--follow]: the job's log; --follow keeps printing until the supervisor (the job) ends."""
    if not args or len(args) > 2 or args[1:] not in ([], ["--follow"]):
        raise Fail("usage: job-logs.sh ID [--follow]")
    job_id = records.need_job(args[0])
    log_file = os.path.join(records.job_dir(job_id), contract.LOG_FILE)
    open(log_file, "a").close()
    identity = read_identity(records.meta_path(job_id, "supervisor"))
    if args[1:] == ["--follow"] and identity is not None and process_alive(*identity):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.execvp("tail", ["tail", "-n", "+1", "-F", f"--pid={identity[0]}", log_file])
    with open(log_file, "rb") as handle:
        while chunk := handle.read(1 << 16):
            sys.stdout.buffer.write(chunk)
    return 0


def cancel(args: list[str]) -> int:
    """ID: stop the job and wait until it is recorded as cancelled; a job that has ended is left as it is."""
    if len(args) != 1:
        raise Fail("usage: job-cancel.sh ID")
    job_id = records.need_job(args[0])
    reconcile(job_id)
    with records.locked(job_id):
        job = records.load(job_id)
        if job["state"] not in contract.ACTIVE:
            log(f"job {job_id} has ended already ({job['state']})")
            sys.stdout.write(records.read_status(job_id))
            return 0
        open(records.meta_path(job_id, "cancel"), "a").close()
        stop_job_process(job_id, job)
    deadline = time.monotonic() + CANCEL_WAIT
    while records.load(job_id)["state"] in contract.ACTIVE and time.monotonic() < deadline:
        time.sleep(0.5)
    reconcile(job_id)
    sys.stdout.write(records.read_status(job_id))
    return 0
