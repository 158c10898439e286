"""The lifecycle boundary (docs/lifecycle.md) under mocks: what Pulumi declares for each labstack:desiredState, what a
switch to `auto` changes, and the launch template the operator side launches job instances from."""
from __future__ import annotations

import pytest

from components.aws.job_template import spot_market_options
from components.config.cost import HOURLY_TAG
from labstack.stacks.offline import FakeAws, evaluate
from tests.unit.helpers import assert_deploy_dependencies, base_config, digest, recorded_dependencies

STATE = "aws:ec2transitgateway/instanceState:InstanceState"
INSTANCE = "aws:ec2/instance:Instance"
TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
IMAGE = "registry.example.org/psychlab/elif@sha256:" + digest("ab")
ZONES = {"my-experiments.org": "ZMYEXP"}


def stack(pem, aws=None, **overrides):
    config = base_config(pem, apps={"elif": {"image": IMAGE, "host": "@"}}, **overrides)
    return evaluate(config, "paris-batch2", aws or FakeAws(zones=ZONES)).ok()


@pytest.mark.parametrize("state", ["running", "stopped"])
def test_running_and_stopped_are_owned_by_pulumi(pem, state):
    with recorded_dependencies() as dependencies:
        result = stack(pem, desiredState=state)
    power = result.one(STATE)
    assert (power.name, power.inputs["state"], power.inputs["instanceId"]) == (
        "paris-batch2-state", state, result.one(INSTANCE).id)
    assert_deploy_dependencies(dependencies, readiness="paris-batch2-state")


def test_auto_leaves_the_power_state_alone(pem):
    with recorded_dependencies() as dependencies:
        result = stack(pem, desiredState="auto")
    assert result.of_type(STATE) == []
    # SSH waits for the instance itself: EC2 creates it running.
    assert_deploy_dependencies(dependencies, readiness="paris-batch2-instance")
    assert "paris-batch2-state" not in set().union(*dependencies.values())


def test_switching_running_to_auto_only_drops_the_instance_state(pem):
    aws = FakeAws(zones=ZONES)  # one "state": the same generated host key in both evaluations
    running = {r.urn: r for r in stack(pem, aws, desiredState="running").resources}
    auto = {r.urn: r for r in stack(pem, aws, desiredState="auto").resources}
    # The plan of that `pulumi up`: one delete (the provider's delete of an instance state only forgets it), no
    # create, and every other resource, the instance and the remote steps included, with the same inputs.
    assert [running[urn].type for urn in running.keys() - auto.keys()] == [STATE]
    assert auto.keys() - running.keys() == set()
    assert {urn: r.inputs for urn, r in auto.items()} == {urn: running[urn].inputs for urn in auto}


def test_switching_auto_to_stopped_declares_the_instance_state_again(pem):
    aws = FakeAws(zones=ZONES)
    auto = {r.urn for r in stack(pem, aws, desiredState="auto").resources}
    stopped = stack(pem, aws, desiredState="stopped")
    added = [r for r in stopped.resources if r.urn not in auto]
    assert [(r.type, r.inputs["state"]) for r in added] == [(STATE, "stopped")]


def test_existing_server_has_no_power_state_and_no_template(pem):
    host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIApC3jxkeASzf6e7cORPKQZB3SdvvaTjJxYsb2XMRYgR"
    result = stack(pem, **{"aws:region": None, "dnsHost": None,
                           "existingServer": {"host": "lab-server.uni.example", "hostKey": host_key}})
    assert result.of_type(STATE) == [] and result.of_type(TEMPLATE) == []
    assert "launchTemplateId" not in result.outputs


def test_the_job_template_carries_the_nodes_settings(pem):
    result = stack(pem, storageGb="48", tags={"team": "psych"})
    instance, template = result.one(INSTANCE).inputs, result.one(TEMPLATE).inputs
    assert result.outputs["launchTemplateId"] == result.one(TEMPLATE).id
    # IMDSv2 only, hop limit 1: the same metadata options, from one place.
    assert template["metadataOptions"] == instance["metadataOptions"] == {
        "httpTokens": "required", "httpEndpoint": "enabled", "httpPutResponseHopLimit": 1}
    # The root volume: the AMI's root device (FakeAws: /dev/sda1), encrypted gp3 of the stack's size, deleted with
    # the instance. A template spells the booleans as strings.
    [mapping] = template["blockDeviceMappings"]
    root = instance["rootBlockDevice"]
    assert mapping["deviceName"] == "/dev/sda1"
    assert {key: str(value).lower() for key, value in mapping["ebs"].items()} == {
        key: str(root[key]).lower() for key in ("volumeSize", "volumeType", "encrypted", "deleteOnTermination")}
    assert (root["encrypted"], root["volumeType"], root["volumeSize"]) == (True, "gp3", 48)
    # Same image and type as the head (the head keeps the AMI it was made from; the template follows the config).
    assert (template["imageId"], template["instanceType"]) == (instance["ami"], instance["instanceType"])
    assert template["keyName"] == instance["keyName"]
    assert template["vpcSecurityGroupIds"] == instance["vpcSecurityGroupIds"]
    # Tagged like the nodes (so inventory and cost reports find job instances and their volumes), as role `job`.
    specifications = {spec["resourceType"]: spec["tags"] for spec in template["tagSpecifications"]}
    assert set(specifications) == {"instance", "volume"}
    # Less the node's price at creation (components/config/cost.py): a template outlives the prices of the day.
    node_tags = {key: value for key, value in instance["tags"].items() if key != HOURLY_TAG}
    assert instance["tags"][HOURLY_TAG] == "0.11760 m7i.large"
    for tags in (*specifications.values(), template["tags"]):
        assert tags == {**node_tags, "Name": "paris-batch2-job", "labstack:role": "job"}
    assert instance["tags"]["team"] == "psych"
    # A node that shuts itself down is stopped (disk and address kept); a job instance is gone.
    assert (instance["instanceInitiatedShutdownBehavior"], template["instanceInitiatedShutdownBehavior"]) == (
        "stop", "terminate")
    assert template["updateDefaultVersion"] is True
    assert "instanceMarketOptions" not in template  # on-demand until the cost work makes spot a setting
    # Never launched from the template: that input would replace the deployed server and delete its disk.
    assert "launchTemplate" not in instance


def test_spot_options_for_job_instances_end_them_on_interruption():
    options = spot_market_options()
    assert options.market_type == "spot"
    assert (options.spot_options.spot_instance_type, options.spot_options.instance_interruption_behavior) == (
        "one-time", "terminate")
