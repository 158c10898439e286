"""The resource graph of __main__.py under Pulumi mocks (preview=False, so every apply runs), values asserted."""
from __future__ import annotations

import json

import pytest

from components.config import DEFAULT_AMI_SSM_PATH
from labstack.stacks.offline import FakeAws, evaluate
from labstack.stacks.stackfile import list_stacks, read_stack_config
from tests.unit.helpers import base_config, digest, made_yours, recorded_dependencies, write_private_key

INSTANCE = "aws:ec2/instance:Instance"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
RECORD = "aws:route53/record:Record"
ZONES = {"experiments.test": "ZMYEXPERIMENTS"}


def run(config, **aws):
    return evaluate(config, "paris-batch2", FakeAws(zones=ZONES, **aws)).ok()


@pytest.fixture
def paris(pem):
    return run(base_config(pem, tags={"team": "psych"}))


def test_ingress_rules_cover_each_port_for_ipv4_and_ipv6(paris):
    rules = {(r.inputs["fromPort"], r.inputs["toPort"], r.inputs["ipProtocol"],
              r.inputs.get("cidrIpv4") or r.inputs.get("cidrIpv6")) for r in paris.of_type(INGRESS)}
    # 22 only from labstack:sshCidrs (helpers.base_config's lab network); no 5000: apps are reached through Caddy
    expected = {(22, 22, "tcp", "100.64.0.0/24")} | {(p, p, "tcp", cidr) for p in (80, 443)
                                                       for cidr in ("0.0.0.0/0", "::/0")}
    assert rules == expected
    group_id = paris.one("aws:ec2/securityGroup:SecurityGroup").id
    assert {r.inputs["securityGroupId"] for r in paris.of_type(INGRESS) + paris.of_type(EGRESS)} == {group_id}
    assert paris.one(INSTANCE).inputs["vpcSecurityGroupIds"] == [group_id]
    assert {(r.inputs["ipProtocol"], r.inputs.get("cidrIpv4") or r.inputs.get("cidrIpv6"))
            for r in paris.of_type(EGRESS)} == {("-1", "0.0.0.0/0"), ("-1", "::/0")}


def test_custom_ports_and_cidrs(pem):
    result = run(base_config(pem, ingressPorts=[22, 8443], ingressCidrs=["100.64.0.0/24"], ingressIpv6Cidrs=[],
                             tls="internal"))  # acme would need 80 and 443
    assert {(r.inputs["fromPort"], r.inputs["cidrIpv4"]) for r in result.of_type(INGRESS)} == {
        (22, "100.64.0.0/24"), (8443, "100.64.0.0/24")}


def test_instance_uses_ami_from_ssm_parameter_with_imdsv2_and_encrypted_gp3(paris):
    instance = paris.one(INSTANCE)
    assert instance.inputs["ami"] == FakeAws().ami_for(DEFAULT_AMI_SSM_PATH)
    assert instance.inputs["instanceType"] == "m7i.large"
    assert instance.inputs["metadataOptions"]["httpTokens"] == "required"
    assert instance.inputs["metadataOptions"]["httpPutResponseHopLimit"] == 1  # no token from inside a container
    root = instance.inputs["rootBlockDevice"]
    assert (root["encrypted"], root["volumeType"], root["volumeSize"]) == (True, "gp3", 32)


def test_explicit_ami_id_and_storage(pem):
    instance = run(base_config(pem, ami="ami-0123456789abcdef0", storageGb="100")).one(INSTANCE)
    assert instance.inputs["ami"] == "ami-0123456789abcdef0"
    assert instance.inputs["rootBlockDevice"]["volumeSize"] == 100


@pytest.mark.parametrize("resource", ["instance", "volume"])
def test_instance_and_volume_tags(paris, resource):
    instance = paris.one(INSTANCE)
    tags = instance.inputs["tags"] if resource == "instance" else instance.inputs["rootBlockDevice"]["tags"]
    assert tags["Name"] == "paris-batch2"
    assert tags["labstack:stack"] == "paris-batch2"
    assert tags["labstack:project"] == "labstack"
    assert tags["labstack:role"] == "server"
    assert tags["labstack:creator"]
    assert tags["team"] == "psych"


