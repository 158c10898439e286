"""Script jobs (labstack/jobs/server.py + hooks/job-*.sh) on a test bed host: real SSH (pinned host key), real sudo and dockerd.

One host serves every scenario of this file (jobs are independent folders), so the file needs one host start.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from components.layout import JOBS_SRV, JOBS_STORE, REMOTE_HOOKS, hook
from labstack.jobs import server as jobs
from labstack.local import sha256_file
from labstack.ssh.target import SshTarget

pytestmark = [pytest.mark.testbed, pytest.mark.e2e]


@pytest.fixture(scope="module")
def target(hooks_host):
    return SshTarget(host=hooks_host.ip, user=hooks_host.user, key_path=Path(hooks_host.key_path),
                     known_hosts=hooks_host.known_hosts_line(), stack="testbed")


def _server_jobs(host) -> list[str]:
    """What the jobs folder holds, hidden entries included (a half-written `.incoming-*` would show), without the
    waiting container's folder and lock (the node agent replaces them in the background)."""
    names = host.run(f"sudo ls -A {JOBS_SRV} 2>/dev/null || true").stdout.split()
    return sorted(n for n in names if not n.startswith(".spare"))


def _waiting_containers(host, seconds=60, image="python:3.11-slim") -> list[str]:
    """Ids of the running waiting containers of `image`, once there is one (the node agent starts it in the
    background, and replaces one of another image)."""
    deadline = time.monotonic() + seconds
    while True:
        ids = host.docker("ps", "-q", "--no-trunc", "--filter", "name=^labstack-job-spare-",
                          "--filter", f"ancestor={image}").stdout.split()
        if ids or time.monotonic() > deadline:
            return ids
        time.sleep(0.5)


def _wait_state(target, job_id, state, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        record = jobs.statuses(target, job_id)[0]
        if record["state"] == state:
            return record
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} never reached {state}: {record}")


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_folder_job_completes_and_outputs_come_back_identical(target, hooks_host, tmp_path):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.bin").write_bytes(os.urandom(300_000))
    (data / "sub" / "b.txt").write_text("hello\n")
    script = tmp_path / "run.sh"
    script.write_text("set -e\nsleep 2\nmkdir -p out\ncp -r data/. out/\necho \"seed=$SEED\" > out/seed.txt\n"
                      "echo done-by-script\n")
    seen = []
    job_id = jobs.submit(target, script, [data], name="copy-files", env={"SEED": "42 x"})
    code = jobs.wait(target, job_id, on_progress=lambda r: seen.append(r["state"]))
    assert code == 0
    states = list(dict.fromkeys(seen))
    assert states[-1] == "complete" and "running" in states
    assert states == [s for s in ("submitted", "running", "complete") if s in states]
    record = jobs.statuses(target, job_id)[0]
    assert record["exitCode"] == 0 and record["image"] == "python:3.11-slim" and record["name"] == "copy-files"
    assert record["startedAt"] <= record["endedAt"] and "@" in record["submittedBy"] and record["mode"] == "container"
    fetched = jobs.fetch(target, job_id, path="out/", dest=tmp_path / "back")
    assert fetched == tmp_path / "back" / "out"
    expected = _tree(data) | {"seed.txt": b"seed=42 x\n"}
    assert _tree(fetched) == expected
    assert [p.name for p in (tmp_path / "back").iterdir()] == ["out"]  # no temp folder left
    assert "done-by-script" in jobs.logs(target, job_id)
    # The job's container is gone; the job folder holds the record.
    assert hooks_host.docker("ps", "-aq", "--filter", f"name=^labstack-job-{job_id}$").stdout.strip() == ""


def test_failing_script_ends_failed_with_its_exit_code_and_logs(target, tmp_path):
    script = tmp_path / "fail.sh"
    script.write_text("echo about to fail >&2\nexit 7\n")
    job_id = jobs.submit(target, script, [], on_host=True)
    assert jobs.wait(target, job_id) == 7
    record = jobs.statuses(target, job_id)[0]
    assert (record["state"], record["exitCode"], record["image"], record["mode"]) == ("failed", 7, None, "host")
    assert "about to fail" in jobs.logs(target, job_id)


