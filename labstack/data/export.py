"""Export an app's data from its server: the Postgres database and the data directory, verified, with a manifest.

On the server (hooks/deploy-app.sh, names from components.layout): the app's Postgres is its container labelled
with the app and role `postgres`, database and user both named `<app>`; its files live in the app's data folder
(layout APP_SRV: data/ and Redis's redis/).

Locally: exports/<stack>/<app>/<UTC timestamp>/ holding db.dump (pg_dump custom format), data.tar.gz and
manifest.json. Everything is written into `<timestamp>.partial/` first and renamed only once every file is complete
and verified; a failed export is renamed `<timestamp>.failed/` (with FAILED.txt saying why) so nothing incomplete
ever looks like a finished export, and nothing already exported is touched.

Consistency: the per-table row counts and the dump come from one database snapshot (a REPEATABLE READ transaction
exports its snapshot and pg_dump --snapshot uses it), so the app may keep writing during the export and the counts
still describe exactly what the dump holds. Verification restores the dump into a scratch database in the same
Postgres (as the server's Postgres, so same version) and compares the counts; the scratch database is always dropped.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import subprocess
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional, Sequence

import components.layout as layout
from components.config import AppConfig
from labstack.local import sha256_file
from labstack.ssh import commands as remote_commands
from labstack.ssh.target import RemoteError, SshTarget, checked_app, container_ids, last_release
from labstack.stacks.stackfile import PROJECT_DIR

EXPORTS_DIR = PROJECT_DIR / "exports"
DUMP_FILE = "db.dump"
DATA_FILE = "data.tar.gz"
# Beside the database dump: the app's files, Redis's append-only log and the app's extra volumes.
ARCHIVED_DIRS = ("data", "redis", "volumes")
APP_EXPORT_FILE = "app-export.tar.gz"  # what the app's own exportCommand wrote
MANIFEST = "manifest.json"
FULL_DISK_BYTES = 1 << 20  # less free than this after a failed export: the disk filling up was the cause
Progress = Callable[[str], None]

# Exact row counts of every user table, one `schema.table|rows` line each. query_to_xml runs a count(*) per table
# inside this one statement, so all counts come from the statement's (here: the exported) snapshot.
COUNT_ROWS_SQL = (
    "SELECT format('%I.%I', table_schema, table_name) || '|' || "
    "(xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', table_schema, table_name), "
    "false, true, '')))[1]::text FROM information_schema.tables "
    "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1;"
)
END_MARK = "__labstack_end__"


class ExportError(RuntimeError):
    """The export failed; nothing named like a complete export was left behind."""


@dataclass
class ExportResult:
    path: Path
    manifest: dict


def postgres_container(target: SshTarget, app: str) -> str:
    ids = container_ids(target, app, role="postgres")
    if not ids:
        raise ExportError(f"the Postgres of app {app!r} is not running on {target.host}; bring the stack up "
                          f"(`invoke up -s {target.stack or '<stack>'}`) before exporting")
    return ids[0]


class SnapshotSession:
    """A psql session over SSH holding a REPEATABLE READ transaction whose snapshot pg_dump can share."""

    def __init__(self, target: SshTarget, container: str, app: str):
        self.process = subprocess.Popen(target.ssh_argv(remote_commands.psql(container, app, app)),
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.target = target

    def query(self, sql: str, timeout: float = 600) -> list[str]:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(f"{sql}\n\\echo {END_MARK}\n")
        self.process.stdin.flush()
        lines: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:  # psql ended: ON_ERROR_STOP, or ssh failed
                stderr = self.process.stderr.read() if self.process.stderr else ""
                raise ExportError(f"the database session on {self.target.host} ended: {stderr.strip()[-500:]}")
            if line.rstrip("\n") == END_MARK:
                return lines
            lines.append(line.rstrip("\n"))
        raise ExportError(f"the database on {self.target.host} did not answer within {timeout:.0f}s")

    def close(self) -> None:
        try:
            if self.process.stdin and not self.process.stdin.closed:
                self.process.stdin.write("COMMIT;\n\\q\n")
                self.process.stdin.close()
            self.process.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()


def parse_counts(lines: list[str]) -> dict[str, int]:
    counts = {}
    for line in lines:
        table, _, rows = line.rpartition("|")
        if table:
            counts[table] = int(rows)
    return counts


def row_counts(target: SshTarget, container: str, user: str, database: str) -> dict[str, int]:
    return parse_counts(target.text(remote_commands.psql(container, user, database), input=COUNT_ROWS_SQL.encode(),
                                    what=f"counting rows in {database}").splitlines())


def dump_database(target: SshTarget, container: str, app: str, destination: Path,
                  progress: Progress) -> dict[str, int]:
    """Stream `pg_dump -Fc` into `destination`; returns the row counts of the snapshot it dumped."""
    session = SnapshotSession(target, container, app)
    try:
        session.query("BEGIN ISOLATION LEVEL REPEATABLE READ;")
        snapshot = session.query("SELECT pg_export_snapshot();")[-1].strip()
        counts = parse_counts(session.query(COUNT_ROWS_SQL))
        progress(f"{app}: dumping the database ({len(counts)} tables, {sum(counts.values())} rows)")
        with open(destination, "wb") as out:
            # -Fc is compressed already: no ssh compression on top.
            target.run(remote_commands.pg_dump(container, app, snapshot), stdout=out, timeout=6 * 3600,
                       what=f"pg_dump of {app}")
    finally:
        session.close()
    return counts


def verify_dump(target: SshTarget, container: str, app: str, dump: Path, expected: dict[str, int],
                scratch: str, progress: Progress) -> dict[str, int]:
    """Restore `dump` into a scratch database next to the live one and compare every table's row count."""
    progress(f"{app}: verifying the dump by restoring it into scratch database {scratch}")
    target.run(remote_commands.create_database(container, app, scratch), what=f"creating scratch database {scratch}")
    try:
        with open(dump, "rb") as source:
            result = target.run(remote_commands.pg_restore(container, app, scratch), stdin=source, check=False,
                                timeout=6 * 3600, what="pg_restore")
        if result.returncode != 0:
            reason = (result.stderr or b"").decode(errors="replace").strip().splitlines()
            raise ExportError(f"{app}: the dump does not restore ({reason[-1] if reason else 'pg_restore failed'}); "
                              "it is damaged or incomplete")
        restored = row_counts(target, container, app, scratch)
    finally:
        target.run(remote_commands.drop_database(container, app, scratch), check=False,
                   what=f"dropping scratch database {scratch}")
    if restored != expected:
        differences = [f"{table}: {expected.get(table, 'missing')} live, {restored.get(table, 'missing')} restored"
                       for table in sorted(set(expected) | set(restored)) if expected.get(table) != restored.get(table)]
        raise ExportError(f"{app}: the restored dump differs from the database: {'; '.join(differences[:5])}")
    return restored


