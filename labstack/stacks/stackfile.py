"""The one place that finds and reads stacks/Pulumi.<stack>.yaml, and edits it the way an operator would by hand.

Reading gives the typed model (`load`: components.config's StackConfig, validated exactly as `pulumi up` validates
it, so a task never applies boolean or number rules of its own) or, for the mock evaluator, the raw `config:` map
(`read_stack_config`). Values set with `pulumi config set --secret` are ciphertext in the file; both give a
placeholder instead, which is all the tasks need (they never use a secret's value).

Stack files are read as Pulumi reads them (components/config/pulumi_yaml.py: Go's yaml.v3 in Pulumi's two passes):
`yes`, `on` stay text, `01234` is the number 668 and `2026-01-01` a timestamp's text (both warned about), merge keys
and tabs after a value are read, a key without a namespace is the project's, a key given twice is refused, and a file
that is no UTF-8, no YAML, or no map with `config:`, is one line naming the file and where.

Editing: `invoke push` pins the pushed digest here (labstack:apps.<app>.image), so the next `pulumi up` deploys
exactly that image and the change shows up as a one-line diff in review. ruamel.yaml's round-trip mode keeps the
operator's comments, key order and quoting; PyYAML would drop them.
"""
from __future__ import annotations

import difflib
import functools
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import yaml

from components.config import AppConfig, StackConfig, load_stack_config
from components.config.pulumi_yaml import MERGE, AmbiguousValue, Loader, config_key, resolve_plain, surprise
from components.config.values import YAML11_BOOLEANS, YAML11_TRUE
from labstack.project import project_dir

PROJECT_DIR = project_dir()
STACKS_DIR = PROJECT_DIR / "stacks"
OFFLINE_SECRET = "offline-placeholder-for-a-secret"


class StackFileError(RuntimeError):
    """The stack file is missing, is no stack file YAML, or lacks what a task needs; the message says how to fix it."""


# The sections of a stack file Pulumi knows (the first three are its secrets provider's).
SECTIONS = ("secretsprovider", "encryptedkey", "encryptionsalt", "config", "environment")
STR_TAG = "tag:yaml.org,2002:str"


# PyYAML's own wording for the usual slips, said so that the fix is plain.
YAML_SLIPS = {
    "found character '\\t' that cannot start any token": "a tab character: YAML indents with spaces only; replace it "
                                                         "with spaces",
    "mapping values are not allowed here": "a `: ` where no key can start: a line indented deeper than the key above "
                                           "it, or a value holding `: ` that needs quotes",
    "could not find expected ':'": "expected `key: value` here: a key lacks its `:`, or a line is indented wrongly",
    "found duplicate anchor": "an anchor (&name) is defined twice",
}
UTF8_BOM = b"\xef\xbb\xbf"  # dropped before reading, as Pulumi's readFileStripUTF8BOM (workspace/loaders.go) does


PROJECT_FILE = PROJECT_DIR / "Pulumi.yaml"


@functools.lru_cache(maxsize=None)
def project_name() -> str:
    """The project's name (Pulumi.yaml): the namespace Pulumi gives a stack file's keys written without one."""
    return str(yaml.safe_load(PROJECT_FILE.read_text())["name"])


def decode_stack_bytes(path: Path, data: bytes) -> str:
    """A stack file's bytes as text; StackFileError naming the first byte that is no UTF-8 and where it is."""
    skipped = len(UTF8_BOM) if data.startswith(UTF8_BOM) else 0
    try:
        return data[skipped:].decode("utf-8")
    except UnicodeDecodeError as error:
        offset = skipped + error.start  # in the file, as `cmp` or a hex editor counts
        line = data.count(b"\n", 0, offset) + 1
        raise StackFileError(f"{_shown(path)}, byte offset {offset} (line {line}): byte 0x{data[offset]:02x} "
                             "is not UTF-8, which Pulumi reads stack files as; save the file as UTF-8 (e.g. `iconv -f "
                             f"latin1 -t utf-8`)") from None


@dataclass(frozen=True)
class StackText:
    """A stack file's `config:` as written (secure values still `{secure: <ciphertext>}`) and what reading it noticed."""

    config: dict[str, Any]
    warnings: tuple[str, ...]


def _shown(path: Path) -> Path:
    return path.relative_to(PROJECT_DIR) if path.is_relative_to(PROJECT_DIR) else path


def _where(path: Path, mark: Any) -> str:
    return f"{_shown(path)}, line {mark.line + 1}, column {mark.column + 1}"


