"""The backstop of the auto-stop watcher (labstack:autoStop): a CloudWatch alarm that stops a node whose CPU stayed
low for well past the idle time, should the watcher on it have died (flambe's mechanism: the alarm action
arn:aws:automate:<region>:ec2:stop: no role of ours nor a Lambda; CloudWatch acts as its service-linked role
AWSServiceRoleForCloudWatchEvents, created with the account's first such alarm).

CloudWatch sees only CPU, not SSH sessions, jobs waiting on I/O, HTTP requests or an app's busy signal: that is why
the watcher decides, and the alarm waits twice the idle time (at least 30 minutes more) before it acts, and why a
node serving apps gets no alarm (a live experiment's light traffic would look idle to it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import pulumi
import pulumi_aws as aws

from components.config.auto_stop import AutoStopConfig

PERIOD = 300  # basic monitoring's 5-minute datapoints
MAX_WINDOW = 86400  # CloudWatch: evaluation periods x period must not exceed one day


def alarm_window(idle_seconds: int) -> Optional[int]:
    """How long CPU must stay low before the alarm stops the node; None when that would exceed CloudWatch's day
    (idleMinutes above about 23 hours: the watcher alone watches)."""
    wanted = math.ceil(max(2 * idle_seconds, idle_seconds + 1800) / PERIOD) * PERIOD
    if wanted <= MAX_WINDOW:
        return wanted
    return MAX_WINDOW if idle_seconds + 1800 <= MAX_WINDOW else None


@dataclass
class IdleAlarmArgs:
    instance_id: pulumi.Input[str]
    region: str
    auto_stop: AutoStopConfig
    tags: dict[str, str] = field(default_factory=dict)


class IdleAlarm(pulumi.ComponentResource):
    def __init__(self, name: str, args: IdleAlarmArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("labstack:index:IdleAlarm", name, None, opts)
        window = alarm_window(args.auto_stop.idle_seconds)
        if window is not None:
            periods = window // PERIOD
            aws.cloudwatch.MetricAlarm(
                f"{name}-idle-alarm",
                alarm_description=(f"labstack: stops {name} when its CPU stayed under {args.auto_stop.cpu_percent}% "
                                   f"for {window // 60} minutes: the backstop of the server's own auto-stop watcher "
                                   f"(idle after {args.auto_stop.idle_minutes} minutes)"),
                namespace="AWS/EC2", metric_name="CPUUtilization", dimensions={"InstanceId": args.instance_id},
                statistic="Average", period=PERIOD, evaluation_periods=periods, datapoints_to_alarm=periods,
                comparison_operator="LessThanThreshold", threshold=float(args.auto_stop.cpu_percent),
                # A stopped instance sends no datapoints: never an alarm (or a stop) because of that.
                treat_missing_data="notBreaching",
                alarm_actions=[f"arn:aws:automate:{args.region}:ec2:stop"],
                tags=args.tags, opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({"windowSeconds": window})
