"""The auto-stop watcher's decisions (hooks/agent/watcher.py) without root: one check at a time with its clock given,
the server's files under LABSTACK_ROOT, recording fakes of ss, shutdown, logger and wall, the fake engine for busy
commands, and real processes for Ray tasks and job supervisors."""
from __future__ import annotations

import importlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from components.config.auto_stop import AutoStopConfig
from components.layout import JOBS_SRV, PROXY_ACCESS_LOG, WATCHER_ETC, WATCHER_RUN, WATCHER_STATE
from components.remote.watcher import watcher_files
from hooks.agent import contract, layout, watcher
from hooks.agent.node import Fail
from tests.unit.agent_node import FAKES

T0 = 1_800_000_000  # the first check's time; each test moves its own clock


class Server:
    def __init__(self, root: Path):
        self.root = root
        self.bin = root / "fakebin"
        self.bin.mkdir()
        self.calls = root / "calls"
        self.engine = root / "engine"
        self.engine.mkdir()
        for name, body in {
            "ss": 'test -e "$0.fail" && exit 1; for _ in $(seq 1 "$(cat "$0.count" 2>/dev/null || echo 0)"); do '
                  'echo "ESTAB 0 0 10.0.0.5:22 198.51.100.7:5000"; done',
            "shutdown": f'echo "shutdown $*" >> {self.calls}',
            "logger": f'echo "logger $*" >> {self.calls}',
            "wall": f'echo "wall $*" >> {self.calls}',
        }.items():
            (self.bin / name).write_text(f"#!/bin/sh\n{body}\n")
            (self.bin / name).chmod(0o755)
        (self.bin / "docker").symlink_to(FAKES / "docker")
        (root / "proc").mkdir()
        self.ticks = [0, 0]
        self.cpu(0, 0)
        self.said: list[str] = []

    def path(self, server_path: str) -> Path:
        return self.root / server_path.lstrip("/")

    def cpu(self, busy: int, idle: int) -> None:
        """CPU time since the last sample: `busy` and `idle` ticks more."""
        self.ticks = [self.ticks[0] + busy, self.ticks[1] + idle]
        (self.root / "proc/stat").write_text(f"cpu  {self.ticks[0]} 0 0 {self.ticks[1]} 0 0 0 0 0 0\n")

    def settings(self, **values) -> None:
        self.path(WATCHER_ETC).mkdir(parents=True, exist_ok=True)
        (self.path(WATCHER_ETC) / "watcher.env").write_text(
            "# labstack's auto-stop watcher\n" + "".join(f"{k}='{v}'\n" for k, v in values.items()))

    def ssh(self, count: int) -> None:
        (self.bin / "ss.count").write_text(str(count))

    def check(self, now: int, quiet_cpu: bool = True) -> str:
        if quiet_cpu:
            self.cpu(1, 999)
        return watcher.check_once(now=now, say=self.said.append)

    def shutdowns(self) -> list[str]:
        return [c for c in self.calls.read_text().splitlines() if c.startswith("shutdown")] if self.calls.exists() else []

    def log(self) -> str:
        return (self.path(WATCHER_STATE) / "watcher.log").read_text()

    def state(self, name: str) -> Path:
        return self.path(WATCHER_STATE) / name


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setenv("LABSTACK_ROOT", str(tmp_path))
    monkeypatch.setenv("PATH", f"{tmp_path / 'fakebin'}:/usr/bin:/bin")
    monkeypatch.setenv("FAKE_DOCKER", str(tmp_path / "engine"))
    importlib.reload(layout)
    yield Server(tmp_path)
    monkeypatch.undo()
    importlib.reload(layout)