def parse_stack_text(path: Path, text: str) -> StackText:
    """A stack file's text as Pulumi reads it; StackFileError (one line: file, line, column, fix) when it cannot."""
    loader = Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise StackFileError(f"{_shown(path)} is empty: it needs a `config:` map of settings; start from "
                                 "stacks/Pulumi.paris-batch2.yaml")
        warnings = _check_nodes(path, node, [])
        anchored = loader.anchored
        document = loader.construct_document(node)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = str(error.problem or error.context)
        said = YAML_SLIPS.get(problem, problem)
        if problem not in YAML_SLIPS and error.context and error.problem and error.context_mark:  # e.g. a quote
            # opened on an earlier line: where it started is where the fix goes
            said += f" {error.context} that starts at line {error.context_mark.line + 1}"
        raise StackFileError(f"{_where(path, mark)}: {said}") from None
    except yaml.YAMLError as error:
        raise StackFileError(f"{path}: not YAML: {error}") from None
    finally:
        loader.dispose()
    if not isinstance(document, dict):
        raise StackFileError(f"{_where(path, node.start_mark)}: expected a map with a `config:` section at the top "
                             "(as in stacks/Pulumi.paris-batch2.yaml)")
    for key_node, value_node in node.value:
        if key_node.value not in SECTIONS and id(value_node) in anchored:
            continue  # a place for anchors (`defaults: &defaults ...`): Pulumi ignores what it does not know
        if key_node.value not in SECTIONS:
            hint = difflib.get_close_matches(str(key_node.value).lower(), SECTIONS, n=1, cutoff=0.6)
            raise StackFileError(f"{_where(path, key_node.start_mark)}: {key_node.value}: is no section of a stack "
                                 "file; " + (f"did you mean {hint[0]}?" if hint else
                                             f"Pulumi knows {', '.join(SECTIONS)}"))
        if key_node.value == "config" and not isinstance(document["config"], (dict, type(None))):
            raise StackFileError(f"{_where(path, value_node.start_mark)}: config: holds "
                                 f"{'a list' if isinstance(document['config'], list) else 'a single value'}; it must "
                                 "be a map of `key: value` settings, each on its own line indented under `config:`")
    config_node = next((value for key, value in node.value if key.value == "config"), None)
    return StackText(config=_namespaced(path, document.get("config") or {}, config_node), warnings=tuple(warnings))


def _namespaced(path: Path, config: dict[str, Any], config_node: Optional[yaml.Node]) -> dict[str, Any]:
    """The config under the keys Pulumi reads (`instanceType` is the project's `labstack:instanceType`); a key
    written both ways is refused: Pulumi would keep either one."""
    marks = {key.value: key.start_mark for key, _ in (config_node.value if config_node is not None else [])}
    project = project_name()
    written_as: dict[str, str] = {}
    namespaced: dict[str, Any] = {}
    for written, value in config.items():
        try:
            key = config_key(str(written), project)
        except ValueError as error:
            raise StackFileError(f"{_where(path, marks[written])}: {error}; Pulumi refuses the file") from None
        if key.full in written_as:
            other = written_as[key.full]
            first, second = sorted((marks[other], marks[written]), key=lambda mark: mark.line)
            raise StackFileError(
                f"{_where(path, second)}: {key.full} is given twice, as {other} and {written} (lines "
                f"{first.line + 1} and {second.line + 1}); Pulumi reads a key without a namespace as the project's "
                f"({project}:) and keeps only one of them: keep one")
        written_as[key.full] = str(written)
        namespaced[key.full] = value
    return namespaced


def _check_nodes(path: Path, node: yaml.Node, keys: list[str]) -> list[str]:
    """Refuse a key given twice (yaml.v3 does; PyYAML keeps the last); warn of YAML 1.1 booleans, text in YAML 1.2."""
    shown = ".".join(keys[1:])  # under config: the key as `pulumi config set --path` names it
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, yaml.Node] = {}
        warnings = []
        for key_node, value_node in node.value:
            key = key_node.value
            if key_node.tag == MERGE:
                continue  # merged in where its anchor is defined (and checked there)
            if key in seen:
                name = ".".join([*keys[1:], str(key)]) or str(key)
                raise StackFileError(
                    f"{_where(path, key_node.start_mark)}: {name} is given twice (lines "
                    f"{seen[key].start_mark.line + 1} and {key_node.start_mark.line + 1}); Pulumi refuses a duplicate "
                    "key: keep one")
            seen[key] = key_node
            warnings += _check_nodes(path, value_node, [*keys, str(key)])
        return warnings
    if isinstance(node, yaml.SequenceNode):
        return [warning for index, item in enumerate(node.value)
                for warning in _check_nodes(path, item, [*keys[:-1], f"{keys[-1]}[{index}]"] if keys else keys)]
    if node.style is None and isinstance(node, yaml.ScalarNode) and node.tag != STR_TAG:
        try:
            value = resolve_plain(node.value)[1]
        except AmbiguousValue as error:
            name = ".".join(keys[1:]) or ".".join(keys)
            raise StackFileError(f"{_where(path, node.start_mark)}: {name} = {node.value}: {error}") from None
        said = surprise(node.value, value)
        return [f"{shown} = {node.value} ({_where(path, node.start_mark)}): {said}"] if said and keys[:1] == [
            "config"] else []
    if node.tag == STR_TAG and node.style is None and node.value.lower() in YAML11_BOOLEANS and keys[:1] == ["config"]:
        meant = "true" if node.value.lower() in YAML11_TRUE else "false"
        return [f"{shown} = {node.value} ({_where(path, node.start_mark)}): Pulumi reads an unquoted {node.value} as "
                f"the text {node.value!r}, not {meant}; write {meant} for a boolean, or quote it \"{node.value}\" "
                "if the text is meant"]
    return []


