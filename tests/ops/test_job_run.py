"""Throwaway jobs (`invoke job.run`): the stack file they write (and `invoke check` accepts), the address they open
SSH to, the Ctrl-C question, the teardown through a recording `pulumi`; whole runs against a test bed host that the
recording pulumi's outputs name as the throwaway instance."""
from __future__ import annotations

import base64
import gzip
import http.server
import io
import json
import os
import signal
import tarfile
import threading
import time
from pathlib import Path

import pytest

from labstack.jobs import throwaway as job_run

from labstack.jobs import server as jobs
from labstack.stacks.pulumi_cli import POLICY_PACK
from tests.ops.conftest import target_of
from tests.ops.test_tasks import invoke

LIKE = "lab"  # the operator's usual stack, whose connection settings a throwaway stack copies


def like_stack(stacks_dir: Path, pem: Path) -> None:
    (stacks_dir / f"Pulumi.{LIKE}.yaml").write_text(
        f"config:\n  aws:region: eu-west-3\n  labstack:serverPem: {pem}\n  labstack:sshCidrs: [0.0.0.0/0]\n"
        "  labstack:storageGb: 64\n")


# --- without a server --------------------------------------------------------------------------------------------

def test_the_throwaway_stack_file_copies_connection_settings_and_sets_the_watcher(stacks_dir, server_pem):
    like_stack(stacks_dir, server_pem)
    config = job_run.stack_config(job_run.Machine("c7i.4xlarge", like=LIKE, max_hours=2),
                                  operator_address=lambda: pytest.fail("--like gives sshCidrs"))
    assert config == {"aws:region": "eu-west-3", "labstack:serverPem": str(server_pem),
                      "labstack:sshCidrs": ["0.0.0.0/0"], "labstack:instanceType": "c7i.4xlarge",
                      "labstack:ingressPorts": [22], "labstack:tls": "internal",
                      "labstack:autoStop": {"idleMinutes": job_run.IDLE_MINUTES, "maxHours": 2}}
    alone = job_run.stack_config(job_run.Machine("t3.micro", region="eu-central-1"),
                                 operator_address=lambda: "100.65.0.9/32")
    assert alone == {"aws:region": "eu-central-1", "labstack:serverPem": "~/.ssh/labstack_ed25519",
                     "labstack:sshCidrs": ["100.65.0.9/32"], "labstack:instanceType": "t3.micro",
                     "labstack:ingressPorts": [22], "labstack:tls": "internal",
                     "labstack:autoStop": {"idleMinutes": job_run.IDLE_MINUTES, "maxHours": 4}}



def test_the_throwaway_stack_file_passes_invoke_check_with_its_watcher(stacks_dir, server_pem, capsys):
    """The file job.run writes is what `invoke check` evaluates under the mocks: valid, a watcher with the job's
    grace and lifetime cap, and the CloudWatch backstop alarm."""
    from labstack.stacks.offline import evaluate
    from labstack.stacks.stackfile import read_offline

    like_stack(stacks_dir, server_pem)
    stack = "job-20261129-020000-ef56"
    job_run.write_stack_file(stack, job_run.stack_config(job_run.Machine("c7i.4xlarge", like=LIKE, max_hours=3),
                                                         operator_address=lambda: pytest.fail("--like")))
    assert invoke("check", "--stack", stack) == 0
    assert f"✓ {stack}: the config is valid" in capsys.readouterr().out
    offline = read_offline(stack)
    result = evaluate(offline.config, stack, secret_keys=offline.secret_keys)
    assert result.error is None
    alarms = [r for r in result.resources if r.type == "aws:cloudwatch/metricAlarm:MetricAlarm"]
    assert len(alarms) == 1
    steps = {r.name for r in result.resources if r.type == "command:remote:Command"}
    assert {f"{stack}-docker", f"{stack}-hooks", f"{stack}-watcher"} <= steps  # set up without apps: job.submit's
    [watcher] = [r for r in result.resources if r.name.endswith("-watcher")]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(base64.b64decode(watcher.inputs["stdin"])))) as bundle:
        settings = bundle.extractfile("watcher.env").read().decode()
    assert f"IDLE_SECONDS='{job_run.IDLE_MINUTES * 60}'\n" in settings and "MAX_SECONDS='10800'\n" in settings


