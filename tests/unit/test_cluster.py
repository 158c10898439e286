"""Cluster stacks under Pulumi mocks: the workers, their tags, subnet and firewall, scaling by name, and the
settings refused before anything is created."""
from __future__ import annotations

import pytest

from components.config.messages import ConfigError
from components.layout import RAY_PORTS
from labstack.stacks.offline import FakeAws, evaluate
from policy import rules
from policy.rules import Resource
from tests.unit.helpers import base_config

STACK = "sweep"
INSTANCE = "aws:ec2/instance:Instance"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
DIGEST = "sha256:" + "0" * 64


def cluster(pem, network: str = "create", aws=None, **settings):
    return evaluate(base_config(pem, network=network, cluster=settings), STACK, aws)


def workers(evaluation):
    """The worker instances by name (the mocks register resources in whatever order their inputs resolve)."""
    return sorted((r for r in evaluation.of_type(INSTANCE) if r.inputs["tags"]["labstack:role"] == "worker"),
                  key=lambda r: r.name)


def test_workers_are_named_by_index_and_tagged_on_instance_and_volume(pem):
    found = workers(cluster(pem, workers=3, workerType="c7i.xlarge", workerStorageGb=64).ok())
    assert [w.name for w in found] == ["sweep-worker-1-instance", "sweep-worker-2-instance", "sweep-worker-3-instance"]
    for index, worker in enumerate(found, start=1):
        for tags in (worker.inputs["tags"], worker.inputs["rootBlockDevice"]["tags"]):
            assert (tags["Name"], tags["labstack:role"], tags["labstack:index"], tags["labstack:stack"]) == (
                f"sweep-worker-{index}", "worker", str(index), STACK)
        assert worker.inputs["instanceType"] == "c7i.xlarge"
        assert worker.inputs["rootBlockDevice"]["volumeSize"] == 64
        assert worker.inputs["rootBlockDevice"]["encrypted"] is True
        assert worker.inputs["metadataOptions"]["httpPutResponseHopLimit"] == 1
        assert worker.inputs["associatePublicIpAddress"] is True


def test_workers_default_to_the_heads_type_and_disk_and_share_its_subnet_and_group(pem):
    evaluation = cluster(pem, workers=2).ok()
    head = evaluation.one(INSTANCE, "sweep-instance")
    subnet = evaluation.one("aws:ec2/subnet:Subnet")
    for worker in workers(evaluation):
        assert worker.inputs["instanceType"] == head.inputs["instanceType"] == "m7i.large"
        assert worker.inputs["rootBlockDevice"]["volumeSize"] == head.inputs["rootBlockDevice"]["volumeSize"] == 32
        assert worker.inputs["subnetId"] == head.inputs["subnetId"] == subnet.id
        assert worker.inputs["vpcSecurityGroupIds"] == head.inputs["vpcSecurityGroupIds"]


def test_workers_have_no_elastic_ip_and_appear_in_the_nodes_output(pem):
    evaluation = cluster(pem, workers=2).ok()
    assert [r.name for r in evaluation.of_type("aws:ec2/eip:Eip")] == ["sweep-ip"]
    nodes = evaluation.outputs["nodes"]
    assert [(name, node["role"]) for name, node in nodes.items()] == [
        ("sweep", "head"), ("sweep-worker-1", "worker"), ("sweep-worker-2", "worker")]
    worker = nodes["sweep-worker-2"]
    assert worker["instanceId"].startswith("i-") and worker["privateIp"] == "10.42.0.10"
    assert worker["sshCommand"] == f"ssh -i {pem} ubuntu@{worker['publicIp']}"
    assert "rayDashboardUrl" not in evaluation.outputs  # no dashboard password: no ray.<host> site (test_ray_site.py)


def test_the_self_rule_lets_members_in_on_every_port_and_nothing_new_opens_to_any_cidr(pem):
    plain = evaluate(base_config(pem, network="create"), STACK).ok()
    evaluation = cluster(pem, workers=2).ok()
    group = evaluation.one("aws:ec2/securityGroup:SecurityGroup")
    members = evaluation.one(INGRESS, "sweep-members")
    assert (members.inputs["ipProtocol"], members.inputs["referencedSecurityGroupId"],
            members.inputs["securityGroupId"]) == ("-1", group.id, group.id)
    assert "cidrIpv4" not in members.inputs and "cidrIpv6" not in members.inputs
    # The same CIDR rules as a single server: the cluster adds only the self rule.
    cidr_rules = sorted((r.name, r.inputs.get("fromPort")) for r in evaluation.of_type(INGRESS)
                        if r.name != members.name)
    assert cidr_rules == sorted((r.name, r.inputs.get("fromPort")) for r in plain.of_type(INGRESS))
    ray_ports = set(RAY_PORTS.values()) | set(range(RAY_PORTS["RAY_MIN_WORKER_PORT"],
                                                    RAY_PORTS["RAY_MAX_WORKER_PORT"] + 1))
    for rule in evaluation.of_type(INGRESS):
        if rule.inputs.get("cidrIpv4") or rule.inputs.get("cidrIpv6"):
            assert rule.inputs["ipProtocol"] == "tcp" and rule.inputs["fromPort"] not in ray_ports, rule.name