def stack_file(stack: str) -> Path:
    return STACKS_DIR / f"Pulumi.{stack}.yaml"


def list_stacks() -> list[str]:
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in STACKS_DIR.glob("Pulumi.*.yaml"))


def read_stack_text(stack: str) -> StackText:
    path = stack_file(stack)
    if not path.is_file():
        known = ", ".join(list_stacks()) or "none"
        raise StackFileError(f"unknown stack {stack!r}: no file {path} (stacks there: {known}); start one from "
                             f"the example: `invoke new -s {stack} --like paris-batch2`")
    return parse_stack_text(path, decode_stack_bytes(path, path.read_bytes()))


def _file_config(stack: str) -> dict[str, Any]:
    """The `config:` map as written in the file, secure values still `{secure: <ciphertext>}`."""
    return read_stack_text(stack).config


@dataclass(frozen=True)
class OfflineConfig:
    """What the program would get from Pulumi: the config (placeholders for secrets) and which keys are secret."""

    config: dict[str, Any]
    secret_keys: frozenset[str]
    warnings: tuple[str, ...]


def read_offline(stack: str) -> OfflineConfig:
    return offline_config(read_stack_text(stack))


def offline_config(written: StackText) -> OfflineConfig:
    # Pulumi marks a key secret when any value in it is `secure:`; a map with plain values beside secure ones (an
    # appSecrets entry set without --secret) is not counted secret here, so `invoke check` and `invoke up` refuse it.
    secret_keys = frozenset(key for key, value in written.config.items() if _encrypted(key, value))
    config = {key: _secure_placeholders(value) for key, value in written.config.items()}
    return OfflineConfig(config=config, secret_keys=secret_keys, warnings=written.warnings)


def read_stack_config(stack: str) -> dict[str, Any]:
    """The `config:` map of stacks/Pulumi.<stack>.yaml, with placeholders for secrets (what the mocks evaluate)."""
    return read_offline(stack).config


def load(stack: str) -> StackConfig:
    """The stack's typed config. Raises StackFileError for an unknown or unreadable stack file and ConfigError
    listing every problem of a broken one (the same lines `pulumi up` would print)."""
    offline = read_offline(stack)
    return load_stack_config(offline.config, stack, secret_keys=offline.secret_keys, warnings=offline.warnings)


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


def _encrypted(key: str, value: Any) -> bool:
    """Whether the key holds its secrets encrypted. A registry login's user name is plain beside its `--secret`
    password; everywhere else every value must be secure."""
    if key == "labstack:registryAuth" and isinstance(value, dict):
        return bool(value) and all(isinstance(login, dict) and _all_secure(login.get("password"))
                                   for login in value.values())
    return _all_secure(value)


def _all_secure(value: Any) -> bool:
    """Every value in it was set with `--secret` (and there is one)."""
    if isinstance(value, dict):
        return set(value) == {"secure"} or (bool(value) and all(_all_secure(item) for item in value.values()))
    if isinstance(value, list):
        return bool(value) and all(_all_secure(item) for item in value)
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
                             f"{PROJECT_DIR} (e.g. `invoke config -s {stack} --set 'labstack:apps.{app}.build'=examples/app`)")
    path = Path(os.path.expanduser(str(build)))
    return path if path.is_absolute() else PROJECT_DIR / path


def round_trip_yaml():
    from ruamel.yaml import YAML  # only `invoke push` writes: the other tasks start without it

    yaml = YAML()  # round-trip
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap an operator's long lines
    return yaml


def write_new(stack: str, text: str) -> Path:
    """Write a new stack file whole: under a temporary name first, renamed when complete; never over an existing one."""
    path = stack_file(stack)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as out:
            out.write(text)
        os.chmod(temporary, 0o644)
        os.link(temporary, path)  # fails if the stack file appeared meanwhile: nothing is overwritten
    except FileExistsError:
        raise StackFileError(f"{_shown(path)} exists already: choose another stack name") from None
    finally:
        Path(temporary).unlink(missing_ok=True)
    return path


def set_app_image(stack: str, app: str, image: str) -> Optional[str]:
    """Write labstack:apps.<app>.image, keeping everything else byte for byte; returns the previous value.

    Written to a temporary file and renamed over the original, so an interrupted write never leaves half a file.
    """
    image_settings(stack, app)  # unknown stack or app: the standard messages
    path = stack_file(stack)
    yaml = round_trip_yaml()
    document = yaml.load(path.read_text())
    project = project_name()  # the key as written: `apps:` is labstack:apps too (parse_stack_text)
    written = next(key for key in document["config"] if config_key(str(key), project).full == "labstack:apps")
    settings = document["config"][written][app]
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
