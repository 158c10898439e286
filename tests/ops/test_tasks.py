"""The invoke tasks as an operator runs them: exact pulumi commands, stack file edits, one clear line per failure."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from invoke import Program

import tasks
from labstack import images
from labstack.stacks import inventory
from labstack.stacks import stackfile
from labstack.tasks.invoke_support import SharedFlagsExecutor
from labstack.stacks.pulumi_cli import POLICY_PACK
from tests.unit.helpers import digest

POLICY = str(POLICY_PACK)

PROJECT = Path(__file__).resolve().parents[2]


def invoke(*argv: str) -> int:
    """Run tasks.py's collection in this process, as `invoke ARGV` would (same executor as invoke.yaml names)."""
    try:
        Program(namespace=tasks.ns, executor_class=SharedFlagsExecutor).run(["invoke", *argv])
    except SystemExit as done:
        return done.code or 0
    return 0


# After an update the Automation API reads the stack's outputs (masked, then with secrets) and the update's summary.
AFTER_UP = [["stack", "output", "--json", "--stack", "paris-batch2"],
            ["stack", "output", "--json", "--show-secrets", "--stack", "paris-batch2"],
            ["stack", "history", "--json", "--show-secrets", "--page-size", "1", "--page", "1", "--stack", "paris-batch2"]]


@pytest.mark.parametrize("task, state", [("stop", "stopped"), ("start", "running")])
def test_stop_and_start_set_the_desired_state_then_update(write_stack, recording_pulumi, task, state):
    write_stack()
    assert invoke(task, "-s", "paris-batch2", "--yes") == 0
    assert recording_pulumi() == [
        ["stack", "select", "--stack", "paris-batch2"],
        ["config", "set", "labstack:desiredState", "--plaintext", "--stack", "paris-batch2", "--", state],
        ["up", "--yes", "--skip-preview", "--policy-pack", POLICY, "--exec-kind", "auto.local", "--stack", "paris-batch2"],
        *AFTER_UP]


@pytest.mark.parametrize("task", ["stop", "start"])
def test_stop_and_start_refuse_an_existing_server(write_stack, recording_pulumi, server_pem, task, capsys):
    host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    write_stack(text=f"config:\n  labstack:serverPem: {server_pem}\n  labstack:existingServer:\n    host: 203.0.113.9\n"
                     f"    hostKey: {host_key}\n")
    assert invoke(task, "-s", "paris-batch2", "--yes") == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "labstack: stack 'paris-batch2' deploys to an existing server (labstack:existingServer): labstack never "
        "powers a server it did not make on or off; stop or start it where it runs"]
    assert recording_pulumi() == []  # no config set, no up


def test_storage_grows_and_refuses_to_shrink(write_stack, recording_pulumi, capsys):
    write_stack()  # storageGb "40"
    assert invoke("storage", "-s", "paris-batch2", "--gb", "100") == 1  # no terminal to confirm in, no --yes
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "labstack: updating paris-batch2 needs a yes: run it in a terminal to confirm after the preview, or pass "
        "--yes (yes=True in Python) to update without asking")
    assert invoke("storage", "-s", "paris-batch2", "--gb", "100", "--yes") == 0
    assert recording_pulumi()[:3] == [
        ["stack", "select", "--stack", "paris-batch2"],
        ["config", "set", "labstack:storageGb", "--plaintext", "--stack", "paris-batch2", "--", "100"],
        ["up", "--yes", "--skip-preview", "--policy-pack", POLICY, "--exec-kind", "auto.local", "--stack", "paris-batch2"]]
    capsys.readouterr()
    assert invoke("storage", "-s", "paris-batch2", "--gb", "20") == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["labstack: refusing to shrink stack 'paris-batch2' from 40 GB to 20 GB: EBS "
                                        "volumes can only grow. Keep 40 GB, or export the data and make a new stack "
                                        "with the smaller disk"]
    assert len(recording_pulumi()) == 3 + len(AFTER_UP)  # nothing ran for the refused shrink
    assert invoke("storage", "-s", "paris-batch2", "--gb", "lots") == 1
    assert "expected a whole number of GB" in capsys.readouterr().err


