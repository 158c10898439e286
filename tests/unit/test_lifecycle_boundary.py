"""The lifecycle boundary (docs/lifecycle.md) under mocks: what Pulumi declares for each labstack:desiredState, what a
switch to `auto` changes."""
from __future__ import annotations

import pytest

from labstack.stacks.offline import FakeAws, evaluate
from tests.unit.helpers import assert_deploy_dependencies, base_config, digest, recorded_dependencies

STATE = "aws:ec2transitgateway/instanceState:InstanceState"
INSTANCE = "aws:ec2/instance:Instance"
IMAGE = "registry.example.org/psychlab/elif@sha256:" + digest("ab")
ZONES = {"experiments.test": "ZMYEXP"}


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


def test_existing_server_has_no_power_state(pem):
    host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIApC3jxkeASzf6e7cORPKQZB3SdvvaTjJxYsb2XMRYgR"
    result = stack(pem, **{"aws:region": None, "dnsHost": None,
                           "existingServer": {"host": "lab-server.uni.example", "hostKey": host_key}})
    assert result.of_type(STATE) == []
