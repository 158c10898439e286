"""Stack config validation: every bad value gives one line naming the key, the value and the fix."""
from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa

from components.config import DEFAULT_AMI_SSM_PATH, DEFAULT_INSTANCE_TYPE, ConfigError, load_stack_config
from components.config.cloud import zone_candidates
from ops.offline import FakeAws, evaluate
from tests.unit.helpers import base_config, write_private_key

PINNED = "registry.example.org/lab/elif@sha256:" + "0f" * 32

# (overrides, key named in the message, fragment of the fix)
BAD_INPUTS = [
    ({"serverName": "Paris_Batch2"}, "labstack:serverName", "lower-case letters"),
    ({"serverName": "paris batch"}, "labstack:serverName", "dashes"),
    ({"aws:region": None}, "aws:region", "pulumi config set aws:region"),
    ({"aws:region": "paris"}, "aws:region", "region code"),
    ({"instanceType": "large"}, "labstack:instanceType", "m7i.large"),
    ({"instanceType": "m7g.large"}, "labstack:instanceType", "ARM (Graviton)"),
    ({"storageGb": "lots"}, "labstack:storageGb", "whole number"),
    ({"storageGb": "4"}, "labstack:storageGb", "between 8 and 16384"),
    ({"desiredState": "paused"}, "labstack:desiredState", "`running` or `stopped`"),
    ({"ami": "ubuntu-24.04"}, "labstack:ami", "ami-0123456789abcdef0"),
    ({"keyPair": "lab\tkey"}, "labstack:keyPair", "printable ASCII"),
    ({"serverPem": None}, "no SSH key", "labstack:serverPem"),
    ({"serverPem": "/nonexistent/id_ed25519"}, "labstack:serverPem", "ssh-keygen -t ed25519"),
    ({"securityGroup": "default"}, "labstack:securityGroup", "sg-0123456789abcdef0"),
    ({"securityGroup": "sg-0123456789abcdef0", "ingressPorts": [22]}, "labstack:ingressPorts", "no effect"),
    ({"ingressPorts": [22, 70000]}, "labstack:ingressPorts", "1 to 65535"),
    ({"ingressPorts": [22, 22]}, "labstack:ingressPorts", "twice"),
    ({"ingressCidrs": ["10.0.0.1/8"]}, "labstack:ingressCidrs", "did you mean 10.0.0.0/8"),
    ({"ingressCidrs": ["everyone"]}, "labstack:ingressCidrs", "IPv4 network"),
    ({"ingressIpv6Cidrs": ["0.0.0.0/0"]}, "labstack:ingressIpv6Cidrs", "IPv6 network"),
    ({"network": "vpc-123"}, "labstack:network", "subnet-0123456789abcdef0"),
    ({"network": "create", "vpcCidr": "10.0.0.0/8"}, "labstack:vpcCidr", "/16 and /24"),
    ({"vpcCidr": "10.1.0.0/16"}, "labstack:vpcCidr", "only used with labstack:network = create"),
    ({"dnsHost": "localhost"}, "labstack:dnsHost", "at least two labels"),
    ({"dnsHost": "*.my-experiments.org"}, "labstack:dnsHost", "wildcard"),
    ({"dnsHost": "elif_lab.org"}, "labstack:dnsHost", "letters, digits and dashes"),
    ({"dnsZoneId": "zone-1"}, "labstack:dnsZoneId", "Z0123456789ABCDEFGHIJ"),
    ({"tags": ["a", "b"]}, "labstack:tags", "map of tag names"),
    ({"tags": {"aws:owner": "me"}}, "labstack:tags.aws:owner", "reserved"),
    ({"tags": {"Name": "x"}}, "labstack:tags.Name", "reserved"),
    ({"instanceTyp": "t3.micro"}, "labstack:instanceTyp", "unknown key"),
    ({"instancetype": "t3.micro"}, "labstack:instancetype", "did you mean labstack:instanceType"),
    ({"apps": {"elif": {"image": "lab/elif:latest"}}}, "labstack:apps.elif.image", "invoke build push"),
    ({"apps": {"elif": {}}}, "labstack:apps.elif.image is not set", "invoke build push"),
    ({"apps": {"Elif": {"image": PINNED}}}, "labstack:apps.Elif", "lower-case letters"),
    ({"apps": {"elif": {"image": PINNED, "port": "web"}}}, "labstack:apps.elif.port", "whole number"),
    ({"apps": {"elif": {"image": PINNED, "workers": 2}}}, "labstack:apps.elif.workers", "workerCommand"),
    ({"apps": {"elif": {"image": PINNED, "env": {"DATABASE_URL": "x"}}}}, "labstack:apps.elif.env.DATABASE_URL",
     "set by labstack"),
    ({"apps": {"elif": {"image": PINNED, "env": {"2FA": "x"}}}}, "labstack:apps.elif.env.2FA", "letters, digits"),
    ({"apps": {"elif": {"image": PINNED, "healthPath": "health"}}}, "labstack:apps.elif.healthPath", "/health"),
    ({"apps": {"elif": {"image": PINNED, "replicas": 2}}}, "labstack:apps.elif.replicas", "unknown app setting"),
    ({"appSecrets": {"other": {"TOKEN": "x"}}}, "labstack:appSecrets.other", "names no app"),
    ({"apps": {"elif": {"image": PINNED, "postDeploy": {"path": "/launch", "command": "x"}}}},
     "labstack:apps.elif.postDeploy", "exactly one of `path`"),
    ({"apps": {"elif": {"image": PINNED, "postDeploy": {"path": "/launch", "when": "sometimes"}}}},
     "labstack:apps.elif.postDeploy.when", "`first`"),
    ({"apps": {"elif": {"image": PINNED, "postDeploy": {"path": "/launch", "method": "FETCH"}}}},
     "labstack:apps.elif.postDeploy.method", "GET, POST"),
    ({"apps": {"elif": {"image": PINNED, "initRun": "0"}}}, "labstack:apps.elif.initRun", "between 1 and"),
    ({"logViewer": "true"}, "labstack:logViewer is true but labstack:dashboardPassword", "--secret"),
    ({"tls": "letsencrypt"}, "labstack:tls", "`acme`"),
    ({"acmeEmail": "lab"}, "labstack:acmeEmail", "email address"),
    ({"existingServer": {"host": "lab.example.org"}}, "labstack:existingServer", "hostKey"),
    ({"existingServer": {"host": "lab.example.org", "hostKey": "not a key"}}, "labstack:existingServer.hostKey",
     "ssh-ed25519"),
]


