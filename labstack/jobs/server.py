"""Script jobs on a stack's server (invoke job.*): upload, start detached, status, logs, wait, fetch, cancel.

Everything goes through the pinned SSH connection of labstack.ssh.target (SshTarget), one ssh command per step, and the
node agent does the server side (hooks/agent, run by the hooks job-*.sh): job-submit.sh receives the files as one tar
stream and starts a detached supervisor that runs the script in a container of the image (or on the host) and keeps
JOBS_SRV/<id>/status.json. States, exit codes and names are the agent's contract (hooks/agent/contract.py). The
checks that need no server (script, files, env, names, fetch paths) run before anything is sent, so bad input leaves
nothing behind.
"""
from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import IO, Callable, Optional

from components.layout import hook
from hooks.agent import contract
from hooks.agent.contract import (ACTIVE, CANCELLED_EXIT, IMAGE_RE, INTERRUPTED_EXIT, JOB_ID_RE, MANIFEST, SCRIPT_RE,
                                  STATES, UNKNOWN_JOB_EXIT, REUSE_MISS_EXIT)
from labstack.local import key_value, sha256_file
from labstack.ssh.target import RemoteError, SshTarget

DEFAULT_IMAGE = "python:3.11-slim"
NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")  # --name, when given (the server's contract.NAME_RE allows none)
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Files of 1 MiB or more are offered for reuse (job-have.sh) when they add up to 8 MiB: below that, the extra ssh
# round trip costs more than sending them.
REUSE_MIN_FILE = 1 << 20
REUSE_MIN_TOTAL = 8 << 20


class JobError(RemoteError):
    """A job request that cannot be carried out; the message names the input and the fix."""


# --- pure checks ---------------------------------------------------------------------------------------------------

def new_job_id(now: Optional[datetime] = None) -> str:
    """Sortable and unique: UTC time plus 4 random hex digits, e.g. 20261128-215501-3fa2."""
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def check_job_id(job_id: str) -> str:
    if not JOB_ID_RE.match(job_id or ""):
        raise JobError(f"bad job id {job_id!r}: job ids look like 20261128-215501-3fa2 (invoke job.status lists them)")
    return job_id


def parse_env(items: Optional[list[str]]) -> dict[str, str]:
    """--env K=V items (a dict passes through, checked the same way)."""
    pairs = items.items() if isinstance(items, dict) else [key_value(item, "--env", JobError, "SEED=42")
                                                             for item in items or []]
    result = {}
    for key, value in pairs:
        if not ENV_KEY_RE.match(key):
            raise JobError(f"--env {key}=...: {key!r} is not a variable name (letters, digits and _, not starting "
                           "with a digit)")
        if "\n" in value or "\0" in value:
            raise JobError(f"--env {key}: the value holds a newline or NUL byte; pass such data in a file instead")
        result[key] = value
    return result


def check_name(name: Optional[str]) -> str:
    if name is None or name == "":
        return ""
    if not NAME_RE.match(name):
        raise JobError(f"--name {name!r}: use 1-64 letters, digits, '.', '_' or '-'")
    return name


def check_image(image: str, pinned: bool = False) -> str:
    if not IMAGE_RE.match(image or ""):
        raise JobError(f"--image {image!r}: not an image reference (e.g. python:3.11-slim or repo@sha256:...)")
    if pinned and "@sha256:" not in image:
        raise JobError(f"--image {image!r}: this stack's apps run pinned images (repo@sha256:...), so jobs must too; "
                       f"pass --image {image.split(':')[0]}@sha256:<digest> (docker buildx imagetools inspect "
                       f"{image} shows it)")
    return image


def check_fetch_path(path: str) -> str:
    """A path inside the job folder, relative, without '..': the folder or file to fetch, without trailing '/'."""
    text = (path or "").strip()
    pure = PurePosixPath(text)
    if not text or pure.is_absolute() or ".." in pure.parts or text.rstrip("/") in ("", "."):
        raise JobError(f"fetch path {path!r} must name a file or folder inside the job folder, e.g. out/ (no '..', "
                       "not absolute)")
    return str(pure)


