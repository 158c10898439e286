"""labstack/cost/report.py's reading of EC2's times (what is known about running time) and its budget warnings, on instance
records shaped as describe_instances returns them."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from labstack.cost import report as cost

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=timezone.utc)
NOW = T0 + timedelta(days=10)


def instance(state: str, started: datetime, reason: str = "") -> dict:
    return {"State": {"Name": state}, "LaunchTime": started, "StateTransitionReason": reason,
            "BlockDeviceMappings": [{"DeviceName": "/dev/sda1", "Ebs": {"AttachTime": T0}}]}


def test_first_launch_is_the_root_volumes_attach_time_and_launch_time_the_last_start():
    restarted = instance("running", T0 + timedelta(days=3))
    assert cost.first_launch(restarted) == T0
    # Known: running since its last start. Unknown: how long it ran in the 3 days before (it stopped at some point).
    assert cost.running_time(restarted, NOW) == ([(T0 + timedelta(days=3), NOW)], [(T0, T0 + timedelta(days=3))])


def test_a_stopped_instance_ran_from_its_last_start_to_its_last_stop():
    stopped = instance("stopped", T0, "User initiated (2026-11-02 08:00:00 GMT)")
    assert cost.last_stop(stopped) == T0 + timedelta(days=1)
    assert cost.running_time(stopped, NOW) == ([(T0, T0 + timedelta(days=1))], [])
    # No date in the reason (e.g. a spot interruption's wording): anything between never and always.
    assert cost.running_time(instance("stopped", T0, "Server.SpotInstanceShutdown"), NOW) == ([], [(T0, NOW)])


def test_budget_warnings_at_50_and_80_percent_and_at_the_total():
    def warnings(spent: float) -> list[str]:
        report = cost.StackCost("paris-batch2", "eu-west-3", budget_total=100.0)
        report.lines.append(cost.Line("instance", "i-1", "", "", T0, spent / 2, spent, 0.0))
        return cost.budget_warnings(report)
    assert warnings(49.99) == []
    assert warnings(50) == ["spend since launch (at most $50.00) is past 50% of labstack:budget.total $100.00"]
    assert warnings(85) == ["spend since launch (at most $85.00) is past 80% of labstack:budget.total $100.00"]
    assert warnings(100) == ["spend since launch (at most $100.00) has reached labstack:budget.total $100.00: the "
                             "server's watcher stops the server at it; if it still runs, `invoke stop -s "
                             "paris-batch2`"]
