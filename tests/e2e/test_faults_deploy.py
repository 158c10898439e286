"""Faults during a deploy, on the test bed: the SSH connection drops during the switch, the Docker engine
restarts between the candidate's start and the switch, the image pull fails. After each, the release the app's state
names serves with no failed request where the fault allows, the state matches what runs (after the repair every
deploy, pause, export and removal starts with), and the next deploy converges without recreating the container
that serves."""
from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from pathlib import Path

import pytest

import components.layout as layout
from tests.e2e.engine import CommandFailed, evaluate_with_dependencies, ssh
from tests.e2e.test_deploy import elif_app

pytestmark = [pytest.mark.testbed, pytest.mark.e2e]

APP = "elif"
KILLER = Path(__file__).parent / "faults" / "kill-deploy-when.sh"
STATE = layout.app_file(APP, "APP_STATE")
SITE = layout.name("APP_SITE", APP)
APP_ETC = layout.name("APP_ETC", APP)
DEPLOY = "paris-batch2-elif-deploy"


class Requests:
    """A bounded loop of HTTPS requests through Caddy (at most `seconds`, 20 a second from each of `loops` threads),
    recording every non-200 with curl's own error; when one failed, Caddy's log of the loop's time is kept
    (`caddy_log`) and printed."""

    def __init__(self, stack, seconds: float = 300, loops: int = 1):
        self.stack, self.seconds, self.failures, self.answers, self.caddy_log = stack, seconds, [], [], ""
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop) for _ in range(loops)]

    def _loop(self):
        deadline = time.monotonic() + self.seconds
        for _ in range(int(self.seconds * 20)):
            if self._stop.is_set() or time.monotonic() > deadline:
                break
            at = time.strftime("%H:%M:%S", time.gmtime())
            result = self.stack.https("/", timeout=10)
            body, _, code = result.stdout.rpartition("\n")
            if code == "200":
                self.answers.append(at)
            else:
                self.failures.append((int(code or 0), body[:200], result.stderr.strip(), at))
            time.sleep(0.05)

    def __enter__(self):
        self._started = int(time.time())
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        time.sleep(1)
        self._stop.set()
        for thread in self._threads:
            thread.join()
        if self.failures:
            self.caddy_log = self.stack.host.run(
                f"docker logs --since {self._started} $(docker ps -q --filter label=com.docker.compose.service=caddy)"
                " 2>&1 | tail -n 400", check=False).stdout
            print(f"failed requests {self.failures}; Caddy's log meanwhile:\n{self.caddy_log}")  # shown by -rP


def state(stack) -> dict[str, str]:
    text = stack.host.run(f"sudo {layout.REMOTE_HOOKS}/app-state.sh {APP}").stdout
    return dict(line.split("=", 1) for line in text.splitlines())


def reconcile(stack) -> list[str]:
    """app-reconcile.sh, as an operator runs it: the repairs it logged."""
    result = stack.host.run(f"sudo {layout.REMOTE_HOOKS}/app-reconcile.sh {APP}")
    return [line for line in result.stderr.splitlines() if "repaired:" in line]


def web_id(stack, color: str) -> str:
    return stack.host.run(f"docker ps -q --filter label={layout.LABEL_APP}={APP} --filter label={layout.LABEL_ROLE}=web "
                          f"--filter label={layout.LABEL_COLOR}={color}").stdout.strip()


def served_version(stack) -> str:
    status, body = stack.status_and_body("/")
    assert status == 200, body
    return json.loads(body)["version"]


def assert_state_matches_what_runs(stack, versions: dict[str, str]) -> dict[str, str]:
    """One release: the state's colour is the only one with containers, the one the site names, the only release
    folder, and it answers with its image's version; no switch is left in flight."""
    recorded = state(stack)
    color = recorded["COLOR"]
    colors = stack.host.run(f"docker ps -a --filter label={layout.LABEL_APP}={APP} "
                            f"--format '{{{{.Label \"{layout.LABEL_COLOR}\"}}}}'").stdout.split()
    assert set(colors) == {color}, colors
    assert re.findall(r"elif-(blue|green)-web", stack.host.run(f"sudo cat {SITE}").stdout) == [color]
    folders = stack.host.run(f"sudo find {APP_ETC} -mindepth 1 -maxdepth 1 -type d -printf '%f\\n'").stdout.split()
    assert folders == [color]
    assert stack.host.run(f"sudo test -e {STATE}.new", check=False).returncode == 1
    assert served_version(stack) == versions[recorded["IMAGE"]]
    return recorded


def replay_recorded_deploy(stack):
    """The deploy command of the config the engine last applied (as `pulumi up` would run it again for it)."""
    inputs = stack.engine.state[DEPLOY]
    return ssh(inputs["connection"], inputs["create"], inputs.get("stdin"), 600)