def test_max_hours_must_be_whole_hours(stacks_dir, server_pem, recording_pulumi, tmp_path, capsys):
    like_stack(stacks_dir, server_pem)
    script = tmp_path / "run.sh"
    script.write_text("echo hi\n")
    for bad in ("2.5", "0", "soon"):
        assert invoke("job.run", "--type", "c7i.4xlarge", "--like", LIKE, "--script", str(script),
                      "--max-hours", bad) == 1
        assert capsys.readouterr().err.strip() == (f"labstack: --max-hours '{bad}': expected a whole number of "
                                                   "hours, at least 1, e.g. 4")
    assert recording_pulumi() == [] and [p.name for p in stacks_dir.iterdir()] == [f"Pulumi.{LIKE}.yaml"]

def test_no_region_is_one_clear_error(stacks_dir, monkeypatch):
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    with pytest.raises(job_run.JobRunError, match=r"^no region for the throwaway instance: pass --region"):
        job_run.stack_config(job_run.Machine("t3.micro"), operator_address=lambda: "100.65.0.9/32")


def test_the_operator_address_comes_from_checkip(tmp_path):
    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"100.64.0.23\n")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert job_run.operator_cidr(f"http://127.0.0.1:{server.server_port}/") == "100.64.0.23/32"
    finally:
        server.shutdown()
    with pytest.raises(job_run.JobRunError, match="pass --like STACK to use that stack's sshCidrs"):
        job_run.operator_cidr(f"http://127.0.0.1:{server.server_port}/", timeout=2)


def test_ctrl_c_asks_once_and_destroys_unless_kept():
    assert job_run.ask_keep("job-1", ask=lambda question: "keep") is True
    assert job_run.ask_keep("job-1", ask=lambda question: "K ") is True
    assert job_run.ask_keep("job-1", ask=lambda question: "") is False
    assert job_run.ask_keep("job-1", ask=lambda question: "destroy") is False

    def second_ctrl_c(question):
        raise KeyboardInterrupt

    assert job_run.ask_keep("job-1", ask=second_ctrl_c) is False


DESTROY_FAILS = """#!/usr/bin/env python3
import json, os, sys
argv = [a for a in sys.argv[1:] if a != "--non-interactive"]
if argv[:1] == ["destroy"]:  # recorded as the recording pulumi records, then a failed destroy
    with open({log!r}, "a") as out:
        out.write(json.dumps({{"argv": argv}}) + "\\n")
    print("error: deleting the instance: UnauthorizedOperation", file=sys.stderr)
    sys.exit(1)
os.execv({fake!r}, [{fake!r}, *sys.argv[1:]])
"""



def destroy_fails(tmp_path: Path, monkeypatch) -> None:
    """`pulumi destroy` fails (recorded like the others); every other command reaches the recording pulumi."""
    wrapper = tmp_path / "failing-destroy" / "pulumi"  # before the recording pulumi (tests/fakes.py) on PATH
    wrapper.parent.mkdir()
    wrapper.write_text(DESTROY_FAILS.format(log=str(tmp_path / "pulumi-calls.jsonl"),
                                            fake=str(tmp_path / "bin" / "pulumi")))
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper.parent}:{os.environ['PATH']}")

def test_the_destroy_removes_the_stack_and_keeps_its_file_in_the_record(stacks_dir, recording_pulumi, tmp_path):
    from labstack.stacks.pulumi_cli import PulumiCli

    stack = "job-20261128-215000-ab12"
    (stacks_dir / f"Pulumi.{stack}.yaml").write_text("config:\n  aws:region: eu-west-3\n")
    place = job_run.Throwaway(stack, None, tmp_path / "record", {"pulumi": []})
    place.record_dir.mkdir()
    cli = PulumiCli()
    job_run._destroy(cli, place, cli.environment(), announce=lambda line: None)
    assert recording_pulumi() == [["stack", "select", "--stack", stack], *destroy_commands(stack)]
    assert place.record["destroyed"] is True and not (stacks_dir / f"Pulumi.{stack}.yaml").exists()
    assert (tmp_path / "record" / f"Pulumi.{stack}.yaml").read_text() == "config:\n  aws:region: eu-west-3\n"