def test_key_pair_imports_public_half_of_local_ed25519_key(tmp_path):
    key_file = tmp_path / "server.pem"
    public = write_private_key(key_file)
    result = run(base_config(key_file))
    imported = result.one("aws:ec2/keyPair:KeyPair")
    assert imported.inputs["publicKey"] == public and public.startswith("ssh-ed25519 ")
    assert result.one(INSTANCE).inputs["keyName"] == imported.outputs["keyName"]
    assert result.outputs["sshCommand"] == f"ssh -i {key_file} ubuntu@elif.experiments.test"


def test_existing_key_pair_and_security_group_are_used_not_created(pem):
    config = base_config(pem, serverPem=None, keyPair="lab-shared", securityGroup="sg-0123456789abcdef0",
                         sshCidrs=None)  # the existing group's own rules apply
    result = run(config)
    assert result.of_type("aws:ec2/keyPair:KeyPair") == []
    assert result.of_type("aws:ec2/securityGroup:SecurityGroup") == [] and result.of_type(INGRESS) == []
    instance = result.one(INSTANCE)
    assert instance.inputs["keyName"] == "lab-shared"
    assert instance.inputs["vpcSecurityGroupIds"] == ["sg-0123456789abcdef0"]


def test_dns_records_point_host_and_wildcard_at_elastic_ip(paris):
    eip = paris.one("aws:ec2/eip:Eip")
    records = {r.inputs["name"]: r.inputs for r in paris.of_type(RECORD)}
    assert set(records) == {"elif.experiments.test", "*.elif.experiments.test"}
    for record in records.values():
        assert record["type"] == "A" and record["zoneId"] == "ZMYEXPERIMENTS"
        assert record["records"] == [eip.outputs["publicIp"]]
    assert eip.inputs["instance"] == paris.outputs["instanceId"]


def test_zone_found_by_longest_matching_suffix(pem):
    zones = {"experiments.test": "ZPARENT", "elif.experiments.test": "ZCHILD"}
    result = evaluate(base_config(pem), "s", FakeAws(zones=zones)).ok()
    assert {r.inputs["zoneId"] for r in result.of_type(RECORD)} == {"ZCHILD"}


def test_no_dns_host_means_no_records_and_ip_url(pem):
    result = run(base_config(pem, dnsHost=None))
    assert result.of_type(RECORD) == []
    ip = result.one("aws:ec2/eip:Eip").outputs["publicIp"]
    # Caddy serves <ip>.nip.io (a certificate needs a name); SSH still goes to the bare address.
    assert result.outputs["url"] == f"https://{ip}.nip.io" and result.outputs["dnsHost"] == ip
    assert result.outputs["sshCommand"] == f"ssh -i {pem} ubuntu@{ip}"
    assert result.outputs["nodes"]["paris-batch2"]["sshCommand"] == result.outputs["sshCommand"]


@pytest.mark.parametrize("state", ["running", "stopped"])
def test_desired_state_through_instance_state(pem, state):
    result = run(base_config(pem, desiredState=state))
    power = result.one("aws:ec2transitgateway/instanceState:InstanceState")
    assert power.inputs["state"] == state
    assert power.inputs["instanceId"] == result.outputs["instanceId"]


def test_outputs(paris, pem):
    instance = paris.one(INSTANCE)
    ip = paris.one("aws:ec2/eip:Eip").outputs["publicIp"]
    host_key = " ".join(paris.one("tls:index/privateKey:PrivateKey").outputs["publicKeyOpenssh"].split()[:2])
    assert paris.outputs["instanceId"] == instance.id and instance.id.startswith("i-")
    assert paris.outputs["publicIp"] == ip
    assert paris.outputs["dnsHost"] == "elif.experiments.test"
    assert paris.outputs["url"] == "https://elif.experiments.test"
    assert paris.outputs["region"] == "eu-west-3" and paris.outputs["instanceType"] == "m7i.large"
    assert paris.outputs["knownHosts"] == f"elif.experiments.test,{ip} {host_key}"
    assert paris.outputs["sshCommand"] == f"ssh -i {pem} ubuntu@elif.experiments.test"
    assert paris.outputs["appUrls"] == {}
    # A plain server is one node, the head, under the server's name: the same values as the head's own outputs.
    assert paris.outputs["nodes"] == {"paris-batch2": {
        "role": "head", "publicIp": ip, "privateIp": instance.outputs["privateIp"], "instanceId": instance.id,
        "availabilityZone": "eu-west-3a", "knownHosts": paris.outputs["knownHosts"],
        "sshCommand": paris.outputs["sshCommand"]}}