@pytest.mark.parametrize("moment", ["site switched", "state switched"])
def test_ssh_drop_during_the_switch(make_stack, example_images, moment):
    """The deploy's process group is killed (what a dropped connection does to it) when the site file names the new
    colour (Caddy's reload and the state's rename may or may not have happened), or when the state does (the new
    release's workers not started, the old release not retired)."""
    versions = {example_images.v1: "dev", example_images.v2: "v2"}
    stack = make_stack(elif_app(example_images.v1))
    stack.up()
    stack.wait_serving("/health")
    stack.host.put(KILLER, "/tmp/kill-deploy-when.sh")
    marker = (SITE, "elif-green-web:") if moment == "site switched" else (STATE, "COLOR=green")
    killed = {}

    def kill_at_marker():
        killed["result"] = stack.host.run(f"sudo bash /tmp/kill-deploy-when.sh {APP} {marker[0]} {marker[1]} "
                                          f"{STATE}.new 300", check=False, timeout=330)

    with Requests(stack) as requests:
        killer = threading.Thread(target=kill_at_marker)
        killer.start()
        time.sleep(2)  # the killer is polling long before the deploy reaches its switch
        stack.config["labstack:apps"] = elif_app(example_images.v2)
        with pytest.raises(CommandFailed):
            stack.up()
        killer.join()
        assert killed["result"].returncode == 0, killed["result"].stderr
        in_flight = "switch_in_flight=yes" in killed["result"].stdout
        # Before any repair: the state names a release that serves, unless a switch was in flight (state.conf.new
        # left), which the next run repairs.
        before = state(stack)
        assert in_flight or served_version(stack) == versions[before["IMAGE"]]
        repairs = reconcile(stack)
        assert repairs, "the interrupted deploy left something to repair"
        recorded = assert_state_matches_what_runs(stack, versions)
        if moment == "state switched":  # after the rename: nothing in flight, the new release stays
            assert not in_flight and recorded["IMAGE"] == example_images.v2 and recorded["COLOR"] == "green"
        print(f"{moment}: {killed['result'].stdout.strip()}; after the repair: {recorded}")  # shown by -rP
        serving = web_id(stack, recorded["COLOR"])
        # The next deploy (the same config) converges.
        runs = stack.up()
        assert [r.resource for r in runs] == [DEPLOY]
    print(f"{moment}: failed requests {requests.failures}")  # shown by -rP
    assert requests.failures == []
    assert len(requests.answers) > 10
    after = assert_state_matches_what_runs(stack, versions)
    assert after["IMAGE"] == example_images.v2
    if recorded["IMAGE"] == example_images.v2:  # already serving: nothing recreated, nothing swapped
        assert "is already serving" in runs[0].result.stderr
        assert web_id(stack, after["COLOR"]) == serving
    else:  # the repair went back to v1: the deploy swapped to v2 beside it, never touching v1's web first
        assert after["COLOR"] != recorded["COLOR"]


def test_engine_restart_between_candidate_start_and_switch(make_stack, example_images):
    """The candidate's web takes 20 s to answer; the engine restarts while it starts. Whatever the deploy then
    did (it may fail, or finish once the engine is back), the state names the release that serves."""
    versions = {example_images.v1: "dev", example_images.v2: "v2"}
    stack = make_stack(elif_app(example_images.v1))
    stack.up()
    stack.wait_serving("/health")
    v1_web = web_id(stack, "blue")
    slow = elif_app(example_images.v2, healthTimeoutSeconds=120,
                    command='sleep 20; exec gunicorn --bind "0.0.0.0:5000" --workers 2 app:app')
    stack.config["labstack:apps"] = slow
    plan = evaluate_with_dependencies(stack.config, stack.name, stack.aws)  # the mocks need the main thread
    outcome = {}

    def deploy():
        try:
            outcome["runs"] = stack.engine.apply(*plan)
        except CommandFailed as failed:
            outcome["failed"] = failed

    deployer = threading.Thread(target=deploy)
    deployer.start()
    deadline = time.monotonic() + 180
    while not web_id(stack, "green"):
        assert time.monotonic() < deadline and deployer.is_alive(), "the candidate's web never started"
        time.sleep(0.2)
    stack.host.restart_docker()
    deployer.join(timeout=600)
    assert not deployer.is_alive()
    stack.wait_serving("/health", seconds=120)
    with Requests(stack) as requests:
        reconcile(stack)
        recorded = assert_state_matches_what_runs(stack, versions)
        serving = web_id(stack, recorded["COLOR"])
        if "failed" in outcome:
            # The candidate never switched: v1 serves, in the container it had (the engine restarted it, it was
            # not recreated), and the same deploy runs again to completion.
            assert recorded["IMAGE"] == example_images.v1 and serving == v1_web
            runs = stack.up()
            assert [r.resource for r in runs] == [DEPLOY]
    assert requests.failures == [] and len(requests.answers) > 10
    after = assert_state_matches_what_runs(stack, versions)
    assert after["IMAGE"] == example_images.v2
    # The recorded deploy once more: nothing to repair, nothing recreated.
    serving = web_id(stack, after["COLOR"])
    again = replay_recorded_deploy(stack)
    assert again.returncode == 0, again.stderr
    assert "is already serving" in again.stderr and "repaired" not in again.stderr
    assert state(stack) == after and web_id(stack, after["COLOR"]) == serving


