"""The public Python API (labstack.Stack, Job) on its offline paths: stack files written through the one model,
Pulumi driven as the tasks drive it (recording `pulumi`), scripts built from commands. The server paths run on the
test bed in test_api_testbed.py."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import labstack
from components.config import ConfigError
from labstack.jobs.server import JobError
from labstack.stack import _script_file
from labstack.stacks import stackfile
from tests.fakes import steady


def test_create_copies_the_like_stack_with_the_settings_and_keeps_its_comments(write_stack, stacks_dir):
    write_stack("paris-batch2")
    stack = labstack.Stack.create("rome-pilot", like="paris-batch2", instance_type="t3.large", auto_stop=False,
                                  settings={"storageGb": 60})
    assert stack.name == "rome-pilot"
    text = (stacks_dir / "Pulumi.rome-pilot.yaml").read_text()
    assert text.startswith("# The Paris replication, batch 2 (test copy).\n")
    assert "# pinned by `invoke build push`" in text
    config = stack.config
    assert (config.instance_type, config.storage_gb, config.auto_stop) == ("t3.large", 60, None)  # None: no watcher
    assert "autoStop:\n    enabled: false" in text
    assert [app.name for app in config.apps] == ["elif", "survey"]


def test_a_bad_value_raises_the_check_lines_and_writes_nothing(write_stack, stacks_dir):
    write_stack("paris-batch2")
    with pytest.raises(ConfigError) as raised:
        labstack.Stack.create("rome-pilot", like="paris-batch2", cluster=100000)
    assert raised.value.problems == ["labstack:cluster.workers = '100000': must be between 0 and 500"]
    assert sorted(p.name for p in stacks_dir.iterdir()) == ["Pulumi.paris-batch2.yaml"]


def test_create_never_overwrites_and_an_unknown_stack_names_the_known_ones(write_stack, stacks_dir):
    write_stack("paris-batch2")
    with pytest.raises(stackfile.StackFileError, match="exists already: choose another stack name"):
        labstack.Stack.create("paris-batch2", like="paris-batch2")
    with pytest.raises(stackfile.StackFileError, match=r"unknown stack 'nope'.*\(stacks there: paris-batch2\)"):
        labstack.Stack("nope")


def test_up_stop_preview_destroy_run_through_the_automation_api(write_stack, recording_pulumi, monkeypatch, capsys):
    write_stack("paris-batch2")
    urn = "urn:pulumi:paris-batch2::labstack::labstack:index:Server$aws:ec2/instance:Instance::paris-batch2-server"
    monkeypatch.setenv("FAKE_PULUMI_EVENTS", json.dumps([
        {"resOutputsEvent": {"metadata": {"op": "create", "urn": urn, "type": "aws:ec2/instance:Instance"}}},
        {"summaryEvent": {"durationSeconds": 41, "resourceChanges": {"create": 17, "same": 2}}}]))
    stack = labstack.Stack("paris-batch2")
    stack.up()
    assert capsys.readouterr().out.splitlines()[:2] == ["  created aws:ec2/instance:Instance paris-batch2-server",
                                                        "  done in 41 s: create 17"]
    stack.stop()
    stack.preview()
    stack.destroy()
    policy = ["--policy-pack", str(stackfile.PROJECT_DIR / "policy")]
    select = ["stack", "select", "--stack", "paris-batch2"]
    bookkeeping = [["stack", "output", "--json", "--stack", "paris-batch2"],  # the Automation API reads the outputs
                   ["stack", "output", "--json", "--show-secrets", "--stack", "paris-batch2"],  # and the last update
                   ["stack", "history", "--json", "--show-secrets", "--page-size", "1", "--page", "1", "--stack",
                    "paris-batch2"]]
    assert [steady(argv) for argv in recording_pulumi()] == [
        select, ["up", "--yes", "--skip-preview", *policy, "--exec-kind", "auto.local", "--event-log", "<events>",
                 "--stack", "paris-batch2"], *bookkeeping,
        ["config", "set", "labstack:desiredState", "--plaintext", "--stack", "paris-batch2", "--", "stopped"],
        ["up", "--yes", "--skip-preview", *policy, "--exec-kind", "auto.local", "--stack", "paris-batch2"],
        *bookkeeping,
        ["preview", *policy, "--exec-kind", "auto.local", "--event-log", "<events>", "--stack", "paris-batch2"],
        ["destroy", "--skip-preview", "--yes", "--exec-kind", "auto.local", "--event-log", "<events>",
                 "--stack", "paris-batch2"], bookkeeping[-1],
    ]


def test_outputs_are_the_stacks_outputs(write_stack, recording_pulumi, monkeypatch):
    write_stack("paris-batch2")
    monkeypatch.setenv("FAKE_PULUMI_OUTPUTS", '{"publicIp": "203.0.113.7", "urls": {"elif": "https://x"}}')
    assert labstack.Stack("paris-batch2").outputs() == {"publicIp": "203.0.113.7", "urls": {"elif": "https://x"}}
    assert recording_pulumi()[-1] == ["stack", "output", "--json", "--stack", "paris-batch2"]


def test_commands_become_a_bash_script_that_stops_at_the_first_failure(tmp_path):
    script = _script_file(["pip install -r requirements.txt", "python train.py --seed 1"], tmp_path)
    assert script.read_text() == ("#!/bin/bash\nset -euo pipefail\npip install -r requirements.txt\n"
                                  "python train.py --seed 1\n")
    own = tmp_path / "run.sh"
    own.write_text("echo mine\n")
    assert _script_file(own, tmp_path / "x") == own and _script_file(str(own), tmp_path / "x") == own
    with pytest.raises(JobError, match=r"script \[\]: give a script file, or commands as a string or a list"):
        _script_file([], tmp_path)


def test_submit_refuses_a_missing_file_before_any_ssh(write_stack, tmp_path):
    write_stack("paris-batch2")
    stack = labstack.Stack("paris-batch2")
    with pytest.raises(JobError, match="no-such-file"):
        stack.submit(["python train.py"], files=[tmp_path / "no-such-file"], on_host=True)
    assert stack._target is None  # never connected


def test_the_public_names_are_listed_and_load_on_first_use():
    assert {"Stack", "Job", "RunResult", "remote", "run_function", "Machine", "use_project",
            "ProjectNotFound"} <= set(labstack.__all__)
    for name in labstack.__all__:
        assert getattr(labstack, name) is not None
    assert labstack.Job.attach.__doc__ and labstack.Stack.submit.__doc__


def test_the_api_works_from_a_folder_outside_the_checkout(tmp_path):
    """A notebook elsewhere: LABSTACK_PROJECT names a project (here a copy of this one's program with its own
    stacks/), `import labstack` finds it, and Stack.create/Stack/config/check work there."""
    import os
    import subprocess
    import sys

    project = tmp_path / "lab"
    project.mkdir()
    for part in ("Pulumi.yaml", "__main__.py", "components", "hooks", "policy"):
        (project / part).symlink_to(stackfile.PROJECT_DIR / part)
    (project / "stacks").mkdir()
    key = tmp_path / "key"
    from tests.unit.helpers import write_private_key
    write_private_key(key)
    (project / "stacks" / "Pulumi.base.yaml").write_text(
        f"config:\n  aws:region: eu-west-3\n  labstack:serverPem: {key}\n  labstack:sshCidrs: [100.65.0.0/24]\n")
    notebook = tmp_path / "notebooks"
    notebook.mkdir()
    code = ("import labstack\n"
            "s = labstack.Stack.create('rome', like='base', instance_type='t3.small')\n"
            "print(labstack.project_dir(), s.config.instance_type, s.check().get('aws:ec2/instance:Instance'))\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([sys.executable, "-c", code], cwd=notebook, env={**env, "LABSTACK_PROJECT": str(project)},
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [str(project), "t3.small", "1"]
    assert (project / "stacks" / "Pulumi.rome.yaml").read_text().count("instanceType: t3.small") == 1
