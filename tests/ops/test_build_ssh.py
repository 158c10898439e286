"""invoke build with the SSH agent (BuildKit `--ssh default`) against a test bed engine: the build's RUN step sees
the agent's key, and no byte of the key (private or public) is in any layer of the image."""
from __future__ import annotations

import base64
import io
import os
import signal
import subprocess
import tarfile
from pathlib import Path

import pytest

from labstack import images

pytestmark = pytest.mark.testbed

# Lists the agent's identities over SSH_AUTH_SOCK (the agent protocol: REQUEST_IDENTITIES = 11, answer 12) and
# keeps only their SHA256 fingerprints, as `ssh-keygen -l` prints them: proof the agent was visible, without the key.
AGENT_LIST = r'''
import base64, hashlib, os, socket, struct
s = socket.socket(socket.AF_UNIX); s.connect(os.environ["SSH_AUTH_SOCK"])
s.sendall(struct.pack(">IB", 1, 11))
def read(n):
    data = b""
    while len(data) < n:
        data += s.recv(n - len(data))
    return data
length, kind = struct.unpack(">IB", read(5)); body = read(length - 1); assert kind == 12
count, = struct.unpack(">I", body[:4]); at = 4
for _ in range(count):
    size, = struct.unpack(">I", body[at:at + 4]); blob = body[at + 4:at + 4 + size]; at += 4 + size
    size, = struct.unpack(">I", body[at:at + 4]); at += 4 + size
    print("SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("="))
'''

DOCKERFILE = """FROM python:3.11-slim
COPY agent_list.py marker.txt /build/
RUN --mount=type=ssh python3 /build/agent_list.py > /agent-seen
"""


def docker_cli() -> str:
    """A docker CLI that can run BuildKit with --ssh: one with buildx, or Debian's 20.10 CLI (BuildKit built in)."""
    if subprocess.run(["docker", "buildx", "version"], capture_output=True).returncode == 0:
        return "docker"
    assert Path("/usr/bin/docker").exists(), "no docker CLI with buildx and no 20.10 CLI at /usr/bin/docker"
    return "/usr/bin/docker"


@pytest.fixture
def throwaway_agent(tmp_path):
    """An ssh-agent of this test holding a fresh key; stopped by its PID at the end."""
    key = tmp_path / "throwaway"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "labstack-throwaway", "-f", str(key)],
                   check=True)
    socket_path = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(socket_path)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if socket_path.exists():
                break
            subprocess.run(["sleep", "0.05"])
        env = dict(os.environ, SSH_AUTH_SOCK=str(socket_path))
        subprocess.run(["ssh-add", "-q", str(key)], check=True, env=env, capture_output=True)
        yield key, str(socket_path)
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=10)


def layer_files(saved: bytes):
    """(name, bytes) of every file of every layer tar in a `docker save` archive, and of the archive's own files."""
    with tarfile.open(fileobj=io.BytesIO(saved)) as outer:
        for member in outer.getmembers():
            if not member.isfile():
                continue
            data = outer.extractfile(member).read()
            yield member.name, data
            if member.name.endswith("layer.tar") or tarfile.is_tarfile(io.BytesIO(data)):
                try:
                    with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                        for inner in layer.getmembers():
                            if inner.isfile():
                                yield f"{member.name}:{inner.name}", layer.extractfile(inner).read()
                except tarfile.ReadError:
                    pass


def test_build_forwards_the_agent_and_leaves_no_key_in_any_layer(build_engine, throwaway_agent, tmp_path,
                                                                   monkeypatch):
    key, socket_path = throwaway_agent
    context = tmp_path / "private-deps"
    context.mkdir()
    (context / "Dockerfile").write_text(DOCKERFILE)
    (context / "agent_list.py").write_text(AGENT_LIST)
    marker = b"labstack-layer-search-control-" + os.urandom(8).hex().encode()
    (context / "marker.txt").write_bytes(marker)
    monkeypatch.setenv("DOCKER_HOST", build_engine.testbed_host.docker_url)
    monkeypatch.setenv("SSH_AUTH_SOCK", socket_path)
    monkeypatch.setenv(images.DOCKER_CLI_VARIABLE, docker_cli())
    lines: list[str] = []

    built = images.build(build_engine, context, f"{build_engine.registry}/lab/private", progress=lines.append)

    assert not built.reused and any("--mount=type=ssh" in line for line in lines)  # BuildKit's plain progress
    image = build_engine.images.get(built.reference)
    assert image.labels[images.SOURCE_HASH_LABEL] == built.source_hash
    seen = build_engine.containers.run(built.reference, "cat /agent-seen", remove=True).decode().split()
    fingerprint = subprocess.run(["ssh-keygen", "-lf", f"{key}.pub"], check=True, capture_output=True,
                                 text=True).stdout.split()[1]
    assert seen == [fingerprint]

    private = key.read_bytes()
    private_body = b"".join(private.strip().splitlines()[1:-1])  # the base64 between the PEM armour lines
    public_b64 = key.with_suffix(".pub").read_text().split()[1].encode()
    public_blob = base64.b64decode(public_b64)
    needles = {"private key file": private, "private key base64": private_body, "public key base64": public_b64,
               "public key blob": public_blob, "private key line": private.splitlines()[1]}
    saved = b"".join(image.save())
    files = list(layer_files(saved))
    assert any(data == marker for _, data in files), "the search sees layer contents (the control file is found)"
    assert sum(name.endswith("layer.tar") for name, _ in files) >= 2
    found = [(what, name) for name, data in files for what, needle in needles.items() if needle in data]
    assert found == []


def test_an_ssh_dockerfile_without_an_agent_is_one_clear_error(build_engine, tmp_path, monkeypatch):
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    with pytest.raises(images.ImageError, match=r"RUN --mount=type=ssh\) but SSH_AUTH_SOCK is not set"):
        images.build(build_engine, tmp_path, f"{build_engine.registry}/lab/private")