def test_the_agent_reads_the_settings_the_program_renders(server):
    """components/remote/watcher.py writes watcher.env and busy-<app>.cmd; the agent reads every value back."""
    files = watcher_files(AutoStopConfig(idle_seconds=3600, max_seconds=259200, cpu_percent=5),
                          {"HOURLY_PRICE": "0.02080", "BUDGET_TOTAL": "500.00"}, {"elif": "python -m elif.busy"})
    server.path(WATCHER_ETC).mkdir(parents=True)
    for name, text in files.items():
        (server.path(WATCHER_ETC) / name).write_text(text)
    assert watcher.read_settings(str(server.path(WATCHER_ETC) / contract.WATCHER_ENV)) == watcher.Settings(
        idle_seconds=3600, max_seconds=259200, cpu_percent=5, busy_apps=["elif"], hourly_price="0.02080",
        budget_total="500.00")
    assert (server.path(WATCHER_ETC) / contract.busy_command_file("elif")).read_text() == "python -m elif.busy"
    off = watcher_files(None, {"HOURLY_PRICE": "1", "BUDGET_TOTAL": "2"}, {"elif": "x"})
    (server.path(WATCHER_ETC) / contract.WATCHER_ENV).write_text(off[contract.WATCHER_ENV])
    assert watcher.read_settings(str(server.path(WATCHER_ETC) / contract.WATCHER_ENV)) == watcher.Settings(
        idle_seconds=0, max_seconds=None, cpu_percent=contract.DEFAULT_CPU_PERCENT, busy_apps=[], hourly_price="1",
        budget_total="2")


def test_without_settings_it_is_off(server):
    assert server.check(T0) == f"auto-stop: off (no {server.path(WATCHER_ETC)}/watcher.env)"
    assert not server.path(WATCHER_STATE).exists()


@pytest.mark.parametrize("values, message", [
    ({"IDLE_SECONDS": "soon"}, "IDLE_SECONDS='soon' in {etc}/watcher.env: expected whole seconds"),
    ({"IDLE_SECONDS": "600", "CPU_PERCENT": "x"}, "CPU_PERCENT='x' in {etc}/watcher.env: expected 1-100")])
def test_bad_settings_are_named(server, values, message):
    server.settings(**values)
    with pytest.raises(Fail, match=message.format(etc=server.path(WATCHER_ETC)).replace("(", r"\(").replace(")", r"\)")):
        server.check(T0)


def test_the_first_check_is_busy_then_idle_time_counts_and_the_server_stops_at_the_idle_time(server):
    server.settings(IDLE_SECONDS=600, CPU_PERCENT=10, MAX_SECONDS="", BUSY_COMMANDS="")
    assert server.check(T0) == "auto-stop: busy: cpu: first sample"
    assert server.state("last-active").read_text() == f"{T0}\n"
    assert server.path(WATCHER_RUN + "/started").read_text() == f"{T0}\n"
    assert "watching: idle after 600s\n" in server.log()
    assert server.check(T0 + 60) == "auto-stop: idle for 60s of 600s"  # counted from the first check (busy)
    assert server.check(T0 + 599) == "auto-stop: idle for 599s of 600s" and server.shutdowns() == []
    assert server.state("status").read_text() == f"CHECKED={T0 + 599}\nIDLE_SECONDS=599\nBUSY=''\n"
    reason = "idle for 600s (no SSH, job, Ray task, HTTP request, busy app or CPU above 10%)"
    assert server.check(T0 + 600) == f"auto-stop: stopping: {reason}"
    assert server.shutdowns() == [f"shutdown -h now labstack auto-stop: {reason}"]
    assert json.loads(server.state("stops.log").read_text())["reason"] == reason
    assert f"stopping: {reason}" in server.log()


def test_idle_seconds_0_never_stops_an_idle_server(server):
    server.settings(IDLE_SECONDS=0)
    server.check(T0)
    assert server.check(T0 + 10 ** 6) == "auto-stop: idle for 1000000s of 0s" and server.shutdowns() == []


def _idle_for_an_hour(server) -> None:
    server.settings(IDLE_SECONDS=600, CPU_PERCENT=10)
    server.check(T0)
    server.state("last-active").write_text(f"{T0}\n")


def test_ssh_connections_keep_it_running_and_an_unlistable_ssh_counts_as_activity(server):
    _idle_for_an_hour(server)
    server.ssh(2)
    assert server.check(T0 + 3600) == "auto-stop: busy: ssh: 2 connection(s)"
    assert server.state("last-active").read_text() == f"{T0 + 3600}\n"
    server.ssh(0)
    (server.bin / "ss.fail").touch()
    assert server.check(T0 + 7200) == "auto-stop: busy: ssh: cannot list connections" and server.shutdowns() == []


@pytest.mark.parametrize("busy, idle, outcome", [(500, 500, "auto-stop: busy: cpu: 50%"),
                                                 (10, 90, "auto-stop: busy: cpu: 10%"),
                                                 (9, 91, "auto-stop: idle for 60s of 600s")])
