"""labstack.map over two existing stacks' servers: two test bed hosts with the job hooks installed, named by two stack
files whose outputs (a recording `pulumi`) point at them; the calls are function jobs over real SSH, sudo and
dockerd. Results in input order, a failing call's remote traceback with every other call cancelled, map_async's
futures and cancel()."""
from __future__ import annotations

import json
import time
from concurrent.futures import CancelledError, as_completed

import pytest

import labstack
import labstack.stacks.stackfile
from labstack.functions import RemoteTraceback
from labstack.jobs import server as jobs
from tests.fakes import install_fake_pulumi
from tests.ops.conftest import stacks_dir, target_of  # noqa: F401 - a fixture

pytestmark = [pytest.mark.testbed, pytest.mark.e2e]

STACKS = ("rome-pilot", "paris-batch2")  # the names the README's example uses


@pytest.fixture(scope="module")
def hosts(testbed):
    started = []
    try:
        for _ in STACKS:
            host = testbed.new_host()
            started.append(host)
            host.install_hooks()  # the whole hooks folder, node agent included, as HostSetup copies it
        yield dict(zip(STACKS, started))
    finally:
        for host in started:
            testbed.stop_host(host)


@pytest.fixture
def stacks(hosts, stacks_dir, tmp_path, monkeypatch):
    """Two stack files, each with its host's login key, and a `pulumi` whose outputs name each stack's host."""
    outputs = {}
    for name, host in hosts.items():
        (stacks_dir / f"Pulumi.{name}.yaml").write_text(
            f"config:\n  aws:region: eu-west-3\n  labstack:serverPem: {host.key_path}\n"
            "  labstack:sshCidrs: [0.0.0.0/0]\n")
        outputs[name] = {"publicIp": host.ip, "knownHosts": host.known_hosts_line()}
    install_fake_pulumi(tmp_path, monkeypatch)
    monkeypatch.setenv("FAKE_PULUMI_OUTPUTS_BY_STACK", json.dumps(outputs))
    monkeypatch.setenv("PULUMI_BACKEND_URL", f"file://{tmp_path / 'state'}")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "test")
    return {name: target_of(host, name) for name, host in hosts.items()}


def square_slowly(x):
    import time

    time.sleep(1)
    return {"square": x * x}


def slow_or_fails(x):
    import time

    if x == 1:
        time.sleep(1)
        raise ValueError(f"cannot use {x}")
    time.sleep(120)
    return x


def sleeps(x):
    import time

    time.sleep(120)
    return x


def quiet(line):
    pass


def map_jobs(targets: dict, name: str, before: dict) -> dict[str, list[dict]]:
    """The job records of one function on each server, without the jobs that were there before."""
    return {stack: [job for job in jobs.statuses(target) if job.get("name") == name and job["id"] not in before[stack]]
            for stack, target in targets.items()}


def job_ids(targets: dict) -> dict[str, set[str]]:
    return {stack: {job["id"] for job in jobs.statuses(target)} for stack, target in targets.items()}


def test_eight_calls_over_two_servers_come_back_in_input_order(stacks):
    before = job_ids(stacks)
    assert labstack.map(square_slowly, range(8), stacks=list(STACKS), announce=quiet) == \
        [{"square": x * x} for x in range(8)]
    ran = map_jobs(stacks, "square_slowly", before)
    assert sum(len(records) for records in ran.values()) == 8
    assert all(records for records in ran.values()), ran  # both servers ran some
    assert all(job["state"] == "complete" for records in ran.values() for job in records)

    # map_async: one Future per call, done as each ends; the map's own Future holds the list in order
    future = labstack.map_async(square_slowly, [3, 1, 2], stacks=list(STACKS), per_server=1, announce=quiet)
    assert sorted(call.result(timeout=300)["square"] for call in as_completed(future.calls, timeout=300)) == [1, 4, 9]
    assert future.result(timeout=60) == [{"square": 9}, {"square": 1}, {"square": 4}] and future.done()


def test_a_failing_call_raises_its_traceback_after_every_other_call_is_cancelled(stacks):
    """Four calls at once (two per server); the second raises: the three others are cancelled on their servers,
    the four not started never start, and the error comes with the server's traceback."""
    before = job_ids(stacks)
    with pytest.raises(ValueError, match=r"^cannot use 1$") as raised:
        labstack.map(slow_or_fails, range(8), stacks=list(STACKS), per_server=2, announce=quiet)
    remote = raised.value.__cause__
    assert isinstance(remote, RemoteTraceback)
    assert "in slow_or_fails" in remote.text and remote.text.strip().endswith("ValueError: cannot use 1")
    ran = map_jobs(stacks, "slow_or_fails", before)
    states = sorted(job["state"] for records in ran.values() for job in records)
    assert states == ["cancelled", "cancelled", "cancelled", "failed"], ran
    assert all(len(records) == 2 for records in ran.values())


def test_cancel_of_map_async_cancels_every_running_call(stacks):
    before = job_ids(stacks)
    future = labstack.map_async(sleeps, range(5), stacks=list(STACKS), per_server=1, announce=quiet)
    deadline = time.monotonic() + 120
    while sum(job["state"] == "running" for records in map_jobs(stacks, "sleeps", before).values()
              for job in records) < 2:
        assert time.monotonic() < deadline, map_jobs(stacks, "sleeps", before)
        time.sleep(0.5)
    assert not future.done()
    assert future.cancel() is True
    assert future.cancelled()
    with pytest.raises(CancelledError):
        future.result(timeout=0)
    ran = map_jobs(stacks, "sleeps", before)
    assert sorted(job["state"] for records in ran.values() for job in records) == ["cancelled", "cancelled"]
    running = [call for call in future.calls if not call.cancelled()]
    assert len(running) == 2 and all(isinstance(call.exception(timeout=0), CancelledError) for call in running)


def test_the_readmes_map_example_runs_as_printed(stacks, capsys):
    readme = (labstack.stacks.stackfile.PROJECT_DIR / "docs" / "jobs-and-functions.md").read_text()
    section = readme.split("### Many calls at once", 1)[1].split("\n## ", 1)[0]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    scope: dict = {"__name__": "readme_example"}
    exec(compile(example, "docs/jobs-and-functions.md (Many calls at once)", "exec"), scope)
    simulate = scope["simulate"]
    assert scope["scores"] == [simulate(seed) for seed in range(8)]
    assert scope["more"] == [simulate(seed) for seed in range(100, 104)]
    printed = capsys.readouterr().out.splitlines()
    assert str(scope["scores"]) in printed and "False" in printed
