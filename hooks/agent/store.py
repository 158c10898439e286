"""Large uploaded files kept on the server (JOBS_STORE): hard links named by their sha256 into the job folders that
received them, so the next upload of the same file leaves it out and gets a checked copy made here instead. An
entry no job folder links any more (its jobs were removed) is dropped."""
from __future__ import annotations

import os
import sys

from . import contract, layout
from .node import Fail

CHUNK = 1 << 20


def check_room(size: int) -> None:
    """The job's files plus a margin for its log and first outputs fit on JOBS_SRV's disk, or nothing is written."""
    os.makedirs(layout.JOBS_SRV, exist_ok=True)
    os.chmod(layout.JOBS_SRV, 0o700)
    disk = os.statvfs(layout.JOBS_SRV)
    available = disk.f_bavail * disk.f_frsize
    if available < size + contract.ROOM_MARGIN:
        raise Fail(f"the job's files ({size} bytes, plus 64 MiB for logs) do not fit: {layout.JOBS_SRV} has "
                   f"{available} bytes free. Remove old job folders there or grow the disk (invoke storage)")


def inside_folder(folder: str, relative: str) -> bool:
    """Is `relative` a path inside `folder`, symbolic links in it resolved?"""
    wrapped = f"/{relative}/"
    if "/../" in wrapped or "/./" in wrapped or wrapped.startswith("//"):
        return False
    base = os.path.realpath(folder)
    return os.path.realpath(os.path.join(folder, relative)).startswith(base + "/")


def read_list(path: str) -> list[tuple[str, str]]:
    """A reuse or store list: "SHA256 PATH" lines; none: empty."""
    try:
        with open(path) as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return []
    return [(line.partition(" ")[0], line.partition(" ")[2]) for line in lines if line]


def copy_checked(source: str, target: str, digest: str) -> bool:
    """Copy `source` to `target`, hashing as it goes: is the copy's sha256 `digest`?"""
    import hashlib  # only here: loading OpenSSL costs a submit without reused files more than its unpacking

    hasher = hashlib.sha256()
    with open(source, "rb") as reader, open(target, "wb") as writer:
        while chunk := reader.read(CHUNK):
            hasher.update(chunk)
            writer.write(chunk)
        os.chmod(target, os.fstat(reader.fileno()).st_mode & 0o755)
    return hasher.hexdigest() == digest


def reuse_files(folder: str) -> bool:
    """Put each file the upload's reuse list names there from JOBS_STORE, checked; False when one is gone or changed
    (the store's file is a hard link into an earlier job's folder, which that job may have changed in place)."""
    for digest, relative in read_list(os.path.join(folder, contract.REUSE_LIST)):
        if not contract.SHA256_RE.match(digest) or not inside_folder(folder, relative):
            raise Fail(f"bad line in the upload's reuse list: {digest} {relative}")
        target = os.path.join(folder, relative)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        stored = os.path.join(layout.JOBS_STORE, digest)
        try:
            same = copy_checked(stored, target, digest)
        except FileNotFoundError:
            return False
        if not same:
            os.unlink(stored)
            return False
    return True


def store_files(folder: str) -> None:
    """Link each uploaded file the upload's store list names into JOBS_STORE."""
    wanted = read_list(os.path.join(folder, contract.STORE_LIST))
    if not wanted:
        return
    os.makedirs(layout.JOBS_STORE, exist_ok=True)
    for digest, relative in wanted:
        path = os.path.join(folder, relative)
        if contract.SHA256_RE.match(digest) and inside_folder(folder, relative) and os.path.isfile(path) \
                and not os.path.islink(path):
            entry = os.path.join(layout.JOBS_STORE, digest)
            if os.path.lexists(entry):
                os.unlink(entry)
            os.link(path, entry)


def forget_unlinked() -> None:
    """Drop the entries no job folder links any more."""
    for name in os.listdir(layout.JOBS_STORE):
        path = os.path.join(layout.JOBS_STORE, name)
        info = os.lstat(path)
        if os.path.isfile(path) and not os.path.islink(path) and info.st_nlink == 1:
            os.unlink(path)


def have(args: list[str]) -> int:
    """BYTES < digests: which of the sha256 digests on stdin the store holds (one per line). BYTES, the whole upload,
    is checked against the free disk first, so a job that cannot fit is refused before its files are hashed."""
    if len(args) != 1 or not args[0].isdigit():
        raise Fail("usage: job-have.sh BYTES < digests")
    check_room(int(args[0]))
    os.makedirs(layout.JOBS_STORE, exist_ok=True)
    forget_unlinked()
    for line in sys.stdin:
        digest = line.strip()
        if contract.SHA256_RE.match(digest) and os.path.isfile(os.path.join(layout.JOBS_STORE, digest)):
            sys.stdout.write(digest + "\n")
            sys.stdout.flush()
    return 0