def test_cpu_at_or_above_the_threshold_is_activity(server, busy, idle, outcome):
    server.settings(IDLE_SECONDS=600, CPU_PERCENT=10)
    server.check(T0)
    server.cpu(busy, idle)
    assert server.check(T0 + 60, quiet_cpu=False) == outcome


def test_unreadable_cpu_counts_as_activity(server):
    _idle_for_an_hour(server)
    (server.root / "proc/stat").unlink()
    assert server.check(T0 + 3600, quiet_cpu=False) == "auto-stop: busy: cpu: cannot read /proc/stat"


def _job(server, job_id: str, supervisor: str) -> Path:
    """An active job as submit records it, its supervisor `supervisor` ("PID START")."""
    meta = server.path(f"{JOBS_SRV}/{job_id}/.labstack")
    meta.mkdir(parents=True)
    (meta / "meta").write_text("name=''\nimage=''\nsubmittedBy=a@b\nsubmittedAt=2026-12-07T00:00:00Z\nmode=host\n"
                               "script=run.sh\n")
    (meta / "state").write_text("state=running\nstartedAt=2026-12-07T00:00:01Z\n")
    (meta / "supervisor").write_text(f"{supervisor}\n")
    (meta.parent / "status.json").write_text(json.dumps({"id": job_id, "state": "running"}) + "\n")
    return meta.parent


