"""SSH keys in the stack file: the operator's private key (`labstack:serverPem`) and an existing server's host key."""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from components.config.values import problem


@dataclass(frozen=True)
class KeyFile:
    """A readable private key file and its OpenSSH public half."""

    path: Path
    public_key: str


def key_file(pem: str) -> KeyFile:
    """`labstack:serverPem` as written (`~` allowed), checked the way ssh itself would check it."""
    path = Path(os.path.expanduser(pem))
    refusals: list[str] = []
    public_key = read_public_key(path, refusals.append)
    if public_key is None:
        raise problem(refusals[0], shown=pem)
    return KeyFile(path=path, public_key=public_key)


def host_key_line(host_key: str) -> str:
    """The `type base64` part of an OpenSSH public key line, after checking that it is one."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import load_ssh_public_key

    line = " ".join(host_key.split()[:2])
    try:
        load_ssh_public_key(line.encode())
    except (ValueError, UnsupportedAlgorithm):
        raise problem("expected an OpenSSH public key line such as `ssh-ed25519 AAAA…`, as in the server's "
                      "/etc/ssh/ssh_host_ed25519_key.pub", shown=host_key) from None
    return line

def keygen(path: Path) -> str:
    """The command that makes a key at `path`, its folder first (~/.ssh may not exist yet; ssh wants it private)."""
    return f"mkdir -p -m 700 {path.parent} && ssh-keygen -t ed25519 -f {path}"


def read_public_key(path: Path, fail: Callable[[str], None]) -> Optional[str]:
    """The OpenSSH public half of a local private key, after the checks ssh itself would make."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa

    if path.is_dir():
        fail(f"{path} is a directory; give the private key file in it, e.g. {path / 'id_ed25519'}")
        return None
    if not path.is_file():
        fail(f"no such file {path}; create one with `{keygen(path)}`")
        return None
    # The public half first: a .pub is world-readable by design, and "chmod" would be the wrong advice for it.
    data = path.read_bytes()
    if data.lstrip().startswith((b"ssh-", b"ecdsa-sha2-", b"sk-")):  # an OpenSSH public key line
        private = path.with_suffix("") if path.suffix == ".pub" else None
        fail("this is the public half of a key; labstack needs the private one" +
             (f": drop the .pub ({private})" if private else " (the file without .pub)"))
        return None
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        fail(f"the key is readable by others (mode {mode:o}); ssh will refuse it: run `chmod 400 {path}`")
        return None
    key = None
    for loader in (serialization.load_ssh_private_key, serialization.load_pem_private_key):
        try:
            key = loader(data, password=None)
            break
        except TypeError:  # encrypted: cryptography asks for the password
            fail("the key is protected by a passphrase; labstack cannot read it: import its .pub as an EC2 key pair "
                 "and set labstack:keyPair instead, or use an unencrypted deploy key")
            return None
        except (ValueError, UnsupportedAlgorithm):
            continue
    if key is None:
        fail("not a private key labstack can read (expected OpenSSH or PEM format)")
        return None
    if isinstance(key, dsa.DSAPrivateKey):
        fail("DSA keys are refused: EC2 does not accept them and OpenSSH disabled them as too weak; "
             f"make an Ed25519 key with `{keygen(path.with_name('labstack_ed25519'))}`")
        return None
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < 2048:
        fail(f"RSA key of {key.key_size} bits is too weak; use at least 2048 bits or `ssh-keygen -t ed25519`")
        return None
    if not isinstance(key, (rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey)):
        fail(f"unsupported key type {type(key).__name__}; use Ed25519, RSA (2048+) or ECDSA")
        return None
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return public.decode()
