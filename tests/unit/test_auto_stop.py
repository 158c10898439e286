"""labstack:autoStop: the settings, the watcher each node gets under Pulumi mocks, and
hooks/auto-stop.sh's decisions run without root (LABSTACK_ROOT, recording fakes of ss, shutdown and docker)."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from components.config.messages import ConfigError
from components.config.stack import load_stack_config
from components.layout import HOOKS_DIR, JOBS_SRV, PROXY_ACCESS_LOG, WATCHER_ETC, WATCHER_RUN, WATCHER_STATE
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


# ------------------------------------------------------------------------------------------------ the hook
class Server:
    """A server tree under LABSTACK_ROOT with recording fakes: `ss` lists SSH_CONNECTIONS lines, `shutdown` records
    its arguments, /proc/stat is written by the test."""

    def __init__(self, root: Path):
        self.root = root
        self.bin = root / "fakebin"
        self.bin.mkdir(parents=True)
        self.calls = root / "calls"
        for name, body in {
            "ss": 'for _ in $(seq 1 "${SSH_CONNECTIONS:-0}"); do echo "ESTAB 0 0 10.0.0.5:22 198.51.100.7:5000"; done',
            "shutdown": f'echo "shutdown $*" >> {self.calls}',
            "docker": f'echo "docker $*" >> {self.calls}',
            "logger": "true",
        }.items():
            (self.bin / name).write_text(f"#!/bin/sh\n{body}\n")
            (self.bin / name).chmod(0o755)
        (root / "proc").mkdir()
        self.cpu(busy=0, idle=0)
        self.path = lambda p: root / p.lstrip("/")  # noqa: E731

    def cpu(self, busy: int, idle: int) -> None:
        (self.root / "proc/stat").write_text(f"cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\n")

    def settings(self, **values) -> None:
        self.path(WATCHER_ETC).mkdir(parents=True, exist_ok=True)
        (self.path(WATCHER_ETC) / "watcher.env").write_text("".join(f"{k}='{v}'\n" for k, v in values.items()))

    def check(self, **env) -> str:
        result = subprocess.run(["bash", str(HOOKS_DIR / "auto-stop.sh")], capture_output=True, text=True, env={
            "PATH": f"{self.bin}:/usr/bin:/bin", "LABSTACK_ROOT": str(self.root), **env}, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    def shutdowns(self) -> list[str]:
        return [c for c in self.calls.read_text().splitlines() if c.startswith("shutdown")] if self.calls.exists() else []

    def job(self, job_id: str, supervisor_pid: int) -> None:
        """A running job as job-submit.sh records it, its supervisor `supervisor_pid` (alive or not)."""
        meta = self.path(f"{JOBS_SRV}/{job_id}/.labstack")
        meta.mkdir(parents=True)
        (meta / "meta").write_text("mode=host\nscript=run.sh\n")
        (meta / "state").write_text("state=running\n")
        start = Path(f"/proc/{supervisor_pid}/stat").read_text().rsplit(")", 1)[1].split()[19] \
            if Path(f"/proc/{supervisor_pid}").exists() else "1"
        (meta / "supervisor").write_text(f"{supervisor_pid} {start}\n")
        (meta.parent / "status.json").write_text('{"id":"%s","state":"running"}\n' % job_id)

    def idle_since(self, seconds_ago: int) -> None:
        (self.path(WATCHER_STATE) / "last-active").write_text(f"{int(time.time()) - seconds_ago}\n")


@pytest.fixture
def server(tmp_path):
    return Server(tmp_path)


def test_first_check_is_busy_then_idle_time_counts_and_the_server_stops(server):
    server.settings(IDLE_SECONDS=600, CPU_PERCENT=10)
    assert server.check() == "auto-stop: busy: cpu: first sample"
    server.cpu(busy=5, idle=995)   # 0.5 % since the last sample
    assert server.check().startswith("auto-stop: idle for ")
    server.idle_since(599)
    server.cpu(busy=10, idle=1990)
    assert server.shutdowns() == [] and "idle for 599s of 600s" in server.check()
    server.idle_since(600)
    server.cpu(busy=15, idle=2985)
    out = server.check()
    assert out.startswith("auto-stop: stopping: idle for 600s")
    assert server.shutdowns() == ["shutdown -h now labstack auto-stop: " + out.removeprefix("auto-stop: stopping: ")]
    assert '"reason": "idle for 600s' in (server.path(WATCHER_STATE) / "stops.log").read_text()


@pytest.mark.parametrize("activity, reason", [
    ("ssh", "ssh: 2 connection(s)"),
    ("cpu", "cpu: 50%"),
    ("job", "jobs: 1 running"),
])
def test_activity_keeps_it_running(server, activity, reason):
    server.settings(IDLE_SECONDS=600, CPU_PERCENT=10)
    server.check()
    server.idle_since(3600)
    env = {}
    if activity == "ssh":
        env["SSH_CONNECTIONS"] = "2"
    server.cpu(busy=500 if activity == "cpu" else 1, idle=500 if activity == "cpu" else 999)
    if activity == "job":
        server.job("j1", supervisor_pid=os.getpid())
    out = server.check(**env)
    assert reason in out and server.shutdowns() == []
    assert int((server.path(WATCHER_STATE) / "last-active").read_text()) >= int(time.time()) - 5


def test_http_requests_count_when_they_happened(server):
    server.settings(IDLE_SECONDS=600, CPU_PERCENT=10)
    server.check()
    server.idle_since(3600)
    log = server.path(PROXY_ACCESS_LOG)
    log.parent.mkdir(parents=True)
    log.write_text('{"request": {}}\n')
    request_time = int(time.time()) - 120
    os.utime(log, (request_time, request_time))
    out = server.check()
    assert out == "auto-stop: idle for 120s of 600s" and server.shutdowns() == []


def test_an_unreadable_signal_counts_as_activity(server):
    server.settings(IDLE_SECONDS=600, CPU_PERCENT=10)
    server.check()
    server.idle_since(3600)
    (server.bin / "ss").write_text("#!/bin/sh\nexit 1\n")
    assert "ssh: cannot list connections" in server.check() and server.shutdowns() == []


def test_max_hours_stops_a_busy_server_after_a_warning(server):
    server.settings(IDLE_SECONDS=600, MAX_SECONDS=7200, CPU_PERCENT=10)
    server.check(SSH_CONNECTIONS="1")
    started = server.path(WATCHER_RUN) / "started"
    started.write_text(f"{int(time.time()) - 3700}\n")
    server.check(SSH_CONNECTIONS="1")
    assert "warning: this server stops in 58 minute(s)" in (server.path(WATCHER_STATE) / "watcher.log").read_text()
    started.write_text(f"{int(time.time()) - 7200}\n")
    assert server.check(SSH_CONNECTIONS="1").startswith("auto-stop: stopping: running for 7200s")
    assert len(server.shutdowns()) == 1


def test_the_budget_stops_at_the_total_after_warnings(server):
    server.settings(IDLE_SECONDS=0, HOURLY_PRICE="3.6", BUDGET_TOTAL="10.00")   # 0.001 USD per second
    server.check(SSH_CONNECTIONS="1")
    (server.path(WATCHER_STATE) / "run-seconds").write_text("7999\n")   # 8.00 USD: 80 % reached with this check
    server.check(SSH_CONNECTIONS="1")
    log = (server.path(WATCHER_STATE) / "watcher.log").read_text()
    assert "(50%)" in log and "(80%)" in log and server.shutdowns() == []
    (server.path(WATCHER_STATE) / "run-seconds").write_text("9999\n")
    out = server.check(SSH_CONNECTIONS="1")
    assert out == "auto-stop: stopping: budget: $10.00 spent, labstack:budget.total is $10.00"
    assert len(server.shutdowns()) == 1


def test_a_job_whose_supervisor_is_gone_ends_interrupted_and_keeps_nothing_up(server):
    server.settings(IDLE_SECONDS=600, CPU_PERCENT=10)
    server.check()
    server.idle_since(3600)
    server.job("j2", supervisor_pid=2 ** 22 + 1)   # above any pid this kernel hands out: never alive
    assert server.check().startswith("auto-stop: stopping: idle for")
    assert '"state":"interrupted"' in server.path(f"{JOBS_SRV}/j2/status.json").read_text()


def test_ray_task_processes_count_idle_ray_workers_do_not(server):
    server.settings(IDLE_SECONDS=600, CPU_PERCENT=10)
    server.check()
    server.idle_since(3600)
    idle_worker = subprocess.Popen(["bash", "-c", "exec -a ray::IDLE sleep 30"])
    try:
        assert server.check().startswith("auto-stop: stopping: idle for")   # an idle worker is no activity
        server.idle_since(3600)
        task = subprocess.Popen(["bash", "-c", "exec -a ray::train_step sleep 30"])
        try:
            assert server.check() == "auto-stop: busy: ray: 1 task/actor process(es)"
        finally:
            task.kill()
            task.wait()
    finally:
        idle_worker.kill()
        idle_worker.wait()