def test_a_running_job_keeps_it_running(server):
    _idle_for_an_hour(server)
    start = Path(f"/proc/{os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()[19]
    _job(server, "j1", f"{os.getpid()} {start}")
    assert server.check(T0 + 3600) == "auto-stop: busy: jobs: 1 running"


def test_a_job_whose_supervisor_is_gone_ends_interrupted_and_keeps_nothing_up(server):
    _idle_for_an_hour(server)
    folder = _job(server, "j2", f"{2 ** 22 + 1} 1")  # above any pid this kernel hands out: never alive
    assert server.check(T0 + 3600).startswith("auto-stop: stopping: idle for 3600s")
    assert json.loads((folder / "status.json").read_text())["state"] == "interrupted"


def test_unreadable_job_records_count_as_activity(server):
    _idle_for_an_hour(server)
    folder = _job(server, "j3", "1 1")
    (folder / ".labstack/meta").unlink()
    (folder / ".labstack/meta").mkdir()  # unreadable as a file, for root too
    assert server.check(T0 + 3600) == "auto-stop: busy: jobs: cannot read their status"


def test_ray_task_processes_count_idle_ray_workers_do_not(server):
    _idle_for_an_hour(server)
    idle_worker = subprocess.Popen(["bash", "-c", "exec -a ray::IDLE sleep 30"])
    task = None
    try:
        assert server.check(T0 + 3600).startswith("auto-stop: stopping: idle for")
        server.state("last-active").write_text(f"{T0}\n")
        task = subprocess.Popen(["bash", "-c", "exec -a ray::train_step sleep 30"])
        assert server.check(T0 + 3601) == "auto-stop: busy: ray: 1 task/actor process(es)"
    finally:
        for process in (idle_worker, task):
            if process:
                process.kill()
                process.wait()


def test_http_requests_count_when_they_happened_in_any_access_log(server):
    _idle_for_an_hour(server)
    log = server.path(PROXY_ACCESS_LOG)
    log.parent.mkdir(parents=True)
    log.write_text('{"request": {}}\n')
    os.utime(log, (T0 + 3000, T0 + 3000))
    assert server.check(T0 + 3500) == "auto-stop: idle for 500s of 600s"
    rotated = log.parent / "access-2026-12-07T00-00-00.000.log"  # Caddy's roll: the newest request may be there
    rotated.write_text("{}\n")
    os.utime(rotated, (T0 + 3450, T0 + 3450))
    assert server.check(T0 + 3900) == "auto-stop: idle for 450s of 600s" and server.shutdowns() == []


def _web(server, app: str) -> None:
    subprocess.run(["docker", "run", "-d", "--name", f"{app}-web", "--label", f"org.labstack.app={app}", "--label",
                    "org.labstack.role=web", "-v", f"{server.root}:/job", "--entrypoint", "sleep", "img", "300"],
                   check=True, capture_output=True)


@pytest.mark.parametrize("command, outcome", [("exit 1", "auto-stop: stopping: idle for 3600s"),
                                              ("exit 0", "auto-stop: busy: elif: busy (exit 0)"),
                                              ("exit 3", "auto-stop: busy: elif: busy (exit 3)")])
def test_an_apps_busy_command_runs_in_its_web_container_and_only_exit_1_is_idle(server, command, outcome):
    server.settings(IDLE_SECONDS=600, CPU_PERCENT=10, BUSY_COMMANDS="elif")
    (server.path(WATCHER_ETC) / "busy-elif.cmd").write_text(command)
    server.check(T0)
    server.state("last-active").write_text(f"{T0}\n")
    _web(server, "elif")
    try:
        assert server.check(T0 + 3600).startswith(outcome)
    finally:
        subprocess.run(["docker", "rm", "-f", "elif-web"], capture_output=True)


def test_an_app_without_a_web_container_is_idle_and_an_unreadable_busy_command_is_activity(server):
    server.settings(IDLE_SECONDS=600, CPU_PERCENT=10, BUSY_COMMANDS="elif quiet")
    (server.path(WATCHER_ETC) / "busy-elif.cmd").write_text("exit 0")
    server.check(T0)
    server.state("last-active").write_text(f"{T0}\n")
    assert server.check(T0 + 3600) == "auto-stop: busy: quiet: busy command unreadable"
    (server.path(WATCHER_ETC) / "busy-quiet.cmd").write_text("exit 0")
    server.state("last-active").write_text(f"{T0}\n")
    assert server.check(T0 + 3601).startswith("auto-stop: stopping: idle for 3601s")  # no web runs: nobody served


def test_max_hours_stops_a_busy_server_after_one_warning(server):
    server.settings(IDLE_SECONDS=600, MAX_SECONDS=7200, CPU_PERCENT=10)
    server.ssh(1)
    server.check(T0)
    server.check(T0 + 3599)
    assert "warning" not in server.log()
    server.check(T0 + 3600)
    server.check(T0 + 3660)
    assert server.log().count("warning: this server stops in 60 minute(s)") == 1
    assert server.calls.read_text().count("wall labstack: this server stops in 60 minute(s) (autoStop.maxHours)") == 1
    assert server.check(T0 + 7200) == ("auto-stop: stopping: running for 7200s, labstack:autoStop.maxHours allows "
                                       "7200s per start")
    assert len(server.shutdowns()) == 1


def test_a_long_lifetime_warns_an_hour_before(server):
    server.settings(IDLE_SECONDS=0, MAX_SECONDS=36000)
    server.check(T0)
    server.check(T0 + 32399)
    assert "warning" not in server.log()
    server.check(T0 + 32400)
    assert "warning: this server stops in 60 minute(s)" in server.log()


def test_the_budget_warns_at_50_and_80_percent_and_stops_at_the_total(server):
    server.settings(IDLE_SECONDS=0, HOURLY_PRICE="3.6", BUDGET_TOTAL="10.00")  # 0.001 USD per second
    server.ssh(1)
    server.check(T0)
    assert server.state("run-seconds").read_text() == "0\n"
    server.check(T0 + 60)
    assert server.state("run-seconds").read_text() == "60\n"
    server.state("run-seconds").write_text("4939\n")
    server.check(T0 + 120)  # 4999 s: 4.999 USD, shown as 5.00: the warning compares what it shows
    assert "(50%)" in server.log() and "(80%)" not in server.log()
    server.state("run-seconds").write_text("7940\n")
    server.check(T0 + 180)
    assert server.log().count("(50%)") == 1 and "warning: $8.00 spent of the $10.00 budget (80%)" in server.log()
    server.state("run-seconds").write_text("9939\n")
    assert server.check(T0 + 240) == "auto-stop: stopping: budget: $10.00 spent, labstack:budget.total is $10.00"
    assert len(server.shutdowns()) == 1


def test_a_late_timer_bills_at_most_five_minutes(server):
    server.settings(IDLE_SECONDS=0, HOURLY_PRICE="1", BUDGET_TOTAL="100")
    server.check(T0)
    server.check(T0 + 86400)  # a suspended timer: one check a day later
    assert server.state("run-seconds").read_text() == "300\n"