def upload_plan(script: Path, files: list[Path]) -> dict[str, Path]:
    """Name in the job folder -> local path: the script and each file or folder at the top, by its own name."""
    script = Path(script)
    if not script.exists():
        raise JobError(f"--script {script}: no such file")
    if not script.is_file():
        raise JobError(f"--script {script}: is a {'directory' if script.is_dir() else 'special file'}, not a script "
                       "file; pass the folder with --files and its script with --script")
    plan: dict[str, Path] = {}
    for path in [script, *map(Path, files or [])]:
        if not path.exists():
            raise JobError(f"--files {path}: no such file or folder")
        name = path.resolve().name
        if not SCRIPT_RE.match(name) or name.startswith(contract.META_DIR) or name in contract.RESERVED_NAMES:
            raise JobError(f"--files {path}: the name {name!r} cannot be used in the job folder (letters, digits, "
                           "'.', '_', '-'; not status.json, job.log or .labstack*)")
        if name in plan and plan[name].resolve() != path.resolve():
            raise JobError(f"--files {path}: two uploads are named {name!r} ({plan[name]} and {path}); rename one")
        plan[name] = path
    return plan


def plan_bytes(plan: dict[str, Path]) -> int:
    total = 0
    for path in plan.values():
        if path.is_dir():
            total += sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        else:
            total += path.stat().st_size
    return total


def submitter() -> str:
    who = f"{getpass.getuser()}@{socket.gethostname()}"
    return re.sub(r"[^A-Za-z0-9._@-]", "-", who)[:128]


def submit_argv(job_id: str, size: int, script_name: str, *, image: Optional[str], on_host: bool, name: str,
                by: str) -> str:
    """The remote command of a submit (the tar stream goes to its stdin)."""
    return hook("job-submit.sh", job_id, size, contract.ON_HOST if on_host else image, script_name, name, by)


def parse_statuses(text: str) -> list[dict]:
    """job-status.sh's output: one JSON object per line; a line that is not one is an error, never skipped."""
    result = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise RemoteError(f"job status: the server answered a line that is not JSON: {line[:200]!r}") from None
        if record.get("state") not in STATES:
            raise RemoteError(f"job status: unknown state {record.get('state')!r} in {line[:200]!r}")
        result.append(record)
    return result


def exit_code_of(status: dict) -> int:
    """The exit code `job.wait` ends with: the script's, or 130 (cancelled) / 75 (interrupted) without one."""
    if status["state"] in (contract.COMPLETE, contract.FAILED) and status.get("exitCode") is not None:
        return int(status["exitCode"])
    return CANCELLED_EXIT if status["state"] == contract.CANCELLED else INTERRUPTED_EXIT


# --- remote steps -------------------------------------------------------------------------------------------------

def _check_unknown(result: subprocess.CompletedProcess, target: SshTarget, job_id: str, what: str) -> None:
    if result.returncode == UNKNOWN_JOB_EXIT:
        raise JobError(f"no job {job_id} on {target.stack or target.host} (invoke job.status -s {target.stack} "
                       "lists its jobs)")
    if result.returncode != 0:
        raise RemoteError(target.describe_failure(result, what))


def submit(target: SshTarget, script: Path, files: list[Path], *, image: Optional[str] = None, on_host: bool = False,
           name: Optional[str] = None, env: Optional[dict] = None,
           on_progress: Optional[Callable[[str], None]] = None) -> str:
    """Upload the script and files in one tar stream into JOBS_SRV/<id>/ and start the job detached; its id. Large
    files an earlier job folder on the server still holds unchanged are not sent again: the server copies them."""
    plan = upload_plan(script, files)
    variables = parse_env(env)
    name = check_name(name)
    image = None if on_host else check_image(image or DEFAULT_IMAGE)
    job_id = new_job_id()
    size = plan_bytes(plan)
    command = submit_argv(job_id, size, Path(script).resolve().name, image=image, on_host=on_host, name=name,
                          by=submitter())
    env_text = "".join(f"{key}={value}\n" for key, value in variables.items()).encode()
    large = large_files(plan)
    digests, held = held_on_server(target, large, size)
    reuse = {arcname: digest for arcname, digest in digests.items() if digest in held}
    if reuse and on_progress:
        saved = sum(large[arcname].stat().st_size for arcname in reuse)
        on_progress(f"{len(reuse)} file(s) ({saved / 1e6:.1f} MB) are on the server already: not sent again")
    result = _send(target, command, plan, env_text, digests, reuse)
    if result.returncode == REUSE_MISS_EXIT and reuse:
        if on_progress:
            on_progress("a file the server held has changed or gone there: sending everything")
        result = _send(target, command, plan, env_text, digests, {})
    if result.returncode != 0:
        raise JobError(target.describe_failure(result, "submitting the job"))
    return job_id