def test_head_node_without_dns_is_reached_by_its_address(pem):
    result = run(base_config(pem, dnsHost=None, **{"aws:region": "us-east-2"}))
    ip = result.outputs["publicIp"]
    node = result.outputs["nodes"]["paris-batch2"]
    assert node["knownHosts"] == result.outputs["knownHosts"] and node["knownHosts"].startswith(f"{ip} ssh-ed25519 ")
    assert node["sshCommand"] == result.outputs["sshCommand"] == f"ssh -i {pem} ubuntu@{ip}"
    assert node["availabilityZone"] == "us-east-2a"


def test_network_create_builds_public_subnet(pem):
    result = run(base_config(pem, network="create", vpcCidr="10.9.0.0/16"))
    vpc = result.one("aws:ec2/vpc:Vpc")
    subnet = result.one("aws:ec2/subnet:Subnet")
    routes = result.one("aws:ec2/routeTable:RouteTable")
    assert vpc.inputs["cidrBlock"] == "10.9.0.0/16"
    assert subnet.inputs["cidrBlock"] == "10.9.0.0/24" and subnet.inputs["mapPublicIpOnLaunch"] is True
    assert routes.inputs["routes"][0]["cidrBlock"] == "0.0.0.0/0"
    assert routes.inputs["routes"][0]["gatewayId"] == result.one("aws:ec2/internetGateway:InternetGateway").id
    association = result.one("aws:ec2/routeTableAssociation:RouteTableAssociation")
    assert (association.inputs["subnetId"], association.inputs["routeTableId"]) == (subnet.id, routes.id)
    assert result.one(INSTANCE).inputs["subnetId"] == subnet.id
    assert result.one("aws:ec2/securityGroup:SecurityGroup").inputs["vpcId"] == vpc.id


def test_existing_subnet_uses_its_vpc(pem):
    result = run(base_config(pem, network="subnet-0123456789abcdef0"),
                 subnets={"subnet-0123456789abcdef0": "vpc-0aaaaaaaaaaaaaaaa"})
    assert result.one(INSTANCE).inputs["subnetId"] == "subnet-0123456789abcdef0"
    assert result.one("aws:ec2/securityGroup:SecurityGroup").inputs["vpcId"] == "vpc-0aaaaaaaaaaaaaaaa"
    assert result.of_type("aws:ec2/vpc:Vpc") == []


def test_default_network_declares_no_vpc(paris):
    assert paris.of_type("aws:ec2/vpc:Vpc") == [] and "subnetId" not in paris.one(INSTANCE).inputs


def test_every_child_is_parented_to_a_labstack_component(paris):
    for resource in paris.resources:
        if resource.custom:
            assert "labstack:index:" in resource.urn.split("::")[2], resource.urn


@pytest.mark.parametrize("stack", list_stacks())
def test_every_stack_file_evaluates_cleanly(stack, tmp_path, monkeypatch):
    # The example stacks name keys under ~/.ssh; give this test a home where they exist, as a user would.
    monkeypatch.setenv("HOME", str(tmp_path))
    config = made_yours(read_stack_config(stack))  # the example refuses its placeholders
    if "labstack:serverPem" in config:
        pem_path = tmp_path / ".ssh" / config["labstack:serverPem"].removeprefix("~/.ssh/")
        pem_path.parent.mkdir()
        write_private_key(pem_path)
    result = evaluate(config, stack).ok()
    assert result.one(INSTANCE).inputs["instanceType"] == config.get("labstack:instanceType", "m7i.large")
    assert result.outputs["region"] == config["aws:region"]


def test_stack_files_hold_no_plaintext_secrets():
    for stack in list_stacks():
        for key, value in read_stack_config(stack).items():
            lowered = key.lower()
            if any(word in lowered for word in ("password", "secret", "token")):
                assert isinstance(value, dict) and "secure" in value, f"{stack}: {key} must be a pulumi secret"