def test_a_failed_destroy_names_the_command_that_finishes_it(stacks_dir, recording_pulumi, tmp_path, monkeypatch):
    from labstack.stacks.pulumi_cli import PulumiCli

    destroy_fails(tmp_path, monkeypatch)
    stack = "job-20261128-215000-cd34"
    (stacks_dir / f"Pulumi.{stack}.yaml").write_text("config:\n  aws:region: eu-west-3\n")
    place = job_run.Throwaway(stack, None, tmp_path / "record", {"pulumi": []})
    place.record_dir.mkdir()
    cli = PulumiCli()
    # The task chose the backend (the operator's shell has none set): the finishing line exports it first.
    env = {**cli.environment(), "PULUMI_BACKEND_URL": "file:///home/me/labstack/.pulumi-state"}
    with pytest.raises(job_run.JobRunError) as failed:
        job_run._destroy(cli, place, env, announce=lambda line: None)
    assert str(failed.value) == (
        f"the throwaway stack {stack} was NOT destroyed (`pulumi destroy --yes --stack {stack}` failed (exit 1): "
        f"error: deleting the instance: UnauthorizedOperation); its "
        f"instance may still cost money. Finish it with: cd {cli.project_dir} && export "
        f"PULUMI_BACKEND_URL=file:///home/me/labstack/.pulumi-state && pulumi destroy --stack {stack} --yes && "
        f"pulumi stack rm --stack {stack} --yes")
    assert recording_pulumi() == [["stack", "select", "--stack", stack],  # no stack rm after a failed destroy
                                  destroy_commands(stack)[0]]
    assert (stacks_dir / f"Pulumi.{stack}.yaml").is_file()  # the finishing command needs it
    assert json.loads((tmp_path / "record" / "record.json").read_text())["destroyed"] is False



UP_CANCELS = """#!/usr/bin/env python3
import json, os, signal, sys, time
log = {log!r}
argv = [a for a in sys.argv[1:] if a != "--non-interactive"]
if argv[:1] == ["up"]:  # a long `pulumi up` that cancels gracefully on SIGINT, as pulumi does
    def cancel(signum, frame):
        time.sleep(1)  # the operations in flight finish and are recorded
        with open(log, "a") as out:
            out.write(json.dumps({{"argv": ["up cancelled and recorded"]}}) + "\\n")
        sys.exit(255)
    signal.signal(signal.SIGINT, cancel)
    with open(log, "a") as out:
        out.write(json.dumps({{"argv": argv}}) + "\\n")
    with open({pid!r}, "w") as out:
        out.write(str(os.getpid()))
    time.sleep(60)
    sys.exit(0)
os.execv({fake!r}, [{fake!r}, *sys.argv[1:]])
"""


def test_ctrl_c_during_pulumi_up_waits_for_its_cancel_then_destroys(stacks_dir, server_pem, recording_pulumi,
                                                                     tmp_path, monkeypatch):
    """A Ctrl-C that reaches only Python (a notebook's interrupt; a terminal's reaches pulumi by itself) is passed on
    to pulumi: the task lets `pulumi up` record what it made, then asks, then destroys (an `up` killed outright could
    leave an instance out of the state, where no destroy finds it)."""
    like_stack(stacks_dir, server_pem)
    wrapper = tmp_path / "slow-up" / "pulumi"
    wrapper.parent.mkdir()
    pid_file = tmp_path / "up.pid"
    wrapper.write_text(UP_CANCELS.format(log=str(tmp_path / "pulumi-calls.jsonl"), pid=str(pid_file),
                                         fake=str(tmp_path / "bin" / "pulumi")))
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper.parent}:{os.environ['PATH']}")

    def ctrl_c():
        deadline = time.monotonic() + 60
        while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGINT)

    questions = []
    thread = threading.Thread(target=ctrl_c, daemon=True)
    thread.start()
    with pytest.raises(KeyboardInterrupt):
        with job_run.throwaway(job_run.Machine("t3.small", like=LIKE), dest=tmp_path / "record",
                               announce=lambda line: None, ask=lambda q: questions.append(q) or "") as place:
            pytest.fail(f"the body ran although `pulumi up` was interrupted ({place})")
    thread.join()
    calls = recording_pulumi()
    stack = stack_of(calls)
    assert calls == [*up_commands(stack), ["up cancelled and recorded"],  # waited for before anything else
                     *destroy_commands(stack)]
    assert questions == [f"\nInterrupted. Keep {stack} running (keep) or destroy it (destroy)? [destroy] "]
    record = json.loads((tmp_path / "record" / "record.json").read_text())
    assert (record["interrupted"], record["kept"], record["destroyed"]) == (True, False, True)

# --- on a test bed host (real SSH, sudo, dockerd and the job hooks) ----------------------------------------------

on_testbed = pytest.mark.testbed  # not a module mark: the tests above need no test bed


