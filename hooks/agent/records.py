"""A job's folder and records: JOBS_SRV/<id>/ holds the uploaded files (the script's working directory),
status.json (what the operator side and the watcher read), job.log, and .labstack/ with
- meta: the fields fixed at submit, `key=value` lines (`''` for an empty value, as bash's printf %q writes it);
- state: the fields that change (state, exitCode, startedAt, endedAt), the same format, the last line of a key wins;
- env (the job's variables), supervisor ("PID START"), child (a host job's process group), container (the waiting
  container the job was handed), cancel (asked for), lock (flock: status writes and state decisions in turn).
Jobs started by the earlier bash hooks wrote the same files; they are read as they are.
"""
from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from . import contract, layout
from .node import Fail


def job_dir(job_id: str) -> str:
    return os.path.join(layout.JOBS_SRV, job_id)


def meta_path(job_id: str, name: str) -> str:
    return os.path.join(layout.JOBS_SRV, job_id, contract.META_DIR, name)


def check_id(job_id: str) -> str:
    if not contract.JOB_ID_RE.match(job_id):
        raise Fail(f"bad job id '{job_id}': lower-case letters, digits and dashes")
    return job_id


def need_job(job_id: str) -> str:
    """The job exists, or exit UNKNOWN_JOB_EXIT."""
    check_id(job_id)
    if not os.path.isfile(os.path.join(job_dir(job_id), contract.STATUS_FILE)):
        raise Fail(f"no job {job_id} on this server (invoke job.status lists them)", contract.UNKNOWN_JOB_EXIT)
    return job_id


def read_fields(path: str) -> dict[str, str]:
    fields = {}
    with open(path) as handle:
        for line in handle:
            key, sep, value = line.rstrip("\n").partition("=")
            if sep:
                fields[key] = "" if value == "''" else unescape(value)
    return fields


def unescape(value: str) -> str:
    """A value as printf %q wrote it (a backslash before a character the shell would read otherwise)."""
    out, escaped = [], False
    for char in value:
        if char == "\\" and not escaped:
            escaped = True
            continue
        out.append(char)
        escaped = False
    return "".join(out)


def json_value(value: object) -> str:
    """A JSON value of the record (no json module: its import costs the node more than writing the record)."""
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(char if char >= " " else f"\\u{ord(char):04x}" for char in text) + '"'


def field_lines(fields: dict[str, str]) -> str:
    """Values were checked at submit: none needs quoting but the empty one."""
    return "".join(f"{key}={value or chr(39) * 2}\n" for key, value in fields.items())


def load(job_id: str) -> dict[str, str]:
    """meta + state: every field of the record, '' where unset."""
    job = {key: "" for key in (*contract.META_FIELDS, *contract.STATE_FIELDS)}
    job.update(read_fields(meta_path(job_id, "meta")))
    job.update(read_fields(meta_path(job_id, "state")))
    return job


def status_record(job_id: str, job: dict[str, str]) -> str:
    record = {"id": job_id}
    for key in contract.STATUS_FIELDS[1:]:
        value = job.get(key, "")
        if key == "exitCode":
            record[key] = int(value) if value else None
        elif key in ("state", "mode", "script"):
            record[key] = value
        else:
            record[key] = value or None
    return "{" + ",".join(f'"{key}":{json_value(value)}' for key, value in record.items()) + "}\n"


def write_status(job_id: str) -> None:
    """status.json from meta + state, replaced by a rename: readers never see half a record."""
    folder = job_dir(job_id)
    with open(os.path.join(folder, ".status.json.tmp"), "w") as handle:
        handle.write(status_record(job_id, load(job_id)))
    os.replace(os.path.join(folder, ".status.json.tmp"), os.path.join(folder, contract.STATUS_FILE))


def set_state(job_id: str, **changes: object) -> None:
    """New state fields (with the job's lock held), then status.json."""
    path = meta_path(job_id, "state")
    with open(path) as handle:
        lines = [line for line in handle.read().splitlines() if line.partition("=")[0] not in changes]
    lines += [f"{key}={value}" for key, value in changes.items()]
    with open(path + ".tmp", "w") as handle:
        handle.write("\n".join(lines) + "\n")
    os.replace(path + ".tmp", path)
    write_status(job_id)


def read_status(job_id: str) -> str:
    with open(os.path.join(job_dir(job_id), contract.STATUS_FILE)) as handle:
        return handle.read()


@contextmanager
def locked(job_id: str) -> Iterator[None]:
    """The job's lock (the same flock file the bash hooks took)."""
    with open(meta_path(job_id, "lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def container_of(job_id: str) -> str:
    """The job's container: labstack-job-<id>, or the waiting container it was given (recorded until its rename)."""
    try:
        with open(meta_path(job_id, "container")) as handle:
            return handle.read().strip()
    except FileNotFoundError:
        return contract.container_name(job_id)


def flag(job_id: str, name: str) -> bool:
    return os.path.exists(meta_path(job_id, name))


def job_ids() -> list:
    """Every job with a record, oldest first (ids begin with their UTC submit time)."""
    try:
        names = os.listdir(layout.JOBS_SRV)
    except FileNotFoundError:
        return []
    return sorted(name for name in names if contract.JOB_ID_RE.match(name)
                  and os.path.isfile(os.path.join(layout.JOBS_SRV, name, contract.STATUS_FILE)))


def optional_int(text: str | None) -> int | None:
    return int(text) if text and text.strip().isdigit() else None
