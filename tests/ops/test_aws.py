"""restart and the inventory against moto in server mode (every boto3 call is a real HTTP request to it)."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from components.config import prices
from labstack.stacks import inventory
from labstack.stacks import lifecycle

pytestmark = pytest.mark.testbed  # moto_server is a test bed service


@pytest.fixture
def aws(moto_ec2):
    return moto_ec2


def launch(ec2, stack: str | None, instance_type: str = "m7i.large", key_name: str | None = None,
           name: str | None = None) -> str:
    image = ec2.describe_images()["Images"][0]["ImageId"]
    tags = [{"Key": "experiment", "Value": "first-tag-is-not-the-name"}]
    if stack:
        tags += [{"Key": "labstack:stack", "Value": stack}, {"Key": "labstack:role", "Value": "server"}]
    if name:
        tags.append({"Key": "Name", "Value": name})
    extra = {"KeyName": key_name} if key_name else {}
    if key_name:
        ec2.create_key_pair(KeyName=key_name)
    return ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType=instance_type,
                             TagSpecifications=[{"ResourceType": "instance", "Tags": tags}], **extra
                             )["Instances"][0]["InstanceId"]


def test_restart_reboots_and_waits_for_running_and_ssh(aws):
    ec2 = aws("eu-west-3")
    instance = launch(ec2, "paris-batch2", name="paris-batch2")
    waited = []
    seconds = lifecycle.restart("paris-batch2", instance, "eu-west-3",
                                wait_ssh=lambda left: waited.append(left) or True, timeout=120, poll=0.1)
    assert len(waited) == 1 and 0 < waited[0] <= 120 and seconds >= 0
    assert lifecycle.instance_state(ec2, instance) == "running"


def test_restart_is_bounded_and_refuses_a_stopped_instance(aws):
    ec2 = aws("eu-west-3")
    instance = launch(ec2, "paris-batch2")
    with pytest.raises(lifecycle.LifecycleError, match="SSH did not answer within 30s"):
        lifecycle.restart("paris-batch2", instance, "eu-west-3", wait_ssh=lambda left: False, timeout=30, poll=0.1)
    ec2.stop_instances(InstanceIds=[instance])
    with pytest.raises(lifecycle.LifecycleError,
                       match=r"no running instance \(i-\w+ is stopped\); start it with `invoke start -s paris-batch2`"):
        lifecycle.restart("paris-batch2", instance, "eu-west-3", wait_ssh=lambda left: True)
    with pytest.raises(lifecycle.LifecycleError, match="i-0123456789abcdef0 not found"):
        lifecycle.restart("paris-batch2", "i-0123456789abcdef0", "eu-west-3", wait_ssh=lambda left: True)


def test_regions_and_types(aws):
    names = inventory.regions(region="eu-west-3")
    assert {"eu-west-3", "us-east-1", "ap-northeast-1"} <= set(names) and names == sorted(names)
    types = {row["type"]: row for row in inventory.instance_types("eu-west-3")}
    assert types["m7i.large"]["vcpus"] == 2 and types["m7i.large"]["memory_gib"] == 8
    assert types["m7i.large"]["hourly"] == "$0.1176"  # Paris: us-east-1's $0.1008 x 1.1667 (m5.large's ratio)
    assert types["t3.micro"]["hourly"] == "$0.0121"
    unknown = next(row for name, row in types.items() if prices.hourly_price("eu-west-3", name)[0] is None)
    assert unknown["hourly"] == "?"


def test_instances_are_labstacks_named_by_name_tag_with_long_uptime(aws):
    paris = launch(aws("eu-west-3"), "paris-batch2", name="paris-batch2")
    tokyo = launch(aws("ap-northeast-1"), "tokyo-pilot", instance_type="t3.medium", name="tokyo-pilot")
    launch(aws("eu-west-3"), None, name="someone-elses-server")  # no labstack tag: not listed
    keyed = launch(aws("us-east-1"), None, instance_type="c5.large",
                   key_name="lab-shared", name="by-key")
    aws("ap-northeast-1").stop_instances(InstanceIds=[tokyo])
    launched = aws("eu-west-3").describe_instances(InstanceIds=[paris])["Reservations"][0]["Instances"][0]["LaunchTime"]
    later = launched + timedelta(days=3, hours=5, minutes=7)

    rows = inventory.instances(["eu-west-3", "ap-northeast-1", "us-east-1"], client_for=aws, now=later)
    assert [(r.name, r.stack, r.state, r.region) for r in rows] == [
        ("tokyo-pilot", "tokyo-pilot", "stopped", "ap-northeast-1"),
        ("paris-batch2", "paris-batch2", "running", "eu-west-3")]
    paris_row = rows[1]
    assert paris_row.instance_id == paris and paris_row.uptime == "3d 5h 07m" and paris_row.hourly == "$0.1176"
    assert rows[0].uptime == "-" and rows[0].hourly == "-"
    # when (EC2's transition time) and who: moto stops as the API does
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d: API stop \(invoke stop, console or idle alarm\)",
                        rows[0].stopped), rows[0].stopped
    assert paris_row.stopped == "-"

    running = inventory.instances(["eu-west-3", "ap-northeast-1"], states=["running"], client_for=aws, now=later)
    assert [r.instance_id for r in running] == [paris]
    stopped = inventory.instances(["eu-west-3", "ap-northeast-1"], states=["stopped"], client_for=aws, now=later)
    assert [r.instance_id for r in stopped] == [tokyo]

    by_key = inventory.instances(["us-east-1"], key_name="lab-shared", client_for=aws, now=later)
    assert [(r.instance_id, r.name, r.stack, r.key_name, r.hourly) for r in by_key] == [
        (keyed, "by-key", "-", "lab-shared", "$0.0850")]



def test_list_tasks_through_invoke(aws, capsys):
    from tests.ops.test_tasks import invoke

    launch(aws("eu-west-3"), "paris-batch2", name="paris-batch2")
    assert invoke("list.instances", "--region", "eu-west-3", "--running") == 0
    out = capsys.readouterr().out
    assert "paris-batch2" in out and "running" in out and "$0.1176" in out and "estimate" in out
    assert invoke("list.instances", "--region", "eu-west-3", "--stopped") == 0
    assert "no labstack instances" in capsys.readouterr().out
    assert invoke("list.types", "--region", "eu-west-3") == 0
    assert "m7i.large" in capsys.readouterr().out


def test_restart_task_reads_the_instance_from_the_stack_outputs(aws, write_stack, recording_pulumi, monkeypatch):
    import json

    from labstack.tasks import actions as commands

    write_stack()
    instance = launch(aws("eu-west-3"), "paris-batch2", name="paris-batch2")
    monkeypatch.setenv("FAKE_PULUMI_OUTPUTS", json.dumps({"instanceId": instance, "region": "eu-west-3"}))
    calls = []
    seconds = commands.restart("paris-batch2", timeout=60, wait_ssh=lambda left: calls.append(left) or True)
    assert calls and 0 < calls[0] <= 60 and seconds >= 0
    assert recording_pulumi() == [["stack", "output", "--json", "--stack", "paris-batch2"]]
    aws("eu-west-3").stop_instances(InstanceIds=[instance])
    with pytest.raises(lifecycle.LifecycleError, match="no running instance"):
        commands.restart("paris-batch2", timeout=60, wait_ssh=lambda left: True)