@pytest.mark.parametrize("overrides, key, fix", BAD_INPUTS, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD_INPUTS)])
def test_bad_input_names_key_value_and_fix(pem, overrides, key, fix):
    with pytest.raises(ConfigError) as caught:
        load_stack_config(base_config(pem, **overrides), stack="paris-batch2")
    assert len(caught.value.problems) == 1, caught.value.problems
    problem = caught.value.problems[0]
    assert key in problem and fix in problem, problem
    value = overrides.get(key.removeprefix("labstack:"), overrides.get(key))
    if isinstance(value, str):  # the bad value itself is quoted back
        assert repr(value.lower() if key == "labstack:dnsHost" else value) in problem, problem
    elif isinstance(value, list):
        assert any(str(item) in problem for item in value), problem


def test_all_problems_are_reported_together(pem):
    with pytest.raises(ConfigError) as caught:
        load_stack_config(base_config(pem, instanceType="huge", storageGb="0", desiredState="off"), stack="s")
    assert [p.split(" ")[0] for p in caught.value.problems] == [
        "labstack:instanceType", "labstack:storageGb", "labstack:desiredState"]
    assert "3 problem(s)" in str(caught.value)


def test_defaults(pem):
    cfg = load_stack_config(base_config(pem), stack="paris-batch2")
    assert cfg.server_name == "paris-batch2"
    assert cfg.instance_type == DEFAULT_INSTANCE_TYPE
    assert cfg.storage_gb == 32
    assert cfg.desired_state == "running"
    assert cfg.ami == DEFAULT_AMI_SSM_PATH
    assert cfg.firewall.ports == (22, 80, 443, 5000)
    assert cfg.firewall.cidrs == ("0.0.0.0/0",) and cfg.firewall.ipv6_cidrs == ("::/0",)
    assert cfg.network.mode == "default"


def test_group_readable_key_is_refused_with_chmod_hint(tmp_path):
    path = tmp_path / "id_ed25519"
    write_private_key(path, mode=0o640)
    with pytest.raises(ConfigError) as caught:
        load_stack_config(base_config(path), stack="s")
    assert f"chmod 400 {path}" in caught.value.problems[0]


def test_dsa_key_is_refused_with_reason(tmp_path):
    from cryptography.hazmat.primitives import serialization
    path = tmp_path / "id_dsa"
    key = dsa.generate_private_key(key_size=1024)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
    os.chmod(path, 0o400)
    with pytest.raises(ConfigError) as caught:
        load_stack_config(base_config(path), stack="s")
    assert "DSA keys are refused" in caught.value.problems[0] and "too weak" in caught.value.problems[0]


