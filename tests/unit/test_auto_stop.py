"""labstack:autoStop: the settings and the watcher each node gets under Pulumi mocks. The watcher's decisions on the
node are tests/unit/test_agent_watcher.py."""
from __future__ import annotations

import pytest

from components.config.messages import ConfigError
from components.config.stack import load_stack_config
from components.render.bundle import read_bundle
from labstack.stacks.offline import FakeAws, evaluate
from tests.unit.helpers import base_config, digest

COMMAND = "command:remote:Command"
IMAGE = "ghcr.io/lab/elif@sha256:" + digest("ab")


def watchers(pem, **settings) -> dict[str, dict[str, str]]:
    """Per watcher step: the files it installs (none: the watcher is off)."""
    evaluation = evaluate(base_config(pem, **settings), "sweep", FakeAws(zones={"experiments.test": "ZMYEXP"})).ok()
    return {r.name: {name: data.decode() for name, data in read_bundle(r.inputs["stdin"]).items()}
            for r in evaluation.of_type(COMMAND) if r.name.endswith("-watcher")}


def settings_of(files: dict[str, str]) -> dict[str, str]:
    return dict(line.split("=", 1) for line in files["watcher.env"].splitlines() if not line.startswith("#"))


# ------------------------------------------------------------------------------------------------ config
def test_defaults_on_for_stacks_without_apps_off_with_apps(pem):
    assert settings_of(watchers(pem)["sweep-watcher"]) == {
        "IDLE_SECONDS": "'1800'", "MAX_SECONDS": "''", "CPU_PERCENT": "'10'", "BUSY_COMMANDS": "''"}
    with_apps = watchers(pem, apps={"elif": {"image": IMAGE, "host": "@"}})
    assert with_apps == {"sweep-watcher": {}}   # the step runs and turns any earlier watcher off


def test_settings_busy_commands_and_budget_reach_the_watcher(pem):
    apps = {"elif": {"image": IMAGE, "host": "@", "busyCommand": "python -m elif.recruiting"},
            "quiet": {"image": IMAGE, "host": "quiet"}}
    files = watchers(pem, apps=apps, autoStop={"idleMinutes": 60, "maxHours": 72, "cpuPercent": 5},
                     instanceType="t3.small", budget={"total": 500})["sweep-watcher"]
    settings = settings_of(files)
    assert (settings["IDLE_SECONDS"], settings["MAX_SECONDS"], settings["CPU_PERCENT"], settings["BUSY_COMMANDS"]) == (
        "'3600'", "'259200'", "'5'", "'elif'")
    assert settings["BUDGET_TOTAL"] == "'500.00'" and float(settings["HOURLY_PRICE"].strip("'")) > 0
    assert files["busy-elif.cmd"] == "python -m elif.recruiting"
    assert sorted(files) == ["busy-elif.cmd", "watcher.env"]


def test_a_budget_total_alone_installs_the_watcher_without_idle_stop(pem):
    files = watchers(pem, apps={"elif": {"image": IMAGE, "host": "@"}}, instanceType="t3.small",
                     budget={"total": 100})["sweep-watcher"]
    assert settings_of(files)["IDLE_SECONDS"] == "'0'" and settings_of(files)["BUDGET_TOTAL"] == "'100.00'"


def test_every_cluster_node_is_watched(pem):
    found = watchers(pem, network="create", cluster={"workers": 2, "engine": "none"}, autoStop={"idleMinutes": 45})
    assert sorted(found) == ["sweep-watcher", "sweep-worker-1-watcher", "sweep-worker-2-watcher"]
    assert {settings_of(files)["IDLE_SECONDS"] for files in found.values()} == {"'2700'"}


def test_an_existing_server_is_never_powered_off(pem):
    existing = {"host": "203.0.113.7", "hostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHwFtyF2ZnE5TF0sWJx6qcI7Ek5P+w6b"
                                                  "1LtgOyQhS5iM"}
    assert watchers(pem, existingServer=existing, apps={"elif": {"image": IMAGE, "host": "@"}}) == {}
    with pytest.raises(ConfigError) as refused:
        load_stack_config(base_config(pem, existingServer=existing, autoStop=True, sshCidrs=None, dnsHost=None,
                                      **{"aws:region": None}), "sweep")
    assert ("labstack:autoStop cannot be used with labstack:existingServer: labstack never powers off a server it "
            "did not make; remove it (or set it to false)") in str(refused.value)


@pytest.mark.parametrize("value, message", [
    ({"idleMinutes": 2}, "labstack:autoStop.idleMinutes = '2': must be between 5 and 10080 minutes"),
    ({"maxHours": 0}, "labstack:autoStop.maxHours = '0': must be between 1 and 8760 hours"),
    ({"idleMinuts": 30}, "labstack:autoStop.idleMinuts = '30': unknown setting; did you mean idleMinutes?"),
    ("yes", "labstack:autoStop = 'yes': expected true, false or a map such as {idleMinutes: 60, maxHours: 72}: "
            "Pulumi reads `yes` as text, not a boolean"),
])
def test_bad_settings_are_named(pem, value, message):
    with pytest.raises(ConfigError) as refused:
        load_stack_config(base_config(pem, autoStop=value), "sweep")
    assert message in str(refused.value).splitlines()[1]


def test_false_turns_it_off(pem):
    assert watchers(pem, autoStop=False) == {"sweep-watcher": {}}
    assert load_stack_config(base_config(pem, autoStop="false"), "sweep").auto_stop is None
