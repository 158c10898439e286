"""Starting and supervising jobs: submit (unpack, records, hand-over), supervise (run to the end, record it), and
the waiting container (spare) that the next job of the same image takes, so it starts without the engine's
container start (~0.15-0.35 s, more than an ssh round trip)."""
from __future__ import annotations

import errno
import fcntl
import os
import sys
import time

from . import contract, layout, records, store
from .node import (Fail, agent_argv, daemonize, docker, docker_quiet, log, now_utc, process_alive, process_start,
                   spawn_detached, start, wait)

# Runs the job's script in its folder (the container's /job, or the folder itself on the host), output to job.log:
# a script with a #! line runs with its own interpreter, others with bash (sh where the image has no bash).
JOB_RUNNER = ('exec >>job.log 2>&1; s=$1; first=; IFS= read -r first < "$s" || true; case $first in "#!"*) '
              'exec "./$s";; esac; if command -v bash >/dev/null 2>&1; then exec bash "$s"; fi; exec sh "$s"')
# A waiting container blocks on its folder's fifo until a job is put in that folder: the fifo gives the script's
# name, .labstack/env the job's variables (KEY=VALUE lines, as docker's --env-file), then JOB_RUNNER.
SPARE_WAITER = ('IFS= read -r s < .labstack/go || exit 125; while IFS= read -r kv; do [ -z "$kv" ] || export "$kv"; '
                'done < .labstack/env; set -- "$s"; ' + JOB_RUNNER)
HANDOVER_SECONDS = 5  # a waiting container that does not read its fifo by then is given up
ENGINE_GRACE = 10  # seconds after a signal exit in which an engine that went away makes the job interrupted


def labels() -> list[str]:
    return ["--label", f"{layout.LABEL_APP}={layout.SERVER_APP}", "--label", f"{layout.LABEL_ROLE}={contract.JOB_ROLE}"]


# --- waiting containers ---------------------------------------------------------------------------------------------

def spare_record(folder: str) -> tuple[dict[str, str], bool]:
    """A waiting folder's record (image, container, pid, start) and whether its container's process is still the one
    recorded; ({}, False) when there is none."""
    try:
        spare = records.read_fields(os.path.join(folder, contract.META_DIR, "spare"))
    except OSError:
        return {}, False
    pid = records.optional_int(spare.get("pid"))
    return spare, bool(pid) and process_alive(pid, spare.get("start", ""))


def spare_folders() -> list[str]:
    return [os.path.join(layout.JOBS_SRV, name) for name in sorted(os.listdir(layout.JOBS_SRV))
            if name.startswith(".spare-")]


def new_folder(prefix: str) -> str:
    """A new private folder JOBS_SRV/<prefix><random> (as mktemp -d, without the tempfile module's imports)."""
    while True:
        path = os.path.join(layout.JOBS_SRV, prefix + os.urandom(4).hex())
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            continue


def claim_spare(image: str, job_id: str) -> tuple[str | None, str]:
    """A live waiting folder of `image`, moved to .incoming-<id>.spare: (its new path, its container), or (None, '').
    A rename is atomic: of two submits racing for one folder (or spare discarding it), one gets it."""
    for folder in spare_folders():
        spare, alive = spare_record(folder)
        if not alive or spare.get("image") != image:
            continue
        claimed = os.path.join(layout.JOBS_SRV, f".incoming-{job_id}.spare")
        try:
            os.rename(folder, claimed)
        except OSError:
            continue
        return claimed, spare.get("container", "")
    return None, ""


def remove_spare(folder: str, container: str) -> None:
    """A waiting container (none: '') and its folder, gone."""
    import shutil

    if container:
        docker_quiet("rm", "-f", container)
    shutil.rmtree(folder, ignore_errors=True)