def test_no_self_rule_in_a_group_labstack_does_not_own(pem):
    evaluation = evaluate(base_config(pem, network="create", sshCidrs=None, securityGroup="sg-0123456789abcdef0",
                                      cluster={"workers": 1}), STACK).ok()
    assert evaluation.of_type(INGRESS) == []
    assert workers(evaluation)[0].inputs["vpcSecurityGroupIds"] == ["sg-0123456789abcdef0"]


def test_the_policy_pack_knows_every_ray_port():
    pinned = {port for name, port in RAY_PORTS.items() if "WORKER_PORT" not in name}
    assert pinned <= set(rules.DATA_PORTS)
    assert (RAY_PORTS["RAY_MIN_WORKER_PORT"], RAY_PORTS["RAY_MAX_WORKER_PORT"]) in rules.DATA_PORT_RANGES
    opened = Resource(rules.INGRESS_RULE, "w", {"ipProtocol": "tcp", "fromPort": 11500, "toPort": 11500,
                                                "cidrIpv4": "0.0.0.0/0"})
    assert rules.no_data_ports_open_to_world([opened]) == [
        "w: opens Ray's worker processes (11000-11999) to the world (0.0.0.0/0). Fix: remove 11500-11500 from "
        "labstack:ingressPorts, or list only your own networks in labstack:ingressCidrs; reach these services over "
        "SSH or through Caddy"]


def test_scaling_keeps_the_first_workers_urns_and_inputs(pem):
    state = FakeAws()  # one state: the host keys made by the first evaluation are kept, as Pulumi's state keeps them
    two, three = cluster(pem, aws=state, workers=2).ok(), cluster(pem, aws=state, workers=3).ok()
    by_urn = {r.urn: r for r in three.resources}
    for resource in two.resources:
        if "worker" in resource.name and resource.custom:
            assert resource.urn in by_urn, resource.name
            assert by_urn[resource.urn].inputs == resource.inputs, resource.name
    added = {r.name for r in three.resources} - {r.name for r in two.resources}
    assert added and all(name.startswith("sweep-worker-3") for name in added), added
    # and lowering drops only the highest index
    one = cluster(pem, aws=state, workers=1).ok()
    assert {r.name for r in two.resources} - {r.name for r in one.resources} == {
        name for name in (r.name for r in two.resources) if name.startswith("sweep-worker-2")}


def test_zero_workers_is_the_head_alone(pem):
    evaluation = cluster(pem, workers=0).ok()
    assert workers(evaluation) == [] and len(evaluation.of_type(INSTANCE)) == 1


@pytest.mark.parametrize("settings, line", [
    ({"workers": -1}, "labstack:cluster.workers = '-1': must be between 0 and 500"),
    ({"workers": 501}, "labstack:cluster.workers = '501': must be between 0 and 500"),
    ({"workers": "two"}, "labstack:cluster.workers = 'two': expected a whole number, e.g. `invoke config -s sweep "
                         "--set 'labstack:cluster.workers'=0`"),
    ({"workers": 2.5}, "labstack:cluster.workers = '2.5': expected a whole number, e.g. `invoke config -s sweep "
                       "--set 'labstack:cluster.workers'=0`"),
    ({"engine": "spark"}, "labstack:cluster.engine = 'spark': must be `ray` (Ray on every node, workers joined to the "
                          "head) or `none` (plain machines on a private network)"),
    ({"image": "ghcr.io/my-lab/sweep:1"}, "labstack:cluster.image = 'ghcr.io/my-lab/sweep:1': must be pinned by "
                                          "digest, e.g. ghcr.io/my-lab/sweep@sha256:<64 hex>, so every node runs the "
                                          "same image: `docker buildx imagetools inspect <image:tag>` prints the "
                                          "digest"),
    ({"workerType": "c7i.4xlarg"}, "labstack:cluster.workerType = 'c7i.4xlarg': AWS has no EC2 instance type of that "
                                   "name; did you mean c7i.4xlarge?"),
    ({"workers": 2, "workerType": "c7g.large"},
     "labstack:cluster.workerType = 'c7g.large': the workers boot the head's AMI, made for x86 (m7i.large), but "
     "c7g.large is ARM (Graviton): choose a workerType of the head's architecture"),
    ({"image": f"rayproject/ray:2.60.0-py311-aarch64@{DIGEST}"},
     f"labstack:cluster.image = 'rayproject/ray:2.60.0-py311-aarch64@{DIGEST}': the workers run on m7i.large, an "
     "x86 type, but the image is arm64: choose a Graviton type (e.g. c7g.4xlarge) or an amd64 image"),
])
def test_bad_cluster_settings_are_refused_before_anything_is_created(pem, settings, line):
    evaluation = cluster(pem, **settings)
    assert isinstance(evaluation.error, ConfigError)
    assert str(evaluation.error).splitlines()[1:] == [f"  - {line}"]
    assert evaluation.resources == []


