"""Deployed stacks keep their resources when the program is reorganised: every URN recorded in
snapshots/urns.json (the example stacks, a Ray cluster with a data volume, an existing server) is still declared,
under its own URN or as one of a resource's aliases, with the same inputs that force a replacement.

The snapshot was recorded from the program as it was deployed; regenerate it only for a change that is meant to
rename or replace something (and say so in the changelog):  venv/bin/python -m tests.unit.test_urns_kept
"""
from __future__ import annotations

import hashlib
import base64
import json
import sys
from pathlib import Path
from typing import Optional

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from labstack.stacks.offline import FakeAws, evaluate
from labstack.stacks.stackfile import PROJECT_DIR, read_stack_config
from tests.unit.helpers import base_config, write_private_key

SNAPSHOT = Path(__file__).parent / "snapshots" / "urns.json"
IMAGE = "ghcr.io/lab/elif@sha256:" + "ab" * 32
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIApC3jxkeASzf6e7cORPKQZB3SdvvaTjJxYsb2XMRYgR"
# Declared by the old program, deliberately gone: the job launch template nothing launched.
REMOVED = ("aws:ec2/launchTemplate:LaunchTemplate",)
# Only a command's triggers replace it (DESIGN.md, Pulumi facts); AWS updates tags in place.
COMMANDS = ("command:remote:Command", "command:local:Command")
IN_PLACE = ("tags", "tagsAll")


def _key(seed: str) -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed.encode()).digest())


class _FixedKeys(dict):
    """The tls keys FakeAws "generates", the same on every run (derived from the resource name)."""

    def __contains__(self, name) -> bool:
        return True

    def __missing__(self, name: str) -> str:
        self[name] = _fixed_text(_key(name))
        return self[name]


def _fixed_text(key: ed25519.Ed25519PrivateKey) -> str:
    """The key in OpenSSH form with its two random check words zeroed, so the same key gives the same text (the ray
    token is derived from that text, as it is from the state's)."""
    lines = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                              serialization.NoEncryption()).decode().splitlines()
    raw = bytearray(base64.b64decode("".join(lines[1:-1])))
    offset = len(b"openssh-key-v1\0")
    for _ in range(3):  # cipher, kdf, kdf options
        offset += 4 + int.from_bytes(raw[offset:offset + 4], "big")
    offset += 4  # the number of keys
    offset += 4 + int.from_bytes(raw[offset:offset + 4], "big")  # the public key
    raw[offset + 4:offset + 12] = bytes(8)  # the private section's length, then its two check words
    body = base64.b64encode(bytes(raw)).decode()
    return "\n".join([lines[0], *(body[i:i + 70] for i in range(0, len(body), 70)), lines[-1], ""])


def _scenarios(home: Path) -> dict[str, tuple[dict, str]]:
    pem = home / ".ssh" / "labstack_ed25519"
    pem.parent.mkdir(parents=True, exist_ok=True)
    write_private_key(pem, _key("operator"))
    found = {}
    for stack in ("paris-batch2", "tokyo-pilot"):
        config = read_stack_config(stack)
        config["labstack:serverPem"] = str(pem)
        found[stack] = (config, stack)
    found["ray-cluster"] = (base_config(
        pem, network="create", cluster={"workers": 2}, dashboardPassword="hunter2-hunter2",
        dataVolume={"sizeGb": 50}, autoStop={"idleMinutes": 45}, apps={"elif": {"image": IMAGE}}), "sweep")
    found["plain-cluster"] = (base_config(pem, cluster={"workers": 1, "engine": "none"}, autoStop=True), "batch")
    found["existing-server"] = (base_config(pem, **{
        "aws:region": None, "dnsHost": None, "sshCidrs": None, "apps": {"elif": {"image": IMAGE}},
        "existingServer": {"host": "lab-server.uni.example", "hostKey": HOST_KEY}}), "lab")
    return found


