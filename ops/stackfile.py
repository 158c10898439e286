"""The one place that finds and reads stacks/Pulumi.<stack>.yaml, and edits it the way an operator would by hand.

Reading gives the typed model (`load`: components.config's StackConfig, validated exactly as `pulumi up` validates
it, so a task never applies boolean or number rules of its own) or, for the mock evaluator, the raw `config:` map
(`read_stack_config`). Values set with `pulumi config set --secret` are ciphertext in the file; both give a
placeholder instead, which is all the tasks need (they never use a secret's value).

Editing: `invoke push` pins the pushed digest here (labstack:apps.<app>.image), so the next `pulumi up` deploys
exactly that image and the change shows up as a one-line diff in review. ruamel.yaml's round-trip mode keeps the
operator's comments, key order and quoting; PyYAML would drop them.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Optional

import yaml

from components.config import AppConfig, StackConfig, load_stack_config

PROJECT_DIR = Path(__file__).resolve().parent.parent
STACKS_DIR = PROJECT_DIR / "stacks"
OFFLINE_SECRET = "offline-placeholder-for-a-secret"


class StackFileError(RuntimeError):
    """The stack file is missing, or lacks what a task needs; the message says how to fix it."""


def stack_file(stack: str) -> Path:
    return STACKS_DIR / f"Pulumi.{stack}.yaml"


def list_stacks() -> list[str]:
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in STACKS_DIR.glob("Pulumi.*.yaml"))


def _file_config(stack: str) -> dict[str, Any]:
    """The `config:` map as written in the file, secure values still `{secure: <ciphertext>}`."""
    path = stack_file(stack)
    if not path.is_file():
        known = ", ".join(list_stacks()) or "none"
        raise StackFileError(f"unknown stack {stack!r}: no file {path} (stacks there: {known}); start one from "
                             f"the example: `cp stacks/Pulumi.paris-batch2.yaml stacks/Pulumi.{stack}.yaml`")
    return (yaml.safe_load(path.read_text()) or {}).get("config") or {}


def read_stack_config(stack: str) -> dict[str, Any]:
    """The `config:` map of stacks/Pulumi.<stack>.yaml, with placeholders for secrets (what the mocks evaluate)."""
    return {key: _secure_placeholders(value) for key, value in _file_config(stack).items()}


def load(stack: str) -> StackConfig:
    """The stack's typed config. Raises StackFileError for an unknown stack and ConfigError listing every problem
    of a broken one (the same lines `pulumi up` would print)."""
    written = _file_config(stack)
    secret_keys = {key for key, value in written.items() if _holds_secure(value)}
    raw = {key: _secure_placeholders(value) for key, value in written.items()}
    return load_stack_config(raw, stack, secret_keys=secret_keys)


def app_config(config: StackConfig, app: Optional[str]) -> AppConfig:
    """One app of a stack; with app=None, the stack's only app."""
    if not config.apps:
        raise StackFileError(f"stack {config.stack!r} has no apps (labstack:apps in {stack_file(config.stack)})")
    names = [a.name for a in config.apps]
    if app is None:
        if len(names) > 1:
            raise StackFileError(f"stack {config.stack!r} has several apps ({', '.join(names)}): choose one with --app")
        return config.apps[0]
    found = next((a for a in config.apps if a.name == app), None)
    if found is None:
        raise StackFileError(f"unknown app {app!r} in stack {config.stack!r}; its apps: {', '.join(names)}")
    return found


def _secure_placeholders(value: Any) -> Any:
    """`--secret` values are `{secure: <ciphertext>}` in the file; offline they become a placeholder string, which
    is what the program needs to render (it never sees, and `invoke check` never prints, the real value)."""
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return OFFLINE_SECRET
        return {key: _secure_placeholders(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_secure_placeholders(item) for item in value]
    return value


def _holds_secure(value: Any) -> bool:
    if isinstance(value, dict):
        return set(value) == {"secure"} or any(_holds_secure(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_secure(item) for item in value)
    return False


# --- the image tasks ---------------------------------------------------------------------------------------------
# `invoke build push` is how an app gets its first pinned image, and it runs on machines without the server's key:
# it reads only the app's `build` and `image` from the file it edits, so a stack that `pulumi up` would still
# refuse (no image pinned yet, no serverPem here) can be built and pinned.

def image_settings(stack: str, app: Optional[str]) -> tuple[str, dict]:
    """(name, settings as written) of one app; with app=None, the stack's only app."""
    known = _file_config(stack).get("labstack:apps") or {}
    known = known if isinstance(known, dict) else {}
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
    _, settings = image_settings(stack, app)
    build = settings.get("build")
    if not build:
        raise StackFileError(f"labstack:apps.{app}.build is not set: the folder with the app's code, relative to "
                             f"{PROJECT_DIR} (e.g. `pulumi config set --path 'labstack:apps.{app}.build' "
                             f"examples/app -s {stack}`)")
    path = Path(os.path.expanduser(str(build)))
    return path if path.is_absolute() else PROJECT_DIR / path


def _round_trip_yaml():
    from ruamel.yaml import YAML  # only `invoke push` writes: the other tasks start without it

    yaml = YAML()  # round-trip
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap an operator's long lines
    return yaml


def set_app_image(stack: str, app: str, image: str) -> Optional[str]:
    """Write labstack:apps.<app>.image, keeping everything else byte for byte; returns the previous value.

    Written to a temporary file and renamed over the original, so an interrupted write never leaves half a file.
    """
    image_settings(stack, app)  # unknown stack or app: the standard messages
    path = stack_file(stack)
    yaml = _round_trip_yaml()
    document = yaml.load(path.read_text())
    settings = document["config"]["labstack:apps"][app]
    if not hasattr(settings, "get"):
        raise StackFileError(f"labstack:apps.{app} in {path} is not a map of settings; give it at least `build`")
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
