"""labstack.map on throwaway instances: bad arguments refused before anything exists, the instance cap, Ctrl-C and
cancel() destroying every throwaway stack made (a recording `pulumi`), and whole maps against a test bed host that
the recording pulumi's outputs name as every throwaway instance."""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from concurrent.futures import CancelledError
from pathlib import Path

import pytest

import labstack
from labstack import parallel
from labstack.jobs import server as jobs
from labstack.jobs import throwaway as job_run
from labstack.ssh.target import RemoteError
from tests.ops.conftest import target_of
from tests.ops.test_job_run import (LIKE, destroy_commands, history_command, like_stack,  # noqa: F401
                                    on_host, outputs_commands, up_commands)

on_testbed = pytest.mark.testbed


def cube(x):
    return x ** 3


def fails_on(x, bad=3):
    if x == bad:
        raise ValueError(f"cannot use {x}")
    return x


def quiet(line):
    pass


def per_stack(calls: list[list[str]]) -> dict[str, list[list[str]]]:
    """The recorded pulumi commands of each throwaway stack, in their order."""
    stacks: dict[str, list[list[str]]] = {}
    for argv in calls:
        stack = next((word for word in argv if word.startswith(job_run.STACK_PREFIX)), None)
        if stack:
            stacks.setdefault(stack, []).append(argv)
    return stacks


def most_alive(calls: list[list[str]]) -> int:
    """The most throwaway stacks that existed at once, by the order of the recorded commands."""
    alive, most = set(), 0
    for argv in calls:
        if argv[:2] == ["stack", "select"]:
            alive.add(argv[-1])
            most = max(most, len(alive))
        elif argv[:2] == ["stack", "rm"]:
            alive.discard(argv[-1])
    return most


def made_and_destroyed(stack: str, cancelled_up: bool = False) -> list[list[str]]:
    """A throwaway stack's commands: made and brought up, its server's address read (or the up cancelled), then
    destroyed and removed."""
    if cancelled_up:
        return [*up_commands(stack), ["up cancelled", stack], *destroy_commands(stack)]
    return [*up_commands(stack), *outputs_commands(stack), history_command(stack),
            ["stack", "output", "--json", "--stack", stack], *destroy_commands(stack)]


# --- without a server --------------------------------------------------------------------------------------------

def test_bad_arguments_are_refused_before_anything_is_made(stacks_dir, server_pem, recording_pulumi):
    like_stack(stacks_dir, server_pem)
    machine = job_run.Machine("t3.small", like=LIKE)
    cases = [
        (dict(), ValueError, "labstack.map: give exactly one of stacks=[...], cluster='<stack>' or "
                             "machine=Machine(...) (got none)"),
        (dict(stacks=["a"], cluster="b"), ValueError, "labstack.map: give exactly one of stacks=[...], "
                                                      "cluster='<stack>' or machine=Machine(...) (got stacks, cluster)"),
        (dict(machine=machine, max_instances=0), ValueError,
         "labstack.map: max_instances=0 must be a whole number, at least 1 (how many throwaway instances may exist "
         "at a time)"),
        (dict(machine="t3.small"), TypeError, "labstack.map: machine='t3.small' must be a Machine, e.g. "
                                              "machine=Machine(instance_type='c7i.large', like='rome-pilot')"),
        (dict(cluster="ray-lab", image="python:3.11-slim"), ValueError,
         "labstack.map: image='python:3.11-slim' cannot be used with cluster=: the cluster's tasks run in its Ray "
         "image; drop image="),
        (dict(stacks=[], ), ValueError, "labstack.map: stacks=[] must name one or more stacks, e.g. "
                                        "stacks=['rome-pilot']"),
        (dict(stacks=["lab"], per_server=0), ValueError,
         "labstack.map: per_server=0 must be a whole number, at least 1"),
        (dict(machine=machine, per_server=2), ValueError, "labstack.map: per_server=2 is for stacks=[...]; drop it"),
        (dict(machine=machine, pip="numpy"), TypeError,
         "labstack.map: pip='numpy' must be a list of requirements, e.g. pip=['numpy==2.1.3']"),
    ]
    for arguments, kind, message in cases:
        with pytest.raises(kind) as refused:
            labstack.map(cube, [1, 2], announce=quiet, **arguments)
        assert str(refused.value) == message
    with pytest.raises(TypeError, match=r"^labstack.map: fn=3 is not callable; pass the function itself"):
        labstack.map_async(3, [1], machine=machine)
    assert recording_pulumi() == []
    assert [p.name for p in stacks_dir.iterdir()] == [f"Pulumi.{LIKE}.yaml"]


def test_an_empty_map_makes_nothing(stacks_dir, server_pem, recording_pulumi):
    like_stack(stacks_dir, server_pem)
    assert labstack.map(cube, [], machine=job_run.Machine("t3.small", like=LIKE), announce=quiet) == []
    future = labstack.map_async(cube, iter(()), machine=job_run.Machine("t3.small", like=LIKE), announce=quiet)
    assert future.result(timeout=60) == [] and future.done() and future.calls == []
    assert recording_pulumi() == []


