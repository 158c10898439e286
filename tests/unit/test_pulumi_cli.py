"""`invoke up` runs exactly these pulumi commands (through Pulumi's Automation API), with the local backend and a
passphrase file."""
from __future__ import annotations

import stat

import pytest

import labstack.stacks.pulumi_cli as cli
from tests.fakes import install_fake_pulumi, steady

POLICY = str(cli.POLICY_PACK)


@pytest.fixture
def recording_pulumi(tmp_path, monkeypatch):
    """A `pulumi` on PATH that records each call's argv, cwd and backend settings."""
    calls = install_fake_pulumi(tmp_path, monkeypatch)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(cli, "STATE_DIR", tmp_path / "state")
    monkeypatch.setattr(cli, "PASSPHRASE_FILE", tmp_path / "home" / ".config" / "labstack" / "pulumi-passphrase")
    return calls


def test_up_selects_or_creates_the_stack_then_runs_pulumi_up(recording_pulumi, tmp_path):
    notes = []
    runner = cli.PulumiCli()
    runner.environment(announce=notes.append)
    runner.up("paris-batch2", yes=True)
    calls = recording_pulumi()
    assert [c["argv"] for c in calls][:2] == [
        ["stack", "select", "--stack", "paris-batch2"],
        ["up", "--yes", "--skip-preview", "--policy-pack", POLICY, "--exec-kind", "auto.local", "--stack",
         "paris-batch2"]]
    assert all(c["cwd"] == str(cli.PROJECT_DIR) for c in calls)
    assert all(c["backend"] == f"file://{tmp_path / 'state'}" for c in calls)
    passphrase = cli.PASSPHRASE_FILE
    assert all(c["passphrase_file"] == str(passphrase) for c in calls)
    assert stat.S_IMODE(passphrase.stat().st_mode) == 0o600 and len(passphrase.read_text().strip()) >= 32
    assert any("Back it up" in note for note in notes)


def test_an_operators_backend_choice_is_kept(recording_pulumi, monkeypatch):
    monkeypatch.setenv("PULUMI_BACKEND_URL", "s3://lab-pulumi-state")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "from-the-vault")
    answers = []
    cli.PulumiCli().up("paris-batch2", confirm=lambda question: answers.append(question) or "yes")
    calls = recording_pulumi()
    assert [steady(c["argv"]) for c in calls][:4] == [  # without --yes: the preview, the question, then the update
        ["stack", "select", "--stack", "paris-batch2"],
        ["preview", "--policy-pack", POLICY, "--exec-kind", "auto.local", "--event-log", "<events>", "--stack",
         "paris-batch2"],
        ["up", "--yes", "--skip-preview", "--policy-pack", POLICY, "--exec-kind", "auto.local", "--stack",
         "paris-batch2"],
        ["stack", "output", "--json", "--stack", "paris-batch2"]]
    assert answers == ["Do you want to perform this update on paris-batch2? [y/N] "]
    assert {c["backend"] for c in calls} == {"s3://lab-pulumi-state"} and not cli.PASSPHRASE_FILE.exists()


def test_failure_and_missing_cli_are_clear(recording_pulumi, monkeypatch):
    monkeypatch.setenv("FAKE_PULUMI_EXIT", "3")
    with pytest.raises(cli.PulumiError, match=r"^`pulumi stack select --stack x` failed \(exit 3\): error: the "
                                              r"recording pulumi was told to fail$"):
        cli.PulumiCli().up("x", yes=True)


def test_an_unconfirmed_update_changes_nothing(recording_pulumi):
    with pytest.raises(cli.PulumiError, match=r"^update of x not confirmed: nothing was changed$"):
        cli.PulumiCli().up("x", confirm=lambda question: "")
    assert [c["argv"][0] for c in recording_pulumi()] == ["stack", "preview"]


def test_without_the_cli_up_makes_nothing_and_says_how_to_install(recording_pulumi, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # the recording pulumi is no longer on PATH
    with pytest.raises(cli.PulumiError) as failure:
        cli.PulumiCli().up("x", yes=True)
    assert str(failure.value) == ("the Pulumi CLI is not installed: `curl -fsSL https://get.pulumi.com | sh`, then "
                                  "open a new shell (see the README's prerequisites)")
    assert recording_pulumi() == []  # no `pulumi stack select`
    assert not (tmp_path / "state").exists() and not cli.PASSPHRASE_FILE.exists()


def test_up_passes_the_operators_policy_settings_when_they_exist(recording_pulumi, tmp_path, monkeypatch):
    settings = tmp_path / "config.json"
    monkeypatch.setattr(cli, "POLICY_CONFIG", settings)
    cli.PulumiCli().up("s", yes=True)
    settings.write_text("{}")
    cli.PulumiCli().up("s", yes=True)
    ups = [c["argv"] for c in recording_pulumi() if c["argv"][0] == "up"]
    assert ups == [["up", "--yes", "--skip-preview", "--policy-pack", POLICY, "--exec-kind", "auto.local", "--stack", "s"],
                   ["up", "--yes", "--skip-preview", "--policy-pack", POLICY, "--policy-pack-config", str(settings),
                    "--exec-kind", "auto.local", "--stack", "s"]]


def test_ctrl_c_waits_for_pulumi_to_cancel_gracefully(tmp_path, monkeypatch):
    """pulumi, sent Ctrl-C, finishes what is in flight and saves its state. The task must wait for that instead of
    killing it (a killed `pulumi up` can leave an instance out of the state). A terminal's Ctrl-C reaches pulumi by
    itself; one that reached only this process (a notebook's interrupt) is passed on."""
    import os
    import signal
    import sys
    import threading
    import time

    started, finished = tmp_path / "started", tmp_path / "finished"
    fake = tmp_path / "bin" / "pulumi"
    fake.parent.mkdir()
    fake.write_text(f"""#!{sys.executable}
import os, signal, sys, time
def cancel(*_):
    time.sleep(1)  # the operations in flight
    open({str(finished)!r}, "w").write("state saved")
    sys.exit(255)
signal.signal(signal.SIGINT, cancel)
open({str(started)!r}, "w").write(str(os.getpid()))
time.sleep(60)
""")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")

    def ctrl_c():  # a notebook's interrupt: SIGINT to this process only, which passes it on to pulumi once
        for _ in range(200):
            if started.exists() and started.read_text():
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=ctrl_c, daemon=True)
    thread.start()
    with pytest.raises(KeyboardInterrupt):
        cli.run_pulumi([str(fake), "up", "--stack", "x"], cwd=tmp_path, env=dict(os.environ))
    thread.join()
    assert finished.read_text() == "state saved"