@pytest.fixture
def on_host(hooks_host, stacks_dir, recording_pulumi, monkeypatch):
    """A stack whose outputs (`pulumi stack output --json`) name the test bed host, with that host's login key."""
    like_stack(stacks_dir, Path(hooks_host.key_path))
    monkeypatch.setenv("FAKE_PULUMI_OUTPUTS", json.dumps({"publicIp": hooks_host.ip,
                                                          "knownHosts": hooks_host.known_hosts_line()}))
    return hooks_host


def cube_plus(x, plus=0):
    return x ** 3 + plus


def uses_flask(x):
    import flask  # installed by pip=["flask"] (already in the test bed's python:3.11-slim stand-in)

    return f"{flask.__name__}:{x}"


def fails(x):
    raise ValueError(f"cannot use {x}")


@on_testbed
def test_functions_run_on_a_stacks_server(on_host, recording_pulumi, monkeypatch):
    from labstack import functions

    assert functions.run_function(cube_plus, 3, plus=1, stack=LIKE) == 28
    assert recording_pulumi() == [["stack", "output", "--json", "--stack", LIKE]]
    assert functions.remote(LIKE, pip=["flask"])(uses_flask)(5) == "flask:5"
    with pytest.raises(ValueError, match=r"^cannot use 7$") as raised:
        functions.run_function(fails, 7, stack=LIKE)
    remote = raised.value.__cause__
    assert isinstance(remote, functions.RemoteTraceback)
    assert "in fails" in remote.text and remote.text.strip().endswith("ValueError: cannot use 7")
    monkeypatch.setattr(functions, "LOCAL_PYTHON", "3.12")  # as if this machine ran Python 3.12
    with pytest.raises(functions.FunctionError, match=r"^refused: the image runs Python 3\.11\.\d+ and the caller "
                                                      r"3\.12: a cloudpickled function only loads on the same minor"):
        functions.run_function(cube_plus, 1, stack=LIKE, image="python:3.11-slim")


def up_commands(stack: str) -> list[list[str]]:
    """The throwaway stack made and brought up through the Automation API."""
    return [["stack", "select", "--stack", stack],
            ["up", "--yes", "--skip-preview", "--policy-pack", str(POLICY_PACK), "--exec-kind", "auto.local",
             "--stack", stack]]


def outputs_commands(stack: str) -> list[list[str]]:
    """The Automation API reads a stack's outputs twice: as shown (secrets masked), then with the secrets."""
    return [["stack", "output", "--json", "--stack", stack],
            ["stack", "output", "--json", "--show-secrets", "--stack", stack]]


def history_command(stack: str) -> list[str]:
    """After an update the Automation API reads its summary."""
    return ["stack", "history", "--json", "--show-secrets", "--page-size", "1", "--page", "1", "--stack", stack]


def destroy_commands(stack: str) -> list[list[str]]:
    """pulumi destroy, then the stack removed from the state with its stack file kept (--preserve-config)."""
    return [["destroy", "--skip-preview", "--yes", "--exec-kind", "auto.local", "--stack", stack],
            history_command(stack),
            ["stack", "rm", "--yes", "--preserve-config", stack]]


def expected_commands(stack: str, destroyed: bool = True) -> list[list[str]]:
    commands = [*up_commands(stack), *outputs_commands(stack), history_command(stack),  # the up
                ["stack", "output", "--json", "--stack", stack]]  # the server's address and host key
    if destroyed:
        commands += destroy_commands(stack)
    return commands


def stack_of(calls: list[list[str]]) -> str:
    return calls[0][-1]


def test_bad_input_is_refused_before_any_stack_exists(stacks_dir, server_pem, recording_pulumi, tmp_path, capsys):
    like_stack(stacks_dir, server_pem)
    script = tmp_path / "run.sh"
    script.write_text("echo hi\n")
    assert invoke("job.run", "--type", "c7i.4xlarge", "--like", LIKE, "--script", str(tmp_path)) == 1
    assert capsys.readouterr().err.strip() == (f"labstack: --script {tmp_path}: is a directory; give the script "
                                               "file, and the folder with --files")
    assert invoke("job.run", "--type", "c7i.4xlarge", "--like", LIKE, "--script", str(script), "--files",
                  str(tmp_path / "nope")) == 1
    assert capsys.readouterr().err.strip() == f"labstack: --files {tmp_path / 'nope'}: no such file or folder"
    assert invoke("job.run", "--type", "c7i.huge", "--like", LIKE, "--script", str(script)) == 1
    header, *problems = capsys.readouterr().err.strip().splitlines()
    assert header == "labstack: the stack configuration has 1 problem(s):"
    assert problems[0].startswith("  - labstack:instanceType = 'c7i.huge': ")
    assert recording_pulumi() == []  # nothing was created
    assert [p.name for p in stacks_dir.iterdir()] == [f"Pulumi.{LIKE}.yaml"]  # nor left half-written