def large_files(plan: dict[str, Path]) -> dict[str, Path]:
    """Name in the tar -> path of each regular file of REUSE_MIN_FILE or more, when they reach REUSE_MIN_TOTAL."""
    large = {}
    for arcname, path in plan.items():
        candidates = ([(f"{arcname}/{p.relative_to(path).as_posix()}", p) for p in sorted(path.rglob("*"))]
                      if path.is_dir() else [(arcname, path)])
        for member, file in candidates:
            # A name with a line break cannot go in the line-per-file lists: such a file is always sent.
            if "\n" not in member and file.is_file() and not file.is_symlink() \
                    and file.stat().st_size >= REUSE_MIN_FILE:
                large[member] = file
    return large if sum(file.stat().st_size for file in large.values()) >= REUSE_MIN_TOTAL else {}


def held_on_server(target: SshTarget, large: dict[str, Path], size: int) -> tuple[dict[str, str], set[str]]:
    """(sha256 of each large file, the digests the server's store holds), asked of job-have.sh while the files are
    hashed. Only a saving: when the server refuses (the upload does not fit its disk: hashing stops at once, and the
    submit then says why) or cannot tell (hooks older than this), nothing is reused and everything is sent."""
    if not large:
        return {}, set()
    proc = subprocess.Popen(target.ssh_argv(hook("job-have.sh", size)), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    digests = {}
    try:
        for member, file in large.items():
            digest = _sha256_while_running(file, proc)
            if digest is None:
                break
            digests[member] = digest
            proc.stdin.write(f"{digest}\n".encode())
            proc.stdin.flush()
    except BrokenPipeError:
        pass
    finally:
        try:
            proc.stdin.close()
        except BrokenPipeError:
            pass
        proc.stdin = None
    stdout, _ = proc.communicate()
    if proc.returncode != 0 or len(digests) != len(large):
        return {}, set()
    return digests, set(stdout.decode().split()) & set(digests.values())


def _sha256_while_running(path: Path, proc: subprocess.Popen) -> Optional[str]:
    """sha256 of the file, or None as soon as `proc` has ended (the server gave up: no reason to read on)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            if proc.poll() is not None:
                return None
    return digest.hexdigest()


def _send(target: SshTarget, command: str, plan: dict[str, Path], env_text: bytes, digests: dict[str, str],
          reuse: dict[str, str]) -> subprocess.CompletedProcess:
    """One submit: the tar stream (without the files in `reuse`, named in .labstack/reuse instead; the other large
    files named in .labstack/store for the next job) into job-submit.sh."""
    lists = {contract.ENV_FILE: (env_text, 0o600),
             contract.REUSE_LIST: ("".join(f"{d} {m}\n" for m, d in reuse.items()).encode(), 0o644),
             contract.STORE_LIST: ("".join(f"{d} {m}\n" for m, d in digests.items() if m not in reuse).encode(),
                                   0o644)}

    def member(info: tarfile.TarInfo) -> Optional[tarfile.TarInfo]:
        return None if info.name in reuse else _plain_member(info)

    proc = subprocess.Popen(target.ssh_argv(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        with tarfile.open(fileobj=proc.stdin, mode="w|", format=tarfile.PAX_FORMAT) as archive:
            for arcname, path in plan.items():
                archive.add(str(path), arcname=arcname, filter=member)
            for list_name, (data, mode) in lists.items():
                if data or list_name == contract.ENV_FILE:
                    info = tarfile.TarInfo(list_name)
                    info.size, info.mode = len(data), mode
                    archive.addfile(info, _bytes_io(data))
    except BrokenPipeError:
        pass  # the hook refused (e.g. not enough disk) before reading everything: its message follows
    finally:
        try:
            proc.stdin.close()
        except BrokenPipeError:
            pass
        proc.stdin = None  # closed: communicate() only reads the answer
    stdout, stderr = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def _plain_member(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _bytes_io(data: bytes):
    import io

    return io.BytesIO(data)


def statuses(target: SshTarget, *job_ids: str) -> list[dict]:
    """Status records (status.json) of the jobs named, in that order (one ssh command), or of every job on the
    server, oldest first."""
    args = [check_job_id(job_id) for job_id in job_ids if job_id]
    result = target.run(hook("job-status.sh", *args), check=False, what="reading job status")
    _check_unknown(result, target, " or ".join(args), "reading job status")
    return parse_statuses(result.stdout.decode(errors="replace"))


def wait(target: SshTarget, job_id: str, on_progress: Optional[Callable[[dict], None]] = None,
         interval: float = 1.0, deadline: Optional[float] = None) -> int:
    """Poll until the job has ended (a lost SSH connection is retried); its exit code (see exit_code_of).
    TimeoutError once time.monotonic() passes `deadline` with the job still running."""
    check_job_id(job_id)
    failures = 0
    while True:
        try:
            status = statuses(target, job_id)[0]
            failures = 0
        except JobError:
            raise
        except RemoteError:
            failures += 1
            if failures > 30:
                raise
            time.sleep(min(2.0 * failures, 10.0))
            continue
        if on_progress:
            on_progress(status)
        if status["state"] not in ACTIVE:
            return exit_code_of(status)
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError(f"job {job_id} is still {status['state']}: wait again, or cancel it")
        time.sleep(interval if deadline is None else max(0.0, min(interval, deadline - time.monotonic())))
        interval = min(interval * 1.5, 5.0)


def logs(target: SshTarget, job_id: str, follow: bool = False) -> Optional[str]:
    """The job's log as text; with follow=True it is streamed to this process's stdout until the job ends."""
    check_job_id(job_id)
    if follow:
        # Streamed to this terminal as it comes (target.run would capture it).
        result = subprocess.run(target.ssh_argv(hook("job-logs.sh", job_id, "--follow")),
                                stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _check_unknown(result, target, job_id, "following the job's log")
        return None
    result = target.run(hook("job-logs.sh", job_id), check=False, what="reading the job's log")
    _check_unknown(result, target, job_id, "reading the job's log")
    return result.stdout.decode(errors="replace")


def cancel(target: SshTarget, job_id: str) -> dict:
    """Stop the job and return its record (cancelled, or how it had ended before)."""
    check_job_id(job_id)
    result = target.run(hook("job-cancel.sh", job_id), check=False, timeout=120, what="cancelling the job")
    _check_unknown(result, target, job_id, "cancelling the job")
    return parse_statuses(result.stdout.decode(errors="replace"))[-1]


def fetch(target: SshTarget, job_id: str, path: str = "out/", dest: Path = Path(".")) -> Path:
    """Stream `path` of the job folder into dest/, verify every file's sha256, then move it to dest/<path>; that
    path. Nothing is written under the final name before the whole download is verified."""
    check_job_id(job_id)
    relative = check_fetch_path(path)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".fetch-{job_id}-", dir=dest))
    try:
        # The stream goes straight from ssh into tar (no Python in the data path); -i reads on past the first
        # archive's end blocks to the sha256 list that follows it. tar -v names each member as it begins it, so
        # the member before is whole: it is hashed from the page cache on the other core while the rest streams.
        # 128 KiB records, filled from the pipe (-B), halve tar's system time against its 10 KiB default.
        proc = subprocess.Popen(target.ssh_argv(hook("job-fetch.sh", job_id, relative)),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        with tempfile.TemporaryFile() as untar_errors:
            untar = subprocess.Popen(["tar", "-x", "-i", "-v", "--quoting-style=literal", "--read-full-records",
                                      "--blocking-factor=256", "--no-same-owner", "--no-same-permissions",
                                      "-C", str(scratch), "-f", "-"],
                                     stdin=proc.stdout, stdout=subprocess.PIPE, stderr=untar_errors)
            proc.stdout.close()
            hashed = _hash_as_extracted(untar.stdout, scratch)
            untar.wait()
            untar_errors.seek(0)
            untar_stderr = untar_errors.read()
        stderr = proc.stderr.read()
        proc.wait()
        if proc.returncode != 0:
            result = subprocess.CompletedProcess(proc.args, proc.returncode, b"", stderr)
            _check_unknown(result, target, job_id, f"fetching {relative}")
        if untar.returncode != 0:
            why = untar_stderr.decode(errors="replace").strip()[-300:]
            raise JobError(f"fetch of job {job_id}: the download broke off ({why}); nothing was kept, fetch again")
        manifest_file = scratch / MANIFEST
        manifest = manifest_file.read_bytes() if manifest_file.is_file() else b""
        manifest_file.unlink(missing_ok=True)
        digests = _digests(scratch, relative, hashed)
        _verify(manifest, digests, job_id)
        final = dest / relative
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        elif final.exists() or final.is_symlink():
            final.unlink()
        os.rename(scratch / relative, final)
        return final
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _hash_as_extracted(names: IO[bytes], scratch: Path) -> dict[str, str]:
    """sha256 of the regular files tar extracts, each taken (in a thread) once tar has named the next member; the
    last member is left to _digests' pass after tar has ended. A name that comes again is hashed again."""
    futures, previous = {}, None
    with ThreadPoolExecutor(max_workers=1) as pool:
        for line in names:
            if previous is not None:
                path = scratch / previous
                if path.is_file() and not path.is_symlink():
                    futures[previous] = pool.submit(sha256_file, path)
            name = line.rstrip(b"\n").decode(errors="surrogateescape").rstrip("/")
            futures.pop(name, None)
            previous = None if name.startswith("/") or ".." in name.split("/") else name
        return {name: future.result() for name, future in futures.items()}


def _digests(scratch: Path, relative: str, hashed: Optional[dict[str, str]] = None) -> dict[str, str]:
    """sha256 of every regular file received (`hashed`: those taken while the stream ran); links are dropped
    (outputs are files and folders), and anything outside `relative` means the stream was not what was asked for."""
    hashed = hashed or {}
    result = {}
    for path in sorted(scratch.rglob("*")):
        name = path.relative_to(scratch).as_posix()
        inside = name == relative or name.startswith(relative + "/") or relative.startswith(name + "/")
        if not inside:
            raise JobError(f"fetch: the server sent {name!r}, outside {relative}; nothing kept")
        if path.is_symlink():
            path.unlink()
        elif path.is_file():
            result[name] = hashed.get(name) or sha256_file(path)
    return result


def _verify(manifest: bytes, digests: dict[str, str], job_id: str) -> None:
    expected = {}
    for line in manifest.decode(errors="replace").splitlines():
        digest, _, name = line.partition(" ")  # sha256sum: "<hex>  <name>"; openssl dgst -r: "<hex> *<name>"
        expected[name[1:] if name[:1] in ("*", " ") else name] = digest
    if not manifest or expected != digests:
        missing = sorted(set(expected) - set(digests))
        wrong = sorted(n for n in digests if expected.get(n) != digests[n])
        raise JobError(f"fetch of job {job_id}: the download does not match the server's sha256 list (missing "
                       f"{missing[:5]}, different {wrong[:5]}); nothing was kept, fetch again")


def image_for(config, image: Optional[str], on_host: bool) -> Optional[str]:
    """The job's image on a stack: the given one, else the stack's only app's image, else DEFAULT_IMAGE. When the
    stack's apps all run pinned images (repo@sha256:...), a job's image must be pinned too."""
    if on_host:
        if image:
            raise JobError("--image and --on-host exclude each other: a job runs in a container or on the host")
        return None
    apps = list(getattr(config, "apps", None) or [])
    pinned = bool(apps) and all("@sha256:" in app.image for app in apps)
    chosen = image or (apps[0].image if len(apps) == 1 else DEFAULT_IMAGE)
    return check_image(chosen, pinned=pinned)
