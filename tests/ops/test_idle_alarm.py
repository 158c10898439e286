"""The idle alarm the program declares, created in CloudWatch (moto server): the arguments are valid for the API and
the stop action is what AWS keeps."""
from __future__ import annotations

import boto3
import pytest

from labstack.stacks.offline import evaluate
from tests.unit.helpers import base_config

pytestmark = pytest.mark.testbed  # moto_server is a test bed service

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def put_metric_alarm_arguments(name: str, inputs: dict) -> dict:
    """The declared alarm as CloudWatch's PutMetricAlarm takes it (the provider's own mapping, field by field; the
    mocks hand numbers over as floats, the provider's schema types them as integers)."""
    return {"AlarmName": name, "AlarmDescription": inputs["alarmDescription"], "Namespace": inputs["namespace"],
            "MetricName": inputs["metricName"], "Statistic": inputs["statistic"], "Period": int(inputs["period"]),
            "EvaluationPeriods": int(inputs["evaluationPeriods"]), "DatapointsToAlarm": int(inputs["datapointsToAlarm"]),
            "Threshold": inputs["threshold"], "ComparisonOperator": inputs["comparisonOperator"],
            "TreatMissingData": inputs["treatMissingData"], "AlarmActions": inputs["alarmActions"],
            "Dimensions": [{"Name": key, "Value": value} for key, value in inputs["dimensions"].items()],
            "Tags": [{"Key": key, "Value": value} for key, value in inputs["tags"].items()]}


def test_the_declared_alarm_is_accepted_by_cloudwatch(moto_ec2, moto_server, server_pem):
    declared = evaluate(base_config(server_pem, network="create", cluster={"workers": 1, "engine": "none"},
                                    autoStop={"idleMinutes": 30}), "sweep").ok()
    [alarm] = [r for r in declared.of_type(ALARM) if r.name == "sweep-worker-1-idle-alarm"]
    cloudwatch = boto3.client("cloudwatch", region_name="eu-west-3", endpoint_url=moto_server)
    cloudwatch.put_metric_alarm(**put_metric_alarm_arguments(alarm.name, alarm.inputs))
    [kept] = cloudwatch.describe_alarms(AlarmNames=[alarm.name])["MetricAlarms"]
    assert kept["AlarmActions"] == ["arn:aws:automate:eu-west-3:ec2:stop"]
    assert (kept["MetricName"], kept["Namespace"], kept["Statistic"], kept["Threshold"]) == (
        "CPUUtilization", "AWS/EC2", "Average", 10.0)
    assert (kept["Period"] * kept["EvaluationPeriods"], kept["ComparisonOperator"], kept["TreatMissingData"]) == (
        3600, "LessThanThreshold", "notBreaching")
    assert kept["Dimensions"] == [{"Name": "InstanceId", "Value": alarm.inputs["dimensions"]["InstanceId"]}]
    assert kept["StateValue"] in ("INSUFFICIENT_DATA", "OK")   # no datapoints yet: no stop
