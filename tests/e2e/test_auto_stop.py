"""The auto-stop watcher on a test bed host: the program's watcher step (hooks/watcher-up.sh with
the bundle components/remote/watcher.py renders) installs it, the test plays the systemd timer (one check every
second, as root inside the host: a timer is no SSH session), and the test bed's power switch catches the power-off
the way a hypervisor would (tests/testbed/power.py). Idle times are seconds here: the settings file says
IDLE_SECONDS, which `idleMinutes` becomes on a server.

One host serves every scenario (it is powered on again after each stop).
"""
from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from components.config import ProxyConfig
from components.config.auto_stop import AutoStopConfig
from components.layout import PROXY_SITES, REMOTE_HOOKS, WATCHER_STATE, hook
from components.render.bundle import make_bundle
from components.render.proxy import proxy_files, site_file
from components.remote.watcher import watcher_files
from labstack.jobs import server as jobs
from labstack.ssh.target import SshTarget

pytestmark = [pytest.mark.testbed, pytest.mark.e2e]
IDLE = 12
CHECK = REMOTE_HOOKS + "/auto-stop.sh"


@pytest.fixture(scope="module")
def host(testbed):
    h = testbed.new_host()
    try:
        h.install_hooks()  # what HostSetup copies on a server
        h.hold_cpu_still()   # the machine's CPU (other tests) is not this host's: the CPU signal is unit-tested
        yield h
    finally:
        testbed.stop_host(h)


def install_watcher(h, idle: int = IDLE, max_seconds: int | None = None) -> None:
    """The program's watcher step, as it runs over SSH, with the default CPU threshold."""
    files = watcher_files(AutoStopConfig(idle_seconds=idle, max_seconds=max_seconds, cpu_percent=10), {}, {})
    out = h.run(hook("watcher-up.sh"), input=make_bundle(files))
    assert "systemd does not run here" in out.stderr   # the timer's unit is installed; the test is the timer
    assert h.exec_in(["test", "-f", "/etc/systemd/system/labstack-auto-stop.timer"]).returncode == 0


def tick_until(h, seconds: float, stop_when=lambda: False) -> list[str]:
    """Play the timer: one check per second (bounded), until the host is off or stop_when() holds. Returns the
    checks' outputs."""
    outputs = []
    records = len(h.power_log())
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not stop_when():
        if len(h.power_log()) > records:   # a power-off was requested
            break
        outputs.append(h.exec_in([CHECK], check=False).stdout.strip())
        time.sleep(1)
    return outputs


def stops(h) -> str:
    return h.exec_in(["cat", f"{WATCHER_STATE}/stops.log"], check=False).stdout


def boot_again(h) -> None:
    h.wait_powered_off(timeout=60)
    h.power_on()


def test_an_idle_host_stops_after_the_idle_time(host):
    install_watcher(host)
    began = time.monotonic()
    outputs = tick_until(host, IDLE + 30)
    record = host.wait_powered_off(timeout=60)
    elapsed = time.monotonic() - began
    assert record["action"] == "poweroff" and record["command"].startswith("shutdown -h now labstack auto-stop: idle")
    assert outputs[0] == "auto-stop: busy: cpu: first sample"
    assert any(line.startswith("auto-stop: idle for ") for line in outputs[1:])
    assert elapsed >= IDLE, outputs   # never before the idle time
    idle = int(re.search(r'"reason": "idle for (\d+)s', stops(host)).group(1))
    assert IDLE <= idle <= IDLE + 5
    host.power_on()


def test_an_open_ssh_session_keeps_it_running_then_it_stops(host):
    install_watcher(host)
    session = subprocess.Popen(host.ssh_base() + ["--", "sleep 60"], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        before = len(host.power_log())
        outputs = tick_until(host, IDLE + 8)
        assert len(host.power_log()) == before, outputs   # no power request while the session is open
        assert outputs[-1] == "auto-stop: busy: ssh: 1 connection(s)", outputs
    finally:
        session.terminate()
        session.wait(timeout=10)
    before = len(host.power_log())
    tick_until(host, IDLE + 30)
    assert len(host.power_log()) > before and "idle for" in host.power_log()[-1]["command"]
    boot_again(host)


def test_a_running_job_keeps_it_running(host, tmp_path):
    install_watcher(host)
    target = SshTarget(host=host.ip, user=host.user, key_path=Path(host.key_path),
                       known_hosts=host.known_hosts_line(), stack="testbed")
    script = tmp_path / "run.sh"
    script.write_text("sleep 40\n")
    job = jobs.submit(target, script, [], on_host=True)
    before = len(host.power_log())
    outputs = tick_until(host, IDLE + 8)
    assert len(host.power_log()) == before and outputs[-1] == "auto-stop: busy: jobs: 1 running", outputs
    jobs.cancel(target, job)
    tick_until(host, IDLE + 30)
    boot_again(host)
    assert "idle for" in host.power_log()[-1]["command"]


def test_recent_http_requests_keep_it_running(host):
    """Caddy as HostSetup starts it, with an app's site file as the deploy renders it (its upstream answers
    nothing: a 502 is still a request)."""
    proxy = ProxyConfig(tls="internal", acme_email=None, dashboard_user="admin", dashboard_path="/dashboard",
                        log_viewer=False, dashboard_password=None)
    host.exec_in(["mkdir", "-p", PROXY_SITES])
    site = site_file("probe.test", proxy, None, app="probe").replace("{{UPSTREAM}}", "127.0.0.1:9")
    host.run(f"sudo -n tee {PROXY_SITES}/probe.caddy >/dev/null", input=site)
    host.run(hook("proxy-up.sh"), input=make_bundle(proxy_files(proxy)), timeout=180)
    install_watcher(host)

    def request() -> bool:
        subprocess.run(["curl", "-ks", "-o", "/dev/null", "--max-time", "5", "--resolve", f"probe.test:443:{host.ip}",
                        "https://probe.test/"], check=False)
        return False

    before = len(host.power_log())
    outputs = tick_until(host, IDLE + 10, stop_when=request)   # a request before every check
    assert len(host.power_log()) == before, outputs
    assert all(not line.startswith("auto-stop: stopping") for line in outputs)
    assert any(line.startswith("auto-stop: idle for 0s") or line.startswith("auto-stop: idle for 1s")
               for line in outputs[2:]), outputs
    tick_until(host, IDLE + 30)
    boot_again(host)
    assert "idle for" in host.power_log()[-1]["command"]


def test_max_hours_stops_a_busy_host(host):
    install_watcher(host, idle=600, max_seconds=8)
    session = subprocess.Popen(host.ssh_base() + ["--", "sleep 60"], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        outputs = tick_until(host, 40)
        assert any("busy: ssh: 1 connection(s)" in line for line in outputs)
        record = host.wait_powered_off(timeout=60)
        assert "running for" in record["command"] and "maxHours" in record["command"]
        assert "warning: this server stops in 0 minute(s)" in host.exec_in(
            ["cat", f"{WATCHER_STATE}/watcher.log"]).stdout
    finally:
        session.terminate()
        session.wait(timeout=10)
    host.power_on()