ECR_ELIF = "123456789012.dkr.ecr.eu-west-3.amazonaws.com/lab/elif@sha256:" + digest("4be1c0de")
ECR_SURVEY = "123456789012.dkr.ecr.eu-west-3.amazonaws.com/lab/survey:v2@sha256:" + digest("9b1c2d3e")
GHCR_POLL = "ghcr.io/lab/poll@sha256:" + digest("0123abcd")


def test_ecr_images_give_the_node_a_role_that_pulls_only_their_repositories(pem):
    apps = {"elif": {"image": ECR_ELIF}, "survey": {"image": ECR_SURVEY}, "poll": {"image": GHCR_POLL},
            "again": {"image": ECR_ELIF}}
    result = run(base_config(pem, apps=apps))
    role = result.one("aws:iam/role:Role")
    assert json.loads(role.inputs["assumeRolePolicy"]) == {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    policy = result.one("aws:iam/rolePolicy:RolePolicy")
    assert policy.inputs["role"] == role.id
    assert json.loads(policy.inputs["policy"]) == {"Version": "2012-10-17", "Statement": [
        {"Sid": "EcrLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
        {"Sid": "PullStackImages", "Effect": "Allow",
         "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
         "Resource": ["arn:aws:ecr:eu-west-3:123456789012:repository/lab/elif",
                      "arn:aws:ecr:eu-west-3:123456789012:repository/lab/survey"]}]}
    profile = result.one("aws:iam/instanceProfile:InstanceProfile")
    assert profile.inputs["role"] == role.id
    assert result.one(INSTANCE).inputs["iamInstanceProfile"] == profile.id
    assert role.inputs["tags"]["labstack:stack"] == profile.inputs["tags"]["labstack:stack"] == "paris-batch2"


def test_no_ecr_image_no_role(pem):
    result = run(base_config(pem, apps={"poll": {"image": GHCR_POLL}}))
    assert [r for r in result.resources if r.type.startswith("aws:iam/")] == []
    assert "iamInstanceProfile" not in result.one(INSTANCE).inputs



def test_dropping_the_last_ecr_image_changes_only_the_instance_profile(pem):
    """The role and profile go; the same instance (same URN) loses only its profile input, which the AWS provider
    updates in place (it disassociates the profile) instead of replacing the server."""
    with_ecr = run(base_config(pem, apps={"elif": {"image": ECR_ELIF}})).one(INSTANCE)
    without = run(base_config(pem, apps={"elif": {"image": GHCR_POLL}})).one(INSTANCE)
    assert with_ecr.urn == without.urn
    # userData carries the host key, which the mocks generate anew per evaluation (a stack keeps it in its state).
    changed = {key for key in with_ecr.inputs.keys() | without.inputs.keys()
               if with_ecr.inputs.get(key) != without.inputs.get(key)} - {"userData"}
    assert changed == {"iamInstanceProfile"} and with_ecr.inputs["iamInstanceProfile"]

def test_registry_auth_logs_docker_in_on_the_head_before_the_apps_deploy(pem):
    auth = {"ghcr.io": {"username": "lab-bot", "password": "ghp_token"},
            "registry.example.org:5000": {"username": "ci", "password": "s3cret"}}
    with recorded_dependencies() as dependencies:
        result = run(base_config(pem, apps={"poll": {"image": GHCR_POLL}}, registryAuth=auth))
    logins = {r.name: r.inputs for r in result.of_type("command:remote:Command") if "-registry-" in r.name}
    assert {name: (inputs["create"], inputs["stdin"]) for name, inputs in logins.items()} == {
        "paris-batch2-registry-ghcr.io": (
            "sudo -n /opt/labstack/hooks/registry-login.sh ghcr.io lab-bot", "ghp_token"),
        "paris-batch2-registry-registry.example.org-5000": (
            "sudo -n /opt/labstack/hooks/registry-login.sh registry.example.org:5000 ci", "s3cret")}
    assert dependencies["paris-batch2-registry-ghcr.io"] >= {"paris-batch2-docker"}
    assert set(logins) <= dependencies["paris-batch2-poll-deploy"]
    # No ECR image: the logins are the only way in, and no instance role is made.
    assert [r for r in result.resources if r.type.startswith("aws:iam/")] == []