@on_testbed
def test_the_stack_is_destroyed_when_the_upload_fails(on_host, stacks_dir, recording_pulumi, tmp_path):
    """Whatever fails inside (here an SSH command, as a failed upload would), the finally destroys and removes."""
    from labstack.ssh.target import RemoteError

    with pytest.raises(RemoteError, match=r"upload failed on .* \(exit 7\)"):
        with job_run.throwaway(job_run.Machine("c7i.4xlarge", like=LIKE), dest=tmp_path / "record") as place:
            assert place.target.text("hostname -I").split()[0] == on_host.ip  # the stack's outputs reached the host
            place.target.run("exit 7", what="upload")
    calls = recording_pulumi()
    stack = stack_of(calls)
    assert calls == expected_commands(stack)
    record = json.loads((tmp_path / "record" / "record.json").read_text())
    assert (record["stack"], record["destroyed"], record["kept"]) == (stack, True, False)
    assert sorted(p.name for p in stacks_dir.iterdir()) == [f"Pulumi.{LIKE}.yaml"]
    assert (tmp_path / "record" / f"Pulumi.{stack}.yaml").is_file()


def _files(tmp_path: Path) -> tuple[Path, Path]:
    script = tmp_path / "run.sh"
    script.write_text("set -e\nmkdir -p out\nfor f in data/*; do sha256sum \"$f\" >> out/sums.txt; done\n"
                      "cp -r data out/copy\necho \"$GREETING\" > out/greeting.txt\nexit \"${EXIT_WITH:-0}\"\n")
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.bin").write_bytes(os.urandom(300_000))
    (data / "b.txt").write_text("hello\n")
    return script, data


@on_testbed
def test_job_run_fetches_and_destroys_after_success(on_host, stacks_dir, recording_pulumi, tmp_path):
    script, data = _files(tmp_path)
    dest = tmp_path / "record"
    assert invoke("job.run", "--type", "c7i.4xlarge", "--like", LIKE, "--script", str(script), "--files", str(data),
                  "--env", "GREETING=bonjour", "--dest", str(dest)) == 0
    calls = recording_pulumi()
    stack = stack_of(calls)
    assert calls == expected_commands(stack)
    outputs = dest / "out"
    assert (outputs / "greeting.txt").read_text() == "bonjour\n"
    for name in ("a.bin", "b.txt"):
        assert (outputs / "copy" / name).read_bytes() == (data / name).read_bytes()
    record = json.loads((dest / "record.json").read_text())
    assert (record["stack"], record["exitCode"], record["destroyed"], record["kept"]) == (stack, 0, True, False)
    assert record["pulumi"] == ["stack init", "up", "destroy", "stack rm"]
    # The stack file went into the record; stacks/ holds what it held before.
    assert "labstack:autoStop" in (dest / f"Pulumi.{stack}.yaml").read_text()
    assert sorted(p.name for p in stacks_dir.iterdir()) == [f"Pulumi.{LIKE}.yaml"]


@on_testbed
def test_job_run_destroys_after_a_failing_script(on_host, stacks_dir, recording_pulumi, tmp_path):
    script, data = _files(tmp_path)
    dest = tmp_path / "record"
    assert invoke("job.run", "--type", "c7i.4xlarge", "--like", LIKE, "--script", str(script), "--files", str(data),
                  "--env", "EXIT_WITH=3", "--dest", str(dest)) == 3
    calls = recording_pulumi()
    assert calls == expected_commands(stack_of(calls))
    record = json.loads((dest / "record.json").read_text())
    assert (record["exitCode"], record["destroyed"]) == (3, True)
    assert (dest / "out" / "greeting.txt").is_file()  # what a failed job wrote still comes back


