"""labstack as an installed package: importable from any folder, the project folder found explicitly, pins kept."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]


def _python(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LABSTACK_PROJECT")}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env={**environ, **env}, capture_output=True,
                          text=True, timeout=120)


def test_import_from_another_folder_finds_the_installed_checkout(tmp_path):
    run = _python("import labstack, labstack.stacks.stackfile as s; print(labstack.project_dir()); "
                  "print(s.STACKS_DIR); import components; print(components.__file__)", tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [str(PROJECT), str(PROJECT / "stacks"), str(PROJECT / "components" / "__init__.py")]


def test_a_wrong_labstack_project_is_one_clear_error_naming_the_fix(tmp_path):
    run = _python("import labstack\ntry:\n    labstack.project_dir()\nexcept labstack.ProjectNotFound as e:\n"
                  "    print(e)", tmp_path, LABSTACK_PROJECT=str(tmp_path))
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == (
        f"labstack: LABSTACK_PROJECT={tmp_path} is not a labstack project (no Pulumi.yaml with `name: labstack`, "
        f"__main__.py and components/ there). Point labstack at your labstack checkout (the folder with Pulumi.yaml "
        f"and stacks/): `export LABSTACK_PROJECT=/path/to/labstack`, or in Python "
        f"`labstack.use_project('/path/to/labstack')` before using it")


def test_without_a_project_the_programs_import_is_that_error_not_module_not_found(tmp_path):
    run = _python("import labstack.stacks.stackfile", tmp_path, LABSTACK_PROJECT=str(tmp_path))
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1].startswith(
        f"labstack.project.ProjectNotFound: labstack: LABSTACK_PROJECT={tmp_path} is not a labstack project")


def test_use_project_names_the_folder_and_one_project_per_process(tmp_path):
    run = _python(f"import labstack\nprint(labstack.use_project({str(PROJECT)!r}))\n"
                  f"try:\n    labstack.use_project({str(tmp_path)!r})\nexcept labstack.ProjectNotFound as e:\n"
                  f"    print(e)", tmp_path, LABSTACK_PROJECT=str(PROJECT))
    assert run.returncode == 0, run.stderr
    first, second = run.stdout.strip().splitlines()
    assert first == str(PROJECT)
    assert second.startswith(f"labstack: {tmp_path} is not a labstack project")


def _pins(lines) -> dict[str, str]:
    pins = {}
    for line in lines:
        match = re.match(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s#]+)", line.strip())
        if match:
            pins[re.sub(r"\[.*\]", "", match.group(1)).lower()] = match.group(2)
    return pins


def test_the_packages_pins_are_the_requirements_files_pins():
    meta = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    declared = _pins(meta["dependencies"])
    for extra in meta["optional-dependencies"].values():
        declared.update(_pins(extra))
    required = _pins((PROJECT / "requirements.txt").read_text().splitlines())
    required.update(_pins((PROJECT / "requirements-ray.txt").read_text().splitlines()))
    required.update(_pins((PROJECT / "requirements-dev.txt").read_text().splitlines()))
    assert declared, "no pins read from pyproject.toml"
    assert {name: required.get(name) for name in declared} == declared
    # every direct runtime requirement of the operator side is a dependency or in an extra
    assert set(_pins(meta["dependencies"])) | set(_pins(meta["optional-dependencies"]["ray"])) >= {
        "pulumi", "pulumi-aws", "boto3", "invoke", "rich", "docker", "paramiko", "pydantic", "cloudpickle", "ray"}


def test_the_version_is_one_and_in_the_changelog():
    import labstack

    meta = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    assert labstack.__version__ == meta["version"]
    assert f"## {meta['version']}" in (PROJECT / "CHANGELOG.md").read_text()
