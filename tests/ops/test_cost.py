"""`invoke cost` and the spot request against moto in server mode (every boto3 call is a real HTTP request to it).

moto has no Pricing API (its server answers GetProducts with a 500), so today's prices here are the built-in
table's, marked as estimates: that is the fallback path, for real. The Pricing API parser is tested in
tests/unit/test_pricing.py with botocore's Stubber."""
from __future__ import annotations

from datetime import timedelta

import pytest

from components.config.cost import GB_MONTH_TAG, HOURLY_TAG
from labstack.cost import report as cost
from labstack.cost import pricing
from labstack.stacks.offline import FakeAws, evaluate
from tests.unit.helpers import base_config

pytestmark = pytest.mark.testbed  # moto_server is a test bed service

REGION = "eu-west-3"


@pytest.fixture
def aws(moto_ec2, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return moto_ec2(REGION)


def tags(stack: str, **extra: str) -> list[dict]:
    return [{"Key": key, "Value": value} for key, value in
            {"labstack:stack": stack, "labstack:role": "server", "Name": stack, **extra}.items()]


def launch(ec2, stack: str, instance_type: str = "m7i.large", size: int = 40, recorded: bool = True,
           **options) -> dict:
    """An instance as the program makes it: tagged (with its price at creation) and its root volume too."""
    image = ec2.describe_images()["Images"][0]["ImageId"]
    instance_tags = tags(stack, **({HOURLY_TAG: f"0.10000 {instance_type}"} if recorded else {}))
    volume_tags = tags(stack, **({GB_MONTH_TAG: "0.09000"} if recorded else {}))
    return ec2.run_instances(
        ImageId=image, MinCount=1, MaxCount=1, InstanceType=instance_type,
        BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": size, "VolumeType": "gp3",
                                                                 "Encrypted": True}}],
        TagSpecifications=[{"ResourceType": "instance", "Tags": instance_tags},
                           {"ResourceType": "volume", "Tags": volume_tags}], **options)["Instances"][0]


def by_kind(report: cost.StackCost) -> dict[str, list[cost.Line]]:
    found: dict[str, list[cost.Line]] = {}
    for line in report.lines:
        found.setdefault(line.kind, []).append(line)
    return found


def test_stack_cost_prices_the_past_at_recorded_rates_and_the_month_at_todays(aws):
    instance = launch(aws, "paris-batch2")
    launch(aws, "someone-else")  # another stack: not in this report
    address = aws.allocate_address(Domain="vpc", TagSpecifications=[
        {"ResourceType": "elastic-ip", "Tags": tags("paris-batch2", **{HOURLY_TAG: "0.00500"})}])
    aws.associate_address(AllocationId=address["AllocationId"], InstanceId=instance["InstanceId"])
    volume = instance["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    aws.create_snapshot(VolumeId=volume, TagSpecifications=[{"ResourceType": "snapshot",
                                                             "Tags": tags("paris-batch2")}])
    now = cost.first_launch(instance) + timedelta(hours=100)

    report = cost.stack_cost("paris-batch2", REGION, ec2=aws, budget_total=20.0, budget_hourly=0.1, now=now)
    lines = by_kind(report)
    [compute] = lines["instance"]
    assert (compute.resource_id, compute.detail, compute.rate) == (instance["InstanceId"], "m7i.large running",
                                                                   "$0.1000/h")
    # 100 h at the price recorded at creation (0.10), not today's table price (0.1176); the month at today's.
    assert (compute.low, compute.high) == pytest.approx((10.0, 10.0))
    assert compute.monthly == pytest.approx(0.1176 * 730)
    assert compute.note == "price recorded at creation"
    [disk] = lines["volume"]
    # moto may date the volume a second after the instance: abs=1e-4 is 20 s of that disk
    assert (disk.detail, disk.low, disk.monthly) == ("40 GB gp3", pytest.approx(40 * 0.09 * 100 / 730, abs=1e-4),
                                                     pytest.approx(40 * 0.0928))
    [ip] = lines["address"]
    assert (ip.detail, ip.low, ip.monthly) == (address["PublicIp"], pytest.approx(0.5), pytest.approx(3.65))
    [snapshot] = lines["snapshot"]
    assert snapshot.detail == "40 GB (at most)" and snapshot.monthly == pytest.approx(40 * 0.053)
    assert report.hourly_now == pytest.approx(0.1176)
    assert report.high == pytest.approx(10.0 + disk.high + 0.5 + snapshot.high)
    assert report.monthly == pytest.approx(0.1176 * 730 + 40 * 0.0928 + 3.65 + 40 * 0.053)
    assert report.warnings[0] == (f"spend since launch (at most ${report.high:.2f}) is past 50% of "
                                  "labstack:budget.total $20.00")
    assert report.warnings[1] == ("the running instances cost $0.1176/h at today's prices, above "
                                  "labstack:budget.hourly $0.1000 (the table `pulumi up` checked against is older)")
    # moto server has no Pricing API (it answers 500 with a page): the table answered, and the report says so.
    assert report.warnings[2].startswith("the AWS Pricing API could not be reached (An error occurred (500) when "
                                         "calling the GetProducts operation")


