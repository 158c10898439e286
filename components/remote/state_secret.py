"""Secrets the program makes once and keeps in the stack's state: the Ray token and the dashboard key."""
from __future__ import annotations

import hashlib
from typing import Optional

import pulumi
import pulumi_tls as tls


def state_secret(resource_name: str, purpose: bytes,
                 opts: Optional[pulumi.ResourceOptions] = None) -> pulumi.Output[str]:
    """64 hex characters, the same on every update, new for a new stack.

    Derived from a generated ED25519 key (pulumi-tls, already pinned): 256 bits of randomness made once and stored
    encrypted in the state, so the value never appears in the program's source, a command line or a file the
    program writes. PURPOSE separates values drawn from one kind of key."""
    seed = tls.PrivateKey(resource_name, algorithm="ED25519", opts=opts)
    return pulumi.Output.secret(seed.private_key_openssh.apply(
        lambda key: hashlib.sha256(purpose + b"\0" + key.encode()).hexdigest()))


def dashboard_key(name: str) -> pulumi.Output[str]:
    """The key of the dashboard password's bcrypt salts and of Ray's login mark (components/render/proxy.py): random,
    so neither is a function of the password; kept in the state, so a redeploy renders the same site files."""
    return state_secret(f"{name}-dashboard-key", b"labstack dashboard key")
