"""The task collection as a new user meets it: every task's --help, one meaning per short flag, named options only,
every command line of the README and docs parsed by invoke's own parser, and tasks run from any folder."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from invoke import Parser, Program
from invoke.exceptions import ParseError

import tasks
from labstack.tasks.invoke_support import SHORT_FLAGS
from tests.ops.test_tasks import invoke

PROJECT = Path(__file__).resolve().parents[2]
TASK_NAMES = sorted(tasks.ns.task_names)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_every_task_has_help(name, capsys):
    assert invoke(name, "--help") == 0
    out, err = capsys.readouterr()
    options = " [--options]" if tasks.ns[name].get_arguments() else ""
    assert out.startswith(f"Usage: invoke [--core-opts] {name}{options} [other tasks here ...]\n"), out
    assert err == ""


def flag_table() -> dict[str, set[str]]:
    """short flag -> the long names it stands for, across the whole collection."""
    table = defaultdict(set)
    for name in TASK_NAMES:
        for argument in tasks.ns[name].get_arguments():
            long, *short = sorted(argument.names, key=len, reverse=True)
            for flag in short:
                table[flag].add(long)
    return table


def test_one_meaning_per_short_flag_and_s_is_stack():
    table = flag_table()
    clashes = {flag: sorted(longs) for flag, longs in table.items() if len(longs) > 1}
    assert clashes == {}
    assert table["s"] == {"stack"}
    assert "h" not in table  # stays invoke's --help
    assert {flag: longs.pop() for flag, longs in table.items()} == {v: k for k, v in SHORT_FLAGS.items()}


def test_no_task_takes_positional_arguments():
    positional = {name: [a.name for a in tasks.ns[name].get_arguments() if a.positional] for name in TASK_NAMES}
    assert {name: args for name, args in positional.items() if args} == {}


@pytest.mark.parametrize("argv, line", [
    (["job.logs", "-s", "paris-batch2"],
     "labstack: invoke job.logs needs --job JOB (job id); usage: invoke job.logs -s STACK --job JOB"),
    (["up"], "labstack: invoke up needs -s STACK (stack name (stacks/Pulumi.<stack>.yaml)); usage: invoke up -s STACK"),
    (["list.types"], "labstack: invoke list.types needs --region REGION (AWS region, e.g. eu-west-3); "
                     "usage: invoke list.types --region REGION"),
    (["job.run", "--type", "c7i.large"], "labstack: invoke job.run needs --script SCRIPT (the script to run); "
                                         "usage: invoke job.run --type TYPE --script SCRIPT"),
])
def test_a_missing_required_option_is_one_line(argv, line, capsys, stacks_dir, recording_pulumi):
    assert invoke(*argv) == 1
    assert capsys.readouterr().err.strip().splitlines() == [line]
    assert recording_pulumi() == []


# --- every `invoke …` line of the README and docs parses --------------------------------------------------------

DOCS = [PROJECT / "README.md", *sorted((PROJECT / "docs").glob("**/*.md"))]
COMMAND = re.compile(r"^(?:\S*/)?invoke\s")  # invoke, venv/bin/invoke, /path/to/labstack/venv/bin/invoke


def _segments(text: str):
    """Shell words of each simple command (split at ;, &&, ||, |) in a line, without comments. Synopsis notation
    is read as the command it stands for: `[--follow]` as `--follow`, `P ...` as `P`."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split, lexer.commenters = True, "#"
    try:
        words = list(lexer)
    except ValueError:
        return
    segment: list[str] = []
    for word in words + [";"]:
        if word in (";", "&&", "||", "|", "&"):
            if segment:
                yield segment
            segment = []
            continue
        word = word.lstrip("[") if word.startswith("[") else word
        word = word.split("|")[0] if word.startswith("-") else word  # `--running|--stopped`: one of them
        word = word.rstrip("]") if word.endswith("]") and "[" not in word else word
        if word not in ("...", "…", ""):
            segment.append(word)


def documented_commands() -> list[tuple[str, list[str]]]:
    found = []
    for path in DOCS:
        fenced = False
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.lstrip().startswith("```"):
                fenced = not fenced
                continue
            candidates = [line.strip()] if fenced else re.findall(r"`([^`]+)`", line)
            for candidate in candidates:
                for words in _segments(candidate):
                    words = words[1:] if words[:1] == ["$"] else words  # a shell prompt
                    while words and "=" in words[0] and not words[0].startswith("-"):
                        words = words[1:]  # VAR=value before the command
                    prose = len(words) > 1 and re.search(r"[*/…]|^\.\.\.$", words[1])  # `invoke ray.*`
                    if words and COMMAND.match(" ".join(words)) and not prose:
                        found.append((f"{path.relative_to(PROJECT)}:{number}", words[1:]))
    return found


def test_the_docs_show_commands():
    assert len(documented_commands()) >= 20


@pytest.mark.parametrize("where, argv", documented_commands(), ids=lambda value: value if isinstance(value, str)
                         else None)
def test_documented_command_parses(where, argv):
    parser = Parser(initial=Program().initial_context, contexts=tasks.ns.to_contexts())  # core flags as `invoke` has
    try:
        result = parser.parse_argv(argv)
    except ParseError as error:
        pytest.fail(f"{where}: `invoke {shlex.join(argv)}`: {error}")
    names = [context.name for context in result[1:]]
    assert all(name in tasks.ns.task_names or name in tasks.ns.task_names.get(name, ()) or
               any(name in aliases for aliases in tasks.ns.task_names.values()) for name in names), (where, names)
    assert names or any(flag in argv for flag in ("--list", "-l", "--help", "-h", "--version", "-V")), \
        f"{where}: `invoke {shlex.join(argv)}` names no task"


# --- from any folder ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["components", "stacks", "docs"])
def test_tasks_run_from_a_subfolder(where):
    result = subprocess.run([str(Path(sys.executable).parent / "invoke"), "check", "--help"], cwd=PROJECT / where,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: inv[oke] [--core-opts] check [--options]"), result.stdout


def test_tasks_run_from_outside_with_search_root(tmp_path):
    result = subprocess.run([str(Path(sys.executable).parent / "invoke"), "-r", str(PROJECT), "--list"],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "job.submit" in result.stdout and "ray.status" in result.stdout
