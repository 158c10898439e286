"""Small builders shared by the mocks tests."""
from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519


def write_private_key(path: Path, key=None, mode: int = 0o600) -> str:
    """Write an OpenSSH private key file and return its public half in OpenSSH form."""
    key = key or ed25519.Ed25519PrivateKey.generate()
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                       serialization.NoEncryption()))
    os.chmod(path, mode)
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode()


def base_config(pem: Path, **overrides) -> dict:
    config = {
        "aws:region": "eu-west-3",
        "labstack:serverPem": str(pem),
        "labstack:dnsHost": "elif.my-experiments.org",
    }
    config.update({k if ":" in k else f"labstack:{k}": v for k, v in overrides.items()})
    return {k: v for k, v in config.items() if v is not None}

