"""Stream a path of a job's folder as a tar on stdout, followed by a second tar holding MANIFEST (the sha256 of every
file), so the operator side verifies what it received. Paths outside the job folder are refused."""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import threading

from . import contract, records
from .node import Fail

CHUNK = 1 << 20


def resolve(job_id: str, path: str) -> str:
    """The job-folder-relative path to send, refused unless it names something inside the job folder."""
    relative = path[:-1] if path.endswith("/") else path
    wrapped = f"/{relative}/"
    if wrapped == "//" or "/../" in wrapped or "/./" in wrapped:
        raise Fail(f"fetch path '{path}' must name a file or folder inside the job folder, e.g. out/")
    if relative.startswith("/"):
        raise Fail(f"fetch path '{path}' must be relative to the job folder, e.g. out/")
    folder = os.path.realpath(records.job_dir(job_id))
    real = os.path.realpath(os.path.join(folder, relative))
    if not real.startswith(folder + "/"):
        raise Fail(f"fetch path '{path}' leads outside the job folder")
    if not os.path.lexists(real):
        raise Fail(f"job {job_id} has no {relative} (yet)")
    return relative


def files_under(folder: str, relative: str) -> list[str]:
    """Regular files (not links) at or under `relative`, job-folder-relative, sorted."""
    top = os.path.join(folder, relative)
    if not os.path.isdir(top) or os.path.islink(top):
        return [relative] if os.path.isfile(top) and not os.path.islink(top) else []
    found = []
    for directory, _, names in os.walk(top):
        for name in names:
            path = os.path.join(directory, name)
            if os.path.isfile(path) and not os.path.islink(path):
                found.append(os.path.relpath(path, folder))
    return sorted(found)


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while size := handle.readinto(buffer):
            digest.update(view[:size])
    return digest.hexdigest()


def manifest_tar(lines: str) -> bytes:
    data = lines.encode(errors="surrogateescape")
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as archive:
        info = tarfile.TarInfo(contract.MANIFEST)
        info.size, info.mode = len(data), 0o644
        archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def fetch(args: list[str]) -> int:
    """ID PATH > out.tar."""
    if len(args) != 2:
        raise Fail("usage: job-fetch.sh ID PATH")
    job_id = records.need_job(args[0])
    relative = resolve(job_id, args[1])
    folder = records.job_dir(job_id)
    # Hashed in a thread while tar streams (the page cache serves the second read; hashlib leaves the other core
    # to tar and ssh), then sent as a second archive: the reader reads on past the first one's end blocks.
    digests: dict[str, str] = {}

    def hash_all() -> None:
        for name in files_under(folder, relative):
            digests[name] = sha256_of(os.path.join(folder, name))

    hasher = threading.Thread(target=hash_all)
    hasher.start()
    # 128 KiB records (the reader's size): a twelfth of the writes into ssh's pipe of tar's 10 KiB default.
    streamed = subprocess.run(["tar", "-c", "--blocking-factor=256", "-f", "-", "-C", folder, relative],
                              stdin=subprocess.DEVNULL)
    hasher.join()
    if streamed.returncode != 0:
        raise Fail(f"sending {relative} failed (tar exit {streamed.returncode})", streamed.returncode)
    lines = "".join(f"{digests[name]}  {name}\n" for name in sorted(digests))
    sys.stdout.buffer.write(manifest_tar(lines))
    sys.stdout.buffer.flush()
    return 0
