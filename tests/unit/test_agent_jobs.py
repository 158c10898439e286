"""The node agent's jobs (hooks/agent) without root: every state transition, the waiting container, the large-file
store, fetch and the records of jobs the earlier bash hooks started. The hooks run as on a server (bash, the agent
by python3) under LABSTACK_ROOT, with a fake engine (tests/unit/fakes/docker: a container is a process group)."""
from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import tarfile
import time

import pytest

from hooks.agent import contract
from tests.unit.agent_node import Node


@pytest.fixture
def node(tmp_path):
    server = Node(tmp_path)
    yield server
    server.stop()


def test_a_container_job_runs_to_complete_with_its_env_and_outputs(node):
    node.submit("j-ok", "mkdir -p out\necho \"seed=$SEED\" > out/seed.txt\necho done-by-script\n", env="SEED=42 x\n",
                name="copy")
    record = node.wait_for("j-ok", "complete")
    assert (record["exitCode"], record["image"], record["mode"], record["name"], record["submittedBy"]) == (
        0, "python:3.11-slim", "container", "copy", "ana@laptop")
    assert record["submittedAt"] <= record["startedAt"] <= record["endedAt"]
    assert list(record) == list(contract.STATUS_FIELDS)
    assert (node.jobs / "j-ok/out/seed.txt").read_text() == "seed=42 x\n"
    assert node.hook("job-logs", "j-ok").stdout == b"done-by-script\n"
    node.supervisor_gone("j-ok")
    assert "labstack-job-j-ok" not in node.containers()  # removed once it ended


def test_a_failing_host_job_ends_failed_with_its_code(node):
    node.submit("j-fail", "echo about to fail >&2\nexit 7\n", image=contract.ON_HOST)
    record = node.wait_for("j-fail", "failed")
    assert (record["exitCode"], record["image"], record["mode"]) == (7, None, "host")
    assert b"about to fail" in node.hook("job-logs", "j-fail").stdout


def test_a_container_that_cannot_start_ends_failed_125(node):
    node.submit("j-noimage", "true\n", image="missing:1")
    record = node.wait_for("j-noimage", "failed")
    assert record["exitCode"] == contract.START_FAILED_EXIT and record["startedAt"] == record["endedAt"]
    assert b"Unable to find image" in node.hook("job-logs", "j-noimage").stdout


@pytest.mark.parametrize("image", ["python:3.11-slim", contract.ON_HOST])
def test_cancel_stops_a_running_job_and_leaves_an_ended_one(node, image):
    node.submit("j-long", "echo started\nsleep 300\n", image=image)
    node.wait_for("j-long", "running")
    record = json.loads(node.hook("job-cancel", "j-long").stdout)
    assert record["state"] == "cancelled" and record["exitCode"] in (137, 143)
    again = node.hook("job-cancel", "j-long")
    assert json.loads(again.stdout) == record and b"has ended already (cancelled)" in again.stderr


def test_a_cancel_before_the_supervisor_starts_ends_cancelled(node):
    """submitted -> cancelled: the supervisor finds the cancel asked for (and removes a waiting container that was
    handed the job)."""
    folder = node.jobs / "j-late"
    (folder / contract.META_DIR).mkdir(parents=True)
    (folder / "run.sh").write_text("true\n")
    (folder / "status.json").write_text("{}\n")
    node.meta("j-late", "meta").write_text("name=''\nimage=python:3.11-slim\nsubmittedBy=ana@laptop\n"
                                           "submittedAt=2026-12-07T00:00:00Z\nmode=container\nscript=run.sh\n")
    node.meta("j-late", "state").write_text("state=submitted\n")
    node.meta("j-late", "cancel").touch()
    node.meta("j-late", "container").write_text("labstack-job-spare-x\n")
    node.agent("job-supervise", "j-late")
    record = json.loads((folder / "status.json").read_text())
    assert record["state"] == "cancelled" and record["exitCode"] is None and record["endedAt"]