def _forcing(resource, home: Path) -> Optional[str]:
    """A digest of the inputs that replace the resource when they change (None for a component)."""
    if not resource.custom:
        return None
    if resource.type in COMMANDS:
        inputs = {"triggers": resource.inputs.get("triggers")}
    else:
        inputs = {k: v for k, v in resource.inputs.items() if k not in IN_PLACE}
    text = json.dumps(inputs, sort_keys=True, default=str).replace(str(home), "<home>").replace(
        str(PROJECT_DIR), "<project>")
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class _Registrations:
    """Every resource the program registers, with its URN and alias URNs as the engine would form them.

    Pulumi's mock monitor abbreviates a URN's type chain to the parent's last type; the engine keeps the whole chain
    (stack::project::Cluster$Node$aws:ec2/instance:Instance::name), so the chain is rebuilt here from the parents."""

    def __init__(self):
        self.urns: dict[str, str] = {}  # the mock's URN -> the engine's
        self.aliases: dict[str, list[str]] = {}  # the engine's URN -> its alias URNs

    def record(self, request, mock_urn: str) -> None:
        prefix, name = mock_urn.rsplit("::", 1)
        head = "::".join(prefix.split("::")[:2])
        chain = request.type
        mock_parent = real_parent = ""
        if request.parent and "::pulumi:pulumi:Stack::" not in request.parent:
            mock_parent = request.parent.rsplit("::", 1)[0].split("::", 2)[2]
            real_parent = self.urns[request.parent].rsplit("::", 1)[0].split("::", 2)[2]
            chain = f"{real_parent}${request.type}"
        urn = f"{head}::{chain}::{name}"
        self.urns[mock_urn] = urn
        fixed = []
        for alias in request.aliasURNs:
            alias_prefix, alias_name = alias.rsplit("::", 1)
            alias_chain = alias_prefix.split("::", 2)[2]
            if mock_parent and alias_chain.startswith(mock_parent + "$"):  # formed from the parent's mock URN
                alias_chain = real_parent + alias_chain[len(mock_parent):]
            fixed.append(f"{head}::{alias_chain}::{alias_name}")
        self.aliases[urn] = fixed


def declared(home: Path, monkeypatch) -> dict[str, dict]:
    """Per scenario: {urn: {"aliases": [...], "forcing": digest}} of what the program declares now."""
    from pulumi.runtime.mocks import MockMonitor
    from pulumi.runtime.proto import resource_pb2

    deployment_info = MockMonitor.GetDeploymentInfo
    register = MockMonitor.RegisterResource

    def without_alias_specs(monitor, request):
        # Older engines take aliases as URNs the SDK computes (with those a parent's alias gives its children), so
        # the aliases are read here as the engine resolves them.
        info = deployment_info(monitor, request)
        kept = [f for f in info.supportedFeatures if f != resource_pb2.RESOURCE_MONITOR_FEATURE_ALIAS_SPECS]
        return resource_pb2.DeploymentInfo(supportedFeatures=kept)

    monkeypatch.setattr(MockMonitor, "GetDeploymentInfo", without_alias_specs)
    monkeypatch.setenv("HOME", str(home))
    result = {}
    for scenario, (config, stack) in _scenarios(home).items():
        seen = _Registrations()

        def recording(monitor, request, seen=seen):
            response = register(monitor, request)
            if request.type != "pulumi:pulumi:Stack":
                seen.record(request, response.urn)
            return response

        monkeypatch.setattr(MockMonitor, "RegisterResource", recording)
        evaluation = evaluate(config, stack, FakeAws(private_keys=_FixedKeys())).ok()
        result[scenario] = {seen.urns[r.urn]: {"aliases": sorted(seen.aliases[seen.urns[r.urn]]),
                                               "forcing": _forcing(r, home)}
                            for r in evaluation.resources if r.urn}
    return result


def test_every_recorded_urn_is_still_declared_with_the_same_replacing_inputs(tmp_path, monkeypatch):
    recorded = json.loads(SNAPSHOT.read_text())
    now = declared(tmp_path, monkeypatch)
    assert set(now) == set(recorded)
    for scenario, old in recorded.items():
        answering = {}  # every URN the new program answers to -> the resource's replacing inputs
        for urn, found in now[scenario].items():
            for name in (urn, *found["aliases"]):
                answering.setdefault(name, found["forcing"])
        missing = [urn for urn in old if urn not in answering and not any(t in urn for t in REMOVED)]
        assert missing == [], f"{scenario}: renamed or gone"
        replaced = [urn for urn, was in old.items() if urn in answering and answering[urn] != was["forcing"]]
        assert replaced == [], f"{scenario}: would be replaced"
    assert sum(map(len, recorded.values())) > 150  # the scenarios really ran


def _write_snapshot() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as home, pytest.MonkeyPatch.context() as monkeypatch:
        found = declared(Path(home), monkeypatch)
    SNAPSHOT.write_text(json.dumps({s: {urn: {"forcing": v["forcing"]} for urn, v in sorted(urns.items())}
                                    for s, urns in found.items()}, indent=1) + "\n")
    print(f"wrote {SNAPSHOT}: {sum(map(len, found.values()))} URNs", file=sys.stderr)


if __name__ == "__main__":
    _write_snapshot()
