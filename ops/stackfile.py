"""Read and edit stacks/Pulumi.<stack>.yaml the way an operator would by hand: comments and order preserved.

`invoke push` pins the pushed digest here (labstack:apps.<app>.image), so the next `pulumi up` deploys exactly that
image and the change shows up as a one-line diff in review. ruamel.yaml's round-trip mode keeps the operator's
comments, key order and quoting; PyYAML would drop them.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Optional

from ruamel.yaml import YAML

from ops.offline import PROJECT_DIR, list_stacks, read_stack_config, stack_file


class StackFileError(RuntimeError):
    """The stack file is missing, or lacks what a task needs; the message says how to fix it."""


def _yaml() -> YAML:
    yaml = YAML()  # round-trip
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap an operator's long lines
    return yaml


def config(stack: str) -> dict[str, Any]:
    try:
        return read_stack_config(stack)
    except FileNotFoundError as error:
        raise StackFileError(str(error)) from None


def apps(stack: str) -> dict[str, dict]:
    raw = config(stack).get("labstack:apps") or {}
    return raw if isinstance(raw, dict) else {}


def app_settings(stack: str, app: Optional[str]) -> tuple[str, dict]:
    """(name, settings) of one app; with app=None, the stack's only app."""
    known = apps(stack)
    if not known:
        raise StackFileError(f"stack {stack!r} has no apps (labstack:apps in {stack_file(stack)})")
    if app is None:
        if len(known) > 1:
            raise StackFileError(f"stack {stack!r} has several apps ({', '.join(known)}): choose one with --app")
        app = next(iter(known))
    if app not in known:
        raise StackFileError(f"unknown app {app!r} in stack {stack!r}; its apps: {', '.join(known)}")
    settings = known[app]
    return app, settings if isinstance(settings, dict) else {}


def build_context(stack: str, app: str) -> Path:
    _, settings = app_settings(stack, app)
    build = settings.get("build")
    if not build:
        raise StackFileError(f"labstack:apps.{app}.build is not set: the folder with the app's code, relative to "
                             f"{PROJECT_DIR} (e.g. `pulumi config set --path 'labstack:apps.{app}.build' "
                             f"examples/app -s {stack}`)")
    path = Path(os.path.expanduser(str(build)))
    return path if path.is_absolute() else PROJECT_DIR / path


def set_app_image(stack: str, app: str, image: str) -> Optional[str]:
    """Write labstack:apps.<app>.image, keeping everything else byte for byte; returns the previous value.

    Written to a temporary file and renamed over the original, so an interrupted write never leaves half a file.
    """
    path = stack_file(stack)
    if not path.is_file():
        config(stack)  # raises the standard "unknown stack" message
    yaml = _yaml()
    document = yaml.load(path.read_text())
    settings = (((document or {}).get("config") or {}).get("labstack:apps") or {}).get(app)
    if settings is None:
        raise StackFileError(f"unknown app {app!r} in stack {stack!r}; its apps: {', '.join(apps(stack)) or 'none'}")
    previous = settings.get("image")
    settings["image"] = image
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as out:
            yaml.dump(document, out)
        os.chmod(temporary, path.stat().st_mode & 0o777)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return previous


__all__ = ["StackFileError", "config", "apps", "app_settings", "build_context", "set_app_image", "list_stacks"]
