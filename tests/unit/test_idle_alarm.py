"""The CloudWatch backstop of the auto-stop watcher under Pulumi mocks: its arguments, who gets one, its window."""
from __future__ import annotations

import pytest

from components.aws.idle_alarm import alarm_window
from labstack.stacks.offline import FakeAws, evaluate
from tests.unit.helpers import base_config, digest

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
IMAGE = "ghcr.io/lab/elif@sha256:" + digest("ab")


def alarms(pem, **settings):
    found = evaluate(base_config(pem, **settings), "sweep", FakeAws(zones={"experiments.test": "ZMYEXP"})).ok()
    instances = {r.name.removesuffix("-instance"): r.id for r in found.of_type("aws:ec2/instance:Instance")}
    return {r.name: r.inputs for r in found.of_type(ALARM)}, instances


def test_each_node_of_a_cluster_gets_the_backstop_alarm(pem):
    found, instances = alarms(pem, network="create", cluster={"workers": 2, "engine": "none"},
                              autoStop={"idleMinutes": 45, "cpuPercent": 5})
    assert sorted(found) == ["sweep-idle-alarm", "sweep-worker-1-idle-alarm", "sweep-worker-2-idle-alarm"]
    head = found["sweep-idle-alarm"]
    assert {k: v for k, v in head.items() if k not in ("tags", "alarmDescription")} == {
        "namespace": "AWS/EC2", "metricName": "CPUUtilization", "dimensions": {"InstanceId": instances["sweep"]},
        "statistic": "Average", "period": 300, "evaluationPeriods": 18, "datapointsToAlarm": 18,  # 90 min
        "comparisonOperator": "LessThanThreshold", "threshold": 5.0, "treatMissingData": "notBreaching",
        "alarmActions": ["arn:aws:automate:eu-west-3:ec2:stop"]}
    assert head["tags"]["labstack:stack"] == "sweep" and head["tags"]["labstack:role"] == "alarm"
    assert found["sweep-worker-2-idle-alarm"]["dimensions"] == {"InstanceId": instances["sweep-worker-2"]}


def test_no_alarm_without_auto_stop_on_a_node_serving_apps_nor_on_an_existing_server(pem):
    assert alarms(pem, autoStop=False)[0] == {}
    apps = {"elif": {"image": IMAGE, "host": "@"}}
    assert alarms(pem, apps=apps)[0] == {}   # auto-stop is off with apps by default
    assert alarms(pem, apps=apps, autoStop={"idleMinutes": 60})[0] == {}   # on, but CloudWatch cannot see HTTP
    assert sorted(alarms(pem, apps=apps, network="create", autoStop=True,
                         cluster={"workers": 1, "engine": "none"})[0]) == ["sweep-worker-1-idle-alarm"]
    existing = {"host": "203.0.113.7", "hostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHwFtyF2ZnE5TF0sWJx6qcI7Ek5P+w6b"
                                                  "1LtgOyQhS5iM"}
    assert alarms(pem, existingServer=existing, apps=apps)[0] == {}   # labstack never stops a server it did not make
    assert alarms(pem, autoStop={"idleMinutes": 1411})[0] == {}   # beyond CloudWatch's day: the watcher alone
    assert list(alarms(pem, autoStop={"idleMinutes": 1410})[0]) == ["sweep-idle-alarm"]


@pytest.mark.parametrize("idle_minutes, window_minutes", [
    (5, 35), (30, 60), (45, 90), (60, 120), (600, 1200), (720, 1440), (1000, 1440), (1410, 1440), (1411, None)])
def test_the_alarm_waits_well_past_the_watcher_within_cloudwatchs_day(idle_minutes, window_minutes):
    window = alarm_window(idle_minutes * 60)
    assert (window // 60 if window else None) == window_minutes
    if window:
        assert window >= idle_minutes * 60 + 1800 and window % 300 == 0 and window <= 86400
