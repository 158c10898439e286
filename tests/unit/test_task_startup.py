"""`invoke` tasks start without Pulumi's runtime: only `invoke check` (the mock evaluator) loads it.

Each run is a fresh interpreter running invoke's own entry point in the project folder, as `venv/bin/invoke` does;
at exit it writes which Pulumi modules were ever imported.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.fakes import install_fake_pulumi
from tests.unit.helpers import made_yours_text, write_private_key

PROJECT = Path(__file__).resolve().parents[2]
RUNTIME = ("pulumi", "pulumi_aws", "pulumi_command")
PROBE = """
import atexit, json, sys
def report():
    loaded = sorted(name for name in sys.modules if name.split(".")[0] in {runtime!r})
    with open({out!r}, "w") as out:
        json.dump(loaded, out)
atexit.register(report)
from invoke.main import program
program.run(["invoke", *sys.argv[1:]])
"""


def run_invoke(tmp_path: Path, *argv: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    out = tmp_path / "imported.json"
    code = PROBE.format(runtime=RUNTIME, out=str(out))
    result = subprocess.run([sys.executable, "-c", code, *argv], cwd=PROJECT, capture_output=True, text=True,
                            timeout=120)
    return result, json.loads(out.read_text())


def test_invoke_list_needs_no_pulumi(tmp_path):
    result, imported = run_invoke(tmp_path, "--list")
    assert result.returncode == 0, result.stderr
    assert "apps" in result.stdout and "list.instances" in result.stdout
    assert imported == []


def test_a_server_task_reads_the_typed_stack_without_pulumi(tmp_path, monkeypatch):
    """`invoke apps` goes as far as asking `pulumi stack output` (a recording fake answering `{}`) after reading
    and validating the example stack file made yours (a project folder of its own: LABSTACK_PROJECT), key included,
    and imports no Pulumi module on the way."""
    project = tmp_path / "project"
    (project / "stacks").mkdir(parents=True)
    for name in ("Pulumi.yaml", "__main__.py", "components", "policy", "hooks"):
        (project / name).symlink_to(PROJECT / name)
    example = (PROJECT / "stacks" / "Pulumi.paris-batch2.yaml").read_text()
    (project / "stacks" / "Pulumi.paris-batch2.yaml").write_text(made_yours_text(example))
    monkeypatch.setenv("LABSTACK_PROJECT", str(project))
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".ssh").mkdir()
    write_private_key(tmp_path / ".ssh" / "labstack_ed25519")  # the example stack's labstack:serverPem
    calls = install_fake_pulumi(tmp_path, monkeypatch)
    monkeypatch.setenv("FAKE_PULUMI_OUTPUTS", "{}")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "test")
    monkeypatch.setenv("PULUMI_BACKEND_URL", f"file://{tmp_path / 'state'}")
    result, imported = run_invoke(tmp_path, "apps", "-s", "paris-batch2")
    assert result.returncode == 1
    assert result.stderr.strip() == ("labstack: stack 'paris-batch2' has no server address or host key in its "
                                     "outputs (publicIp, knownHosts): run `invoke up -s paris-batch2` first")
    assert [call["argv"] for call in calls()] == [["stack", "output", "--json", "--stack", "paris-batch2"]]
    assert imported == []


def test_the_probe_sees_pulumi_when_a_task_loads_it(tmp_path):
    """Guards the tests above against passing vacuously: `invoke check` runs the program under mocks."""
    result, imported = run_invoke(tmp_path, "check", "-s", "no-such-stack")
    assert result.returncode == 1 and "unknown stack 'no-such-stack'" in result.stdout
    assert "pulumi" in imported