@on_testbed
def test_job_run_interrupted_while_waiting_asks_and_destroys(on_host, stacks_dir, recording_pulumi, tmp_path,
                                                            monkeypatch):
    script = tmp_path / "slow.sh"
    script.write_text("sleep 120\n")
    questions = []
    monkeypatch.setattr("builtins.input", lambda question: questions.append(question) or "destroy")

    def interrupt_once_running():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(job["state"] == "running" and job["id"] not in before for job in jobs.statuses(target)):
                os.kill(os.getpid(), signal.SIGINT)  # the operator's Ctrl-C, to this process only
                return
            time.sleep(0.5)

    target = target_of(on_host)
    before = {job["id"] for job in jobs.statuses(target)}  # earlier tests' jobs on this host
    watcher = threading.Thread(target=interrupt_once_running, daemon=True)
    watcher.start()
    assert invoke("job.run", "--type", "c7i.4xlarge", "--like", LIKE, "--script", str(script),
                  "--dest", str(tmp_path / "record")) == 130
    watcher.join()
    calls = recording_pulumi()
    stack = stack_of(calls)
    assert calls == expected_commands(stack)
    assert questions == [f"\nInterrupted. Keep {stack} running (keep) or destroy it (destroy)? [destroy] "]
    record = json.loads((tmp_path / "record" / "record.json").read_text())
    assert (record["interrupted"], record["kept"], record["destroyed"]) == (True, False, True)


@on_testbed
def test_keep_leaves_the_stack_up(on_host, stacks_dir, recording_pulumi, tmp_path, capsys):
    script = tmp_path / "ok.sh"
    script.write_text("mkdir -p out && echo kept > out/x\n")
    assert invoke("job.run", "--type", "c7i.4xlarge", "--like", LIKE, "--script", str(script), "--keep",
                  "--dest", str(tmp_path / "record")) == 0
    calls = recording_pulumi()
    stack = stack_of(calls)
    assert calls == expected_commands(stack, destroyed=False)
    assert (stacks_dir / f"Pulumi.{stack}.yaml").is_file()
    assert f"{stack} is kept" in capsys.readouterr().out
    assert (tmp_path / "record" / "out" / "x").read_text() == "kept\n"


@on_testbed
def test_job_run_whose_destroy_fails_prints_the_finishing_command_and_fails(on_host, stacks_dir, recording_pulumi,
                                                                            tmp_path, monkeypatch, capsys):
    """The job succeeded, its stack could not be destroyed: exit 1, and the one line that finishes the teardown."""
    destroy_fails(tmp_path, monkeypatch)
    script = tmp_path / "ok.sh"
    script.write_text("mkdir -p out && echo done > out/x\n")
    dest = tmp_path / "record"
    assert invoke("job.run", "--type", "c7i.4xlarge", "--like", LIKE, "--script", str(script),
                  "--dest", str(dest)) == 1
    calls = recording_pulumi()
    stack = stack_of(calls)
    assert calls == expected_commands(stack, destroyed=False) + destroy_commands(stack)[:1]  # no stack rm after it
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"labstack: the throwaway stack {stack} was NOT destroyed (`pulumi destroy --yes --stack "
                            f"{stack}` failed (exit 1): error: deleting the instance: UnauthorizedOperation); its "
                            f"instance may still cost money. Finish it with: ")
    assert error.endswith(f"pulumi destroy --stack {stack} --yes && pulumi stack rm --stack {stack} --yes")
    assert (stacks_dir / f"Pulumi.{stack}.yaml").is_file()  # the finishing command needs it
    record = json.loads((dest / "record.json").read_text())
    assert (record["exitCode"], record["destroyed"], record["kept"]) == (0, False, False)
    assert (dest / "out" / "x").read_text() == "done\n"  # the outputs came back before the teardown


@on_testbed
def test_functions_on_a_throwaway_instance_destroy_it(on_host, stacks_dir, recording_pulumi, tmp_path, monkeypatch):
    """machine=...: the function's own throwaway stack, destroyed after a value and after a raised error."""
    from labstack import functions

    monkeypatch.setattr(job_run, "JOBS_DIR", tmp_path / "jobs")  # the records, not in the project's jobs/

    machine = job_run.Machine("c7i.4xlarge", like=LIKE)
    assert functions.run_function(cube_plus, 2, plus=5, machine=machine, announce=lambda line: None) == 13
    first = recording_pulumi()
    assert first == expected_commands(stack_of(first))
    with pytest.raises(ValueError, match=r"^cannot use 4$") as raised:
        functions.remote(machine=machine)(fails)(4)
    assert raised.value.__cause__.text.strip().endswith("ValueError: cannot use 4")
    calls = recording_pulumi()[len(first):]
    assert calls == expected_commands(stack_of(calls))
    assert sorted(p.name for p in stacks_dir.iterdir()) == [f"Pulumi.{LIKE}.yaml"]
    records = [json.loads(path.read_text()) for path in (tmp_path / "jobs").glob("*/record.json")]
    assert sorted((r["function"], r["destroyed"]) for r in records) == [("cube_plus", True), ("fails", True)]