def test_job_survives_its_ssh_session_being_killed(target, tmp_path):
    script = tmp_path / "slow.sh"
    script.write_text("for i in 1 2 3 4; do echo tick $i; sleep 1; done\nmkdir -p out\necho survived > out/r.txt\n")
    job_id = jobs.submit(target, script, [])
    _wait_state(target, job_id, "running")
    follower = subprocess.Popen(target.ssh_argv(hook("job-logs.sh", job_id, "--follow")),
                                stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert follower.stdout.readline().startswith(b"tick")
    follower.kill()  # the SSH session dies mid-run
    follower.wait()
    assert jobs.wait(target, job_id) == 0
    assert (jobs.fetch(target, job_id, "out/r.txt", tmp_path / "o")).read_text() == "survived\n"
    assert jobs.logs(target, job_id).splitlines() == [f"tick {i}" for i in range(1, 5)]


def test_logs_follow_streams_until_the_job_ends(target, tmp_path, capfd):
    script = tmp_path / "ticks.sh"
    script.write_text("for i in 1 2 3; do echo tick $i; sleep 1; done\n")
    job_id = jobs.submit(target, script, [], on_host=True)
    assert jobs.logs(target, job_id, follow=True) is None  # returns once the job has ended
    assert capfd.readouterr().out.splitlines() == ["tick 1", "tick 2", "tick 3"]
    assert jobs.statuses(target, job_id)[0]["state"] == "complete"


def test_cancel_and_two_jobs_at_once(target, tmp_path):
    long = tmp_path / "long.sh"
    long.write_text("sleep 300\n")
    quick = tmp_path / "quick.sh"
    quick.write_text("mkdir -p out\necho $JOB_TAG > out/tag\nsleep 1\n")
    to_cancel = jobs.submit(target, long, [], on_host=True)
    first = jobs.submit(target, quick, [], env={"JOB_TAG": "one"})
    second = jobs.submit(target, quick, [], on_host=True, env={"JOB_TAG": "two"})
    _wait_state(target, to_cancel, "running")
    record = jobs.cancel(target, to_cancel)
    assert record["state"] == "cancelled"
    assert jobs.wait(target, to_cancel) == jobs.CANCELLED_EXIT
    assert jobs.cancel(target, to_cancel)["state"] == "cancelled"  # again: nothing to do, same record
    assert (jobs.wait(target, first), jobs.wait(target, second)) == (0, 0)
    assert jobs.fetch(target, first, "out/tag", tmp_path / "1").read_text() == "one\n"
    assert jobs.fetch(target, second, "out/tag", tmp_path / "2").read_text() == "two\n"
    listed = {r["id"]: r["state"] for r in jobs.statuses(target)}
    assert {to_cancel: "cancelled", first: "complete", second: "complete"}.items() <= listed.items()


def test_a_waiting_container_takes_the_next_job_of_its_image(target, hooks_host, tmp_path):
    """Once a container job runs, a container of its image waits (started by the node agent); the next job of that
    image runs in it (the script sees its own variables, /job, its name), and a waiting container that died is never
    handed a job."""
    script = tmp_path / "where.sh"
    script.write_text('mkdir -p out\nprintf "%s|%s|%s\\n" "$TAG" "$(pwd)" "$(hostname)" > out/where\nsleep "$NAP"\n')
    first = jobs.submit(target, script, [], env={"TAG": "first one", "NAP": "0"})
    assert jobs.wait(target, first) == 0
    waiting = _waiting_containers(hooks_host)
    assert len(waiting) == 1
    second = jobs.submit(target, script, [], env={"TAG": "second one", "NAP": "3"})
    _wait_state(target, second, "running")
    # Renamed to the job's name once it runs, so cancel and the status reads find it like any job's container.
    assert hooks_host.docker("ps", "-q", "--no-trunc", "--filter",
                           f"name=^labstack-job-{second}$").stdout.split() == waiting
    assert jobs.wait(target, second) == 0
    # A container's host name is its short id: the waiting container ran the script.
    assert jobs.fetch(target, second, "out/where", tmp_path / "2").read_text() == f"second one|/job|{waiting[0][:12]}\n"
    record = jobs.statuses(target, second)[0]
    assert (record["state"], record["image"], record["mode"]) == ("complete", "python:3.11-slim", "container")

    # One waiting container at a time; kill it as an engine restart or a reboot would: the next job gets its own.
    replacement = _waiting_containers(hooks_host)
    assert len(replacement) == 1 and replacement != waiting
    hooks_host.docker("kill", replacement[0])
    third = jobs.submit(target, script, [], env={"TAG": "third one", "NAP": "0"})
    assert jobs.wait(target, third) == 0
    where = jobs.fetch(target, third, "out/where", tmp_path / "3").read_text()
    assert where.startswith("third one|/job|") and replacement[0][:12] not in where

    # One that stops reading (paused: its process is alive, the fifo is never opened) is given up after 5 s; the job
    # gets its own container and the stuck one is removed.
    stuck = _waiting_containers(hooks_host)
    assert len(stuck) == 1
    hooks_host.docker("pause", stuck[0])
    fourth = jobs.submit(target, script, [], env={"TAG": "fourth one", "NAP": "0"})
    assert jobs.wait(target, fourth) == 0
    where = jobs.fetch(target, fourth, "out/where", tmp_path / "4").read_text()
    assert where.startswith("fourth one|/job|") and stuck[0][:12] not in where
    deadline = time.monotonic() + 30
    while hooks_host.docker("ps", "-aq", "--no-trunc", "--filter", f"id={stuck[0]}").stdout.strip():
        assert time.monotonic() < deadline, "the stuck waiting container was not removed"
        time.sleep(0.5)

    # Cancel reaches a job that a waiting container runs.
    assert len(_waiting_containers(hooks_host)) == 1
    long = jobs.submit(target, script, [], env={"TAG": "long", "NAP": "300"})
    _wait_state(target, long, "running")
    assert jobs.cancel(target, long)["state"] == "cancelled"
    assert hooks_host.docker("ps", "-aq", "--filter", f"name=^labstack-job-{long}$").stdout.strip() == ""


def test_engine_restart_and_reboot_mid_job_end_interrupted(target, hooks_host, tmp_path):
    script = tmp_path / "long.sh"
    script.write_text("sleep 300\n")
    restarted = jobs.submit(target, script, [])
    _wait_state(target, restarted, "running")
    hooks_host.restart_docker()
    assert jobs.wait(target, restarted) == jobs.INTERRUPTED_EXIT
    assert jobs.statuses(target, restarted)[0]["state"] == "interrupted"
    # A reboot (`sudo reboot` on the host; the test bed's power switch ends every process of the host, the
    # supervisor too, and boots it with its disks): the first read after the boot settles the job.
    rebooted = jobs.submit(target, script, [])
    _wait_state(target, rebooted, "running")
    hooks_host.run("sudo reboot", check=False)
    assert hooks_host.wait_powered_off(timeout=60)["action"] == "reboot"
    hooks_host.power_on()
    record = jobs.statuses(target, rebooted)[0]
    assert record["state"] == "interrupted" and record["endedAt"]
    # Nothing of the job runs after the boot (its container has no restart policy).
    assert hooks_host.docker("ps", "-q", "--filter", f"name=^labstack-job-{rebooted}$").stdout.strip() == ""


def test_bad_input_is_refused_and_nothing_is_written(target, hooks_host, tmp_path):
    before = _server_jobs(hooks_host)
    with pytest.raises(jobs.JobError, match="no such file"):
        jobs.submit(target, tmp_path / "missing.sh", [])
    with pytest.raises(jobs.JobError, match="is a directory"):
        jobs.submit(target, tmp_path, [])
    script = tmp_path / "ok.sh"
    script.write_text("true\n")
    huge = tmp_path / "huge.bin"
    with open(huge, "wb") as f:
        f.truncate(1 << 43)  # sparse: 8 TiB on paper, no disk used here
    with pytest.raises(jobs.JobError, match="do not fit"):
        jobs.submit(target, script, [huge])
    with pytest.raises(jobs.JobError, match="KEY=VALUE"):
        jobs.submit(target, script, [], env=["NOEQUALS"])
    with pytest.raises(jobs.JobError, match="no job 20990101-000000-dead"):
        jobs.statuses(target, "20990101-000000-dead")
    with pytest.raises(jobs.JobError, match="no job"):
        jobs.fetch(target, "20990101-000000-dead", "out/", tmp_path / "x")
    assert _server_jobs(hooks_host) == before
    # The hook itself refuses a path outside the job folder, even when the operator side is bypassed.
    job_id = jobs.submit(target, script, [])
    jobs.wait(target, job_id)
    with pytest.raises(jobs.JobError, match="inside the job folder"):
        jobs.fetch(target, job_id, "../../etc", tmp_path / "y")
    refused = hooks_host.run(f"sudo -n {REMOTE_HOOKS}/job-fetch.sh {job_id} ../../etc", check=False)
    assert refused.returncode != 0 and "inside the job folder" in refused.stderr
    assert not (tmp_path / "y").exists() or list((tmp_path / "y").iterdir()) == []
    assert json.loads(hooks_host.run(f"sudo cat {JOBS_SRV}/{job_id}/status.json").stdout)["state"] == "complete"


def test_large_files_the_server_holds_are_not_sent_again(target, hooks_host, tmp_path):
    """Files of 1 MiB or more (8 MiB in all) that an earlier job folder still holds unchanged are copied on the server
    instead of sent; one changed there in place is sent after all; removing the earlier job's folder forgets them."""
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.bin").write_bytes(os.urandom(5 << 20))
    (data / "sub" / "b.bin").write_bytes(os.urandom(4 << 20))
    (data / "c.txt").write_text("small, always sent\n")
    script = tmp_path / "sums.sh"
    script.write_text("mkdir -p out\nsha256sum data/a.bin data/sub/b.bin data/c.txt > out/sums\n")
    expected = "".join(f"{sha256_file(data / name)}  data/{name}\n" for name in ("a.bin", "sub/b.bin", "c.txt"))

    def submit():
        said = []
        job_id = jobs.submit(target, script, [data], on_progress=said.append)
        assert jobs.wait(target, job_id) == 0
        assert jobs.fetch(target, job_id, "out/sums", tmp_path / job_id).read_text() == expected
        return job_id, said

    first, said = submit()
    assert said == []
    store = sorted(hooks_host.run(f"sudo ls {JOBS_STORE}").stdout.split())
    assert store == sorted({sha256_file(data / "a.bin"), sha256_file(data / "sub" / "b.bin")})

    second, said = submit()
    assert said == ["2 file(s) (9.4 MB) are on the server already: not sent again"]
    reused = hooks_host.run(f"sudo cat {JOBS_SRV}/{second}/.labstack/reuse").stdout.split("\n")
    assert sorted(line.split(" ", 1)[1] for line in reused if line) == ["data/a.bin", "data/sub/b.bin"]
    # A copy, not a link: the second job cannot change the first job's files (or the store) in place.
    assert hooks_host.run(f"sudo stat -c %h {JOBS_SRV}/{second}/data/a.bin").stdout.strip() == "1"

    # The first job's file changes in place (the store's entry is the same file): the copy's check catches it.
    hooks_host.run(f"sudo sh -c 'echo changed >> {JOBS_SRV}/{first}/data/a.bin'")
    third, said = submit()
    assert said == ["2 file(s) (9.4 MB) are on the server already: not sent again",
                    "a file the server held has changed or gone there: sending everything"]

    # Job folders removed: the store forgets what no folder holds any more; everything is sent.
    hooks_host.run(f"sudo rm -rf {JOBS_SRV}/{first} {JOBS_SRV}/{second} {JOBS_SRV}/{third}")
    _, said = submit()
    assert said == []


def test_an_image_with_its_own_user_runs_jobs_in_and_out_of_a_waiting_container(target, hooks_host, tmp_path):
    """An image whose USER is not root reads its files and env and writes its outputs and log in the job folder,
    started by `docker run` and by a waiting container alike; a #! script runs though it was not executable here."""
    hooks_host.exec_in(["sh", "-c", "printf 'FROM python:3.11-slim\\nUSER 1000:1000\\n' | "
                                  "docker build -q -t labstack-nonroot:1 - >/dev/null"])
    script = tmp_path / "who.sh"
    script.write_text('#!/bin/sh\nmkdir -p out\nprintf "%s %s %s\\n" "$(id -u)" "$TAG" "$(hostname)" > out/who\n'
                      'echo logged\n')
    script.chmod(0o644)
    first = jobs.submit(target, script, [], image="labstack-nonroot:1", env={"TAG": "cold"})
    assert jobs.wait(target, first) == 0, jobs.logs(target, first)
    assert jobs.fetch(target, first, "out/who", tmp_path / "1").read_text().split()[:2] == ["1000", "cold"]
    assert jobs.logs(target, first) == "logged\n"
    waiting = _waiting_containers(hooks_host, image="labstack-nonroot:1")
    assert len(waiting) == 1
    second = jobs.submit(target, script, [], image="labstack-nonroot:1", env={"TAG": "warm"})
    assert jobs.wait(target, second) == 0, jobs.logs(target, second)
    assert jobs.fetch(target, second, "out/who", tmp_path / "2").read_text() == f"1000 warm {waiting[0][:12]}\n"
