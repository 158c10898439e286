"""Every command the operator side runs on a server, as the text ssh hands to the remote shell: one builder each.

The tasks, the export and the export before a destroy call these instead of formatting commands inline, so each
word is quoted in one place (shlex) and the commands are tested as strings (tests/unit/test_remote_commands.py).
Server paths, labels and hooks come from the layout contract (components.layout); containers are found by the
labels every compose service carries, never by rebuilding compose project names.
"""
from __future__ import annotations

import shlex
from typing import Optional, Sequence

import components.layout as layout

SUDO = ("sudo", "-n")  # -n: fail at once instead of waiting for a password nobody will type
JSON_FORMAT = "{{json .}}"  # docker's Go template: one JSON object per line
# A record file that does not exist yet (nothing deployed) reads as empty instead of failing the command.
IF_MISSING_EMPTY = " 2>/dev/null || true"


def quote(words: Sequence[object]) -> str:
    return " ".join(shlex.quote(str(word)) for word in words)


def _label_filters(app: str, role: Optional[str] = None, color: Optional[str] = None) -> list[str]:
    """docker ps ANDs repeated label filters: the app's containers, optionally of one role and colour."""
    wanted = {layout.LABEL_APP: app, layout.LABEL_ROLE: role, layout.LABEL_COLOR: color}
    filters: list[str] = []
    for label, value in wanted.items():
        if value:
            filters += ["--filter", f"label={label}={value}"]
    return filters


def container_ids(app: str, role: Optional[str] = None, color: Optional[str] = None) -> str:
    """Ids of the app's running containers (of one role, e.g. web, and one release colour), one per line."""
    return quote([*SUDO, "docker", "ps", "-q", *_label_filters(app, role, color)])


def app_containers(app: str) -> str:
    """Every container of the app, running or not, as JSON lines (labels, state, status)."""
    return quote([*SUDO, "docker", "ps", "-a", "--format", JSON_FORMAT, *_label_filters(app)])


def read_app_file(app: str, state_file: str) -> str:
    """One of the app's record files (layout.STATE_FILES, e.g. ACTIVE_COLOR); empty when it does not exist."""
    return quote([*SUDO, "cat", layout.app_file(app, state_file)]) + IF_MISSING_EMPTY


def last_release(app: str) -> str:
    """The last line of the app's releases log: `<utc time> <release> <image>`; empty before the first deploy."""
    return quote([*SUDO, "tail", "-n", "1", layout.app_file(app, "RELEASES_LOG")]) + IF_MISSING_EMPTY


def app_state(app: str) -> str:
    """What serves for the app (hooks/app-state.sh): COLOR, RELEASE, IMAGE, WORKERS, SWITCHED_AT lines; nothing when
    no release serves. Read-only."""
    return layout.hook("app-state.sh", app)


def app_reconcile(app: str) -> str:
    """Repair what an interrupted deploy, pause or export left (hooks/app-reconcile.sh), then print the state."""
    return layout.hook("app-reconcile.sh", app)


def app_deployed(app: str) -> str:
    """Prints yes when the server has the app's configuration folder, no otherwise."""
    return f"if {quote([*SUDO, 'test', '-d', layout.name('APP_ETC', app)])}; then echo yes; else echo no; fi"


def pause_app(app: str, action: str) -> str:
    """Stop (or start again) the app's web, workers and clock, keeping its data services: the hook the export
    before a destroy uses so nothing is written after the export."""
    if action not in ("stop", "start"):
        raise ValueError(f"pause-app.sh takes stop or start, not {action!r}")
    return layout.hook("pause-app.sh", app, action)


def app_export(app: str) -> str:
    """The app's own export (its exportCommand) as a tar.gz on stdout; nothing when it has none."""
    return layout.hook("app-export.sh", app)


def docker_logs(container: str, tail: int = 200, follow: bool = False) -> str:
    return quote([*SUDO, "docker", "logs", "--tail", int(tail), *(["--follow"] if follow else []), container])


# Whichever shell the image has: slim images often lack bash.
CONTAINER_SHELL = "if command -v bash >/dev/null; then exec bash; else exec sh; fi"


def container_shell(container: str) -> str:
    """An interactive shell in a container (the caller gives ssh a terminal)."""
    return quote([*SUDO, "docker", "exec", "-it", container, "sh", "-c", CONTAINER_SHELL])


def container_command(container: str, command: str) -> str:
    """A command line run by the container's sh, without a terminal: its output and exit code come back."""
    return quote([*SUDO, "docker", "exec", container, "sh", "-c", command])


def host_stats() -> str:
    """Whitespace-separated: /proc/loadavg (load x3, runnable/total, last pid), memory total and used MB, root disk
    total and used MB, uptime and idle seconds."""
    return ("cat /proc/loadavg; free -m | awk '/^Mem:/ {print $2, $3}'; "
            "df -P -m / | awk 'NR==2 {print $2, $3}'; cat /proc/uptime")


def container_stats() -> str:
    """One snapshot of every running container's CPU and memory, as JSON lines."""
    return quote([*SUDO, "docker", "stats", "--no-stream", "--format", JSON_FORMAT])


def boot_id() -> str:
    """Changes at every boot: tells a server that rebooted from one that has not gone down yet."""
    return "cat /proc/sys/kernel/random/boot_id"


# --- the app's Postgres (the export) ----------------------------------------------------------------------------

def _in_container(container: str, *argv: object, stdin: bool = False) -> list[object]:
    return [*SUDO, "docker", "exec", *(["-i"] if stdin else []), container, *argv]


def psql(container: str, user: str, database: str) -> str:
    """psql reading SQL on stdin: quiet, unaligned tuples only, stopping at the first error."""
    return quote(_in_container(container, "psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-U", user,
                               "-d", database, stdin=True))


def pg_dump(container: str, app: str, snapshot: str) -> str:
    """The app's database in pg_dump's custom format, as of an exported snapshot, on stdout."""
    return quote(_in_container(container, "pg_dump", "-Fc", "-U", app, "-d", app, f"--snapshot={snapshot}"))


def create_database(container: str, app: str, database: str) -> str:
    return quote(_in_container(container, "createdb", "-U", app, database))


def pg_restore(container: str, app: str, database: str) -> str:
    """Restore a custom-format dump read on stdin into `database`, stopping at the first error."""
    return quote(_in_container(container, "pg_restore", "-U", app, "-d", database, "--no-owner", "--no-privileges",
                               "--exit-on-error", stdin=True))


def drop_database(container: str, app: str, database: str) -> str:
    return quote(_in_container(container, "dropdb", "-U", app, "--if-exists", database))


def archive_app_data(app: str, members: Sequence[str]) -> str:
    """tar+gzip of those of the app's data folders that exist, on stdout. GNU tar exits 1 when a file changed while
    it was read (the archive is complete then): a live export must not fail at random, so only >1 is a failure."""
    folder = layout.name("APP_SRV", app)
    script = (f"cd {shlex.quote(folder)} || exit 2; members=''; for m in {quote(members)}; do "
              "[ -e \"$m\" ] && members=\"$members $m\"; done; "
              "tar --numeric-owner --warning=no-file-changed -czf - $members; rc=$?; [ \"$rc\" -le 1 ]")
    return quote([*SUDO, "sh", "-c", script])