def test_a_failed_instance_fails_the_map_and_every_throwaway_is_destroyed(stacks_dir, server_pem, recording_pulumi,
                                                                         tmp_path, monkeypatch):
    """Two instances at most for six calls; neither reaches a server (its outputs name none): the map raises that,
    and both stacks are destroyed and removed."""
    like_stack(stacks_dir, server_pem)
    monkeypatch.setattr(job_run, "JOBS_DIR", tmp_path / "jobs")
    both_up = barrier_up(tmp_path, monkeypatch, count=2)
    with pytest.raises(RemoteError, match=r"has no server address or host key in its outputs"):
        labstack.map(cube, range(6), machine=job_run.Machine("t3.small", like=LIKE), max_instances=2,
                     announce=quiet)
    assert both_up.is_file()
    calls = recording_pulumi()
    stacks = per_stack(calls)
    assert len(stacks) == 2 and most_alive(calls) == 2
    for stack, commands in stacks.items():
        assert commands == made_and_destroyed(stack)
    assert [p.name for p in stacks_dir.iterdir()] == [f"Pulumi.{LIKE}.yaml"]
    records = [json.loads(path.read_text()) for path in (tmp_path / "jobs").glob("*/record.json")]
    assert sorted(r["destroyed"] for r in records) == [True, True]


BARRIER_UP = """#!/usr/bin/env python3
import os, sys, time
argv = [a for a in sys.argv[1:] if a != "--non-interactive"]
if argv[:1] == ["up"]:  # every `up` waits until {count} have begun: the instances exist at the same time
    open(os.path.join({folder!r}, "up-" + argv[argv.index("--stack") + 1]), "w").close()
    deadline = time.monotonic() + 60
    while len([n for n in os.listdir({folder!r}) if n.startswith("up-")]) < {count} and time.monotonic() < deadline:
        time.sleep(0.05)
    if len([n for n in os.listdir({folder!r}) if n.startswith("up-")]) >= {count}:
        open({done!r}, "w").close()
os.execv({fake!r}, [{fake!r}, *sys.argv[1:]])
"""


def barrier_up(tmp_path: Path, monkeypatch, count: int) -> Path:
    """`pulumi up` returns once `count` of them have begun (then recorded like the others); the returned file exists
    when that happened."""
    wrapper = tmp_path / "barrier-up" / "pulumi"
    wrapper.parent.mkdir()
    (tmp_path / "ups").mkdir()
    done = tmp_path / "all-up"
    wrapper.write_text(BARRIER_UP.format(folder=str(tmp_path / "ups"), count=count, done=str(done),
                                         fake=str(tmp_path / "bin" / "pulumi")))
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper.parent}:{os.environ['PATH']}")
    return done


UP_CANCELS = """#!/usr/bin/env python3
import json, os, signal, sys, time
log = {log!r}
argv = [a for a in sys.argv[1:] if a != "--non-interactive"]
if argv[:1] == ["up"]:  # a long `pulumi up` that cancels gracefully on SIGINT, as pulumi does
    stack = argv[argv.index("--stack") + 1]
    def cancel(signum, frame):
        time.sleep(0.5)  # the operations in flight finish and are recorded
        with open(log, "a") as out:
            out.write(json.dumps({{"argv": ["up cancelled", stack]}}) + "\\n")
        sys.exit(255)
    signal.signal(signal.SIGINT, cancel)
    with open(log, "a") as out:
        out.write(json.dumps({{"argv": argv}}) + "\\n")
    with open({pids!r}, "a") as out:
        out.write(str(os.getpid()) + "\\n")
    time.sleep(120)
    sys.exit(0)
os.execv({fake!r}, [{fake!r}, *sys.argv[1:]])
"""


def slow_up(tmp_path: Path, monkeypatch) -> Path:
    """`pulumi up` runs until SIGINT, then records its cancel and fails; the returned file lists the ups' pids."""
    wrapper = tmp_path / "slow-up" / "pulumi"
    wrapper.parent.mkdir()
    pids = tmp_path / "up.pids"
    wrapper.write_text(UP_CANCELS.format(log=str(tmp_path / "pulumi-calls.jsonl"), pids=str(pids),
                                         fake=str(tmp_path / "bin" / "pulumi")))
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper.parent}:{os.environ['PATH']}")
    return pids


def up_pids(pids: Path, count: int) -> list[int]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = pids.read_text().split() if pids.exists() else []
        if len(found) >= count:
            return [int(pid) for pid in found]
        time.sleep(0.1)
    raise AssertionError(f"{count} `pulumi up` never started")