def test_short_rsa_key_is_refused(tmp_path):
    path = tmp_path / "id_rsa"
    write_private_key(path, rsa.generate_private_key(public_exponent=65537, key_size=1024))
    with pytest.raises(ConfigError) as caught:
        load_stack_config(base_config(path), stack="s")
    assert "1024 bits is too weak" in caught.value.problems[0]


@pytest.mark.parametrize("make_key", [
    lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    lambda: ec.generate_private_key(ec.SECP256R1()),
], ids=["rsa-2048", "ecdsa-p256"])
def test_rsa_and_ecdsa_keys_are_accepted(tmp_path, make_key):
    path = tmp_path / "key"
    public = write_private_key(path, make_key())
    assert load_stack_config(base_config(path), stack="s").key_pair.public_key == public


def test_encrypted_key_says_what_to_do(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    path = tmp_path / "id_ed25519"
    path.write_bytes(ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.BestAvailableEncryption(b"secret")))
    os.chmod(path, 0o600)
    with pytest.raises(ConfigError) as caught:
        load_stack_config(base_config(path), stack="s")
    assert "passphrase" in caught.value.problems[0] and "labstack:keyPair" in caught.value.problems[0]


def test_zone_candidates_longest_first():
    assert zone_candidates("elif.my-experiments.org") == ["elif.my-experiments.org", "my-experiments.org"]


# --- checks that need AWS's answers, evaluated through the program under mocks ---

def test_storage_smaller_than_image_is_refused_before_any_resource(pem):
    result = evaluate(base_config(pem, storageGb="16"), "s", FakeAws(ami_root_size_gb=30))
    assert isinstance(result.error, ConfigError)
    assert "labstack:storageGb = '16'" in str(result.error) and "at least 30" in str(result.error)
    assert result.resources == []


def test_missing_ssm_parameter_is_a_config_error(pem):
    path = "/aws/service/canonical/ubuntu/server/99.04/stable/current/amd64/hvm/ebs-gp3/ami-id"
    result = evaluate(base_config(pem, ami=path), "s", FakeAws(missing_ssm_paths={path}))
    assert isinstance(result.error, ConfigError)
    assert "labstack:ami" in str(result.error) and "SSM parameter could not be read" in str(result.error)
    assert result.resources == []


def test_arm_ami_with_x86_type_is_refused(pem):
    arm = DEFAULT_AMI_SSM_PATH.replace("/amd64/", "/arm64/")
    result = evaluate(base_config(pem, ami=arm, instanceType="m7i.large"), "s")
    assert isinstance(result.error, ConfigError) and "is arm64" in str(result.error)
    assert evaluate(base_config(pem, ami=arm, instanceType="m7g.large"), "s").error is None


def test_dns_host_without_zone_is_refused(pem):
    result = evaluate(base_config(pem), "s", FakeAws(zones={"other-lab.org": "ZOTHER"}))
    assert isinstance(result.error, ConfigError)
    assert "no public Route53 hosted zone" in str(result.error) and "my-experiments.org" in str(result.error)
    assert result.resources == []


def test_zone_id_that_cannot_hold_host_is_refused(pem):
    result = evaluate(base_config(pem, dnsZoneId="ZOTHER"), "s", FakeAws(zones={"other-lab.org": "ZOTHER"}))
    assert isinstance(result.error, ConfigError) and "cannot hold elif.my-experiments.org" in str(result.error)


def test_unknown_subnet_is_refused(pem):
    result = evaluate(base_config(pem, network="subnet-0123456789abcdef0"), "s",
                      FakeAws(subnets={"subnet-00000000000000000": "vpc-1"}))
    assert isinstance(result.error, ConfigError) and "subnet not found" in str(result.error)


def test_secret_values_never_appear_in_error_messages(pem):
    raw = base_config(pem, apps={"elif": {"image": PINNED, "env": {"TOKEN": "plain"}}},
                      appSecrets={"elif": {"TOKEN": "SUPERSECRET1", "DATABASE_URL": "SUPERSECRET2"}},
                      dashbordPassword="SUPERSECRET3")
    raw["labstack:tags"] = "SUPERSECRET4"  # a value the stack marked --secret, in the wrong shape
    with pytest.raises(ConfigError) as caught:
        load_stack_config(raw, stack="s", secret_keys={"labstack:tags"})
    text = str(caught.value)
    assert "SUPERSECRET" not in text, text
    assert text.count("'[secret]'") == 4 and "labstack:dashbordPassword" in text


def test_yaml_booleans_stay_as_written_in_env(pem):
    cfg = load_stack_config(base_config(pem, apps={"elif": {"image": PINNED, "env": {"DEBUG": False, "RATE": 1.5}}}),
                            stack="s")
    assert dict(cfg.apps[0].env) == {"DEBUG": "false", "RATE": "1.5"}
