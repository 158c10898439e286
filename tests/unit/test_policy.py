"""The policy pack (policy/): every rule against what the real program declares under Pulumi mocks, for the example
stacks and for stacks made to break one rule each; then the pack itself, served as the Pulumi CLI serves it and asked
over its gRPC protocol, so the wiring (names, enforcement levels, settings) is what is tested, not a copy of it."""
from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
import yaml
from google.protobuf import json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from labstack.stacks.check import policy_resources
from labstack.stacks.offline import FakeAws, evaluate
from labstack.stacks.stackfile import list_stacks, read_stack_config
from policy import rules
from policy.rules import RULES, Resource
from tests.unit.helpers import base_config, made_yours, write_private_key

PROJECT = Path(__file__).resolve().parents[2]
STACK = "paris-batch2"
MANDATORY = {rule.name for rule in RULES if rule.mandatory}
ENCRYPT_FIX = "Fix: keep encrypted=True in ROOT_VOLUME (components/aws/baseline.py); no stack key turns it off"
IMDS_FIX = ("Fix: keep METADATA in components/aws/baseline.py (http_tokens required, hop limit 1); no stack key "
            "changes it")


def stack_resources(config: dict, stack: str = STACK) -> list[Resource]:
    """What the engine hands the pack for this stack: each resource the program declares, with its inputs, and the
    default AWS provider, which takes its region from the stack's aws:region."""
    return policy_resources(evaluate(config, stack, FakeAws()).ok(), config["aws:region"])


def violations(resources: list[Resource], **settings) -> dict[str, list[str]]:
    """Each failing rule's messages; `settings` maps a rule's name to its policy config."""
    found: dict[str, list[str]] = {}
    for rule, message in rules.violations(resources, settings):
        found.setdefault(rule.name, []).append(message)
    return found


def mandatory(found: dict[str, list[str]]) -> dict[str, list[str]]:
    return {name: messages for name, messages in found.items() if name in MANDATORY}


def edited(resources: list[Resource], type_: str, change) -> list[Resource]:
    """The same stack with the one resource of this type changed: what a config cannot express."""
    assert [r.type for r in resources].count(type_) == 1, type_
    result = []
    for r in resources:
        if r.type == type_:
            props = copy.deepcopy(dict(r.props))
            change(props)
            r = Resource(r.type, r.name, props)
        result.append(r)
    return result


def closed_config(pem: Path, **overrides) -> dict:
    """The example's server with nothing but web ports open to the world and SSH only from the lab's network."""
    settings = dict(instanceType="m7i.large", ingressPorts=[22, 80, 443], ingressCidrs=["100.64.0.0/24"],
                    ingressIpv6Cidrs=[])
    settings.update(overrides)
    return base_config(pem, **settings)


@pytest.fixture
def closed(pem) -> list[Resource]:
    return stack_resources(closed_config(pem))