def archive_data(target: SshTarget, app: str, destination: Path) -> int:
    """tar+gzip the app's data directory and its Redis files (append-only log) on the server, streamed into
    `destination`; returns the number of entries."""
    with open(destination, "wb") as out:
        target.run(remote_commands.archive_app_data(app, ARCHIVED_DIRS), stdout=out, timeout=6 * 3600,
                   what=f"archiving {layout.name('APP_SRV', app)}/{{{','.join(ARCHIVED_DIRS)}}}")
    try:  # reading every member to the end checks gzip's CRC and the tar structure
        with tarfile.open(destination, "r:gz") as archive:
            return sum(1 for _ in archive)
    except (tarfile.TarError, OSError, EOFError) as error:
        raise ExportError(f"{app}: the data archive arrived damaged ({error})") from None


def fetch_app_export(target: SshTarget, app: str, destination: Path) -> Optional[int]:
    """Run the app's own export on the server and stream its folder into `destination`; returns the number of
    entries, or None (and no file) when the app has no exportCommand."""
    command = target.text(remote_commands.read_app_file(app, "EXPORT_CMD"), what=f"reading {app}'s export command")
    if not command.strip():
        return None
    with open(destination, "wb") as out:
        target.run(remote_commands.app_export(app), stdout=out, timeout=6 * 3600, what=f"{app}'s export command")
    if destination.stat().st_size == 0:
        destination.unlink()
        return None
    try:
        with tarfile.open(destination, "r:gz") as archive:
            return sum(1 for member in archive if member.name != ".")
    except (tarfile.TarError, OSError, EOFError) as error:
        raise ExportError(f"{app}: its own export arrived damaged ({error})") from None


def deployed_image(target: SshTarget, app: str) -> Optional[str]:
    fields = last_release(target, app)
    return fields[2] if len(fields) >= 3 else None


