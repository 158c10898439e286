"""Small builders shared by the mocks tests."""
from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

T = TypeVar("T")


def digest(seed: str) -> str:
    """64 hex digits shaped like a registry's digest (the SHA-256 of `seed`): the config refuses patterned
    placeholders such as "ab" * 32 as no image anyone pushed."""
    return hashlib.sha256(seed.encode()).hexdigest()


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
        "labstack:dnsHost": "elif.experiments.test",
        "labstack:sshCidrs": ["100.64.0.0/24"],  # required when labstack makes the security group
    }
    config.update({k if ":" in k else f"labstack:{k}": v for k, v in overrides.items()})
    return {k: v for k, v in config.items() if v is not None}


@contextlib.contextmanager
def registered(read: Callable[[Any], T]) -> Iterator[dict[str, list[T]]]:
    """`read(request)` for every resource the program registers with the engine, by name, in order (several
    resources may share a name: the server's components do). Pulumi's mocks keep neither resource options nor
    dependencies, so this listens at the mock monitor."""
    from pulumi.runtime.mocks import MockMonitor

    found: dict[str, list[T]] = {}
    register = MockMonitor.RegisterResource

    def recording(monitor, request):
        found.setdefault(request.name, []).append(read(request))
        return register(monitor, request)

    MockMonitor.RegisterResource = recording
    try:
        yield found
    finally:
        MockMonitor.RegisterResource = register


@contextlib.contextmanager
def recorded_dependencies() -> Iterator[dict[str, set[str]]]:
    """Every resource's dependencies (by name) as the program registers them with the engine: explicit depends_on
    and the resources whose outputs its inputs use. Filled when the block ends."""
    dependencies: dict[str, set[str]] = {}
    with registered(lambda request: {urn.rsplit("::", 1)[1] for urn in request.dependencies}) as seen:
        yield dependencies
    dependencies.update({name: set().union(*found) for name, found in seen.items()})


# The deploy steps and what each must come after; grow-fs and docker both follow ready, in either order.
STEP_PREREQUISITES = {
    "paris-batch2-hooks": [],
    "paris-batch2-ready": ["paris-batch2-hooks"],
    "paris-batch2-docker": ["paris-batch2-ready"],
    "paris-batch2-grow-fs": ["paris-batch2-ready"],
    # the instance metadata service for root on the host only, before any container runs user code
    "paris-batch2-metadata-guard": ["paris-batch2-docker"],
    "paris-batch2-proxy": ["paris-batch2-docker"],
    "paris-batch2-elif-deploy": ["paris-batch2-docker", "paris-batch2-metadata-guard", "paris-batch2-grow-fs",
                                 "paris-batch2-proxy"],
    # labstack:autoStop (off for a stack with apps: the step installs no settings and turns any watcher off)
    "paris-batch2-watcher": ["paris-batch2-docker", "paris-batch2-metadata-guard", "paris-batch2-grow-fs",
                             "paris-batch2-proxy"],
}


def assert_deploy_order(names: list) -> None:
    """Every deploy step once, each after the steps it depends on."""
    assert sorted(names) == sorted(STEP_PREREQUISITES), names
    for step, before in STEP_PREREQUISITES.items():
        assert all(names.index(other) < names.index(step) for other in before), (step, names)


def assert_deploy_dependencies(dependencies: dict[str, set[str]], readiness: str) -> None:
    """Each deploy step depends on the steps it must come after; the first waits for the node's readiness."""
    assert dependencies["paris-batch2-hooks"] >= {readiness}, dependencies["paris-batch2-hooks"]
    for step, before in STEP_PREREQUISITES.items():
        assert dependencies[step] >= set(before), (step, dependencies[step])


# The example stacks' placeholders, which the config refuses until replaced ("make it yours"), and the values tests
# that need a deployable example use instead.
MADE_YOURS = {"198.51.100.0/24": "100.64.0.0/24", "203.0.113.0/24": "100.65.0.0/24", "192.0.2.0/24": "100.66.0.0/24",
              "my-experiments.org": "experiments.test", "ghcr.io/your-lab/": "ghcr.io/psych-lab/"}


def made_yours_text(text: str) -> str:
    for placeholder, ours in MADE_YOURS.items():
        text = text.replace(placeholder, ours)
    return text


def made_yours(config: dict) -> dict:
    """An example stack's config with the test's own network, domain and image repository."""
    import json

    return json.loads(made_yours_text(json.dumps(config)))