# --- the example stacks -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", list_stacks())
def test_every_example_stack_passes_every_mandatory_policy(stack, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # the stack files name keys under ~/.ssh: make them exist
    config = made_yours(read_stack_config(stack))  # the example refuses its placeholders
    if "labstack:serverPem" in config:
        pem = tmp_path / ".ssh" / config["labstack:serverPem"].removeprefix("~/.ssh/")
        pem.parent.mkdir()
        write_private_key(pem)
    resources = stack_resources(config, stack)
    # The rules had something to check: the node and the firewall's rules.
    types = [r.type for r in resources]
    assert types.count(rules.INSTANCE) == 1
    assert types.count(rules.INGRESS_RULE) >= 3
    assert mandatory(violations(resources)) == {}


def test_a_closed_stack_passes_every_policy(closed):
    assert violations(closed) == {}


def test_ssh_open_to_the_world_is_advisory(pem):
    found = violations(stack_resources(closed_config(pem, sshCidrs=["0.0.0.0/0", "::/0"])))
    assert found == {"ssh-not-open-to-world": [
        "paris-batch2-in-22-ipv4-any: SSH (22) is open to the world (0.0.0.0/0). Fix: list only your own networks "
        "in labstack:sshCidrs",
        "paris-batch2-in-22-ipv6-any: SSH (22) is open to the world (::/0). Fix: list only your own networks in "
        "labstack:sshCidrs"]}


# --- no data port open to the world (config can express it) -------------------------------------------------------

@pytest.mark.parametrize("port", [5432, 6379, 8265, 10001, 2375, 2376, 6380, 6381, 6382, 6383, 6384, 52365])
def test_a_data_port_open_to_the_world_fails_only_that_rule(pem, port):
    found = violations(stack_resources(closed_config(pem, ingressPorts=[22, 80, 443, port],
                                                     ingressCidrs=["0.0.0.0/0"])))
    assert mandatory(found) == {"no-data-ports-open-to-world": [
        f"paris-batch2-in-{port}-ipv4-any: opens {rules.DATA_PORTS[port]} ({port}) to the world (0.0.0.0/0). "
        f"Fix: remove {port} from labstack:ingressPorts, or list only your own networks in labstack:ingressCidrs; "
        "reach these services over SSH or through Caddy"]}


def test_a_data_port_open_to_the_ipv6_world_names_the_ipv6_key(pem):
    found = violations(stack_resources(closed_config(pem, ingressPorts=[22, 80, 443, 5432],
                                                     ingressIpv6Cidrs=["::/0"])))
    assert mandatory(found) == {"no-data-ports-open-to-world": [
        "paris-batch2-in-5432-ipv6-any: opens Postgres (5432) to the world (::/0). Fix: remove 5432 from "
        "labstack:ingressPorts, or list only your own networks in labstack:ingressIpv6Cidrs; reach these services "
        "over SSH or through Caddy"]}


@pytest.mark.parametrize("cidrs, key, names", [
    (["0.0.0.0/1", "128.0.0.0/1"], "ingressCidrs", ["0-0-0-0-1", "128-0-0-0-1"]),
    (["::/1", "8000::/1"], "ingressIpv6Cidrs", ["xx-1", "8000xx-1"])])
def test_networks_that_cover_the_world_together_are_the_world(pem, cidrs, key, names):
    found = violations(stack_resources(closed_config(pem, ingressPorts=[22, 80, 443, 5432], sshCidrs=cidrs,
                                                     **{key: cidrs})))
    family = "IPv6" if ":" in cidrs[0] else "IPv4"
    assert found["no-data-ports-open-to-world"] == [
        f"paris-batch2-in-5432-{name}: opens Postgres (5432) to the world ({cidr}, which with {other} covers every "
        f"{family} address). Fix: remove 5432 from labstack:ingressPorts, or list only your own networks in "
        f"labstack:{key}; reach these services over SSH or through Caddy"
        for name, cidr, other in zip(names, cidrs, reversed(cidrs))]
    assert found["ssh-not-open-to-world"] == [
        f"paris-batch2-in-22-{name}: SSH (22) is open to the world ({cidr}, which with {other} covers every {family} "
        "address). Fix: list only your own networks in labstack:sshCidrs"
        for name, cidr, other in zip(names, cidrs, reversed(cidrs))]


def test_halves_of_different_ports_are_no_world(pem):
    resources = stack_resources(closed_config(pem, ingressPorts=[22, 80, 443], ingressCidrs=["0.0.0.0/1"]))
    other_half = Resource(rules.SECURITY_GROUP_RULE, "redis-half", {
        "type": "ingress", "protocol": "tcp", "fromPort": 6379.0, "toPort": 6379.0, "cidrBlocks": ["128.0.0.0/1"]})
    assert "no-data-ports-open-to-world" not in violations(resources + [other_half])


def test_a_data_port_open_to_a_lab_network_passes(pem):
    assert violations(stack_resources(closed_config(pem, ingressPorts=[22, 80, 443, 5432]))) == {}


def test_inline_and_classic_rules_and_port_ranges_count(closed):
    group = next(r for r in closed if r.type == rules.SECURITY_GROUP)
    inline = Resource(rules.SECURITY_GROUP, "legacy-sg", {**group.props, "ingress": [
        {"protocol": "tcp", "fromPort": 6379.0, "toPort": 6379.0, "cidrBlocks": ["10.0.0.0/8", "0.0.0.0/0"]},
        {"protocol": "udp", "fromPort": 5432.0, "toPort": 5432.0, "cidrBlocks": ["0.0.0.0/0"]}]})
    ranged = Resource(rules.SECURITY_GROUP_RULE, "docker-range", {
        "type": "ingress", "protocol": "tcp", "fromPort": 2000.0, "toPort": 3000.0, "ipv6CidrBlocks": ["::/0"]})
    everything = Resource(rules.SECURITY_GROUP_RULE, "all-open", {
        "type": "ingress", "protocol": "-1", "fromPort": 0.0, "toPort": 0.0, "cidrBlocks": ["0.0.0.0/0"]})
    egress = Resource(rules.SECURITY_GROUP_RULE, "all-out", {
        "type": "egress", "protocol": "-1", "fromPort": 0.0, "toPort": 0.0, "cidrBlocks": ["0.0.0.0/0"]})
    found = violations(closed + [inline, ranged, everything, egress])
    assert found == {
        "no-data-ports-open-to-world": [
            "legacy-sg: opens Redis (also Ray's GCS) (6379) to the world (0.0.0.0/0). Fix: close those ports, or "
            "narrow the rule's cidrBlocks to your own networks; reach these services over SSH or through Caddy",
            "docker-range: opens Docker's API (plain) (2375), Docker's API (TLS) (2376) to the world (::/0). Fix: "
            "close those ports, or narrow the rule's ipv6CidrBlocks to your own networks; reach these services over "
            "SSH or through Caddy",
            "all-open: opens " + ", ".join([*(f"{service} ({port})" for port, service in rules.DATA_PORTS.items()),
                                            "Ray's worker processes (11000-11999)"])
            + " to the world (0.0.0.0/0). Fix: close those ports, or narrow the rule's cidrBlocks to your own "
            "networks; reach these services over SSH or through Caddy"],
        "ssh-not-open-to-world": [
            "all-open: SSH (22) is open to the world (0.0.0.0/0). Fix: narrow the rule's cidrBlocks to your own "
            "networks"]}


# --- encryption, IMDS and tags (what the config cannot turn off: the declared resources are edited) ----------------

def test_an_unencrypted_root_volume_fails_only_encryption(closed):
    resources = edited(closed, rules.INSTANCE, lambda p: p["rootBlockDevice"].update(encrypted=False))
    assert violations(resources) == {"ebs-encrypted": [
        f"paris-batch2-instance: its root volume is not encrypted. {ENCRYPT_FIX}"]}


def test_volumes_and_snapshot_copies_must_be_encrypted(closed):
    tags = next(r for r in closed if r.type == rules.INSTANCE).props["tags"]
    plain = Resource(rules.VOLUME, "data", {"size": 100.0, "availabilityZone": "eu-west-3a", "tags": tags})
    copied = Resource(rules.SNAPSHOT_COPY, "data-copy", {"sourceSnapshotId": "snap-1", "sourceRegion": "eu-west-3"})
    assert violations(closed + [plain, copied]) == {"ebs-encrypted": [
        "data: the EBS volume is not encrypted. Fix: set encrypted=True on it",
        "data-copy: the snapshot copy is not encrypted. Fix: set encrypted=True on it"]}
    sealed = [Resource(plain.type, plain.name, {**plain.props, "encrypted": True}),
              Resource(copied.type, copied.name, {**copied.props, "encrypted": True})]
    assert violations(closed + sealed) == {}


def test_snapshots_follow_their_volume(closed):
    tags = next(r for r in closed if r.type == rules.INSTANCE).props["tags"]
    sealed = Resource(rules.VOLUME, "data", {"encrypted": True, "tags": tags})
    snapshot = Resource(rules.SNAPSHOT, "data-snap", {"volumeId": "vol-1"}, {"volumeId": ["data"]})
    assert violations(closed + [sealed, snapshot]) == {}
    # A snapshot of a volume from elsewhere, once created, says itself whether it is encrypted.
    foreign = Resource(rules.SNAPSHOT, "old-snap", {"volumeId": "vol-2", "encrypted": False})
    assert violations(closed + [foreign]) == {"ebs-snapshot-encrypted": [
        "old-snap: a snapshot of its volume, which is not encrypted, is not encrypted either. Fix: encrypt the "
        "volume (encrypted=True on it), or snapshot an encrypted aws.ebs.SnapshotCopy instead"]}
    plain = Resource(rules.VOLUME, "data", {"encrypted": False, "tags": tags})
    assert violations(closed + [plain, snapshot])["ebs-snapshot-encrypted"] == [
        "data-snap: a snapshot of data, which is not encrypted, is not encrypted either. Fix: encrypt the volume "
        "(encrypted=True on it), or snapshot an encrypted aws.ebs.SnapshotCopy instead"]


def test_a_hop_limit_above_1_fails_only_imds(closed):
    resources = edited(closed, rules.INSTANCE, lambda p: p["metadataOptions"].update(httpPutResponseHopLimit=2.0))
    assert violations(resources) == {"imdsv2-hop-limit-1": [
        "paris-batch2-instance: an IMDSv2 token can travel 2 hops, so containers can get one (httpPutResponseHopLimit must be 1). "
        + IMDS_FIX]}


def test_imdsv1_or_no_metadata_options_fail_imds(closed):
    optional = edited(closed, rules.INSTANCE, lambda p: p["metadataOptions"].update(httpTokens="optional"))
    assert violations(optional) == {"imdsv2-hop-limit-1": [
        "paris-batch2-instance: the metadata service accepts requests without an IMDSv2 token "
        "(httpTokens='optional'). " + IMDS_FIX]}
    unset = violations(edited(closed, rules.INSTANCE, lambda p: p.pop("metadataOptions")))
    assert list(unset) == ["imdsv2-hop-limit-1"] and len(unset["imdsv2-hop-limit-1"]) == 2
    disabled = edited(closed, rules.INSTANCE, lambda p: p.update(metadataOptions={"httpEndpoint": "disabled"}))
    assert violations(disabled) == {}


def test_a_missing_instance_tag_fails_only_tags(closed):
    resources = edited(closed, rules.INSTANCE, lambda p: p["tags"].pop("labstack:creator"))
    assert violations(resources) == {"stack-and-creator-tags": [
        f"paris-batch2-instance: the instance lacks the tag(s) labstack:creator. Fix: {rules.TAGS_FIX}"]}


def test_a_missing_root_volume_tag_fails_only_tags(closed):
    resources = edited(closed, rules.INSTANCE, lambda p: p["rootBlockDevice"]["tags"].pop("labstack:stack"))
    assert violations(resources) == {"stack-and-creator-tags": [
        f"paris-batch2-instance: its root volume lacks the tag(s) labstack:stack. Fix: {rules.TAGS_FIX}"]}


def test_an_untagged_volume_fails_only_tags(closed):
    found = violations(closed + [Resource(rules.VOLUME, "data", {"encrypted": True, "tags": {"Name": "data"}})])
    assert found == {"stack-and-creator-tags": [
        f"data: the volume lacks the tag(s) labstack:stack, labstack:creator. Fix: {rules.TAGS_FIX}"]}


# --- advisory allow-lists -----------------------------------------------------------------------------------------

def test_an_instance_type_outside_the_allow_list_is_advisory(pem):
    found = violations(stack_resources(closed_config(pem, instanceType="p4d.24xlarge")))
    allowed = ", ".join(rules.DEFAULT_INSTANCE_TYPES)
    assert found == {"instance-type-allowed": [
        f"{name}: instance type p4d.24xlarge is not in the policy's allow-list ({allowed}). Fix: set "
        "labstack:instanceType to an allowed type, or add it to allowed_instance_types in policy/config.json"
        for name in ("paris-batch2-instance",)]}
    settings = {"instance-type-allowed": {"allowed_instance_types": ["p4d.*"]}}
    assert violations(stack_resources(closed_config(pem, instanceType="p4d.24xlarge")), **settings) == {}


def test_a_region_outside_the_allow_list_is_advisory(pem):
    resources = stack_resources(closed_config(pem, **{"aws:region": "us-east-1"}))
    assert violations(resources) == {"region-allowed": [
        f"default: region us-east-1 is outside the allowed regions ({', '.join(rules.DEFAULT_REGIONS)}), "
        "where the data may have to stay. Fix: set aws:region to an allowed region, or add it to allowed_regions in "
        "policy/config.json"]}
    assert violations(resources, **{"region-allowed": {"allowed_regions": ["us-east-1"]}}) == {}


def test_instances_priced_above_the_labs_cap_are_advisory(pem):
    """By the price the program tags each instance with at creation: a GPU type in Paris ($3.06/h in us-east-1,
    times Paris's ratio 0.112 / 0.096)."""
    resources = stack_resources(closed_config(pem, instanceType="p3.2xlarge"))
    found = violations(resources, **{"instance-type-allowed": {"allowed_instance_types": ["p3.*"]},
                                     "hourly-price-cap": {"max_hourly_usd": 3}})
    assert found == {"hourly-price-cap": [
        "paris-batch2-instance: the stack's instances cost $3.5701/h (their labstack:hourly-usd tags), above the "
        "lab's cap of $3.00/h. Fix: set a smaller labstack:instanceType (or fewer or smaller workers, or "
        "labstack:spot with a lower maxPrice), or raise max_hourly_usd in policy/config.json"]}
    assert "hourly-price-cap" not in violations(resources)  # under the default cap, $5/h
    spot = stack_resources(closed_config(pem, instanceType="p3.2xlarge", spot={"maxPrice": 1.5}))
    assert "hourly-price-cap" not in violations(spot, **{"hourly-price-cap": {"max_hourly_usd": 3}})


# --- the pack, served as the Pulumi CLI serves it -----------------------------------------------------------------

@pytest.fixture
def analyzer():
    """policy/ run exactly as the Pulumi CLI's Python host runs a policy pack (`python -u -m pulumi.policy ENGINE
    PROGRAM`): it serves the analyzer protocol on a loopback port it prints first."""
    pack = subprocess.Popen([sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", "policy"], cwd=PROJECT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = pack.stdout.readline().strip()
        assert port.isdigit(), pack.stderr.read()
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        pack.kill()
        pack.wait(timeout=30)


def _struct(props) -> struct_pb2.Struct:
    return json_format.ParseDict(props, struct_pb2.Struct())


def _diagnostics(response) -> list[tuple[str, int, str]]:
    return [(d.policyName, d.enforcementLevel, d.message) for d in response.diagnostics]


def test_the_pack_declares_every_rule_with_its_enforcement_level(analyzer):
    info = analyzer.GetAnalyzerInfo(analyzer_pb2.google_dot_protobuf_dot_empty__pb2.Empty())
    assert info.name == "labstack"
    levels = {p.name: p.enforcementLevel for p in info.policies}
    assert levels == {
        "ebs-encrypted": analyzer_pb2.MANDATORY, "ebs-snapshot-encrypted": analyzer_pb2.MANDATORY,
        "imdsv2-hop-limit-1": analyzer_pb2.MANDATORY, "stack-and-creator-tags": analyzer_pb2.MANDATORY,
        "no-data-ports-open-to-world": analyzer_pb2.MANDATORY, "ssh-not-open-to-world": analyzer_pb2.ADVISORY,
        "instance-type-allowed": analyzer_pb2.ADVISORY, "region-allowed": analyzer_pb2.ADVISORY,
        "hourly-price-cap": analyzer_pb2.ADVISORY}
    kinds = {p.name: p.policy_type for p in info.policies}
    assert {n for n, k in kinds.items() if k == analyzer_pb2.POLICY_TYPE_STACK} == {
        "ebs-snapshot-encrypted", "region-allowed", "hourly-price-cap", "no-data-ports-open-to-world",
        "ssh-not-open-to-world"}  # the world may be opened by several rules together
    schema = {p.name: json_format.MessageToDict(p.configSchema) for p in info.policies}
    assert schema["instance-type-allowed"]["properties"]["allowed_instance_types"]["default"] == list(
        rules.DEFAULT_INSTANCE_TYPES)
    assert schema["region-allowed"]["properties"]["allowed_regions"]["default"] == list(rules.DEFAULT_REGIONS)
    assert schema["hourly-price-cap"]["properties"]["max_hourly_usd"] == {
        "type": "number", "default": 5.0, "description": "USD per hour for all the instances of one stack"}


def test_the_pack_stops_an_unencrypted_instance(analyzer, closed):
    instance = next(r for r in closed if r.type == rules.INSTANCE)
    request = dict(type=instance.type, name=instance.name, urn=f"urn:pulumi:{STACK}::labstack::{instance.type}::x")
    assert _diagnostics(analyzer.Analyze(analyzer_pb2.AnalyzeRequest(**request, properties=_struct(
        instance.props)))) == []
    unencrypted = edited([instance], rules.INSTANCE, lambda p: p["rootBlockDevice"].update(encrypted=False))[0]
    response = analyzer.Analyze(analyzer_pb2.AnalyzeRequest(**request, properties=_struct(unencrypted.props)))
    rule = next(r for r in RULES if r.name == "ebs-encrypted")
    assert _diagnostics(response) == [("ebs-encrypted", analyzer_pb2.MANDATORY,
                                       f"{rule.description}\nparis-batch2-instance: its root volume is not "
                                       f"encrypted. {ENCRYPT_FIX}")]


def test_the_pack_checks_regions_and_snapshots_of_the_stack_and_reads_its_config(analyzer):
    def resource(type_, name, props, provider_region=None, **dependencies):
        provider = analyzer_pb2.AnalyzerProviderResource(
            type=rules.AWS_PROVIDER, name="default_7_51_1", urn="urn:provider",
            properties=_struct({"region": provider_region})) if provider_region else None
        return analyzer_pb2.AnalyzerResource(
            type=type_, name=name, urn=f"urn:{name}", properties=_struct(props), provider=provider,
            propertyDependencies={k: analyzer_pb2.AnalyzerPropertyDependencies(urns=[f"urn:{v}"])
                                  for k, v in dependencies.items()})

    stack = analyzer_pb2.AnalyzeStackRequest(resources=[
        resource(rules.VOLUME, "data", {"encrypted": False}, "us-east-1"),
        resource(rules.SNAPSHOT, "data-snap", {"volumeId": "vol-1"}, "us-east-1", volumeId="data")])
    found = {name: (level, message.split("\n")[1]) for name, level, message in _diagnostics(
        analyzer.AnalyzeStack(stack))}
    assert found == {
        "ebs-snapshot-encrypted": (analyzer_pb2.MANDATORY, rules.snapshots_encrypted([
            Resource(rules.VOLUME, "data", {"encrypted": False}),
            Resource(rules.SNAPSHOT, "data-snap", {}, {"volumeId": ["data"]})])[0]),
        "region-allowed": (analyzer_pb2.ADVISORY, rules.region_allowed([
            Resource(rules.AWS_PROVIDER, "default_7_51_1", {"region": "us-east-1"})])[0])}
    # What `--policy-pack-config policy/config.json` hands the pack.
    analyzer.Configure(analyzer_pb2.ConfigureAnalyzerRequest(policyConfig={"region-allowed": analyzer_pb2.PolicyConfig(
        enforcementLevel=analyzer_pb2.ADVISORY, properties=_struct({"allowed_regions": ["us-east-1"]}))}))
    assert [d.policyName for d in analyzer.AnalyzeStack(stack).diagnostics] == ["ebs-snapshot-encrypted"]


# --- the pack's set-up ----------------------------------------------------------------------------------------------

def _pins(path: Path) -> dict[str, str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return dict(line.split("==") for line in lines if "==" in line)


def test_the_pack_uses_the_projects_virtualenv_and_pins():
    pack = yaml.safe_load((PROJECT / "policy" / "PulumiPolicy.yaml").read_text())
    project = yaml.safe_load((PROJECT / "Pulumi.yaml").read_text())
    assert pack["runtime"]["name"] == "python"
    assert (PROJECT / "policy" / pack["runtime"]["options"]["virtualenv"]).resolve() == \
        (PROJECT / project["runtime"]["options"]["virtualenv"]).resolve()
    pack_pins, project_pins = _pins(PROJECT / "policy" / "requirements.txt"), _pins(PROJECT / "requirements.txt")
    assert set(pack_pins) == {"pulumi", "pulumi-policy"}
    assert {name: project_pins.get(name) for name in pack_pins} == pack_pins
