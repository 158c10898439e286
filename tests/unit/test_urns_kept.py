"""Deployed stacks keep their resources when the program is reorganised: every URN recorded in
tests/unit/urns_kept.json (the example stacks, a Ray cluster with a data volume, an existing server) is still declared,
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
from tests.unit.helpers import MADE_YOURS, base_config, digest, made_yours, write_private_key

SNAPSHOT = Path(__file__).with_name("urns_kept.json")
IMAGE = "ghcr.io/lab/elif@sha256:" + digest("ab")
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIApC3jxkeASzf6e7cORPKQZB3SdvvaTjJxYsb2XMRYgR"
# Declared by the old program, deliberately gone: the job launch template nothing launched.
REMOVED = ("labstack:index:JobTemplate",)
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
        config = made_yours(read_stack_config(stack))  # the example refuses its placeholders; _forcing puts them back
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
    return hashlib.sha256(_as_recorded(text).encode()).hexdigest()[:16]


def _as_recorded(text: str) -> str:
    """The example stacks' placeholders put back (the record was made from the examples as written), dotted and as
    resource names spell them (100-64-0-0-24)."""
    for placeholder, ours in MADE_YOURS.items():
        text = text.replace(ours, placeholder).replace(ours.replace(".", "-").replace("/", "-"),
                                                       placeholder.replace(".", "-").replace("/", "-"))
    return text


class _Registrations:
    """Every resource the program registers, with its URN and its alias URNs as the engine resolves them.

    Pulumi's mock monitor abbreviates a URN's type chain to the parent's last type, and leaves alias specs to the
    engine; here the chain is rebuilt from the parents, and each alias resolved as the engine does: a spec's name,
    type and parent default to the resource's own; a child answers under each of its parent's aliases too (with the
    parent's old name in place of its own at the front of the child's name, as the SDK's inherited_child_alias)."""

    def __init__(self):
        self.urns: dict[str, str] = {}  # the mock's URN -> the engine's
        self.aliases: dict[str, list[str]] = {}  # the engine's URN -> its alias URNs

    def record(self, request, mock_urn: str) -> None:
        head = "::".join(mock_urn.split("::")[:2])
        name, type_ = request.name, request.type
        parent = self.urns.get(request.parent)  # None: the stack's own child
        urn = _urn(head, parent, type_, name)
        self.urns[mock_urn] = urn
        parent_names = [parent, *self.aliases.get(parent, [])] if parent else [None]
        found = [_urn(head, p, type_, _renamed(name, parent, p)) for p in parent_names[1:]]
        for alias in request.aliases:
            if alias.urn:
                found.append(alias.urn)
                continue
            spec = alias.spec
            alias_name, alias_type = spec.name or name, spec.type or type_
            if spec.noParent:
                found.append(_urn(head, None, alias_type, alias_name))
            elif spec.parentUrn:
                found.append(_urn(head, self.urns[spec.parentUrn], alias_type, alias_name))
            else:
                found += [_urn(head, p, alias_type, _renamed(alias_name, parent, p)) for p in parent_names]
        self.aliases[urn] = sorted(set(found) - {urn})


def _urn(head: str, parent: Optional[str], type_: str, name: str) -> str:
    chain = f"{parent.rsplit('::', 1)[0].split('::', 2)[2]}${type_}" if parent else type_
    return f"{head}::{chain}::{name}"


def _renamed(name: str, parent: Optional[str], parent_alias: Optional[str]) -> str:
    if parent and parent_alias and parent != parent_alias:
        parent_name, alias_name = parent.rsplit("::", 1)[1], parent_alias.rsplit("::", 1)[1]
        if name.startswith(parent_name):
            return alias_name + name[len(parent_name):]
    return name


def declared(home: Path, monkeypatch) -> dict[str, dict]:
    """Per scenario: {urn: {"aliases": [...], "forcing": digest}} of what the program declares now."""
    from pulumi.runtime.mocks import MockMonitor

    register = MockMonitor.RegisterResource
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
        # The test's domain answers with the zone id the example's domain had when the URNs were recorded.
        zone = "Z" + hashlib.sha256(b"my-experiments.org").hexdigest()[:20].upper()
        evaluation = evaluate(config, stack, FakeAws(private_keys=_FixedKeys(), zones={"experiments.test": zone})).ok()
        result[scenario] = {_as_recorded(seen.urns[r.urn]): {
            "aliases": [_as_recorded(alias) for alias in seen.aliases[seen.urns[r.urn]]], "forcing": _forcing(r, home)}
            for r in evaluation.resources if r.urn}
    return result


def test_every_recorded_urn_is_still_declared_with_the_same_replacing_inputs(tmp_path, monkeypatch):
    recorded = json.loads(SNAPSHOT.read_text())
    now = declared(tmp_path, monkeypatch)
    assert set(now) == set(recorded)
    for scenario, old in recorded.items():
        answering, claimed = {}, {}  # every URN the new program answers to -> the replacing inputs; -> by whom
        for urn, found in now[scenario].items():
            for name in (urn, *found["aliases"]):
                answering.setdefault(name, found["forcing"])
                claimed.setdefault(name, []).append(urn)
        # The engine refuses two resources answering to one URN.
        assert {name: by for name, by in claimed.items() if len(by) > 1} == {}, scenario
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