def test_failed_image_pull_leaves_the_serving_release_described(make_stack, example_images, registry):
    versions = {example_images.v1: "dev"}
    stack = make_stack(elif_app(example_images.v1))
    stack.up()
    stack.wait_serving("/health")
    before = assert_state_matches_what_runs(stack, versions)
    serving = web_id(stack, before["COLOR"])
    files = stack.host.run(f"sudo find {APP_ETC} -type f -exec sha256sum {{}} +").stdout
    missing = f"{registry}/labstack/example@sha256:{hashlib.sha256(b'never pushed').hexdigest()}"
    with Requests(stack) as requests:
        stack.config["labstack:apps"] = elif_app(missing)
        with pytest.raises(CommandFailed) as failed:
            stack.up()
        assert f"cannot pull {missing}" in failed.value.result.stderr
    assert requests.failures == [] and len(requests.answers) > 5
    # The server describes exactly what serves: the same state, the same files, no candidate folder.
    assert assert_state_matches_what_runs(stack, versions) == before
    assert stack.host.run(f"sudo find {APP_ETC} -type f -exec sha256sum {{}} +").stdout == files
    # The recorded deploy (v1) runs again: nothing to repair, the serving container kept.
    again = replay_recorded_deploy(stack)
    assert again.returncode == 0, again.stderr
    assert "is already serving" in again.stderr and "repaired" not in again.stderr
    assert web_id(stack, before["COLOR"]) == serving
    print(next(line for line in again.stderr.splitlines() if "step times" in line))  # the repair's cost (-rP)


def test_a_server_deployed_before_the_state_file_is_converted_and_updated(make_stack, example_images):
    """A server whose records are those of an older labstack (active-color, files in APP_ETC): read as
    is, converted by the next deploy's repair, which then swaps to the new release with no failed request."""
    versions = {example_images.v1: "dev", example_images.v2: "v2"}
    stack = make_stack(elif_app(example_images.v1))
    stack.up()
    stack.wait_serving("/health")
    recorded = assert_state_matches_what_runs(stack, versions)
    stack.host.put(Path(__file__).parent / "faults" / "legacy-layout.sh", "/tmp/legacy-layout.sh")
    stack.host.run(f"sudo bash /tmp/legacy-layout.sh {APP_ETC}")
    # Read from active-color, active-release, release.conf and (the time) releases.log.
    logged = stack.host.run(f"sudo tail -n 1 {layout.app_file(APP, 'RELEASES_LOG')}").stdout.split()
    assert state(stack) == {**recorded, "SWITCHED_AT": logged[0]}
    with Requests(stack) as requests:
        stack.config["labstack:apps"] = elif_app(example_images.v2)
        runs = stack.up()
    assert requests.failures == [] and len(requests.answers) > 10
    assert "converted the records of an earlier labstack into state.conf (blue" in runs[0].result.stderr
    after = assert_state_matches_what_runs(stack, versions)
    assert (after["COLOR"], after["IMAGE"]) == ("green", example_images.v2)
    left = stack.host.run(f"sudo find {APP_ETC} -maxdepth 1 -type f -printf '%f\\n'").stdout.split()
    assert sorted(left) == sorted(layout.STATE_FILES[key] for key in (
        "DATA_COMPOSE", "DB_ENV", "DB_PASSWORD", "EXPORT_CMD", "RELEASES_LOG", "APP_STATE"))


def running_releases(stack) -> set[tuple[str, str]]:
    """(colour, role) of every running container of the app's releases (Postgres and Redis have no colour)."""
    lines = stack.host.run(f"docker ps --filter label={layout.LABEL_APP}={APP} --filter label={layout.LABEL_COLOR} "
                           f"--format '{{{{.Label \"{layout.LABEL_COLOR}\"}}}} {{{{.Label \"{layout.LABEL_ROLE}\"}}}}'"
                           ).stdout.splitlines()
    return {tuple(line.split()) for line in lines}