def test_an_arm_head_and_workers_with_the_default_image_is_refused(pem):
    evaluation = evaluate(base_config(pem, network="create", instanceType="c7g.large",
                                      ami="/aws/service/canonical/ubuntu/server/24.04/stable/current/arm64/hvm/"
                                          "ebs-gp3/ami-id", cluster={"workers": 1}), STACK)
    assert str(evaluation.error).splitlines()[1:] == [
        "  - labstack:cluster.image: the workers run on c7g.large, an ARM (Graviton) type, but the default Ray image "
        "is amd64: choose an x86 type such as c7i.4xlarge, or an arm64 image pinned by digest (the official one "
        "is rayproject/ray:<version>-py311-aarch64@sha256:…)"]


def test_a_cluster_on_an_existing_server_is_refused(pem):
    host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    evaluation = evaluate(base_config(pem, sshCidrs=None, existingServer={"host": "203.0.113.9", "hostKey": host_key},
                                      cluster={"workers": 2}), STACK)
    assert "  - labstack:cluster cannot be used with labstack:existingServer: labstack makes a cluster's workers in " \
           "AWS next to a head it made; remove one of them" in str(evaluation.error).splitlines()
    assert evaluation.resources == []


def test_workers_get_docker_and_the_hooks_but_no_caddy_and_their_own_addresses(pem):
    aws = FakeAws(node_addresses={"sweep-worker-1": "169.254.64.21", "sweep-worker-2": "169.254.64.22"})
    evaluation = cluster(pem, workers=2, aws=aws).ok()
    steps = {r.name for r in evaluation.of_type("command:remote:Command")}
    assert {"sweep-worker-2-hooks", "sweep-worker-2-docker", "sweep-worker-2-grow-fs", "sweep-worker-2-ray"} <= steps
    # No apps and no dashboard password: nothing to serve over HTTP, so no Caddy on any node; with a password the
    # head serves ray.<host>, the workers still nothing.
    assert not {step for step in steps if step.endswith("-proxy")}
    served = evaluate(base_config(pem, cluster={"workers": 2}, dashboardPassword="correct-horse-battery"), STACK, aws)
    assert {r.name for r in served.ok().of_type("command:remote:Command") if r.name.endswith("-proxy")} == {
        "sweep-proxy"}
    nodes = evaluation.outputs["nodes"]
    assert (nodes["sweep-worker-2"]["privateIp"], nodes["sweep-worker-2"]["publicIp"]) == ("169.254.64.22",) * 2
    assert nodes["sweep"]["privateIp"] == "10.42.0.10"  # not in node_addresses: the default
    worker_ray = evaluation.one("command:remote:Command", "sweep-worker-2-ray").inputs["create"]
    # the worker's Ray binds its own address and joins the head's private one
    assert worker_ray.split("ray-start.sh ", 1)[1].split() == [
        "worker", "169.254.64.22", "rayproject/ray:2.60.0-py311", "10.42.0.10"]


def test_a_replaced_workers_ray_step_is_drained_before_ray_starts_again(pem):
    from tests.unit.helpers import registered

    with registered(lambda request: request.deleteBeforeReplace) as options:
        cluster(pem, workers=1).ok()
    # the e2e engine (tests/e2e/engine.py) replays this order: delete (drain) of the old, then create
    assert options["sweep-worker-1-ray"] == [True]
    assert options["sweep-worker-1-docker"] == [False]


def test_a_workers_ray_starts_after_its_own_docker_not_after_the_heads_ray(pem):
    from tests.unit.helpers import recorded_dependencies

    with recorded_dependencies() as dependencies:
        cluster(pem, workers=1).ok()
    # a worker's Ray retries the head's GCS itself (hooks/ray-start.sh), so the worker's start overlaps the head's
    assert "sweep-worker-1-docker" in dependencies["sweep-worker-1-ray"]
    assert not {"sweep-ray", "sweep-docker", "sweep-proxy"} & dependencies["sweep-worker-1-ray"]


def test_the_heads_ray_starts_after_its_docker_and_only_its_site_waits_for_caddy(pem):
    from tests.unit.helpers import recorded_dependencies

    with recorded_dependencies() as dependencies:
        evaluate(base_config(pem, cluster={"workers": 1}, dashboardPassword="correct-horse-battery"), STACK).ok()
    # Ray binds none of Caddy's ports and needs no grown disk: the head's start overlaps Caddy's
    assert dependencies["sweep-ray"] & {"sweep-docker", "sweep-proxy", "sweep-grow-fs"} == {"sweep-docker"}
    assert dependencies["sweep-worker-1-ray"] & {"sweep-worker-1-docker", "sweep-worker-1-grow-fs"} == {
        "sweep-worker-1-docker"}
    # ray-site.sh adds a site to the running Caddy and forwards it to the running Ray's dashboard
    assert {"sweep-ray", "sweep-proxy"} <= dependencies["sweep-ray-site"]
