"""Deterministic file bundles sent to a server on a remote command's stdin (base64 of a tar.gz).

Deterministic bytes matter: Pulumi re-runs a remote command when its stdin changes, so the same files must give
the same bundle on every `pulumi up` (fixed mtimes, owners and order; gzip without a timestamp).
"""
from __future__ import annotations

import base64
import gzip
import io
import tarfile
from pathlib import Path
from typing import Mapping, Union

Content = Union[str, bytes]


def make_bundle(files: Mapping[str, Content], modes: Mapping[str, int] | None = None) -> str:
    modes = modes or {}
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            data = files[name].encode() if isinstance(files[name], str) else files[name]
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, modes.get(name, 0o644)
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    return base64.b64encode(gzip.compress(raw.getvalue(), mtime=0)).decode()


def read_bundle(bundle: str) -> dict[str, bytes]:
    """The files in a bundle, to inspect what a server receives (the tests read bundles with it)."""
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(base64.b64decode(bundle)))) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def directory_files(directory: Path) -> dict[str, bytes]:
    """Every file under `directory` but Python's byte-code caches (made wherever the node agent is imported, e.g. by
    the tests: they would change the bundle, and so re-run the step, without any source changing)."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}