@pytest.mark.parametrize("moment", ["candidate started", "site switched", "state switched"])
def test_a_reboot_during_an_update_brings_back_the_serving_release_only(make_stack, example_images, moment):
    """The host powers off in the middle of an update (the engine stops, every process dies, the deploy with them)
    and boots again. Before any labstack run, what the restart policies bring back is the release the state names:
    a candidate that had not switched in never comes back, nor its workers; once the state names the new release,
    the old one never comes back. Within the switch itself (the site file renamed, the state not yet), the web the
    site names comes back and serves, and no worker of the new release runs."""
    versions = {example_images.v1: "dev", example_images.v2: "v2"}
    stack = make_stack(elif_app(example_images.v1))
    stack.up()
    stack.wait_serving("/health")
    if moment == "candidate started":  # still starting (20 s) when the power goes
        update = elif_app(example_images.v2, healthTimeoutSeconds=120,
                          command='sleep 20; exec gunicorn --bind "0.0.0.0:5000" --workers 2 app:app')
    else:
        update = elif_app(example_images.v2)
        stack.host.put(KILLER, "/tmp/kill-deploy-when.sh")
        marker = (SITE, "elif-green-web:") if moment == "site switched" else (STATE, "COLOR=green")
    stack.config["labstack:apps"] = update
    plan = evaluate_with_dependencies(stack.config, stack.name, stack.aws)  # the mocks need the main thread
    outcome = {}

    def deploy():
        try:
            outcome["runs"] = stack.engine.apply(*plan)
        except Exception as failed:  # the connection drops with the power  # noqa: BLE001
            outcome["failed"] = failed

    deployer = threading.Thread(target=deploy)
    deployer.start()
    if moment == "candidate started":
        deadline = time.monotonic() + 180
        while not web_id(stack, "green"):
            assert time.monotonic() < deadline and deployer.is_alive(), "the candidate's web never started"
            time.sleep(0.2)
    else:
        killed = stack.host.run(f"sudo bash /tmp/kill-deploy-when.sh {APP} {marker[0]} {marker[1]} {STATE}.new 300",
                                check=False, timeout=330)
        assert killed.returncode == 0, killed.stderr
    before = running_releases(stack)
    stack.host.run("sudo -n shutdown -h now")
    stack.host.wait_powered_off(timeout=90)
    deployer.join(timeout=120)
    assert not deployer.is_alive() and "failed" in outcome
    stack.host.power_on()
    stack.wait_serving("/health", seconds=180)
    after, recorded = running_releases(stack), state(stack)
    print(f"{moment}: running before the power-off {sorted(before)}, after the boot {sorted(after)}, "
          f"state {recorded}")  # shown by -rP
    if moment == "candidate started":
        assert ("green", "web") in before and recorded["COLOR"] == "blue"
        assert after == {("blue", "web"), ("blue", "worker")}
        assert served_version(stack) == "dev"
    elif moment == "state switched":
        assert recorded["COLOR"] == "green" and ("blue", "web") in before
        assert {color for color, _ in after} == {"green"} and ("green", "web") in after
        assert served_version(stack) == "v2"
    else:
        assert ("green", "web") in after and ("green", "worker") not in after
        assert served_version(stack) == "v2"  # the site names green, which came back
    # The next run repairs the rest, and the same update then converges.
    reconcile(stack)
    assert_state_matches_what_runs(stack, versions)
    stack.config["labstack:apps"] = elif_app(example_images.v2)
    stack.up()
    assert assert_state_matches_what_runs(stack, versions)["IMAGE"] == example_images.v2


@pytest.mark.soak
def test_fifty_switches_lose_no_request(make_stack, example_images):
    """Traffic moves 50 times between the two colours (switch_site, Caddy's graceful reload each time) under four
    request loops (each request a new connection, as a new visitor's): no request fails; any miss would show with
    curl's error and Caddy's log. Served over HTTP/2, 4 of 1206 requests failed over 50 such switches."""
    stack = make_stack(elif_app(example_images.v1))
    stack.up()
    stack.wait_serving("/health")
    stack.host.put(Path(__file__).parent / "faults" / "flip-switch.sh", "/tmp/flip-switch.sh")
    with Requests(stack, seconds=900, loops=4) as requests:
        flips = stack.host.run(f"sudo bash /tmp/flip-switch.sh {APP} 50", timeout=900)
    switches = flips.stdout.splitlines()
    print(f"{len(switches)} switches, {switches[0]} ... {switches[-1]}; {len(requests.answers)} answers")  # -rP
    assert len(switches) == 50
    assert requests.failures == [] and len(requests.answers) > 200
