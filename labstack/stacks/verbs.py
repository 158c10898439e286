"""The Pulumi verbs an operator needs besides `up`, run as the tasks run pulumi: the project's state backend and
passphrase file (labstack.stacks.pulumi_cli), from the project folder, after the offline check of the stack file.

labstack prints and documents these (`invoke preview -s S`, `invoke config -s S --set KEY=VALUE`, ...) instead of bare
`pulumi` commands: a bare `pulumi` in a new shell knows neither the state folder nor the passphrase file, so it
would reach another backend or ask for a passphrase nobody typed. `invoke pulumi -s S -- ARGS` runs any other pulumi
command the same way.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Callable, Iterable, Optional

from labstack.stacks import stackfile
from labstack.stacks.pulumi_cli import PulumiCli, PulumiError

STACK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def preview(stack: str, *, cli: Optional[PulumiCli] = None) -> None:
    """`pulumi preview` with labstack's policy pack: what `up` would change, asking AWS (`invoke check` does not)."""
    from labstack.stack import Stack

    Stack(stack, cli=cli).preview()


def destroy(stack: str, *, yes: bool = False, cli: Optional[PulumiCli] = None,
            confirm: Callable[[str], str] = input) -> None:
    """`pulumi destroy`: the program's delete steps run (every app's data exported first). The Automation API never
    asks, so without yes labstack asks, as `up` does (and refuses when there is no terminal to ask in)."""
    from labstack.stack import Stack

    server = Stack(stack, cli=cli)
    server.config  # an unknown stack or a broken stack file: one line, before pulumi starts
    server.cli.can_update(stack, yes, confirm)
    if not yes and confirm(f"Destroy every resource of {stack} (apps' data exported first)? [y/N] ").strip().lower() \
            not in ("y", "yes"):
        raise PulumiError(f"destroy of {stack} not confirmed: nothing was changed")
    server.destroy()


def outputs(stack: str, *, cli: Optional[PulumiCli] = None) -> dict:
    """The stack's outputs (`pulumi stack output --json`); secret ones stay `[secret]`."""
    stackfile.read_stack_text(stack)
    return (cli or PulumiCli()).outputs(stack)


def _is_path(key: str) -> bool:
    """`labstack:autoStop.idleMinutes`, `labstack:sshCidrs[0]`: a nested key, set with pulumi's --path."""
    _, _, name = key.partition(":")
    return any(mark in name for mark in ".[")


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
           cli: Optional[PulumiCli] = None, show: Callable[[str], None] = print) -> None:
    """Set config values in the stack file (`pulumi config set`, creating the stack in the state if it is new, so
    it works before the first `up`); without settings, show the stack's config (secrets as [secret])."""
    stackfile.read_stack_text(stack)
    pairs = parse_settings(settings)
    cli = cli or PulumiCli()
    if not pairs:
        for key, value in sorted(cli.all_config(stack).items()):
            show(f"{key} = {'[secret]' if value.secret else value.value}")
        return
    for key, value in pairs:
        cli.set_config(stack, key, value, path=_is_path(key), secret=secret)


def passthrough(stack: Optional[str], words: list[str], *, cli: Optional[PulumiCli] = None) -> int:
    """Any pulumi command with the project's backend and passphrase (e.g. `stack export`, `stack
    change-secrets-provider`); returns its exit code."""
    if not words:
        raise PulumiError("give pulumi's arguments after --, e.g. `invoke pulumi -s paris-batch2 -- stack export "
                          "--file paris-batch2.json`")
    cli = cli or PulumiCli()
    env = cli.environment()
    args = [*words, *(["--stack", stack] if stack else [])]
    # The terminal's own streams (a command may ask, e.g. `stack rm`); run_pulumi's Ctrl-C care is for updates the
    # tasks start, and a Ctrl-C here reaches pulumi through the terminal as for any command typed there.
    return subprocess.run([cli.binary, *args], cwd=cli.project_dir, env=env).returncode


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