def hand_over(fifo: str, script: str, seconds: float = HANDOVER_SECONDS) -> bool:
    """Write the script's name into a waiting container's fifo, once its shell has it open for reading."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as error:
            if error.errno != errno.ENXIO or time.monotonic() > deadline:
                return False
            time.sleep(0.01)
    try:
        os.write(fd, f"{script}\n".encode())
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def spare(args: list[str]) -> int:
    """IMAGE: a waiting container of IMAGE for the next job of that image. One per server: a live one of IMAGE is
    kept, any other (another image, or one an engine restart or reboot ended) is removed."""
    if len(args) != 1:
        raise Fail("usage: job-spare IMAGE")
    image = args[0]
    if not contract.IMAGE_RE.match(image):
        raise Fail(f"bad image '{image}'")
    os.makedirs(layout.JOBS_SRV, exist_ok=True)
    os.chmod(layout.JOBS_SRV, 0o700)
    with open(os.path.join(layout.JOBS_SRV, ".spare.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two jobs starting at once make one waiting container, not two
        for folder in spare_folders():
            if not os.path.isdir(folder):
                continue
            record, alive = spare_record(folder)
            if alive and record.get("image") == image:
                log(f"a container of {image} is waiting already ({folder})")
                return 0
            # Renamed first: a submit that claimed this folder meanwhile keeps it (the rename then fails here).
            discarded = os.path.join(layout.JOBS_SRV, ".discard-" + folder.rsplit(".spare-", 1)[1])
            try:
                os.rename(folder, discarded)
            except OSError:
                continue
            remove_spare(discarded, record.get("container", ""))
        start_spare(image)
    return 0


def start_spare(image: str) -> None:
    folder = new_folder(".spare-")
    container = contract.SPARE_PREFIX + folder.rsplit(".spare-", 1)[1]
    try:
        meta = os.path.join(folder, contract.META_DIR)
        os.mkdir(meta)
        os.chmod(meta, 0o755)
        os.chmod(folder, 0o777)  # as submit: the image's user, root or not, works in it
        os.mkfifo(os.path.join(meta, "go"))
        os.chmod(os.path.join(meta, "go"), 0o644)
        started = docker("run", "-d", "--name", container, *labels(), "-v", f"{folder}:/job", "-w", "/job",
                         "--entrypoint", "/bin/sh", image, "-c", SPARE_WAITER)
        if started.returncode != 0:
            raise Fail(f"the waiting container {container} did not start: {started.stderr.strip()[-300:]}")
        pid = records.optional_int(docker("inspect", "-f", "{{.State.Pid}}", container).stdout)
        start = process_start(pid) if pid else None
        if not start:
            raise Fail(f"the waiting container {container} is not running")
        # The record comes last: a folder without it is never handed a job.
        with open(os.path.join(meta, "spare.tmp"), "w") as handle:
            handle.write(records.field_lines({"image": image, "container": container, "pid": str(pid),
                                              "start": start}))
        os.replace(os.path.join(meta, "spare.tmp"), os.path.join(meta, "spare"))
    except BaseException:
        remove_spare(folder, container)
        raise
    log(f"a container of {image} waits for the next job ({container})")


# --- submit -----------------------------------------------------------------------------------------------------------

def check_submit(args: list[str]) -> tuple[str, int, str, str, str, str]:
    if len(args) != 6:
        raise Fail("usage: job-submit.sh ID BYTES IMAGE|--on-host SCRIPT NAME SUBMITTER <files.tar")
    job_id, size, image, script, name, by = args
    records.check_id(job_id)
    if not size.isdigit():
        raise Fail(f"bad size '{size}'")
    if not contract.SCRIPT_RE.match(script) or script.startswith("."):
        raise Fail(f"bad script name '{script}'")
    if not contract.NAME_RE.match(name):
        raise Fail(f"bad job name '{name}'")
    if not contract.SUBMITTER_RE.match(by):
        raise Fail(f"bad submitter '{by}'")
    if image != contract.ON_HOST and not contract.IMAGE_RE.match(image):
        raise Fail(f"bad image '{image}'")
    return job_id, int(size), image, script, name, by


def unpack(folder: str, script: str) -> None:
    """The tar stream on stdin into `folder`, the files it left out copied from the store, the records' files made
    (the job may run as the image's own user, not root: it reads its files and env and writes its outputs and
    job.log there; JOBS_SRV, 0700 root, keeps everyone on the host but root out)."""
    untar = wait(start(["tar", "-x", "--no-same-owner", "-C", folder, "-f", "-"]))
    if untar != 0:
        raise Fail("the upload (a tar stream on stdin) could not be unpacked", untar)
    if not store.reuse_files(folder):
        raise Fail("a file this upload left out is no longer on the server; send it whole", contract.REUSE_MISS_EXIT)
    store.store_files(folder)
    script_path = os.path.join(folder, script)
    if not os.path.isfile(script_path):
        raise Fail(f"the upload holds no script {script}")
    os.chmod(script_path, os.stat(script_path).st_mode | 0o555)  # a #! script runs itself, whoever the user is
    meta = os.path.join(folder, contract.META_DIR)
    os.makedirs(meta, exist_ok=True)
    for path, mode in ((os.path.join(folder, contract.ENV_FILE), 0o644),
                       (os.path.join(folder, contract.LOG_FILE), 0o666)):
        open(path, "a").close()
        os.chmod(path, mode)
    os.chmod(folder, 0o777)
    os.chmod(meta, 0o755)


def submit(args: list[str]) -> int:
    """ID BYTES IMAGE|--on-host SCRIPT NAME SUBMITTER < files.tar: the files into JOBS_SRV/<id>/ and the supervisor
    started detached, so the job survives the SSH session that submitted it. The job's id on stdout."""
    job_id, size, image, script, name, by = check_submit(args)
    mode = "host" if image == contract.ON_HOST else "container"
    image = "" if mode == "host" else image
    folder = records.job_dir(job_id)
    if os.path.lexists(folder):
        raise Fail(f"job {job_id} exists already")
    store.check_room(size)
    incoming, waiting = claim_spare(image, job_id) if mode == "container" else (None, "")
    incoming = incoming or new_folder(f".incoming-{job_id}.")
    try:
        unpack(incoming, script)
        with open(os.path.join(incoming, contract.META_DIR, "meta"), "w") as handle:
            handle.write(records.field_lines({"name": name, "image": image, "submittedBy": by,
                                              "submittedAt": now_utc(), "mode": mode, "script": script}))
        with open(os.path.join(incoming, contract.META_DIR, "state"), "w") as handle:
            handle.write(f"state={contract.SUBMITTED}\n")
        os.rename(incoming, folder)  # the job exists whole or not at all
    except BaseException:
        remove_spare(incoming, waiting)
        raise
    if waiting:
        start_in_waiting_container(job_id, waiting, script)
    records.write_status(job_id)
    supervisor = fork_supervisor(job_id)
    with open(records.meta_path(job_id, "supervisor"), "w") as handle:
        handle.write(f"{supervisor} {process_start(supervisor)}\n")
    sys.stdout.write(job_id + "\n")
    return 0


