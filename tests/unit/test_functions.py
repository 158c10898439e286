"""Python functions as jobs, without a server: the bundle labstack/functions.py sends, run by the job script
(hooks/templates/function-job.sh) with this machine's Debian python3 (no cloudpickle installed: the bundle's own
copy is used), and the result read back as run_function reads it. The same over SSH: tests/e2e/test_job_run.py."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from labstack import functions

SYSTEM_PYTHON = Path("/usr/bin/python3")


def _run_bundle(tmp_path: Path, fn, *args, python: bool = True, **kwargs) -> tuple[int, Path]:
    """What a job does with the bundle: the files in one folder, the job script run there, out/ left behind. PATH
    holds only the tools the script uses, and python3 (the image's Python) unless python=False."""
    if not SYSTEM_PYTHON.exists():
        pytest.skip(f"no {SYSTEM_PYTHON} to play the image's Python")
    job, bundle, bin_dir = tmp_path / "job", tmp_path / "bundle", tmp_path / "bin"
    for folder in (job, bundle, bin_dir):
        folder.mkdir()
    for path in functions._bundle(bundle, fn, args, kwargs, pip=[]):
        (shutil.copytree if path.is_dir() else shutil.copy)(path, job / path.name)
    shutil.copy(functions.JOB_SCRIPT, job / "run.sh")
    for tool in ("bash", "mkdir", "dirname", *(["python3"] if python else [])):
        (bin_dir / tool).symlink_to(SYSTEM_PYTHON if tool == "python3" else shutil.which(tool))
    result = subprocess.run([str(bin_dir / "bash"), str(job / "run.sh")], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60, env={"PATH": str(bin_dir), "HOME": str(tmp_path)})
    return result.returncode, job / "out"


def scaled_sum(values, factor=1):
    return sum(values) * factor


def refuses(value):
    raise ValueError(f"bad value {value!r}")


def test_the_bundle_runs_without_cloudpickle_installed_and_returns_the_value(tmp_path):
    code, out = _run_bundle(tmp_path, scaled_sum, [1, 2, 3], factor=7)
    assert code == 0, (out / "result.json").read_text() if (out / "result.json").exists() else "no result"
    summary = json.loads((out / "result.json").read_text())
    assert summary["status"] == "returned" and summary["python"].startswith(functions.LOCAL_PYTHON + ".")
    assert functions._result(out, "python:3.11-slim", "j1", code) == 42


def test_a_raised_value_error_is_raised_here_with_the_remote_traceback(tmp_path):
    code, out = _run_bundle(tmp_path, refuses, 13)
    assert code == 1
    with pytest.raises(ValueError, match=r"^bad value 13$") as raised:
        functions._result(out, "python:3.11-slim", "j2", code)
    cause = raised.value.__cause__
    assert isinstance(cause, functions.RemoteTraceback)
    assert "in refuses" in cause.text and 'raise ValueError(f"bad value {value!r}")' in cause.text
    assert cause.text.strip().endswith("ValueError: bad value 13")


def test_another_minor_version_is_refused_before_unpickling(tmp_path, monkeypatch):
    monkeypatch.setattr(functions, "LOCAL_PYTHON", "3.12")  # as if the caller ran Python 3.12
    code, out = _run_bundle(tmp_path, scaled_sum, [1])
    assert code == 3 and not (out / "result.pkl").exists()
    with pytest.raises(functions.FunctionError) as refused:
        functions._result(out, "python:3.11-slim", "j3", code)
    message = str(refused.value)
    assert message.startswith("refused: the image runs Python 3.11.")
    assert "and the caller 3.12: a cloudpickled function only loads on the same minor version" in message
    assert message.endswith("Pass image= an image with Python 3.12, e.g. python:3.12-slim")


def test_an_image_without_python_is_refused(tmp_path):
    code, out = _run_bundle(tmp_path, scaled_sum, [1], python=False)
    assert code == 3
    with pytest.raises(functions.FunctionError, match="refused: the image has no python3"):
        functions._result(out, "debian:bookworm-slim", "j4", code)


def test_run_function_needs_a_stack_or_a_machine():
    with pytest.raises(functions.FunctionError, match=r"needs stack='<stack>'.*machine=Machine"):
        functions.run_function(scaled_sum, [1])
