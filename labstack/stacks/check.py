"""`invoke check`: evaluate stack files offline and show what they would declare, or what is wrong with them."""
from __future__ import annotations

import json
from collections import Counter
from typing import Optional

from rich.console import Console
from rich.table import Table

from components.config import ConfigError
from labstack.stacks.offline import Evaluation, evaluate
from labstack.stacks.pulumi_cli import POLICY_CONFIG
from labstack.stacks.stackfile import StackFileError, list_stacks, load, read_offline
from labstack.terminal import notes_console, results_console
from policy import rules

NOT_A_PREVIEW = ("This is an offline check under Pulumi mocks, not a `pulumi preview`: AWS was not contacted, so "
                 "AMIs, hosted zones and subnets are assumed to exist. Run `invoke preview -s {stack}` for that.")


LONG_OUTPUT = 200  # characters: a longer output (a 100-worker cluster's node map) is summarised, not printed


def check_stacks(stack: Optional[str] = None, console: Optional[Console] = None,
                 notes: Optional[Console] = None) -> bool:
    """Evaluate one stack file (or all of them, each whatever the others hold); print a summary and the warnings;
    return True when every one is valid (warnings never fail)."""
    console = console or results_console()
    notes = notes or notes_console()
    stacks = [stack] if stack else list_stacks()
    all_ok = True
    for number, name in enumerate(stacks, 1):
        try:
            offline = read_offline(name)
        except StackFileError as unreadable:
            console.print(f"[red]✗ {name}[/red]: ", end="")
            console.print(str(unreadable), markup=False, highlight=False, soft_wrap=True)
            all_ok = False
            continue
        # A cluster of 100 workers takes seconds under the mocks: a spinner says which stack (on a terminal only).
        with notes.status(f"evaluating {name} under Pulumi mocks ({number} of {len(stacks)})"):
            result = evaluate(offline.config, name, secret_keys=offline.secret_keys)
        warnings = offline.warnings
        if result.error is None:
            warnings = load(name).warnings  # the reader's and the config's
            found = rules.violations(policy_resources(result, offline.config.get("aws:region")), policy_config())
            stopped = [message for rule, message in found if rule.mandatory]
            warnings = (*warnings, *(f"policy {rule.name}: {message}" for rule, message in found if not rule.mandatory))
            if stopped:
                all_ok = False
                console.print(f"[red]✗ {name}[/red]: `pulumi up` would be stopped by {len(stopped)} mandatory "
                              "policy violation(s) (policy/):")
                for rule, message in found:
                    if rule.mandatory:
                        console.print(f"    - policy {rule.name}: {message}", markup=False, highlight=False,
                                      soft_wrap=True)
            else:
                _print_resources(console, name, result)
        elif isinstance(result.error, ConfigError):
            all_ok = False
            console.print(f"[red]✗ {name}[/red]: stacks/Pulumi.{name}.yaml has "
                          f"{len(result.error.problems)} problem(s):")
            for problem in result.error.problems:
                console.print(f"    - {problem}", markup=False, highlight=False, soft_wrap=True)
        else:
            all_ok = False
            console.print(f"[red]✗ {name}[/red]: the program failed: ", end="")
            console.print(str(result.error), markup=False, soft_wrap=True)
        for warning in warnings:
            console.print(f"    ! {warning}", style="yellow", markup=False, highlight=False, soft_wrap=True)
        console.print(NOT_A_PREVIEW.format(stack=name), style="dim")
    return all_ok


def policy_resources(result: Evaluation, region: Optional[str]) -> list[rules.Resource]:
    """What the engine hands the policy pack: each resource the program declared, with its inputs, and the default
    AWS provider, which takes its region from the stack's aws:region."""
    declared = [rules.Resource(r.type, r.name, r.inputs) for r in result.resources if r.custom]
    return declared + ([rules.Resource(rules.AWS_PROVIDER, "default", {"region": region})] if region else [])


def policy_config() -> dict:
    """policy/config.json, which `invoke up` hands the pack too (README, Policies); none: the rules' defaults."""
    return json.loads(POLICY_CONFIG.read_text()) if POLICY_CONFIG.is_file() else {}


def _print_resources(console: Console, stack: str, result) -> None:
    custom = [r for r in result.resources if r.custom]
    counts = Counter(r.type for r in custom)
    console.print(f"[green]✓ {stack}[/green]: the config is valid; it would declare {len(custom)} resources:")
    table = Table("count", "resource type", "first name", box=None, pad_edge=False)
    for type_token, count in counts.items():
        table.add_row(str(count), type_token.split(":")[-1], next(r.name for r in custom if r.type == type_token))
    console.print(table)
    for key, value in result.outputs.items():
        console.print(f"    output {key}: {_summary(value)}", markup=False, highlight=False)


def _summary(value) -> str:
    """An output as `invoke outputs` would show it, or, when long, what it holds (the values come after `up`)."""
    text = str(value)
    if len(text) <= LONG_OUTPUT:
        return text
    if isinstance(value, dict):
        return f"a map of {len(value)} entries ({', '.join(list(map(str, value))[:3])}, ...)"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} items"
    return text[:LONG_OUTPUT] + f"... ({len(text)} characters)"
