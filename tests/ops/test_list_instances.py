"""`invoke list.instances`: when and why an instance stopped. moto stops an instance as the API does; the other causes
(the OS powering itself off, a spot interruption) moto cannot produce, so their documented shapes are parsed too."""
from __future__ import annotations

import re

import pytest

from labstack.tasks import actions as commands

from labstack.stacks import inventory
from tests.ops.test_aws import launch
from tests.ops.test_tasks import invoke

# EC2's documented DescribeInstances fields of a stop: StateTransitionReason carries the time, StateReason the cause.
SELF_STOPPED = {"InstanceId": "i-0a1b2c3d4e5f60718", "InstanceType": "m7i.large", "State": {"Name": "stopped"},
                "Tags": [{"Key": "labstack:stack", "Value": "sweep"}, {"Key": "Name", "Value": "sweep"}],
                "StateTransitionReason": "User initiated (2026-11-29 01:17:40 GMT)",
                "StateReason": {"Code": "Client.InstanceInitiatedShutdown",
                                "Message": "Client.InstanceInitiatedShutdown: Instance initiated shutdown"}}


@pytest.mark.parametrize("instance, shown", [
    (SELF_STOPPED, "2026-11-29 01:17: stopped itself (watcher)"),
    ({"State": {"Name": "stopped"}, "StateTransitionReason": "User initiated (2026-11-28 23:05:12 GMT)",
      "StateReason": {"Code": "Client.UserInitiatedShutdown",
                      "Message": "Client.UserInitiatedShutdown: User initiated shutdown"}},
     "2026-11-28 23:05: API stop (invoke stop, console or idle alarm)"),
    ({"State": {"Name": "stopped"}, "StateTransitionReason": "",
      "StateReason": {"Code": "Server.SpotInstanceShutdown", "Message": "Server.SpotInstanceShutdown: ..."}},
     "spot interruption"),
    ({"State": {"Name": "terminated"}, "StateTransitionReason": "Service initiated (2026-11-28 12:00:01 GMT)",
      "StateReason": {"Code": "Server.SpotInstanceTermination", "Message": "Server.SpotInstanceTermination: ..."}},
     "2026-11-28 12:00: spot interruption (terminated)"),
    ({"State": {"Name": "stopped"}, "StateReason": {"Code": "Client.Odd", "Message": "Client.Odd: something"}},
     "Client.Odd: something"),
    ({"State": {"Name": "stopping"}}, "cause not given by EC2"),
    ({"State": {"Name": "running"}, "StateTransitionReason": ""}, "-"),
])
def test_when_and_why_an_instance_stopped(instance, shown):
    assert inventory.stop_reason(instance) == shown


class OneRegion:
    """A describe_instances paginator of one documented page: the shape moto cannot produce for a self-stop."""

    def __init__(self, *instances: dict):
        self.page = {"Reservations": [{"Instances": list(instances)}]}

    def get_paginator(self, operation: str):
        assert operation == "describe_instances"
        return self

    def paginate(self, **_filters):
        return [self.page]


def test_the_table_says_where_a_self_stopped_server_keeps_its_reason(capsys):
    [row] = commands.list_instances("eu-west-3", client_for=lambda region: OneRegion(SELF_STOPPED))
    assert row.stopped == "2026-11-29 01:17: stopped itself (watcher)"
    out = " ".join(capsys.readouterr().out.split())
    assert "stopped itself: labstack's watcher powered the OS off (idle, autoStop.maxHours or budget); why: " \
           "/var/lib/labstack/watcher/stops.log on the server" in out


@pytest.mark.testbed  # moto_server is a test bed service
def test_an_api_stop_through_invoke(moto_ec2, capsys):
    instance = launch(moto_ec2("eu-west-3"), "paris-batch2", name="paris-batch2")
    moto_ec2("eu-west-3").stop_instances(InstanceIds=[instance])
    assert invoke("list.instances", "--region", "eu-west-3", "--stopped") == 0
    out = capsys.readouterr().out
    # one line per instance on a 220-column pipe: the cell does not wrap
    assert re.search(rf"paris-batch2 .* stopped .* {instance} │ \d{{4}}-\d\d-\d\d \d\d:\d\d: API stop \(invoke stop, "
                     r"console or idle alarm\)", out), out
    assert "stops.log" not in out   # the watcher's note only when an instance stopped itself
