"""The job and watcher protocol shared by the node agent and the operator side (labstack/jobs/server.py,
components/remote/watcher.py): states, exit codes, record fields, file and container names, watcher settings.

Standard library only and free of paths: the node agent imports it on servers, the operator side imports it from the
project folder (`from hooks.agent import contract`). Server paths (JOBS_SRV, WATCHER_STATE, ...) stay in
components/layout.py, which the agent reads through the generated hooks/layout.sh like the bash hooks do.
"""
from __future__ import annotations

# --- job states: submitted -> running -> complete | failed | cancelled | interrupted -------------------------------
SUBMITTED, RUNNING, COMPLETE, FAILED, CANCELLED, INTERRUPTED = (
    "submitted", "running", "complete", "failed", "cancelled", "interrupted")
STATES = (SUBMITTED, RUNNING, COMPLETE, FAILED, CANCELLED, INTERRUPTED)
ACTIVE = (SUBMITTED, RUNNING)  # a job in one of these keeps the server up (the watcher) and can be cancelled
MODES = ("container", "host")

# --- exit codes -----------------------------------------------------------------------------------------------------
UNKNOWN_JOB_EXIT = 3  # any job command: no job with that id on this server
REUSE_MISS_EXIT = 4  # submit: a file the upload left out is no longer in the store unchanged; send it whole
START_FAILED_EXIT = 125  # the job's exitCode when its container could not start (docker run's own code)
# `job.wait`'s exit code for jobs that have no script exit code of their own.
CANCELLED_EXIT = 130
INTERRUPTED_EXIT = 75

# --- the record: JOBS_SRV/<id>/status.json, one JSON object, fields in this order ----------------------------------
STATUS_FIELDS = ("id", "state", "exitCode", "submittedAt", "startedAt", "endedAt", "image", "mode", "script",
                 "submittedBy", "name")
META_FIELDS = ("name", "image", "submittedBy", "submittedAt", "mode", "script")  # fixed at submit
STATE_FIELDS = ("state", "exitCode", "startedAt", "endedAt")  # change as the job runs

# --- files in a job folder JOBS_SRV/<id>/ -----------------------------------------------------------------------------
STATUS_FILE = "status.json"
LOG_FILE = "job.log"
META_DIR = ".labstack"  # the agent's own files: meta, state, env, supervisor, lock, child, container, cancel, go, ...
ENV_FILE = f"{META_DIR}/env"  # the job's variables, KEY=VALUE lines (docker's --env-file)
REUSE_LIST = f"{META_DIR}/reuse"  # "SHA256 PATH" lines: files left out of the upload, copied from JOBS_STORE
STORE_LIST = f"{META_DIR}/store"  # "SHA256 PATH" lines: uploaded large files to link into JOBS_STORE
MANIFEST = ".labstack-sha256sums"  # fetch's last tar member: "<sha256>  <path>" per file
RESERVED_NAMES = (STATUS_FILE, LOG_FILE)  # with .labstack*: names an upload cannot use at the top of the job folder
ROOM_MARGIN = 64 * 1024 * 1024  # free disk a submit needs beyond its files: the job's log and first outputs

# --- names ------------------------------------------------------------------------------------------------------------


class Chars:
    """A name pattern (allowed first character, allowed others, length range) with re's `.match` spelling. Not a
    regular expression: importing `re` costs the node a fifth of a submit, and these are character classes."""

    def __init__(self, first: str, rest: str, shortest: int, longest: int):
        self.first, self.rest, self.shortest, self.longest = frozenset(first), frozenset(rest), shortest, longest

    def match(self, text: str) -> bool:
        return (self.shortest <= len(text) <= self.longest and (not text or text[0] in self.first)
                and all(char in self.rest for char in text[1:]))


_DIGITS = "0123456789"
_LOWER = "abcdefghijklmnopqrstuvwxyz"  # spelled out: the string module imports re
_LOWER_DIGITS = _LOWER + _DIGITS
_WORD = _LOWER + _LOWER.upper() + _DIGITS + "._-"
JOB_ID_RE = Chars(_LOWER_DIGITS, _LOWER_DIGITS + "-", 1, 64)
SHA256_RE = Chars(_DIGITS + "abcdef", _DIGITS + "abcdef", 64, 64)
IMAGE_RE = Chars(_WORD + "/:@", _WORD + "/:@", 1, 255)
SCRIPT_RE = Chars(_WORD.replace(".", ""), _WORD, 1, 255)
NAME_RE = Chars(_WORD, _WORD, 0, 64)  # a job's name; empty: none
SUBMITTER_RE = Chars(_WORD + "@", _WORD + "@", 1, 128)
ON_HOST = "--on-host"  # submit's IMAGE argument for a job on the host
CONTAINER_PREFIX = "labstack-job-"  # a job's container: labstack-job-<id>
SPARE_PREFIX = "labstack-job-spare-"  # a waiting container: labstack-job-spare-<random>
JOB_ROLE = "job"  # the role label (LABEL_ROLE) of job containers and waiting ones


def container_name(job_id: str) -> str:
    return CONTAINER_PREFIX + job_id


# --- the auto-stop watcher's settings: WATCHER_ETC/watcher.env, KEY='value' lines; busy-<app>.cmd per app ----------
WATCHER_ENV = "watcher.env"
WATCHER_SETTINGS = ("IDLE_SECONDS", "MAX_SECONDS", "CPU_PERCENT", "BUSY_COMMANDS", "HOURLY_PRICE", "BUDGET_TOTAL")
DEFAULT_CPU_PERCENT = 10
BUDGET_WARNINGS = (50, 80)  # percent of the budget total at which the watcher logs a warning (once each)
BUSY_EXIT_IDLE = 1  # a busy command's exit code for "not busy"; anything else (0, errors, timeouts) is busy


def busy_command_file(app: str) -> str:
    return f"busy-{app}.cmd"
