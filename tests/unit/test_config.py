"""Stack config validation: every bad value gives one line naming the key, the value and the fix."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa

from components.config import DEFAULT_AMI_SSM_PATH, DEFAULT_INSTANCE_TYPE, ConfigError, load_stack_config
from components.config.cloud import zone_candidates
from labstack.stacks.offline import FakeAws, evaluate
from tests.unit.helpers import base_config, digest, write_private_key

PINNED = "registry.example.org/lab/elif@sha256:" + digest("0f")

# (overrides, key named in the message, fragment of the fix)
BAD_INPUTS = [
    ({"serverName": "Paris_Batch2"}, "labstack:serverName", "lower-case letters"),
    ({"serverName": "paris batch"}, "labstack:serverName", "dashes"),
    ({"aws:region": None}, "aws:region", "invoke config -s paris-batch2 --set aws:region="),
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
    ({"securityGroup": "sg-0123456789abcdef0", "ingressPorts": [22], "sshCidrs": None}, "labstack:ingressPorts",
     "no effect"),
    ({"ingressPorts": [22, 70000]}, "labstack:ingressPorts", "1 to 65535"),
    ({"ingressPorts": [22, 22]}, "labstack:ingressPorts", "twice"),
    ({"ingressCidrs": ["10.0.0.1/8"]}, "labstack:ingressCidrs", "did you mean 10.0.0.0/8"),
    ({"ingressCidrs": ["everyone"]}, "labstack:ingressCidrs", "IPv4 network"),
    ({"ingressIpv6Cidrs": ["0.0.0.0/0"]}, "labstack:ingressIpv6Cidrs", "IPv6 network"),
    ({"network": "vpc-123"}, "labstack:network", "subnet-0123456789abcdef0"),
    ({"network": "create", "vpcCidr": "10.0.0.0/8"}, "labstack:vpcCidr", "/16 and /24"),
    ({"vpcCidr": "10.1.0.0/16"}, "labstack:vpcCidr", "only used with labstack:network = create"),
    ({"dnsHost": "localhost"}, "labstack:dnsHost", "at least two labels"),
    ({"dnsHost": "*.experiments.test"}, "labstack:dnsHost", "wildcard"),
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
    assert cfg.desired_state == "auto"  # Pulumi leaves the power state alone (docs/lifecycle.md)
    assert cfg.ami == DEFAULT_AMI_SSM_PATH
    assert cfg.firewall.ports == (22, 80, 443)  # no app port: apps are reached through Caddy
    assert cfg.firewall.cidrs == ("0.0.0.0/0",) and cfg.firewall.ipv6_cidrs == ("::/0",)
    assert cfg.firewall.ssh_cidrs == ("100.64.0.0/24",)  # as base_config gives it: there is no default
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
    assert zone_candidates("elif.experiments.test") == ["elif.experiments.test", "experiments.test"]


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
    assert "no public Route53 hosted zone" in str(result.error) and "experiments.test" in str(result.error)
    assert result.resources == []


def test_zone_id_that_cannot_hold_host_is_refused(pem):
    result = evaluate(base_config(pem, dnsZoneId="ZOTHER"), "s", FakeAws(zones={"other-lab.org": "ZOTHER"}))
    assert isinstance(result.error, ConfigError) and "cannot hold elif.experiments.test" in str(result.error)


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
        load_stack_config(raw, stack="s", secret_keys={"labstack:tags", "labstack:appSecrets"})
    text = str(caught.value)
    assert "SUPERSECRET" not in text, text
    assert text.count("'[secret]'") == 4 and "labstack:dashbordPassword" in text


def test_yaml_booleans_stay_as_written_in_env(pem):
    cfg = load_stack_config(base_config(pem, apps={"elif": {"image": PINNED, "env": {"DEBUG": False, "RATE": 1.5}}}),
                            stack="s")
    assert dict(cfg.apps[0].env) == {"DEBUG": "false", "RATE": "1.5"}


# --- the schema's guarantees: our words only, rules beside field problems, typed values ---

ODD_VALUES = [[], {}, 3.5, True, 0, -1, "x", "", "  ", ["a"], {"a": 1}, [{"a": 1}]]


def _problems(raw: dict) -> list[str]:
    try:
        load_stack_config(raw, stack="s")
    except ConfigError as error:
        return error.problems
    return []


@pytest.mark.parametrize("where", ["root", "app", "postDeploy", "existingServer"])
def test_odd_values_get_our_words_and_name_their_key(pem, where):
    from components.config.apps import AppSettings, PostDeployCommand, PostDeployRequest
    from components.config.schema import ExistingServerConfig, StackFile
    host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    cases = {
        "root": (StackFile.setting_keys(), lambda key, value: {**base_config(pem), key: value}, None),
        "app": (AppSettings.setting_keys(), lambda key, value: base_config(
            pem, apps={"elif": {"image": PINNED, key: value}}), "labstack:apps.elif"),
        "postDeploy": (sorted(set(PostDeployRequest.setting_keys()) | set(PostDeployCommand.setting_keys())),
                       lambda key, value: base_config(pem, apps={"elif": {"image": PINNED, "postDeploy": {
                           "path" if key != "path" else "command": "/x", key: value}}}),
                       "labstack:apps.elif.postDeploy"),
        "existingServer": (ExistingServerConfig.setting_keys(), lambda key, value: base_config(
            pem, existingServer={"host": "lab.example.org", "hostKey": host_key, key: value}),
            "labstack:existingServer"),
    }
    keys, make, named = cases[where]
    refused = 0
    for key in keys:
        for value in ODD_VALUES:
            problems = _problems(make(key, value))
            refused += bool(problems)
            for problem in problems:
                assert "Input should" not in problem and "pydantic" not in problem and "[key]" not in problem, problem
                assert (named or key) in problem, (key, value, problem)
            if not isinstance(value, dict):  # a map may both lack a setting and hold an unknown one
                assert len(problems) <= 1, (key, value, problems)
    assert refused > len(keys) * 3  # most odd values are refused (the others are defaults or valid text)


def test_rules_are_reported_beside_field_problems(pem):
    problems = _problems(base_config(pem, storageGb="lots", instanceType="m7g.large", vpcCidr="10.1.0.0/16",
                                     apps={"elif": {"image": PINNED, "workers": 2, "port": "web"}}))
    assert [p.split(" ")[0] for p in problems] == [
        "labstack:instanceType", "labstack:storageGb", "labstack:vpcCidr", "labstack:apps.elif.port",
        "labstack:apps.elif.workers"], problems
    assert "ARM (Graviton)" in problems[0] and "only used with labstack:network = create" in problems[2]


def test_a_rule_never_repeats_a_field_problem(pem):
    # network failed, so the vpcCidr rule (which reads network) does not guess what it meant
    assert _problems(base_config(pem, network="vpc-123", vpcCidr="10.1.0.0/16")) == [
        "labstack:network = 'vpc-123': expected `default` (the region's default VPC), `create` (a new VPC and public "
        "subnet) or an existing subnet id such as subnet-0123456789abcdef0"]


@pytest.mark.parametrize("overrides, problem", [
    ({"dnsHot": "x.org"}, "labstack:dnsHot = 'x.org': unknown key: did you mean labstack:dnsHost?"),
    ({"region": "eu-west-3"}, "labstack:region = 'eu-west-3': unknown key: did you mean aws:region?"),
    ({"apps": {"elif": {"image": PINNED, "workrs": 2}}},
     "labstack:apps.elif.workrs = '2': unknown app setting; did you mean workers?"),
    ({"apps": {"elif": {"image": PINNED, "postDeploy": {"pth": "/launch"}}}},
     "labstack:apps.elif.postDeploy.pth = '/launch': unknown setting; did you mean path?"),
    ({"apps": {"elif": {"image": PINNED, "postDeploy": {"command": "x", "method": "GET"}}}},
     "labstack:apps.elif.postDeploy.method = 'GET': unknown setting; known: command, when"),
    ({"existingServer": {"host": "lab.example.org", "hostkey": "x"}},
     "labstack:existingServer.hostkey = 'x': unknown setting; did you mean hostKey?"),
])
def test_unknown_keys_get_a_hint(pem, overrides, problem):
    assert _problems(base_config(pem, **overrides)) == [problem]


def test_other_providers_keys_are_theirs(pem):
    assert _problems({**base_config(pem), "aws:profile": "lab", "pulumi:template": "x"}) == []


def test_desired_state_auto_is_accepted(pem):
    assert load_stack_config(base_config(pem, desiredState="auto"), stack="s").desired_state == "auto"


def test_secrets_are_typed_and_never_printed(pem):
    cfg = load_stack_config(base_config(pem, apps={"elif": {"image": PINNED}}, dashboardPassword="hunter2-hunter2",
                                        appSecrets={"elif": {"API_TOKEN": "s3cr3t", "RETRIES": 3}}), stack="s")
    secrets = cfg.apps[0].secrets
    assert {name: value.get_secret_value() for name, value in secrets.items()} == {"API_TOKEN": "s3cr3t",
                                                                                  "RETRIES": "3"}
    assert cfg.proxy.dashboard_password.get_secret_value() == "hunter2-hunter2"
    assert "s3cr3t" not in repr(cfg) and "hunter2" not in repr(cfg)


def test_post_deploy_is_a_request_or_a_command(pem):
    from components.config import PostDeployCommand, PostDeployRequest
    request = {"path": "/launch", "method": "put", "expectStatus": "201"}
    cfg = load_stack_config(base_config(pem, apps={
        "a": {"image": PINNED, "postDeploy": request},
        "b": {"image": PINNED, "postDeploy": {"command": "python launch.py", "when": "always"}}}), stack="s")
    hook_a, hook_b = (app.post_deploy for app in cfg.apps)
    assert isinstance(hook_a, PostDeployRequest) and (hook_a.method, hook_a.expect_status, hook_a.command) == (
        "PUT", 201, None)
    assert isinstance(hook_b, PostDeployCommand) and (hook_b.command, hook_b.when, hook_b.path) == (
        "python launch.py", "always", None)


def test_settings_are_frozen(pem):
    cfg = load_stack_config(base_config(pem, apps={"elif": {"image": PINNED}}), stack="s")
    with pytest.raises(Exception, match="frozen"):
        cfg.apps[0].port = 80


def test_config_package_does_not_import_pulumi():
    import subprocess
    import sys
    code = "import sys, components.config; print(sorted(m for m in sys.modules if m.split('.')[0].startswith('pulumi')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout
    assert out.strip() == "[]"


def test_the_program_raises_a_run_error_pulumi_prints_without_traceback(pem):
    import pulumi
    result = evaluate(base_config(pem, storageGb="4"), "s")
    assert isinstance(result.error, ConfigError) and isinstance(result.error, pulumi.RunError)
    assert result.error.problems == ["labstack:storageGb = '4': must be between 8 and 16384 GB"]


def test_a_value_pulumi_marks_secret_stays_masked_in_other_keys_lines(pem):
    raw = base_config(pem, serverPem=None, keyPair="lab-shared", apps={"elif": {"image": PINNED}})
    with pytest.raises(ConfigError) as caught:
        load_stack_config(raw, stack="s", secret_keys={"labstack:keyPair"})
    assert caught.value.problems == [
        "labstack:serverPem is not set: labstack deploys apps over SSH and needs the private key of key pair "
        "'[secret]': `invoke config -s s --set labstack:serverPem=<path>`"]


# --- nothing accepted silently; each case with its exact line --------------------------------------------------------

SSH_CIDRS_NOT_SET = ("labstack:sshCidrs is not set: SSH (22) opens only to the networks you list, e.g. `invoke config "
                     "-s s --set 'labstack:sshCidrs[0]'=<your-address>/32` (your lab's network, or this machine's "
                     "address: `curl -s https://checkip.amazonaws.com`; write 0.0.0.0/0 to open it to the whole "
                     "internet on purpose)")
SAME_HOST = ("is also the host of app a: Caddy refuses two sites of one name and then serves none of the apps; give one "
             "of them another `host`")
PLACEHOLDER = ("is a placeholder digest, not an image anyone pushed: run `invoke build push -s s --app elif` to "
               "build, push and pin the real one")
NOT_SCALAR = ("expected a text, number or boolean; a map or list is no environment value (write it as one quoted text, "
              "e.g. JSON, if the app parses it)")
ZEROS = "ghcr.io/your-lab/elif@sha256:" + "0" * 64
FS = "ghcr.io/your-lab/elif@sha256:" + "f" * 64
AB = "ghcr.io/your-lab/elif@sha256:" + "ab" * 32
COUNTING = "ghcr.io/your-lab/elif@sha256:" + "0123456789abcdef" * 4
RAYS_SITE = ("is where this cluster serves Ray's dashboard (a Ray cluster with labstack:dashboardPassword has the site "
             "ray.<host>); Caddy refuses two sites of one name and then serves neither: give the app another `host`")
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"

EXACT = [
    ({"apps": {"a": {"image": PINNED, "host": "@"}, "b": {"image": PINNED, "host": "elif.experiments.test"}}},
     f"labstack:apps.b.host = 'elif.experiments.test': {SAME_HOST}"),
    ({"apps": {"a": {"image": PINNED}, "b": {"image": PINNED, "host": "A"}}},  # a label, in another case
     f"labstack:apps.b.host = 'a.elif.experiments.test': {SAME_HOST}"),
    ({"apps": {"elif": {"image": ZEROS}}}, f"labstack:apps.elif.image = '{ZEROS}': {PLACEHOLDER}"),
    ({"apps": {"elif": {"image": FS}}}, f"labstack:apps.elif.image = '{FS}': {PLACEHOLDER}"),
    ({"apps": {"elif": {"image": AB}}}, f"labstack:apps.elif.image = '{AB}': {PLACEHOLDER}"),
    ({"apps": {"elif": {"image": COUNTING}}}, f"labstack:apps.elif.image = '{COUNTING}': {PLACEHOLDER}"),
    ({"cluster": {"workers": 1}, "dashboardPassword": "correct-horse-battery", "apps": {"ray": {"image": PINNED}}},
     f"labstack:apps.ray.host = 'ray.elif.experiments.test': {RAYS_SITE}"),
    ({"cluster": {"workers": 1}, "dashboardPassword": "correct-horse-battery", "dnsHost": None,
      "apps": {"elif": {"image": PINNED, "host": "Ray"}}}, f"labstack:apps.elif.host = 'ray.<ip>.nip.io': {RAYS_SITE}"),
    ({"apps": {"elif": {"image": PINNED, "volumes": {"uploads": "/app/uploads", "files": "/app/uploads/"}}}},
     "labstack:apps.elif.volumes.files = '/app/uploads': is also the path of volume uploads: Docker refuses two "
     "mounts on one path (and only after the server exists); give each volume its own path"),
    ({"tags": {f"t{i}": "x" for i in range(44)}},
     "labstack:tags has 44 tags: AWS allows 50 per resource and labstack adds up to 7 of its own (Name, "
     "labstack:stack, labstack:project, labstack:role, labstack:creator, a worker's labstack:index and "
     "labstack:hourly-usd), so at most 43: remove 1"),
    ({"existingServer": {"host": "203.0.113.9", "hostKey": HOST_KEY}, "sshCidrs": None, "desiredState": "stopped"},
     "labstack:desiredState = 'stopped': has no effect with labstack:existingServer: labstack never powers a server "
     "it did not make on or off (`invoke stop` refuses too); remove it, and stop the server where it runs"),
    ({"aws:region": "eu-west-9"}, "aws:region = 'eu-west-9': AWS has no region of that name; did you mean eu-west-3?"),
    ({"aws:region": "eu-wset-3"}, "aws:region = 'eu-wset-3': AWS has no region of that name; did you mean eu-west-3?"),
    ({"instanceType": "m7i.lage"},
     "labstack:instanceType = 'm7i.lage': AWS has no EC2 instance type of that name; did you mean m7i.large?"),
    ({"instanceType": "t3.huge"}, "labstack:instanceType = 't3.huge': AWS has no EC2 instance type of that name"),
    ({"apps": {"elif": {"image": PINNED, "env": {"OPTS": {"a": 1}}}}},
     f"labstack:apps.elif.env.OPTS = '{{\"a\": 1}}': {NOT_SCALAR}"),
    ({"apps": {"elif": {"image": PINNED, "env": {"HOSTS": ["a", "b"]}}}},
     f"labstack:apps.elif.env.HOSTS = '[\"a\", \"b\"]': {NOT_SCALAR}"),
    ({"apps": {"elif": {"image": PINNED, "env": {"EMPTY": None}}}},
     "labstack:apps.elif.env.EMPTY = 'null': has no value; write '' for an empty one"),
    ({"labstak:instanceType": "t3.micro"}, "labstak:instanceType = 't3.micro': unknown key: did you mean "
                                           "labstack:instanceType?"),
    ({"Labstack:tls": "internal"}, "Labstack:tls = 'internal': unknown key: did you mean labstack:tls?"),
    ({"aws:regoin": "eu-west-3"}, "aws:regoin = 'eu-west-3': unknown key: did you mean aws:region?"),
    ({"ingressPorts": [80, 443]}, "labstack:ingressPorts = '[80, 443]': has no 22: labstack deploys over SSH, so the "
                                  "server would be unreachable; add 22 (and list your networks in labstack:sshCidrs)"),
    ({"ingressPorts": [22, 443]}, "labstack:ingressPorts = '[22, 443]': lacks 80: with labstack:tls = acme, Let's "
                                  "Encrypt must reach Caddy on 80 and 443 to issue certificates; add it, or set "
                                  "labstack:tls internal"),
    ({"ingressPorts": [22]}, "labstack:ingressPorts = '[22]': lacks 80 and 443: with labstack:tls = acme, Let's "
                             "Encrypt must reach Caddy on 80 and 443 to issue certificates; add them, or set "
                             "labstack:tls internal"),
    ({"sshCidrs": None}, SSH_CIDRS_NOT_SET),
    ({"sshCidrs": []}, SSH_CIDRS_NOT_SET),
    ({"sshCidrs": ["everyone"]},
     "labstack:sshCidrs = 'everyone': expected an IPv4 or IPv6 network in CIDR form such as 203.0.113.0/24"),
    ({"securityGroup": "sg-0123456789abcdef0"}, "labstack:sshCidrs = '[\"100.64.0.0/24\"]': has no effect with an "
                                                "existing labstack:securityGroup; remove one of them"),
    ({"apps": {"elif": {"image": PINNED, "workers": "lots"}}},
     "labstack:apps.elif.workers = 'lots': expected a whole number, e.g. `invoke config -s s "
     "--set 'labstack:apps.elif.workers'=0`"),
    ({"logViewer": "yes"}, "labstack:logViewer = 'yes': expected true or false: Pulumi reads `yes` as the text 'yes', "
                           "not a boolean; write true"),
    ({"discardDataOnDestroy": "off"}, "labstack:discardDataOnDestroy = 'off': expected true or false (true deletes "
                                      "apps without exporting their data first): Pulumi reads `off` as the text "
                                      "'off', not a boolean; write false"),
    ({"dashboardPassword": "short-pw"},
     "labstack:dashboardPassword = '[secret]': is shorter than 12 characters; it guards every app's dashboard on the "
     "open internet: `invoke config -s s --secret --set labstack:dashboardPassword=\"$(openssl rand -base64 18)\"`"),
]


@pytest.mark.parametrize("overrides, line", EXACT, ids=[line.split(" ")[0] + f"-{i}" for i, (_, line) in
                                                        enumerate(EXACT)])
def test_nothing_is_accepted_silently(pem, overrides, line):
    assert _problems(base_config(pem, **overrides)) == [line]



def test_a_misspelt_required_key_is_one_line_not_two(pem):
    raw = base_config(pem)
    raw["aws:regoin"] = raw.pop("aws:region")
    assert _problems(raw) == ["aws:regoin = 'eu-west-3': unknown key: did you mean aws:region?"]
    # Without the misspelling the missing region is still reported, with the command that sets it.
    del raw["aws:regoin"]
    assert _problems(raw) == ["aws:region is not set: run `invoke config -s s --set aws:region=eu-west-3` (or your region)"]

def test_ssh_open_to_the_world_only_when_written(pem):
    cfg = load_stack_config(base_config(pem, sshCidrs=["0.0.0.0/0", "::/0"]), stack="s")
    assert cfg.firewall.ssh_cidrs == ("0.0.0.0/0", "::/0")
    # an existing server or security group: labstack opens nothing, so it asks for no networks
    assert load_stack_config(base_config(pem, sshCidrs=None, securityGroup="sg-0123456789abcdef0"),
                             stack="s").firewall.ssh_cidrs == ()


@pytest.mark.parametrize("name, content, line", [
    ("id_ed25519.pub", "public", "this is the public half of a key; labstack needs the private one: drop the .pub "
                                 "({dir}/id_ed25519)"),
    ("lab_key", "public", "this is the public half of a key; labstack needs the private one (the file without .pub)"),
    ("keys", "directory", "{dir}/keys is a directory; give the private key file in it, e.g. {dir}/keys/id_ed25519"),
])
def test_server_pem_that_is_no_private_key_is_named(tmp_path, name, content, line):
    public = write_private_key(tmp_path / "id_ed25519")
    path = tmp_path / name
    if content == "directory":
        path.mkdir()
    else:
        path.write_text(public + "\n")
        path.chmod(0o600)
    with pytest.raises(ConfigError) as caught:
        load_stack_config(base_config(path), stack="s")
    assert caught.value.problems == [f"labstack:serverPem = '{path}': " + line.format(dir=tmp_path)]


PLAIN_PASSWORD = ("labstack:dashboardPassword = '[secret]': is in plain text in the stack file: set it encrypted with "
                  "`invoke config -s s --secret --set labstack:dashboardPassword=<password>`")
PLAIN_APP_SECRET = ("labstack:appSecrets.elif.API_TOKEN = '[secret]': is in plain text in the stack file: set it "
                    "encrypted with `invoke config -s s --secret --set 'labstack:appSecrets.elif.API_TOKEN'=<value>`")


@pytest.mark.parametrize("encrypted, lines", [
    (set(), [PLAIN_APP_SECRET, PLAIN_PASSWORD]),
    ({"labstack:dashboardPassword"}, [PLAIN_APP_SECRET]),
    ({"labstack:dashboardPassword", "labstack:appSecrets"}, []),
])
def test_secrets_must_be_set_with_secret(pem, encrypted, lines):
    raw = base_config(pem, apps={"elif": {"image": PINNED}}, dashboardPassword="correct-horse-battery",
                      appSecrets={"elif": {"API_TOKEN": "x"}})
    try:
        load_stack_config(raw, stack="s", secret_keys=encrypted)
        problems = []
    except ConfigError as error:
        problems = error.problems
    assert problems == lines


def test_the_program_refuses_a_secret_pulumi_does_not_hold_encrypted(pem):
    raw = base_config(pem, dashboardPassword="correct-horse-battery")
    assert evaluate(raw, "s", secret_keys=()).error.problems == [PLAIN_PASSWORD]
    assert evaluate(raw, "s", secret_keys={"labstack:dashboardPassword"}).error is None


def test_secret_looking_env_names_warn_and_never_fail(pem):
    cfg = load_stack_config(base_config(pem, apps={"elif": {"image": PINNED, "env": {
        "API_TOKEN": "x", "DB_PASSWORD": "y", "SIGNING_KEY": "z", "DEBUG": "1", "KEYBOARD": "us"}}}), stack="s")
    assert cfg.warnings == tuple(
        f"labstack:apps.elif.env.{name}: the name looks secret but the value is plain text in the stack file (and in "
        f"git); if it is a credential, move it: `invoke config -s s --secret --set "
        f"'labstack:appSecrets.elif.{name}'=<value>` and remove it from env" for name in ("API_TOKEN", "DB_PASSWORD", "SIGNING_KEY"))



def test_commands_with_shell_syntax_warn_that_sigterm_will_not_reach_the_program(pem):
    cfg = load_stack_config(base_config(pem, apps={"elif": {
        "image": PINNED, "command": "gunicorn -b 0.0.0.0:$PORT 'app:create()'", "workers": 1,
        "workerCommand": "cd /app && python worker.py", "clockCommand": "QUEUE=x python clock.py"}}), stack="s")
    assert cfg.warnings == tuple(
        f"labstack:apps.elif.{key}: uses shell syntax, so the shell stays PID 1 of the {role} container and SIGTERM "
        "never reaches your program: it is killed after stopGraceSeconds, mid-job; put the steps in a script that "
        "ends with `exec <program>`" for key, role in (("workerCommand", "workers"), ("clockCommand", "clock")))
    assert cfg.apps[0].stop_grace_seconds == 30

def test_shipped_instance_types_are_botocores():
    from components.config.aws_names import botocore_instance_types, known_instance_types
    assert known_instance_types() == frozenset(botocore_instance_types()), \
        "regenerate with `venv/bin/python -m components.config.aws_names`"
    assert {"m7i.large", "t3.medium", "m7g.large"} <= known_instance_types()


def test_the_readme_counts_the_bad_inputs_these_tests_check():
    """The README states how many bad inputs the tables here check (BAD_INPUTS: key, value and fix named; EXACT and
    the stack file reader's UNREADABLE: the whole line, word for word)."""
    from tests.unit.test_stackfile import UNREADABLE

    readme = (Path(__file__).resolve().parents[2] / "docs" / "testing.md").read_text()
    total, exact = len(BAD_INPUTS) + len(EXACT) + len(UNREADABLE), len(EXACT) + len(UNREADABLE)
    assert f"({total} bad inputs in three tables" in readme and f"{exact} of them asserted word for word" in readme


@pytest.mark.parametrize("volumes, line", [
    ({"Uploads": "/app/uploads"}, "labstack:apps.elif.volumes.Uploads = '/app/uploads': volume names are lower-case "
                                  "letters, digits, - and _, starting with a letter"),
    ({"uploads": "app/uploads"}, "labstack:apps.elif.volumes.uploads = 'app/uploads': expected the absolute path in "
                                 "the container where the volume is mounted, e.g. /app/uploads"),
    ({"uploads": "/data/uploads"}, "labstack:apps.elif.volumes.uploads = '/data/uploads': /data/uploads is not free: "
                                   "/data is the app's data folder already (exported with it), and system folders "
                                   "cannot be replaced; choose a path such as /app/uploads"),
    ({"etc": "/etc/"}, "labstack:apps.elif.volumes.etc = '/etc/': /etc is not free: /data is the app's data folder "
                       "already (exported with it), and system folders cannot be replaced; choose a path such as "
                       "/app/uploads"),
])
def test_bad_volumes_are_one_line_each(pem, volumes, line):
    assert _problems(base_config(pem, apps={"elif": {"image": PINNED, "volumes": volumes}})) == [line]


def test_volumes_are_kept_with_their_container_paths(pem):
    cfg = load_stack_config(base_config(pem, apps={"elif": {"image": PINNED, "volumes": {
        "uploads": "/app/uploads/", "media": "/srv/media"}}}), stack="s")
    assert cfg.apps[0].volumes == {"uploads": "/app/uploads", "media": "/srv/media"}


def test_tags_up_to_the_room_aws_leaves_are_accepted(pem):
    assert _problems(base_config(pem, tags={f"t{i}": "x" for i in range(43)})) == []


def test_labstack_adds_no_more_tags_than_it_counts(pem):
    """OWN_TAGS is what the tag rule leaves room for: the most tags the program itself puts on one resource (a
    cluster's worker, with a data volume and the watcher's alarm), counted on what it declares under mocks."""
    from components.config.schema import OWN_TAGS
    from labstack.stacks.offline import evaluate

    user = {"team": "psych", "grant": "x1"}
    result = evaluate(base_config(pem, tags=user, cluster={"workers": 2}, dataVolume={"sizeGb": 10}, autoStop=True),
                      "paris-batch2").ok()
    counts = []

    def tag_maps(value):
        if isinstance(value, dict):
            if value.get("team") == "psych":
                counts.append(len(value) - len(user))
            for item in value.values():
                tag_maps(item)
        elif isinstance(value, list):
            for item in value:
                tag_maps(item)
    for resource in result.resources:
        tag_maps(resource.inputs)
    assert len(counts) > 20 and max(counts) == OWN_TAGS


def test_the_ray_site_is_free_without_a_dashboard_password_or_ray(pem):
    app = {"ray": {"image": PINNED}}
    assert _problems(base_config(pem, cluster={"workers": 1}, apps=app)) == []
    assert _problems(base_config(pem, cluster={"workers": 1, "engine": "none"}, apps=app,
                                 dashboardPassword="correct-horse-battery")) == []
