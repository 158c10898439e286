"""Where the labstack project lives: the folder with Pulumi.yaml, the Pulumi program (`__main__.py`, components/),
stacks/, hooks/ and the local state. The operator side reads stack files and runs the program from there.

Found, in this order: `labstack.use_project(path)` (or `Stack(..., project=path)`), the LABSTACK_PROJECT environment
variable, the checkout this package was installed from (`pip install -e <checkout>`), then the current folder and
its parents. The folder is put on sys.path so the program's own `components` package imports from it, as Pulumi
itself runs the program from that folder. One project per Python process: its paths are read once.
"""
from __future__ import annotations

import importlib.abc
import os
import sys
from pathlib import Path
from typing import Optional

ENV = "LABSTACK_PROJECT"
PROGRAM_PACKAGE = "components"  # the Pulumi program's package, imported from the project folder
# Imported from the project folder too: the program, and the node agent's contract (hooks/agent/contract.py).
FROM_PROJECT = (PROGRAM_PACKAGE, "hooks")


class ProjectNotFound(Exception):
    """No labstack project folder could be found, or the one named is not one."""


_project: Optional[Path] = None


def is_project(path: Path) -> bool:
    """A labstack project: Pulumi.yaml naming the project `labstack`, and its program beside it."""
    pulumi_yaml = path / "Pulumi.yaml"
    if not (pulumi_yaml.is_file() and (path / "__main__.py").is_file() and (path / PROGRAM_PACKAGE).is_dir()):
        return False
    return any(line.strip() == "name: labstack" for line in pulumi_yaml.read_text(errors="replace").splitlines())


def _candidates() -> list[tuple[str, Path]]:
    found = []
    if os.environ.get(ENV):
        found.append((f"{ENV}={os.environ[ENV]}", Path(os.environ[ENV]).expanduser()))
    installed_from = Path(__file__).resolve().parents[1]
    found.append(("the checkout labstack is installed from", installed_from))
    cwd = Path.cwd().resolve()
    found.extend(("the current folder or a parent", folder) for folder in (cwd, *cwd.parents))
    return found


def _not_found(why: str) -> ProjectNotFound:
    return ProjectNotFound(
        f"labstack: {why}. Point labstack at your labstack checkout (the folder with Pulumi.yaml and stacks/): "
        f"`export {ENV}=/path/to/labstack`, or in Python `labstack.use_project('/path/to/labstack')` before using it")


def use_project(path: os.PathLike | str) -> Path:
    """Use the labstack project in `path` for this Python process (before any stack is read)."""
    global _project
    folder = Path(path).expanduser().resolve()
    if not is_project(folder):
        raise _not_found(f"{folder} is not a labstack project (no Pulumi.yaml with `name: labstack`, "
                         f"__main__.py and components/ there)")
    if _project is not None and _project != folder:
        raise ProjectNotFound(f"labstack: this Python process already uses the project {_project}; one project per "
                              f"process: restart Python (or the notebook kernel) to use {folder}")
    _project = folder
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    return folder


def locate() -> Optional[Path]:
    """The project folder if one can be found (and put on sys.path), else None. Never raises."""
    if _project is not None:
        return _project
    for why, folder in _candidates():
        if why.startswith(ENV) and not is_project(folder.resolve()):
            return None  # an explicit choice that is wrong is never replaced by a guess: project_dir() says why
        if is_project(folder.resolve()):
            return use_project(folder)
    return None


def project_dir() -> Path:
    """The project folder; one clear error when there is none."""
    found = locate()
    if found is not None:
        return found
    if os.environ.get(ENV):
        raise _not_found(f"{ENV}={os.environ[ENV]} is not a labstack project (no Pulumi.yaml with `name: labstack`, "
                         f"__main__.py and components/ there)")
    raise _not_found(f"no labstack project found (not installed from a checkout, {ENV} unset, and "
                     f"{Path.cwd()} is not inside one)")


class _ProgramWithoutProject(importlib.abc.MetaPathFinder):
    """Turns `import components` (or `hooks`) without a project folder into the one clear error instead of
    ModuleNotFoundError."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in FROM_PROJECT and locate() is None:
            project_dir()  # raises ProjectNotFound with the reason
        return None


def install_import_hook() -> None:
    if not any(isinstance(finder, _ProgramWithoutProject) for finder in sys.meta_path):
        sys.meta_path.append(_ProgramWithoutProject())
