"""Small facts about this machine and its files, asked in one place: a free local port, a file's digest, a KEY=VALUE
argument split."""
from __future__ import annotations

import hashlib
import socket
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a tunnel or a local server)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def sha256_file(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def key_value(item: str, flag: str, error: type[Exception], example: str = "KEY=VALUE") -> tuple[str, str]:
    """`KEY=VALUE` as given to a repeatable flag (--env, --build-arg): raises `error` naming the flag and the item."""
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise error(f"{flag} {item!r}: expected KEY=VALUE, e.g. {flag} {example}")
    return key, value
