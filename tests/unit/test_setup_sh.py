"""setup.sh as a newcomer runs it: numbered steps, what is missing with its install line, the venv's size, the next
command. pip is a stand-in that records its arguments: what setup.sh asks for is the subject here, not pip."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture
def checkout(tmp_path):
    folder = tmp_path / "labstack"
    folder.mkdir()
    for name in ("setup.sh", "requirements.txt", "requirements-ray.txt", "requirements-dev.txt"):
        shutil.copy(PROJECT / name, folder)
    python = folder / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text('#!/bin/sh\necho "$@" >> "$(dirname "$0")/../../pip-calls.log"\n')
    python.chmod(0o755)
    tools = tmp_path / "bin"  # what PATH offers: the basics, a Python, and no pulumi, docker or aws
    tools.mkdir()
    for tool in ("bash", "dirname", "du", "cut", "id", "printf", "cat"):
        os.symlink(shutil.which(tool), tools / tool)
    os.symlink(sys.executable, tools / "python3")
    return folder, tools


def run(folder, tools, *args):
    return subprocess.run(["bash", "setup.sh", *args], cwd=folder, capture_output=True, text=True,
                          env={"PATH": str(tools), "HOME": str(folder)})


def test_setup_prints_steps_what_is_missing_and_the_next_command(checkout):
    folder, tools = checkout
    result = run(folder, tools)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line for line in lines if line.startswith("[")] == [
        "[1/4] checking what labstack needs", "[2/4] virtualenv ./venv",
        "[3/4] installing requirements.txt (pinned; the first time takes a minute or two)", "[4/4] ready"]
    assert ("      missing, install later: Pulumi CLI (invoke up, preview, destroy): `curl -fsSL https://get.pulumi.com "
            "| sh`, then open a new shell") in lines
    assert "      missing, install later: Docker (invoke build, push, debug): https://docs.docker.com/engine/install/" \
        in lines
    assert ("      missing, install later: AWS credentials (invoke up, list.*): install the AWS CLI, then `aws "
            "configure` (or set AWS_PROFILE)") in lines
    size = next(line for line in lines if line.startswith("      ./venv: "))
    assert size.endswith("(Ray's client left out: bash setup.sh --ray adds it for cluster stacks)")
    assert lines[-1] == ("next: venv/bin/invoke new -s <your-stack> --like paris-batch2   then   venv/bin/invoke check "
                         "-s <your-stack>")
    assert (folder / "pip-calls.log").read_text().splitlines()[1] == \
        "-m pip install --quiet --disable-pip-version-check -r requirements.txt"


def test_ray_is_optional_and_in_the_dev_set(checkout):
    folder, tools = checkout
    assert run(folder, tools, "--ray").returncode == 0
    assert "-r requirements-ray.txt" in (folder / "pip-calls.log").read_text()
    assert "-r requirements.txt" in (PROJECT / "requirements-ray.txt").read_text().splitlines()
    assert "-r requirements-ray.txt" in (PROJECT / "requirements-dev.txt").read_text().splitlines()
    assert not any(line.startswith("ray==") for line in (PROJECT / "requirements.txt").read_text().splitlines())


def test_an_old_python_is_named_with_its_install_line(checkout):
    folder, tools = checkout
    (tools / "python3").unlink()
    old = tools / "python3"
    old.write_text("#!/bin/sh\nexit 1\n")
    old.chmod(0o755)
    result = run(folder, tools)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "setup.sh: labstack needs Python 3.10 or newer; 'python3' is older or missing: install it (Debian/Ubuntu: "
        "`sudo apt-get install python3 python3-venv`; macOS: `brew install python`), or point PYTHON=... at one")


def test_ray_tasks_say_how_to_add_ray_when_it_is_missing(monkeypatch):
    import importlib.util

    from labstack import clusters
    from labstack.ssh.target import RemoteError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(RemoteError) as caught:
        clusters.require_ray_client()
    assert str(caught.value) == ("Ray's client is not installed in this virtualenv (optional, ~250 MB): add it with "
                                 "`bash setup.sh --ray` (or `venv/bin/pip install -r requirements-ray.txt`)")