def fork_supervisor(job_id: str) -> int:
    """The job's supervisor: this process forked (no second interpreter start before the job runs), detached."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        daemonize(records.meta_path(job_id, "supervisor.log"))
        code = supervise([job_id])
    except Fail as failure:
        sys.stderr.write(f"labstack: error: {failure}\n")
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)


def start_in_waiting_container(job_id: str, container: str, script: str) -> None:
    """Hand the job to the waiting container now (it reads the script's name from the fifo and runs it); the
    supervisor, started next, records it as running. Recorded first, so a cancel finds it; one that died or stopped
    reading meanwhile is given up: the supervisor starts a container of the job's own."""
    with open(records.meta_path(job_id, "container"), "w") as handle:
        handle.write(container + "\n")
    if not hand_over(records.meta_path(job_id, "go"), script):
        os.unlink(records.meta_path(job_id, "container"))
        spawn_detached(["docker", "rm", "-f", container], os.devnull)  # not waited for: the job goes on
    os.unlink(records.meta_path(job_id, "spare"))


# --- supervise --------------------------------------------------------------------------------------------------------

def engine_identity() -> str:
    """Which engine runs the containers: dockerd's pid and start time, '' when its pid file is not there."""
    try:
        with open(layout.DOCKER_PID) as handle:
            pid = int(handle.read().strip())
    except (OSError, ValueError):
        return ""
    return f"{pid} {process_start(pid) or ''}"


def engine_went_away(identity: str, seconds: float = ENGINE_GRACE) -> bool:
    """A stopping engine stops its containers first (SIGTERM, then SIGKILL: exit 143 or 137) and exits moments later,
    while `docker wait` may still report that exit: a signal exit is the script's own only if the engine stays."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if engine_identity() != identity:
            return True
        time.sleep(0.5)
    return False


def end_state(job_id: str, code: int) -> dict[str, object]:
    """The script's end: cancelled when the operator asked, else complete (exit 0) or failed."""
    if records.flag(job_id, "cancel"):
        return {"state": contract.CANCELLED, "exitCode": code}
    return {"state": contract.COMPLETE if code == 0 else contract.FAILED, "exitCode": code}


def finish(job_id: str, code: int) -> None:
    with records.locked(job_id):
        records.set_state(job_id, **end_state(job_id, code), endedAt=now_utc())


def interrupted(job_id: str, container: str) -> None:
    with records.locked(job_id):
        docker_quiet("rm", "-f", container)
        records.set_state(job_id, state=contract.INTERRUPTED, endedAt=now_utc())


def supervise(args: list[str]) -> int:
    """ID: run one job to its end and record it: submitted -> running -> complete | failed | cancelled | interrupted.
    Submit starts it detached; run by hand only to re-run a job that never started."""
    if len(args) != 1:
        raise Fail("usage: job-supervise ID")
    job_id = records.need_job(args[0])
    job = records.load(job_id)
    if job["state"] != contract.SUBMITTED:
        raise Fail(f"job {job_id} is {job['state']}, not submitted")
    with records.locked(job_id):
        if records.flag(job_id, "cancel"):
            # A job handed to a waiting container may have started before the cancel.
            if records.flag(job_id, "container"):
                docker_quiet("rm", "-f", records.container_of(job_id))
            records.set_state(job_id, state=contract.CANCELLED, endedAt=now_utc())
            return 0
        if job["mode"] == "container":
            container = start_container(job_id, job)
            if container is None:
                return 0
            engine = engine_identity()
        else:
            child = start_on_host(job_id, job)
        records.set_state(job_id, state=contract.RUNNING, startedAt=now_utc())
    if job["mode"] == "container":
        # The next job of this image finds a container waiting.
        spawn_detached(agent_argv("job-spare", job["image"]), records.meta_path(job_id, "supervisor.log"))
        watch_container(job_id, container, engine)
    else:
        finish(job_id, wait(child))
    return 0


def start_container(job_id: str, job: dict[str, str]) -> str | None:
    """The job's container running: the waiting container it was handed (renamed to the job's name), or a new one.
    None (the job recorded failed, START_FAILED_EXIT) when the engine cannot start it."""
    container = contract.container_name(job_id)
    if records.flag(job_id, "container"):
        waiting = records.container_of(job_id)
        if not docker_quiet("rename", waiting, container):
            container = waiting
        with open(records.meta_path(job_id, "container"), "w") as handle:
            handle.write(container + "\n")
        return container
    folder = records.job_dir(job_id)
    null = os.open(os.devnull, os.O_RDWR)
    job_log = os.open(os.path.join(folder, contract.LOG_FILE), os.O_WRONLY | os.O_APPEND)
    try:
        started = wait(start(["docker", "run", "-d", "--name", container, *labels(), "-v", f"{folder}:/job", "-w",
                              "/job", "--env-file", records.meta_path(job_id, "env"), "--entrypoint", "/bin/sh",
                              job["image"], "-c", JOB_RUNNER, "sh", job["script"]],
                             fds={0: null, 1: null, 2: job_log}))
    finally:
        os.close(null)
        os.close(job_log)
    if started != 0:
        now = now_utc()
        records.set_state(job_id, state=contract.FAILED, exitCode=contract.START_FAILED_EXIT, startedAt=now,
                          endedAt=now)
        return None
    return container


def start_on_host(job_id: str, job: dict[str, str]) -> int:
    """The script as root on the host, in its own process group (cancel stops the group), with the job's env; its
    pid."""
    with open(records.meta_path(job_id, "env")) as handle:
        variables = dict(line.split("=", 1) for line in handle.read().splitlines() if "=" in line)
    child = start(["sh", "-c", JOB_RUNNER, "sh", job["script"]], cwd=records.job_dir(job_id),
                  env={**os.environ, **variables}, new_session=True)
    with open(records.meta_path(job_id, "child"), "w") as handle:
        handle.write(f"{child}\n")
    return child


def watch_container(job_id: str, container: str, engine: str) -> None:
    """Wait for the container's end and record it; an engine that went away meanwhile makes the job interrupted."""
    while True:
        waited = docker("wait", container)
        code = records.optional_int(waited.stdout) if waited.returncode == 0 else None
        if code is not None:
            if code >= 128 and not records.flag(job_id, "cancel") and engine_went_away(engine):
                interrupted(job_id, container)
                return
            docker_quiet("rm", container)
            finish(job_id, code)
            return
        # docker wait failed: the engine went away. With live-restore the container may still run; otherwise the
        # engine stopped it and its exit code says nothing about the script.
        time.sleep(2)
        if docker("inspect", "-f", "{{.State.Running}}", container).stdout.strip() != "true":
            interrupted(job_id, container)
            return