def export_app(target: SshTarget, stack: str, app: str, *, postgres: bool = True, image: Optional[str] = None,
               exports_dir: Path = EXPORTS_DIR, progress: Progress = lambda line: None,
               now: Optional[datetime] = None) -> ExportResult:
    """Export one app of a stack; the deploy hooks call this too before a destroy."""
    checked_app(app)
    now = now or datetime.now(timezone.utc)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    final = exports_dir / stack / app / stamp
    partial = final.with_name(stamp + ".partial")
    if final.exists() or partial.exists():
        raise ExportError(f"{final} already exists; wait a second and run the export again")
    found = target.text(remote_commands.app_deployed(app), what="looking for the app")
    if found.strip() != "yes":
        raise ExportError(f"app {app!r} is not deployed on {target.host} ({layout.name('APP_ETC', app)} is missing)")
    try:
        partial.mkdir(parents=True)
        os.chmod(partial, 0o700)  # research data: readable by the operator only
    except OSError as error:
        raise ExportError(f"{app}: cannot make the export folder {partial.parent} ({error.strerror}): make it "
                          "writable, or set labstack:exportsDir to a folder you can write, then export again") from None
    try:
        files = {}
        database = None
        # First, while nothing else loads the server: the app's own format (e.g. Dallinger's zip), if it has one.
        own_entries = fetch_app_export(target, app, partial / APP_EXPORT_FILE)
        if own_entries is not None:
            files[APP_EXPORT_FILE] = partial / APP_EXPORT_FILE
            progress(f"{app}: its own export holds {own_entries} files and folders")
        # The data folder is archived while the database is dumped and verified: gzip on the server and pg_dump,
        # pg_restore in Postgres work in parallel instead of one after the other.
        with ThreadPoolExecutor(max_workers=1) as pool:
            progress(f"{app}: archiving the data directory")
            archived = pool.submit(archive_data, target, app, partial / DATA_FILE)
            if postgres:
                container = postgres_container(target, app)
                counts = dump_database(target, container, app, partial / DUMP_FILE, progress)
                scratch = "labstack_verify_" + re.sub(r"[^a-z0-9]", "", stamp.lower())
                verify_dump(target, container, app, partial / DUMP_FILE, counts, scratch, progress)
                database = {"format": "pg_dump custom (-Fc)", "database": app, "tables": counts,
                            "verified": f"restored into a scratch database; {len(counts)} table row counts match"}
                files[DUMP_FILE] = partial / DUMP_FILE
            entries = archived.result()
        files[DATA_FILE] = partial / DATA_FILE
        manifest = {
            "stack": stack, "app": app, "host": target.host, "created": now.isoformat(timespec="seconds"),
            "image": deployed_image(target, app) or image,
            "files": {name: {"bytes": path.stat().st_size, "sha256": sha256_file(path)} for name, path in files.items()},
            "database": database,
            "appExport": None if own_entries is None else {"file": APP_EXPORT_FILE, "entries": own_entries},
            "data": {"source": [f"{layout.name('APP_SRV', app)}/{name}" for name in ARCHIVED_DIRS],
                     "entries": entries},
        }
        with open(partial / MANIFEST, "w") as out:
            json.dump(manifest, out, indent=2)
            out.write("\n")
        for path in partial.iterdir():  # on disk before the rename makes it look complete
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        os.rename(partial, final)
        progress(f"{app}: exported to {final}")
        return ExportResult(final, manifest)
    except (Exception, KeyboardInterrupt) as error:  # noqa: BLE001 - every failure ends the same clean way
        reason = failure_reason(error, exports_dir)
        failed = final.with_name(stamp + ".failed")
        kept = keep_failed(partial, failed, reason)
        raise ExportError(f"{app}: the export failed: {reason} ({kept})") from None


def failure_reason(error: BaseException, exports_dir: Path) -> str:
    """One line: what went wrong and what to do."""
    if isinstance(error, KeyboardInterrupt):
        return "interrupted (Ctrl-C); run the export again"
    try:
        free = shutil.disk_usage(exports_dir).free
    except OSError:
        free = None
    # A full disk shows as ENOSPC when we write, or as ssh failing when ssh itself writes the stream into the file.
    if (isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)) or \
            (free is not None and free < FULL_DISK_BYTES):
        return (f"the disk holding {exports_dir} is full ({free / 1e6:,.1f} MB free): free space there or set "
                "labstack:exportsDir to a bigger disk, then export again")
    if isinstance(error, OSError):
        return f"{error.strerror or error} ({error.filename or exports_dir}); fix that, then export again"
    if isinstance(error, (ExportError, RemoteError)):
        return str(error)
    return f"{type(error).__name__}: {error}"


def keep_failed(partial: Path, failed: Path, reason: str) -> str:
    """Rename the incomplete export `<ts>.failed` (never a complete-looking name) with FAILED.txt saying why when
    there is room for it; returns where the files are, for the message."""
    try:
        os.rename(partial, failed)
    except OSError as error:
        return f"the incomplete files are in {partial}, which could not be renamed: {error.strerror}"
    try:
        (failed / "FAILED.txt").write_text(reason + "\n")
    except OSError as error:  # e.g. the same full disk: the reason is in this message instead
        with contextlib.suppress(OSError):
            (failed / "FAILED.txt").unlink()
        return f"the incomplete files are in {failed}; FAILED.txt could not be written: {error.strerror}"
    return f"the incomplete files are in {failed}"


def export_stack(target: SshTarget, stack: str, apps: Sequence[AppConfig], **options) -> list[ExportResult]:
    """Export these apps of the stack, in order; stops at the first failure."""
    return [export_app(target, stack, app.name, postgres=app.postgres, image=app.image, **options) for app in apps]