def test_ctrl_c_during_a_map_destroys_every_throwaway_before_it_returns(stacks_dir, server_pem, recording_pulumi,
                                                                        tmp_path, monkeypatch):
    """The terminal's Ctrl-C reaches every `pulumi up` and this process: each up records what it made, then each
    stack is destroyed and removed, all before KeyboardInterrupt leaves labstack.map."""
    like_stack(stacks_dir, server_pem)
    monkeypatch.setattr(job_run, "JOBS_DIR", tmp_path / "jobs")
    pids = slow_up(tmp_path, monkeypatch)

    def ctrl_c():
        for pid in up_pids(pids, 3):
            os.kill(pid, signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=ctrl_c, daemon=True)
    thread.start()
    with pytest.raises(KeyboardInterrupt):
        labstack.map(cube, range(7), machine=job_run.Machine("t3.small", like=LIKE), max_instances=3,
                     announce=quiet)
    thread.join()
    calls = recording_pulumi()
    stacks = per_stack(calls)
    assert len(stacks) == 3 and most_alive(calls) == 3
    for stack, commands in stacks.items():
        assert commands == made_and_destroyed(stack, cancelled_up=True)
    assert [p.name for p in stacks_dir.iterdir()] == [f"Pulumi.{LIKE}.yaml"]


def test_cancel_returns_once_every_throwaway_is_destroyed(stacks_dir, server_pem, recording_pulumi, tmp_path,
                                                          monkeypatch):
    like_stack(stacks_dir, server_pem)
    monkeypatch.setattr(job_run, "JOBS_DIR", tmp_path / "jobs")
    pids = slow_up(tmp_path, monkeypatch)
    future = labstack.map_async(cube, range(5), machine=job_run.Machine("t3.small", like=LIKE), max_instances=2,
                                announce=quiet)
    started = up_pids(pids, 2)
    assert not future.done()
    # An `up` in flight is not cut short by cancel() (pulumi must record what it made); here the ups end as a
    # terminal's Ctrl-C ends them, each half a second after cancel() began, and cancel() waits for every destroy.
    cancelling = threading.Event()

    def interrupt_ups():
        cancelling.wait()
        for pid in started:
            os.kill(pid, signal.SIGINT)

    threading.Thread(target=interrupt_ups, daemon=True).start()
    cancelling.set()
    assert future.cancel() is True
    assert future.cancelled() and future.done()
    with pytest.raises(CancelledError):
        future.result(timeout=0)
    assert all(call.cancelled() or isinstance(call.exception(timeout=0), CancelledError) for call in future.calls)
    calls = recording_pulumi()
    stacks = per_stack(calls)
    assert len(stacks) == 2
    for stack, commands in stacks.items():
        assert commands == made_and_destroyed(stack, cancelled_up=True)
    assert future.cancel() is False  # already ended


# --- on a test bed host: the recording pulumi's outputs name it as every throwaway instance ----------------------

@on_testbed
def test_map_on_throwaways_returns_in_order_and_destroys_each(on_host, stacks_dir, recording_pulumi, tmp_path,
                                                             monkeypatch):
    monkeypatch.setattr(job_run, "JOBS_DIR", tmp_path / "jobs")
    machine = job_run.Machine("c7i.large", like=LIKE)
    assert labstack.map(cube, range(7), machine=machine, max_instances=2, announce=quiet) == [x ** 3 for x in range(7)]
    calls = recording_pulumi()
    stacks = per_stack(calls)
    assert 1 <= len(stacks) <= 2 and most_alive(calls) <= 2
    for stack, commands in stacks.items():
        assert commands == made_and_destroyed(stack)
    records = [json.loads(path.read_text()) for path in (tmp_path / "jobs").glob("*/record.json")]
    assert [(r["function"], r["destroyed"], r["map"]) for r in records] == [("cube", True, True)] * len(stacks)
    assert [p.name for p in stacks_dir.iterdir()] == [f"Pulumi.{LIKE}.yaml"]


@on_testbed
def test_a_failing_call_on_throwaways_raises_its_traceback_and_leaves_nothing(on_host, stacks_dir, recording_pulumi,
                                                                             tmp_path, monkeypatch):
    monkeypatch.setattr(job_run, "JOBS_DIR", tmp_path / "jobs")
    target = target_of(on_host)
    machine = job_run.Machine("c7i.large", like=LIKE)
    with pytest.raises(ValueError, match=r"^cannot use 3$") as raised:
        labstack.map(fails_on, range(8), machine=machine, max_instances=2, announce=quiet)
    remote = raised.value.__cause__
    assert type(remote).__name__ == "RemoteTraceback"
    assert "in fails_on" in remote.text and remote.text.strip().endswith("ValueError: cannot use 3")
    calls = recording_pulumi()
    for stack, commands in per_stack(calls).items():
        assert commands == made_and_destroyed(stack)
    assert [job for job in jobs.statuses(target) if job["state"] in jobs.ACTIVE] == []
    assert [p.name for p in stacks_dir.iterdir()] == [f"Pulumi.{LIKE}.yaml"]


def test_parse_results_reads_only_the_marked_lines():
    marker = "labstack-map-result-00ff"
    logs = (f"(run_call pid=12, ip=169.254.1.2) {marker} {{\"index\": 9}}\n"  # a task's own print, prefixed by Ray
            f"{marker} {{\"index\": 1, \"status\": \"returned\"}}\nnoise\n"
            f"{marker} {{\"index\": 0, \"status\": \"raised\"}}\n")
    assert parallel.parse_results(logs, marker) == [{"index": 1, "status": "returned"},
                                                    {"index": 0, "status": "raised"}]