def test_pulumi_failure_is_one_line(write_stack, recording_pulumi, monkeypatch, capsys):
    write_stack()
    monkeypatch.setenv("FAKE_PULUMI_EXIT", "2")
    assert invoke("stop", "-s", "paris-batch2", "--yes") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("labstack: `pulumi stack select --stack paris-batch2` failed (exit 2): error: the recording "
                       "pulumi was told to fail")
    assert not any("Traceback" in line for line in err)


@pytest.mark.parametrize("argv", [["stop", "-s", "nope"], ["storage", "-s", "nope", "--gb", "50"],
                                  ["export", "-s", "nope"], ["apps", "-s", "nope"], ["push", "-s", "nope"],
                                  ["restart", "-s", "nope"]])
def test_unknown_stack_is_one_clear_line(stacks_dir, recording_pulumi, capsys, argv):
    assert invoke(*argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("labstack: unknown stack 'nope': no file")
    assert recording_pulumi() == []


@pytest.mark.parametrize("argv", [["apps", "-s", "paris-batch2"], ["stop", "-s", "paris-batch2"],
                                  ["export", "-s", "paris-batch2"], ["up", "-s", "paris-batch2"]])
def test_a_broken_stack_file_gives_its_problems_not_a_traceback(write_stack, server_pem, recording_pulumi, capsys,
                                                                argv):
    server_pem.chmod(0o644)
    write_stack(text=f"config:\n  aws:region: eu-west-3\n  labstack:serverPem: {server_pem}\n"
                     "  labstack:sshCidrs: [100.64.0.0/24]\n  labstack:storageGb: lots\n")
    assert invoke(*argv) == 1
    header, *problems = capsys.readouterr().err.splitlines()
    assert header == "labstack: the stack configuration has 2 problem(s):"
    assert sorted(problems) == [  # the order of the lines is the config's business
        f"  - labstack:serverPem = '{server_pem}': the key is readable by others (mode 644); ssh will refuse it: run "
        f"`chmod 400 {server_pem}`",
        "  - labstack:storageGb = 'lots': expected a whole number GB, e.g. `invoke config -s paris-batch2 --set labstack:storageGb=32`"]
    assert recording_pulumi() == []  # nothing ran against a stack file `pulumi up` would refuse


def test_unknown_app_and_missing_outputs(write_stack, recording_pulumi, monkeypatch, capsys):
    write_stack()
    assert invoke("export", "-s", "paris-batch2", "--app", "nope") == 1
    assert capsys.readouterr().err.strip() == \
        "labstack: unknown app 'nope' in stack 'paris-batch2'; its apps: elif, survey"
    assert invoke("logs", "-s", "paris-batch2") == 1
    assert "several apps (elif, survey): choose one with --app" in capsys.readouterr().err
    monkeypatch.setenv("FAKE_PULUMI_OUTPUTS", "{}")  # a stack that was never brought up
    assert invoke("stats", "-s", "paris-batch2") == 1
    assert capsys.readouterr().err.strip() == (
        "labstack: stack 'paris-batch2' has no server address or host key in its outputs (publicIp, knownHosts): "
        "run `invoke up -s paris-batch2` first")
    assert invoke("restart", "-s", "paris-batch2") == 1
    assert "has no EC2 instance in its outputs" in capsys.readouterr().err


def test_ssh_target_comes_from_outputs_and_config(write_stack, server_pem, recording_pulumi, monkeypatch):
    from labstack.ssh.target import target_for_stack

    write_stack()
    monkeypatch.setenv("FAKE_PULUMI_OUTPUTS", json.dumps({
        "publicIp": "203.0.113.7", "knownHosts": "elif.experiments.test,203.0.113.7 ssh-ed25519 AAAAC3Nza"}))
    target = target_for_stack("paris-batch2")
    assert recording_pulumi()[-1] == ["stack", "output", "--json", "--stack", "paris-batch2"]
    argv = target.ssh_argv("true")
    assert argv[-2:] == ["ubuntu@203.0.113.7", "true"]
    assert "StrictHostKeyChecking=yes" in argv and argv[argv.index("-i") + 1] == str(server_pem)
    assert argv[argv.index("-p") + 1] == "22"
    known = Path(next(a for a in argv if a.startswith("UserKnownHostsFile=")).split("=", 1)[1])
    assert known.read_text() == "elif.experiments.test,203.0.113.7 ssh-ed25519 AAAAC3Nza\n"


def test_push_pins_the_digest_keeping_comments_and_order(write_stack):
    path = write_stack()
    before = path.read_text()
    pinned = "127.0.0.1:5000/lab/elif@sha256:" + digest("cd")
    previous = stackfile.set_app_image("paris-batch2", "elif", pinned)
    assert previous == "127.0.0.1:5000/lab/elif@sha256:" + digest("ab")
    after = path.read_text()
    assert after == before.replace(digest("ab"), digest("cd"))  # one value changed; comments, quotes, order kept
    assert stackfile.load("paris-batch2").apps[0].image == pinned
    with pytest.raises(stackfile.StackFileError, match="unknown app 'nope'"):
        stackfile.set_app_image("paris-batch2", "nope", pinned)


def test_repository_comes_from_repo_flag_or_current_image(write_stack):
    from labstack.tasks.actions import image_repository

    write_stack(text="config:\n  aws:region: eu-west-3\n  labstack:apps:\n    elif: {build: examples/app}\n")
    assert image_repository("paris-batch2", "elif", "ghcr.io/lab/elif/") == "ghcr.io/lab/elif"
    with pytest.raises(images.ImageError, match="no image repository for app 'elif': give one with --repo"):
        image_repository("paris-batch2", "elif", None)
    assert images.repository_of("127.0.0.1:5000/lab/elif@sha256:" + "a" * 64) == "127.0.0.1:5000/lab/elif"
    assert images.repository_of("registry:5000/lab/elif:v2@sha256:" + "a" * 64) == "registry:5000/lab/elif"
    assert images.repository_of("ghcr.io/lab/elif:src-0123") == "ghcr.io/lab/elif"


def test_build_borrows_push_flags_on_one_line(monkeypatch):
    seen = []
    monkeypatch.setattr("labstack.tasks.actions.build", lambda *a, **k: seen.append(("build", a, k)))
    monkeypatch.setattr("labstack.tasks.actions.push", lambda *a, **k: seen.append(("push", a, k)))
    assert invoke("build", "push", "-s", "paris-batch2", "--app", "elif", "--force", "--build-arg", "A=1") == 0
    assert [(name, args, kwargs["force"], kwargs["build_args"]) for name, args, kwargs in seen] == [
        ("build", ("paris-batch2", "elif"), True, ["A=1"]), ("push", ("paris-batch2", "elif"), True, ["A=1"])]
    seen.clear()
    assert invoke("build", "-s", "rome-pilot", "--app", "elif", "push") == 0
    assert [(name, args) for name, args, _ in seen] == [("build", ("rome-pilot", "elif")),
                                                         ("push", ("rome-pilot", "elif"))]
    seen.clear()
    assert invoke("build", "-s", "rome-pilot", "--app", "elif", "push", "-s", "paris-batch2", "--app", "elif") == 0
    assert [args for _, args, _ in seen] == [("rome-pilot", "elif"), ("paris-batch2", "elif")]  # own flags win


def test_the_real_invoke_binary_uses_the_shared_flags_executor():
    """invoke.yaml is what makes the installed `invoke` behave like the in-process runs above."""
    result = subprocess.run([str(Path(sys.executable).parent / "invoke"), "build", "push", "-s", "no-such-stack",
                             "--app", "elif"], cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.startswith("labstack: unknown stack 'no-such-stack'")  # not "build needs -s/--stack"


def test_generated_dockerfile_and_its_hash(tmp_path):
    (tmp_path / "requirements.txt").write_text("flask==2.2.2\n")
    (tmp_path / "constraints.txt").write_text("werkzeug==2.2.2\n")
    (tmp_path / "prepare_docker_image.sh").write_text("echo prepared > /prepared\n")
    (tmp_path / "app.py").write_text("app = None\n")
    text = images.generated_dockerfile(tmp_path, "python:3.11-slim")
    assert text.splitlines()[:6] == ["FROM python:3.11-slim", "WORKDIR /app", "ENV PYTHONUNBUFFERED=1",
                                     "COPY requirements.txt constraints.txt ./",
                                     "RUN pip install --no-cache-dir -r requirements.txt -c constraints.txt",
                                     "COPY prepare_docker_image.sh ./"]
    first = images.source_hash(tmp_path, extra=text.encode())
    assert first != images.source_hash(tmp_path, extra=images.generated_dockerfile(tmp_path, "python:3.12").encode())
    (tmp_path / "app.py").write_text("app = 1\n")
    assert images.source_hash(tmp_path, extra=text.encode()) != first
    assert not (tmp_path / "Dockerfile").exists() and not (tmp_path / images.GENERATED_DOCKERFILE).exists()


def test_login_help_is_registry_specific():
    ecr = "123456789012.dkr.ecr.eu-west-3.amazonaws.com"
    assert images.login_help(ecr) == ("Log in to ECR: aws ecr get-login-password --region eu-west-3 | docker login "
                                      f"--username AWS --password-stdin {ecr}")
    assert "write:packages" in images.login_help("ghcr.io")
    assert images.login_help("127.0.0.1:5000") == "Log in first: docker login 127.0.0.1:5000"


def test_uptime_counts_days_and_prices_are_labelled():
    assert inventory.format_uptime(23 * 3600 + 59 * 60) == "23h 59m"
    assert inventory.format_uptime(25 * 3600) == "1d 1h 00m"
    assert inventory.format_uptime(400 * 86400 + 61) == "400d 0h 01m"
    assert inventory.hourly_text("us-east-1", "m7i.large") == "$0.1008"
    assert inventory.hourly_text("eu-west-3", "m7i.large") == "$0.1176"
    assert inventory.hourly_text("eu-west-3", "zz9.huge") == "?" and inventory.hourly_text("xx-mars-1", "m7i.large") == "?"
    assert "estimate" in inventory.PRICE_NOTE and "on-demand Linux" in inventory.PRICE_NOTE


def test_app_names_never_reach_a_remote_shell_unchecked(tmp_path):
    from labstack.data import export
    from labstack.ssh.target import RemoteError, SshTarget

    target = SshTarget("203.0.113.7", "ubuntu", tmp_path / "key", "203.0.113.7 ssh-ed25519 AAAA")
    with pytest.raises(RemoteError, match="bad app name 'x; rm -rf /'"):
        export.export_app(target, "paris-batch2", "x; rm -rf /", exports_dir=tmp_path)
    with pytest.raises(inventory.InventoryError,
                       match="bad service name 'web; reboot': one of web, worker, clock, postgres, redis"):
        inventory.service_container(target, "elif", "web; reboot")
    assert not (tmp_path / "paris-batch2").exists()


def test_push_pins_the_digest_of_an_app_written_without_the_namespace(write_stack, server_pem):
    path = write_stack(text=f"config:\n  aws:region: eu-west-3\n  serverPem: {server_pem}\n  sshCidrs: [100.64.0.0/24]\n"
                            f"  apps:\n    elif:\n      image: 127.0.0.1:5000/lab/elif@sha256:{digest('ab')}\n")
    pinned = "127.0.0.1:5000/lab/elif@sha256:" + digest("cd")
    assert stackfile.set_app_image("paris-batch2", "elif", pinned).endswith(digest("ab"))
    assert path.read_text().count(digest("cd")) == 1 and stackfile.load("paris-batch2").apps[0].image == pinned
