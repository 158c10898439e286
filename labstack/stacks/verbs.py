"""The Pulumi verbs an operator needs besides `up`, run as the tasks run pulumi: the project's state backend and
passphrase file (labstack.stacks.pulumi_cli), from the project folder, after the offline check of the stack file.

labstack prints and documents these (`invoke preview -s S`, `invoke config -s S --set KEY=VALUE`, ...) instead of bare
`pulumi` commands: a bare `pulumi` in a new shell knows neither the state folder nor the passphrase file, so it
would reach another backend or ask for a passphrase nobody typed. `invoke pulumi -s S -- ARGS` runs any other pulumi
command the same way.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable, Optional

from labstack.stacks import stackfile
from labstack.stacks.pulumi_cli import POLICY_CONFIG, POLICY_PACK, PulumiCli, PulumiError

STACK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def _policy() -> list[str]:
    config = ["--policy-pack-config", str(POLICY_CONFIG)] if POLICY_CONFIG.is_file() else []
    return ["--policy-pack", str(POLICY_PACK), *config]


def preview(stack: str, *, cli: Optional[PulumiCli] = None) -> None:
    """`pulumi preview`: what `up` would change, asking AWS (the offline `invoke check` does not)."""
    stackfile.load(stack)
    cli = cli or PulumiCli()
    env = cli.environment()
    cli.select(stack, env)
    cli.run(["preview", "--stack", stack, *_policy()], env=env)


def destroy(stack: str, *, yes: bool = False, cli: Optional[PulumiCli] = None) -> None:
    """`pulumi destroy`: the program's delete steps run (every app's data exported first), so it runs from the
    project folder, as the tasks always do."""
    stackfile.read_stack_text(stack)  # an unknown stack: one line, before pulumi makes an empty one
    cli = cli or PulumiCli()
    env = cli.environment()
    cli.select(stack, env)
    cli.run(["destroy", "--stack", stack, *(["--yes"] if yes else [])], env=env)


def outputs(stack: str, *, cli: Optional[PulumiCli] = None) -> dict:
    """The stack's outputs (`pulumi stack output --json`); secret ones stay `[secret]`."""
    stackfile.read_stack_text(stack)
    cli = cli or PulumiCli()
    result = cli.run(["stack", "output", "--json", "--stack", stack], capture=True)
    try:
        return json.loads(result.stdout or "{}")
    except ValueError:
        raise PulumiError(f"`pulumi stack output --json --stack {stack}` did not answer JSON") from None


def _is_path(key: str) -> bool:
    """`labstack:autoStop.idleMinutes`, `labstack:sshCidrs[0]`: a nested key, set with pulumi's --path."""
    _, _, name = key.partition(":")
    return any(mark in name for mark in ".[")


def config_set_args(stack: str, key: str, value: str, secret: bool = False) -> list[str]:
    return ["config", "set", *(["--path"] if _is_path(key) else []), *(["--secret"] if secret else []), key, value,
            "--stack", stack]


def parse_settings(pairs: Iterable[str]) -> list[tuple[str, str]]:
    settings = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or ":" not in key:
            raise stackfile.StackFileError(f"--set {pair!r}: expected KEY=VALUE with a namespaced key, e.g. "
                                           f"--set labstack:instanceType=t3.large or --set aws:region=eu-west-3")
        settings.append((key.strip(), value))
    return settings


def config(stack: str, settings: Iterable[str] = (), *, secret: bool = False,
           cli: Optional[PulumiCli] = None) -> None:
    """Set config values in the stack file (`pulumi config set`, creating the stack in the backend if it is new, so
    it works before the first `up`); without settings, show the stack's config."""
    stackfile.read_stack_text(stack)
    pairs = parse_settings(settings)
    cli = cli or PulumiCli()
    env = cli.environment()
    cli.select(stack, env)
    if not pairs:
        cli.run(["config", "--stack", stack], env=env)
        return
    for key, value in pairs:
        cli.run(config_set_args(stack, key, value, secret), env=env)


def passthrough(stack: Optional[str], words: list[str], *, cli: Optional[PulumiCli] = None) -> int:
    """Any pulumi command with the project's backend and passphrase (e.g. `stack export`, `stack
    change-secrets-provider`); returns its exit code."""
    if not words:
        raise PulumiError("give pulumi's arguments after --, e.g. `invoke pulumi -s paris-batch2 -- stack export "
                          "--file paris-batch2.json`")
    cli = cli or PulumiCli()
    env = cli.environment()
    args = [*words, *(["--stack", stack] if stack else [])]
    return cli.run(args, env=env, check=False).returncode


def new(stack: str, like: str) -> Path:
    """A new stack file copied from another (comments, keys and encrypted values kept: one passphrase per project);
    no Pulumi CLI needed, and `invoke check`, `config` and `up` work on it at once."""
    if not STACK_NAME.match(stack):
        raise stackfile.StackFileError(f"--stack {stack!r}: a stack name is letters, digits, '-', '_' and '.', "
                                       f"e.g. rome-pilot")
    stackfile.read_stack_text(like)  # an unknown --like: one line listing the stacks there are
    target = stackfile.stack_file(stack)
    if target.exists():
        raise stackfile.StackFileError(f"{target} exists already: pick another name, or edit it")
    target.write_text(stackfile.stack_file(like).read_text())
    return target