def test_a_worker_without_elastic_ip_pays_for_its_own_public_ipv4_while_it_runs(aws):
    worker = launch(aws, "sweep")
    assert worker.get("PublicIpAddress")   # EC2 (moto) gave it an address of its own
    now = worker["LaunchTime"] + timedelta(hours=20)
    [own] = by_kind(cost.stack_cost("sweep", REGION, ec2=aws, now=now))["address"]
    assert (own.resource_id, own.detail, own.rate) == (worker["InstanceId"], worker["PublicIpAddress"], "$0.0050/h")
    assert (own.low, own.monthly) == (pytest.approx(0.1), pytest.approx(3.65))
    aws.stop_instances(InstanceIds=[worker["InstanceId"]])   # a stop releases it: no address billed
    assert "address" not in by_kind(cost.stack_cost("sweep", REGION, ec2=aws, now=now))


def test_without_recorded_prices_a_resized_or_old_instance_is_priced_today_and_says_so(aws):
    instance = launch(aws, "paris-batch2", instance_type="t3.medium", recorded=False)
    now = cost.first_launch(instance) + timedelta(hours=10)
    report = cost.stack_cost("paris-batch2", REGION, ec2=aws, budget_total=5.0, now=now)
    [compute] = by_kind(report)["instance"]
    assert compute.low == pytest.approx(10 * 0.0416 * 0.112 / 0.096, abs=1e-4)
    assert compute.note.startswith("no price recorded at creation: today's (built-in table 2025-06 (estimate); "
                                   "Pricing API: An error occurred (500)")
    assert report.warnings[0].startswith("the AWS Pricing API could not be reached")  # under 50%: no budget line


def test_a_stopped_instance_costs_compute_only_until_its_stop(aws):
    instance = launch(aws, "paris-batch2")
    aws.stop_instances(InstanceIds=[instance["InstanceId"]])
    now = cost.first_launch(instance) + timedelta(hours=48)
    report = cost.stack_cost("paris-batch2", REGION, ec2=aws, budget_total=0.25, now=now)
    [compute] = by_kind(report)["instance"]
    assert compute.detail == "m7i.large stopped" and compute.monthly == 0 and report.hourly_now == 0
    assert compute.high < 0.01  # stopped within seconds of its launch (moto dates the stop in StateTransitionReason)
    [disk] = by_kind(report)["volume"]
    assert disk.low == pytest.approx(40 * 0.09 * 48 / 730, abs=1e-4)  # the disk costs on while stopped
    assert report.warnings[0] == f"spend since launch (at most ${report.high:.2f}) is past 80% of " \
                                 "labstack:budget.total $0.25"  # 0.24 of it is the disk's


def test_the_programs_spot_request_is_accepted_by_ec2_and_priced_from_spot_history(aws, server_pem):
    """The market options the program declares (under mocks), sent to EC2 as RunInstances takes them."""
    declared = evaluate(base_config(server_pem, spot={"maxPrice": 0.05}), "paris-batch2", FakeAws()).ok().one(
        "aws:ec2/instance:Instance").inputs["instanceMarketOptions"]
    options = declared["spotOptions"]
    market = {"MarketType": declared["marketType"], "SpotOptions": {
        "SpotInstanceType": options["spotInstanceType"], "MaxPrice": options["maxPrice"],
        "InstanceInterruptionBehavior": options["instanceInterruptionBehavior"]}}
    assert market == {"MarketType": "spot", "SpotOptions": {"SpotInstanceType": "persistent", "MaxPrice": "0.05",
                                                           "InstanceInterruptionBehavior": "stop"}}
    instance = launch(aws, "paris-batch2", InstanceMarketOptions=market)
    described = aws.describe_instances(InstanceIds=[instance["InstanceId"]])["Reservations"][0]["Instances"][0]
    assert described["InstanceLifecycle"] == "spot"
    zone = described["Placement"]["AvailabilityZone"]

    history = pricing.spot_history(aws, "m7i.large", zone, cost.first_launch(described),
                                   cost.first_launch(described) + timedelta(hours=1))
    assert history and {usd for _, usd in history} == {history[-1][1]}  # moto: one price per zone
    now = cost.first_launch(described) + timedelta(hours=30)
    [compute] = by_kind(cost.stack_cost("paris-batch2", REGION, ec2=aws, now=now))["instance"]
    assert compute.low == pytest.approx(30 * history[-1][1])
    assert compute.monthly == pytest.approx(730 * history[-1][1])
    assert compute.note == f"spot price history of {zone}"


def test_cost_task_through_invoke(aws, write_stack, capsys):
    from tests.ops.test_tasks import invoke

    path = write_stack()
    path.write_text(path.read_text().replace("  labstack:storageGb: \"40\"\n",
                                             "  labstack:storageGb: \"40\"\n  labstack:budget: {total: 500}\n"))
    launch(aws, "paris-batch2")
    assert invoke("cost", "-s", "paris-batch2") == 0
    out = capsys.readouterr().out
    assert "paris-batch2 (eu-west-3)" in out and "m7i.large running" in out and "$0.1000/h" in out
    assert "could not be reached" in out
    assert invoke("cost", "-s", "no-such-stack") == 1
