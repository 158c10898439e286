"""Fixtures for end-to-end deploys (a pytest plugin, see tests/conftest.py): the example app's images in the test bed
registry, and stacks aimed at test bed hosts."""
from __future__ import annotations

import io
import subprocess
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from labstack import images
from labstack.stacks.offline import FakeAws, evaluate
from tests.e2e.engine import RemoteEngine, evaluate_with_dependencies

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "app"
DNS_HOST = "elif.experiments.test"
ZONES = {"experiments.test": "ZMYEXPERIMENTS"}


@dataclass
class ExampleImages:
    """The example app pushed to the test bed registry, pinned by digest: v1, v2 and a broken variant."""

    v1: str
    v2: str
    broken: str


def _derived_image(client, base: str, repository: str, tag: str, instructions: str) -> images.BuiltImage:
    dockerfile = f"FROM {base}\n{instructions}\n".encode()
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    context.seek(0)
    for chunk in client.api.build(fileobj=context, custom_context=True, tag=f"{repository}:{tag}", decode=True):
        if "error" in chunk:
            raise RuntimeError(chunk["error"])
    return images.BuiltImage(repository, tag, source_hash="", reused=False)


@pytest.fixture(scope="session")
def example_images(testbed, registry_service):
    """Built once per session on a build host's engine with labstack.images (as `invoke build push` does)."""
    host = testbed.new_host()
    try:
        host.forward_port(registry_service.port)
        client = host.docker_client()
        repository = f"{registry_service.address}/labstack/example"
        v1 = images.build(client, EXAMPLE, repository)
        v1_ref = images.push(client, v1)
        v2 = _derived_image(client, v1.reference, repository, "v2", "ENV APP_VERSION=v2")
        broken = _derived_image(client, v1.reference, repository, "broken", "ENV EXAMPLE_BREAK_HEALTH=1")
        result = ExampleImages(v1=v1_ref, v2=images.push(client, v2), broken=images.push(client, broken))
        client.close()
        return result
    finally:
        testbed.stop_host(host)


@dataclass
class Stack:
    """One stack aimed at a test bed host: evaluate under mocks, apply the remote commands over SSH."""

    name: str
    host: object
    config: dict
    aws: FakeAws
    engine: RemoteEngine = field(default_factory=RemoteEngine)

    @property
    def exports(self) -> Path:
        return Path(self.config["labstack:exportsDir"])

    def evaluate(self):
        return evaluate(self.config, self.name, self.aws).ok()

    def up(self):
        # As `pulumi up`: independent commands run concurrently, each after what it depends on.
        return self.engine.apply(*evaluate_with_dependencies(self.config, self.name, self.aws))

    def https(self, path: str = "/", host: str = DNS_HOST, method: str = "GET", data: str | None = None,
              timeout: float = 10, auth: str | None = None,
              headers: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
        """curl through the host's Caddy with the real name (SNI and Host), trusting Caddy's internal CA (-k);
        curl's own error (no HTTP answer) on stderr."""
        argv = ["curl", "-sSk", "--max-time", str(timeout), "--resolve", f"{host}:443:{self.host.ip}",
                "-X", method, "-w", "\n%{http_code}", f"https://{host}{path}"]
        if data is not None:
            argv += ["--data-binary", data]
        if auth is not None:
            argv += ["-u", auth]
        for header in headers:
            argv += ["-H", header]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 5)

    def status_and_body(self, path: str = "/", **kwargs) -> tuple[int, str]:
        result = self.https(path, **kwargs)
        body, _, code = result.stdout.rpartition("\n")
        return int(code or 0), body

    def wait_serving(self, path: str = "/health", seconds: float = 90, **kwargs) -> tuple[int, str]:
        deadline = time.monotonic() + seconds
        status, body = 0, ""
        while time.monotonic() < deadline:
            status, body = self.status_and_body(path, **kwargs)
            if status == 200:
                return status, body
            time.sleep(1)
        raise AssertionError(f"{path} did not answer 200 within {seconds}s: {status} {body[:300]}")


@pytest.fixture
def make_stack(testbed, registry_service, tmp_path):
    """Factory: a test bed host plus a stack config deploying `apps` to it (EC2 mode, host key via cloud-init).
    Exports go to the test's own folder; the hosts are stopped after the test."""
    hosts = []

    def make(apps: dict, name: str = "paris-batch2", **extra) -> Stack:
        host_key = _new_host_key()
        host = testbed.new_host(host_key=host_key)
        hosts.append(host)
        host.forward_port(registry_service.port)
        config = {
            "aws:region": "eu-west-3",
            "labstack:serverPem": str(host.key_path),  # the login key the test bed's ubuntu user trusts
            "labstack:dnsHost": DNS_HOST,
            "labstack:tls": "internal",  # no ACME here: Caddy's own CA
            "labstack:sshCidrs": ["0.0.0.0/0"],  # the test bed's own network
            "labstack:apps": apps,
            "labstack:exportsDir": str(tmp_path / "exports"),
            **extra,
        }
        aws = FakeAws(zones=dict(ZONES), public_ips=[host.ip], private_keys={f"{name}-host-key": host_key})
        return Stack(name, host, config, aws)

    yield make
    for host in hosts:
        testbed.stop_host(host)


def _new_host_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()).decode()