def test_a_job_whose_supervisor_is_gone_ends_interrupted(node):
    node.submit("j-orphan", "sleep 300\n")
    node.wait_for("j-orphan", "running")
    pid = int(node.meta("j-orphan", "supervisor").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    node.supervisor_gone("j-orphan")
    record = node.status("j-orphan")
    assert record["state"] == "interrupted" and record["endedAt"]
    assert "labstack-job-j-orphan" not in node.containers()  # its container stopped and removed


def test_a_just_submitted_job_without_a_supervisor_record_waits_a_minute(node):
    folder = node.jobs / "j-new"
    (folder / contract.META_DIR).mkdir(parents=True)
    node.meta("j-new", "meta").write_text("mode=host\nscript=run.sh\n")
    node.meta("j-new", "state").write_text("state=submitted\n")
    (folder / "status.json").write_text('{"id":"j-new","state":"submitted"}\n')
    assert node.status("j-new")["state"] == "submitted"
    old = time.time() - 61
    os.utime(node.meta("j-new", "state"), (old, old))
    assert node.status("j-new")["state"] == "interrupted"


@pytest.fixture
def dockerd(node):
    """A process standing for dockerd, named by its pid file as the packaged service writes it."""
    engine = subprocess.Popen(["sleep", "300"])
    pid_file = node.path("/run/docker.pid")
    pid_file.parent.mkdir(parents=True)
    pid_file.write_text(f"{engine.pid}\n")
    yield engine
    engine.kill()
    engine.wait()


def test_an_engine_that_goes_away_makes_the_job_interrupted(node, dockerd):
    """A signal exit while dockerd's identity (pid file, pid and start time) changes: interrupted, not failed."""
    node.submit("j-engine", "sleep 300\n")
    node.wait_for("j-engine", "running")
    dockerd.kill()
    dockerd.wait()
    subprocess.run(["docker", "kill", "labstack-job-j-engine"], env=node.env, check=True)
    assert node.wait_for("j-engine", "interrupted", "failed")["state"] == "interrupted"


def test_a_signal_exit_with_the_engine_staying_is_the_scripts_own(node, dockerd):
    node.submit("j-killed", "sleep 300\n")
    node.wait_for("j-killed", "running")
    subprocess.run(["docker", "kill", "labstack-job-j-killed"], env=node.env, check=True)
    record = node.wait_for("j-killed", "interrupted", "failed", seconds=90)
    assert (record["state"], record["exitCode"]) == ("failed", 137)


def test_an_engine_that_stops_answering_makes_the_job_interrupted(node):
    node.submit("j-down", "sleep 300\n")
    node.wait_for("j-down", "running")
    (node.engine / "down").touch()  # docker wait fails, and inspect cannot say it runs
    record = node.wait_for("j-down", "interrupted", "failed")
    assert record["state"] == "interrupted" and record["exitCode"] is None


def test_a_waiting_container_takes_the_next_job_of_its_image(node):
    script = "mkdir -p out\nprintf '%s|%s\\n' \"$TAG\" \"$(pwd)\" > out/where\n"
    node.submit("j-first", script, env="TAG=first\n")
    node.wait_for("j-first", "complete")
    waiting = node.waiting()
    assert len(waiting) == 1
    node.submit("j-second", script, env="TAG=second one\n")
    assert node.wait_for("j-second", "complete")["mode"] == "container"
    # it ran in the waiting container (the fake engine's "container" works in the folder it was given, renamed)
    assert (node.jobs / "j-second/out/where").read_text() == f"second one|{node.jobs / 'j-second'}\n"
    assert not (node.jobs / "j-second" / contract.META_DIR / "spare").exists()
    assert node.meta("j-second", "container").read_text() == "labstack-job-j-second\n"
    # one waiting container at a time: the next one replaces it; killed (engine restart): the next job gets its own
    replacement = node.waiting()
    assert len(replacement) == 1 and replacement != waiting
    subprocess.run(["docker", "kill", replacement[0]], env=node.env, check=True)
    node.submit("j-third", script, env="TAG=third\n")
    assert node.wait_for("j-third", "complete")["exitCode"] == 0
    assert not node.meta("j-third", "container").exists()


def test_a_waiting_container_that_does_not_read_is_given_up(node):
    node.submit("j-warm", "true\n")
    node.wait_for("j-warm", "complete")
    stuck = node.waiting()
    pid = int((node.engine / stuck[0] / "pid").read_text())
    os.kill(pid, signal.SIGSTOP)  # alive, but its open of the fifo is interrupted: nobody reads
    try:
        node.submit("j-cold", "echo ran > out.txt\n")
        assert node.wait_for("j-cold", "complete")["exitCode"] == 0
        assert (node.jobs / "j-cold/out.txt").read_text() == "ran\n"
        assert not node.meta("j-cold", "container").exists()
    finally:
        subprocess.run(["kill", "-CONT", str(pid)], stderr=subprocess.DEVNULL)


def test_cancel_reaches_a_job_a_waiting_container_runs(node):
    node.submit("j-a", "true\n")
    node.wait_for("j-a", "complete")
    node.waiting()
    node.submit("j-b", "sleep 300\n")
    node.wait_for("j-b", "running")
    assert json.loads(node.hook("job-cancel", "j-b").stdout)["state"] == "cancelled"


def test_large_files_come_from_the_store_checked(node):
    big = os.urandom(1 << 16)
    digest = hashlib.sha256(big).hexdigest()
    node.submit("j-store", "true\n", files={"data/a.bin": big},
                extra={contract.STORE_LIST: f"{digest} data/a.bin\n".encode()}, image=contract.ON_HOST)
    node.wait_for("j-store", "complete")
    assert (node.store / digest).stat().st_ino == (node.jobs / "j-store/data/a.bin").stat().st_ino
    assert node.hook("job-have", "100", stdin=f"{digest}\n{'0' * 64}\nnot-a-digest\n".encode()).stdout == \
        f"{digest}\n".encode()
    node.submit("j-reuse", "true\n", extra={contract.REUSE_LIST: f"{digest} data/a.bin\n".encode()},
                image=contract.ON_HOST)
    copy = node.jobs / "j-reuse/data/a.bin"
    assert copy.read_bytes() == big and copy.stat().st_nlink == 1  # a copy: this job cannot change the store's
    with open(node.jobs / "j-store/data/a.bin", "ab") as changed:  # the first job changes its file in place
        changed.write(b"x")
    missed = node.submit("j-miss", "true\n", extra={contract.REUSE_LIST: f"{digest} data/a.bin\n".encode()},
                         check=False, image=contract.ON_HOST)
    assert missed.returncode == contract.REUSE_MISS_EXIT and b"send it whole" in missed.stderr
    assert not (node.store / digest).exists() and not (node.jobs / "j-miss").exists()
    assert [p.name for p in node.jobs.iterdir() if p.name.startswith(".incoming")] == []
    bad = node.submit("j-bad", "true\n", extra={contract.REUSE_LIST: f"{digest} ../../etc/passwd\n".encode()},
                      check=False)
    assert bad.returncode == 1 and b"bad line in the upload's reuse list" in bad.stderr


def test_store_entries_no_job_links_are_forgotten(node):
    node.store.mkdir(parents=True)
    (node.store / ("a" * 64)).write_bytes(b"orphan")
    assert node.hook("job-have", "0", stdin=("a" * 64 + "\n").encode()).stdout == b""
    assert not (node.store / ("a" * 64)).exists()


def test_fetch_streams_the_path_and_its_sha256_list(node):
    node.submit("j-out", "mkdir -p out/sub\necho one > out/a\necho two > out/sub/b\nln -s a out/link\n",
                image=contract.ON_HOST)
    node.wait_for("j-out", "complete")
    stream = node.hook("job-fetch", "j-out", "out/").stdout
    reader = io.BytesIO(stream)
    names, manifest = [], b""
    with tarfile.open(fileobj=reader, mode="r|", ignore_zeros=True) as archive:
        for member in archive:
            names.append(member.name)
            if member.name == contract.MANIFEST:
                manifest = archive.extractfile(member).read()
    assert names[-1] == contract.MANIFEST and {"out/a", "out/sub/b", "out/link"} <= set(names)
    assert manifest.decode() == "".join(f"{hashlib.sha256(text).hexdigest()}  {name}\n"
                                        for name, text in (("out/a", b"one\n"), ("out/sub/b", b"two\n")))


@pytest.mark.parametrize("path, message", [
    ("../../etc", "must name a file or folder inside the job folder"), ("/etc", "must be relative"),
    ("", "must name a file or folder inside"), ("out/../../x", "inside the job folder"),
    ("nothing", "job j-paths has no nothing (yet)")])
def test_fetch_refuses_paths_outside_or_missing(node, path, message):
    node.submit("j-paths", "true\n", image=contract.ON_HOST)
    refused = node.hook("job-fetch", "j-paths", path, check=False)
    assert refused.returncode == 1 and message in refused.stderr.decode() and refused.stdout == b""


def test_unknown_jobs_and_bad_input_are_refused_before_anything_is_written(node):
    unknown = node.hook("job-status", "20990101-000000-dead", check=False)
    assert unknown.returncode == contract.UNKNOWN_JOB_EXIT and b"no job 20990101-000000-dead" in unknown.stderr
    assert node.hook("job-cancel", "../x", check=False).stderr == \
        b"labstack: error: bad job id '../x': lower-case letters, digits and dashes\n"
    for args, message in [(("j", "x", "img", "run.sh", "", "a@b"), "bad size 'x'"),
                          (("j", "1", "bad image", "run.sh", "", "a@b"), "bad image 'bad image'"),
                          (("j", "1", "img", ".run.sh", "", "a@b"), "bad script name '.run.sh'"),
                          (("j", str(1 << 60), "img", "run.sh", "", "a@b"), "do not fit")]:
        refused = node.hook("job-submit", *args, check=False)
        assert refused.returncode == 1 and message in refused.stderr.decode()
    assert not node.jobs.exists() or [p.name for p in node.jobs.iterdir()] == []
    missing = node.hook("job-submit", "j-empty", "0", "img", "other.sh", "", "a@b",
                        stdin=_empty_tar(), check=False)
    assert b"the upload holds no script other.sh" in missing.stderr and not (node.jobs / "j-empty").exists()


def _empty_tar() -> bytes:
    data = io.BytesIO()
    tarfile.open(fileobj=data, mode="w").close()
    return data.getvalue()


def test_the_records_of_jobs_the_bash_hooks_started_are_read_as_they_are(node):
    """meta and state as the earlier bash hooks wrote them (printf %q, set_state's appended lines): a job they left
    running whose supervisor is gone is settled, and its record rebuilt from them is the one they wrote, byte for
    byte, but for the new state."""
    job_id = "20261128-215501-3fa2"
    folder = node.jobs / job_id
    (folder / contract.META_DIR).mkdir(parents=True)
    node.meta(job_id, "meta").write_text(
        "name=''\nimage=python:3.11-slim\nsubmittedBy=ana@laptop\nsubmittedAt=2026-11-28T21:55:01Z\n"
        "mode=container\nscript=run.sh\n")
    node.meta(job_id, "state").write_text("state=submitted\nstate=running\nstartedAt=2026-11-28T21:55:02Z\n")
    node.meta(job_id, "supervisor").write_text(f"{2 ** 22 + 1} 1\n")
    bash_record = ('{"id":"%s","state":"running","exitCode":null,"submittedAt":"2026-11-28T21:55:01Z",'
                   '"startedAt":"2026-11-28T21:55:02Z","endedAt":null,"image":"python:3.11-slim","mode":"container",'
                   '"script":"run.sh","submittedBy":"ana@laptop","name":null}\n' % job_id)
    (folder / "status.json").write_text(bash_record)
    rebuilt = node.hook("job-status", job_id).stdout.decode()
    ended = json.loads(rebuilt)["endedAt"]
    assert rebuilt == bash_record.replace('"state":"running"', '"state":"interrupted"').replace(
        '"endedAt":null', f'"endedAt":"{ended}"')
    assert node.meta(job_id, "state").read_text().splitlines()[-2:] == ["state=interrupted", f"endedAt={ended}"]


def test_logs_follow_ends_with_the_job(node):
    node.submit("j-ticks", "for i in 1 2 3; do echo tick $i; sleep 0.2; done\n", image=contract.ON_HOST)
    node.wait_for("j-ticks", "running", "complete")
    assert node.hook("job-logs", "j-ticks", "--follow").stdout == b"tick 1\ntick 2\ntick 3\n"
    assert node.status("j-ticks")["state"] == "complete"


@pytest.mark.parametrize("name, pattern", [
    ("JOB_ID_RE", r"[a-z0-9][a-z0-9-]{0,63}"), ("SHA256_RE", r"[0-9a-f]{64}"), ("IMAGE_RE", r"[A-Za-z0-9._/:@-]{1,255}"),
    ("SCRIPT_RE", r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}"), ("NAME_RE", r"[A-Za-z0-9._-]{0,64}"),
    ("SUBMITTER_RE", r"[A-Za-z0-9._@-]{1,128}")])
def test_the_contracts_name_patterns_are_the_character_classes_they_replace(name, pattern):
    import re

    samples = ["", "a", "A", "-x", ".x", "_x", "20261128-215501-3fa2", "a" * 64, "a" * 65, "f" * 64, "F" * 64,
               "python:3.11-slim", "r@sha256:" + "a" * 64, "run.sh", "bad image", "x/y", "ana@laptop", "é", "a\n",
               "a" * 255, "a" * 256]
    assert [getattr(contract, name).match(text) for text in samples] == [
        bool(re.fullmatch(pattern, text)) for text in samples]


def test_status_of_several_jobs_in_the_order_named_and_none_if_one_is_unknown(node):
    node.submit("j-first", "true\n", image=contract.ON_HOST)
    node.submit("j-second", "true\n", image=contract.ON_HOST)
    both = node.hook("job-status", "j-second", "j-first").stdout.decode().splitlines()
    assert [json.loads(line)["id"] for line in both] == ["j-second", "j-first"]
    unknown = node.hook("job-status", "j-first", "j-nope", check=False)
    assert unknown.returncode == contract.UNKNOWN_JOB_EXIT and unknown.stdout == b""
