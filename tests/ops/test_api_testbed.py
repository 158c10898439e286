"""The Python API against a real server: a stack whose outputs (recording `pulumi`) point at a test bed host, reached
the way every labstack connection is (its key, its pinned host key), with the job hooks installed as HostSetup does.
crimpl's workflow end to end: submit with files, status, wait, logs, fetch, cancel, run, and Job.attach from a
new Python process."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import labstack
from labstack.stacks import stackfile

pytestmark = [pytest.mark.testbed, pytest.mark.e2e]


@pytest.fixture
def stack(hooks_host, tmp_path, monkeypatch, recording_pulumi):
    """Stack 'lab' on the bed host: its stack file names the host's key; its outputs its address and host key."""
    project = tmp_path / "lab"
    (project / "stacks").mkdir(parents=True)
    for part in ("Pulumi.yaml", "__main__.py", "components", "hooks", "policy"):
        (project / part).symlink_to(stackfile.PROJECT_DIR / part)
    (project / "stacks" / "Pulumi.lab.yaml").write_text(
        f"config:\n  aws:region: eu-west-3\n  labstack:serverPem: {hooks_host.key_path}\n"
        f"  labstack:sshCidrs: [169.254.64.0/24]\n")
    monkeypatch.setattr(stackfile, "STACKS_DIR", project / "stacks")
    monkeypatch.setenv("FAKE_PULUMI_OUTPUTS", json.dumps({"publicIp": hooks_host.ip,
                                                          "knownHosts": hooks_host.known_hosts_line()}))
    monkeypatch.setenv("LABSTACK_PROJECT", str(project))  # for the new Python process of the attach test
    return labstack.Stack("lab")


def test_submit_with_files_then_status_wait_logs_and_fetch(stack, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "numbers.txt").write_text("1\n2\n3\n")
    job = stack.submit(["sleep 1", "mkdir -p out", "paste -sd+ data/numbers.txt | bc > out/sum.txt || "
                        "python3 -c 'print(sum(map(int, open(\"data/numbers.txt\"))))' > out/sum.txt",
                        "echo \"seed=$SEED\""], files=[tmp_path / "data"], env={"SEED": "7"}, name="sum")
    assert job.status() in ("submitted", "running", "complete")
    assert job.wait(timeout=120) == 0
    assert job.status() == "complete" and job.done()
    assert job.record()["name"] == "sum"
    assert "seed=7" in job.logs()
    fetched = job.fetch("out/", dest=tmp_path / "results")
    assert fetched == tmp_path / "results" / "out"
    assert (fetched / "sum.txt").read_text().strip() == "6"
    assert job.id in [j.id for j in stack.jobs()]


def test_wait_with_a_timeout_then_cancel(stack):
    job = stack.submit("sleep 300", on_host=True)
    with pytest.raises(TimeoutError, match=f"job {job.id} is still (submitted|running): wait again, or cancel it"):
        job.wait(timeout=2)
    assert job.cancel() == "cancelled"
    assert job.wait(timeout=30) == 130


def test_attach_from_a_new_python_process(stack, tmp_path):
    job = stack.submit(["sleep 2", "echo from-the-job"], on_host=True)
    code = (f"import labstack\njob = labstack.Job.attach('lab', {job.id!r})\n"
            "print(job.wait(timeout=120), job.status(), job.logs().strip())\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["0", "complete", "from-the-job"]
    missing = subprocess.run([sys.executable, "-c", "import labstack\nlabstack.Job.attach('lab', '20200101-000000-beef')"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert missing.returncode == 1
    assert "20200101-000000-beef" in missing.stderr.strip().splitlines()[-1]


def test_run_returns_output_and_the_first_failures_exit_code(stack):
    ok = stack.run(["echo one", "sudo -n true && echo root-ok"])
    assert (ok.output, ok.exit_code, ok.ok) == ("one\nroot-ok\n", 0, True)
    failed = stack.run(["echo before", "exit 3", "echo never"])
    assert (failed.output, failed.exit_code) == ("before\n", 3)


def test_the_readmes_python_example_runs_as_printed(stack, tmp_path, monkeypatch, capsys):
    readme = (stackfile.PROJECT_DIR / "docs" / "jobs-and-functions.md").read_text()
    section = readme.split("## Use from Python", 1)[1]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    lab = stackfile.STACKS_DIR / "Pulumi.lab.yaml"
    (stackfile.STACKS_DIR / "Pulumi.rome-pilot.yaml").write_text(lab.read_text())
    monkeypatch.chdir(tmp_path)
    (tmp_path / "analyse.py").write_text("import os, sys\nos.makedirs('out', exist_ok=True)\n"
                                         "open('out/summary.txt', 'w').write(' '.join(sys.argv[1:]))\n")
    scope: dict = {}
    exec(compile(example, "docs/jobs-and-functions.md (Use from Python)", "exec"), scope)
    assert scope["setup"].exit_code == 0 and scope["setup"].output.startswith("Python 3.")
    assert scope["results"].resolve() == tmp_path / "results" / "out"
    assert (scope["results"] / "summary.txt").read_text() == "--seed 1"
    assert scope["same"].id == scope["job"].id and scope["same"].status() == "complete"


def test_the_job_tasks_are_the_same_api(stack, tmp_path, capsys):
    from tests.ops.test_tasks import invoke

    script = tmp_path / "job.sh"
    script.write_text("mkdir -p out\necho \"$GREETING\" > out/hello.txt\necho logged\n")
    assert invoke("job.submit", "--stack", "lab", "--script", str(script), "--on-host", "--env", "GREETING=hi") == 0
    job_id = capsys.readouterr().out.strip()
    assert invoke("job.wait", "--stack", "lab", "--job", job_id) == 0
    assert invoke("job.logs", "--stack", "lab", "--job", job_id) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "logged"
    assert invoke("job.fetch", "--stack", "lab", "--job", job_id, "--dest", str(tmp_path / "got")) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "got" / "out")
    assert (tmp_path / "got" / "out" / "hello.txt").read_text() == "hi\n"
    assert invoke("job.status", "--stack", "lab", "--job", job_id) == 0
    assert "complete" in capsys.readouterr().out
    assert invoke("job.cancel", "--stack", "lab", "--job", job_id) == 0
    assert capsys.readouterr().out.strip() == f"{job_id} complete"  # it had ended: cancel says how
