"""Throwaway jobs (`invoke job.run`): the stack file they write, the address they open SSH to, the Ctrl-C question.
The teardown through a recording `pulumi`. (Whole runs on a test bed host follow once ops/jobs.py exists.)"""
from __future__ import annotations

import http.server
import json
import os
import threading
from pathlib import Path

import pytest

from ops import job_run

LIKE = "lab"  # the operator's usual stack, whose connection settings a throwaway stack copies


def like_stack(stacks_dir: Path, pem: Path) -> None:
    (stacks_dir / f"Pulumi.{LIKE}.yaml").write_text(
        f"config:\n  aws:region: eu-west-3\n  labstack:serverPem: {pem}\n  labstack:sshCidrs: [0.0.0.0/0]\n"
        "  labstack:storageGb: 64\n")


# --- without a server --------------------------------------------------------------------------------------------

def test_the_throwaway_stack_file_copies_connection_settings_and_sets_the_watcher(stacks_dir, server_pem):
    like_stack(stacks_dir, server_pem)
    config = job_run.stack_config(job_run.Machine("c7i.4xlarge", like=LIKE, max_hours=2.5),
                                  operator_address=lambda: pytest.fail("--like gives sshCidrs"))
    assert config == {"aws:region": "eu-west-3", "labstack:serverPem": str(server_pem),
                      "labstack:sshCidrs": ["0.0.0.0/0"], "labstack:instanceType": "c7i.4xlarge",
                      "labstack:ingressPorts": [22], "labstack:tls": "internal",
                      "labstack:autoStop": {"idleMinutes": job_run.IDLE_MINUTES, "maxHours": 2.5}}
    alone = job_run.stack_config(job_run.Machine("t3.micro", region="eu-central-1"),
                                 operator_address=lambda: "203.0.113.9/32")
    assert alone == {"aws:region": "eu-central-1", "labstack:serverPem": "~/.ssh/labstack_ed25519",
                     "labstack:sshCidrs": ["203.0.113.9/32"], "labstack:instanceType": "t3.micro",
                     "labstack:ingressPorts": [22], "labstack:tls": "internal",
                     "labstack:autoStop": {"idleMinutes": job_run.IDLE_MINUTES, "maxHours": 4}}


def test_no_region_is_one_clear_error(stacks_dir, monkeypatch):
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    with pytest.raises(job_run.JobRunError, match=r"^no region for the throwaway instance: pass --region"):
        job_run.stack_config(job_run.Machine("t3.micro"), operator_address=lambda: "203.0.113.9/32")


def test_the_operator_address_comes_from_checkip(tmp_path):
    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"198.51.100.23\n")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert job_run.operator_cidr(f"http://127.0.0.1:{server.server_port}/") == "198.51.100.23/32"
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
if sys.argv[1:2] == ["destroy"]:  # recorded as the recording pulumi records, then a failed destroy
    with open({log!r}, "a") as out:
        out.write(json.dumps({{"argv": sys.argv[1:]}}) + "\\n")
    print("error: deleting the instance: UnauthorizedOperation", file=sys.stderr)
    sys.exit(1)
os.execv({fake!r}, [{fake!r}, *sys.argv[1:]])
"""


def test_the_destroy_removes_the_stack_and_keeps_its_file_in_the_record(stacks_dir, recording_pulumi, tmp_path):
    from ops.pulumi_cli import PulumiCli

    stack = "job-20261128-215000-ab12"
    (stacks_dir / f"Pulumi.{stack}.yaml").write_text("config:\n  aws:region: eu-west-3\n")
    place = job_run.Throwaway(stack, None, tmp_path / "record", {"pulumi": []})
    place.record_dir.mkdir()
    cli = PulumiCli()
    job_run._destroy(cli, place, cli.environment(), announce=lambda line: None)
    assert recording_pulumi() == [["destroy", "--stack", stack, "--yes"],
                                  ["stack", "rm", "--stack", stack, "--yes", "--preserve-config"]]
    assert place.record["destroyed"] is True and not (stacks_dir / f"Pulumi.{stack}.yaml").exists()
    assert (tmp_path / "record" / f"Pulumi.{stack}.yaml").read_text() == "config:\n  aws:region: eu-west-3\n"


def test_a_failed_destroy_names_the_command_that_finishes_it(stacks_dir, recording_pulumi, tmp_path, monkeypatch):
    from ops.pulumi_cli import PulumiCli

    wrapper = tmp_path / "failing-destroy" / "pulumi"  # before the recording pulumi (tests/fakes.py) on PATH
    wrapper.parent.mkdir()
    wrapper.write_text(DESTROY_FAILS.format(log=str(tmp_path / "pulumi-calls.jsonl"),
                                            fake=str(tmp_path / "bin" / "pulumi")))
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper.parent}:{os.environ['PATH']}")
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
        f"the throwaway stack {stack} was NOT destroyed (`pulumi destroy --stack {stack} --yes` failed (exit 1)); its "
        f"instance may still cost money. Finish it with: cd {cli.project_dir} && export "
        f"PULUMI_BACKEND_URL=file:///home/me/labstack/.pulumi-state && pulumi destroy --stack {stack} --yes && "
        f"pulumi stack rm --stack {stack} --yes")
    assert recording_pulumi() == [["destroy", "--stack", stack, "--yes"]]  # no stack rm after a failed destroy
    assert (stacks_dir / f"Pulumi.{stack}.yaml").is_file()  # the finishing command needs it
    assert json.loads((tmp_path / "record" / "record.json").read_text())["destroyed"] is False


# --- on a test bed host (real SSH, sudo, dockerd and the job hooks) ----------------------------------------------

on_testbed = pytest.mark.testbed  # not a module mark: the tests above need no test bed


@pytest.fixture(scope="module")
def job_host(testbed):
    from components.layout import HOOKS_DIR, REMOTE_HOOKS

    host = testbed.new_host()
    try:
        host.exec_in(["mkdir", "-p", REMOTE_HOOKS])  # what HostSetup copies on a server
        host.exec_in(["sh", "-c", f"cp {HOOKS_DIR}/*.sh {HOOKS_DIR}/*.bash {REMOTE_HOOKS}/"])
        yield host
    finally:
        testbed.stop_host(host)


@pytest.fixture
def on_host(job_host, stacks_dir, recording_pulumi, monkeypatch):
    """A stack whose outputs (`pulumi stack output --json`) name the test bed host, with that host's login key."""
    like_stack(stacks_dir, Path(job_host.key_path))
    monkeypatch.setenv("FAKE_PULUMI_OUTPUTS", json.dumps({"publicIp": job_host.ip,
                                                          "knownHosts": job_host.known_hosts_line()}))
    return job_host


def cube_plus(x, plus=0):
    return x ** 3 + plus


def uses_flask(x):
    import flask  # installed by pip=["flask"] (already in the test bed's python:3.11-slim stand-in)

    return f"{flask.__name__}:{x}"


def fails(x):
    raise ValueError(f"cannot use {x}")


@on_testbed
def test_functions_run_on_a_stacks_server(on_host, recording_pulumi, monkeypatch):
    from ops import functions

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
