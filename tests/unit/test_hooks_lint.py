"""Every hook is strict bash and shellcheck-clean (they run on servers, where a silent failure loses deploys)."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from components import layout

HOOKS = Path(__file__).resolve().parents[2] / "hooks"
SCRIPTS = sorted(HOOKS.glob("*.sh"))
SOURCED = {"lib.sh", "layout.sh", "deploy-steps.sh"}  # sourced by the hooks, never run


def test_shellcheck_passes_on_every_hook():
    if shutil.which("shellcheck") is None:
        message = "shellcheck is not installed (apt-get install shellcheck; setup.sh --tests installs it)"
        if os.environ.get("LABSTACK_REQUIRE_TESTBED") == "1":
            pytest.fail(message)
        pytest.skip(message)
    result = subprocess.run(["shellcheck", "-x", *(str(p.relative_to(HOOKS.parent)) for p in SCRIPTS)],
                            cwd=HOOKS.parent, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", [p for p in SCRIPTS if p.name not in SOURCED], ids=lambda p: p.name)
def test_hooks_are_strict_and_executable(script):
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "\nset -euo pipefail\n" in text
    assert os.access(script, os.X_OK)
    assert "require_root" in text  # every step is meant for `sudo`, as the components run it


def test_bash_layout_is_generated_from_the_python_contract():
    from components.layout import LAYOUT_SH, bash_layout

    assert LAYOUT_SH.read_text() == bash_layout(), \
        "hooks/layout.sh is stale: run `venv/bin/python -m components.layout > hooks/layout.sh`"


def test_bash_layout_names_are_the_python_names():
    """Each generated function and variable gives exactly the Python name, with LABSTACK_ROOT before paths only."""
    calls = [f"{key.lower()} elif blue" for key in layout.TEMPLATES] + ['echo "$LABSTACK_ETC"', 'echo "$PROXY_SITES"',
                                                                       'echo "$APP_COMPOSE"', 'echo "${COLORS[*]}"']
    expected = [layout.name(key, "elif", "blue") for key in layout.TEMPLATES] + [
        layout.ETC, layout.PROXY_SITES, layout.STATE_FILES["APP_COMPOSE"], " ".join(layout.COLORS)]
    for root in ("", "/tmp/server"):
        result = subprocess.run(["bash", "-c", "set -euo pipefail; source hooks/layout.sh; " + "; ".join(calls)],
                                cwd=HOOKS.parent, env={**os.environ, "LABSTACK_ROOT": root}, capture_output=True,
                                text=True, check=True)
        assert result.stdout.splitlines() == [root + value if value.startswith("/") else value for value in expected]


def _layout_literals() -> dict[str, re.Pattern]:
    """Names only layout.sh may spell out: the hooks use its variables and functions instead."""
    variable = r"\$\{?[A-Za-z_]\w*\}?"  # $app, ${color}
    color = rf"(?:{variable}|{'|'.join(layout.COLORS)})"
    files = [*layout.STATE_FILES.values(), *layout.PROXY_FILES.values()]
    patterns = {
        "server path": "|".join(re.escape(path) for path in (
            layout.ETC, layout.SRV, layout.REMOTE_HOOKS.rsplit("/", 1)[0], layout.CADDY_ETC)),
        "proxy project": re.escape(layout.PROXY_PROJECT),
        "label key": re.escape(layout.LABEL_APP.rsplit(".", 1)[0]),
        "state file": r"(?<![\w.-])(?:" + "|".join(re.escape(f) for f in files) + r")(?![\w.-])",
        "colour": r"\b(?:" + "|".join(layout.COLORS) + r")\b",
    }
    for key in ("APP_NETWORK", "DATA_PROJECT", "INIT_PROJECT", "RELEASE_PROJECT", "WEB_ALIAS"):
        patterns[key] = re.escape(layout.TEMPLATES[key]).replace(r"\{app\}", variable).replace(r"\{color\}", color)
    return {what: re.compile(pattern) for what, pattern in patterns.items()}


def layout_literals_in(text: str) -> list[str]:
    """`what: line` for each line (comments aside) that spells out a layout name."""
    found = []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        found += [f"{what}: {line.strip()}" for what, pattern in _layout_literals().items() if pattern.search(line)]
    return found


@pytest.mark.parametrize("hook", [p for p in sorted(HOOKS.rglob("*")) if p.is_file() and p.name != "layout.sh"
                                  and "__pycache__" not in p.parts],
                         ids=lambda p: str(p.relative_to(HOOKS)))
def test_hooks_take_every_server_name_from_layout_sh(hook):
    assert layout_literals_in(hook.read_text()) == [], \
        "use the names of hooks/layout.sh (generated from components/layout.py) instead"


@pytest.mark.parametrize("line", [
    'docker network rm "labstack-$app"', 'compose -p "$app-data" up', 'compose -p "${app}-green" down',
    'etc=/etc/labstack/apps/$app', 'cat "$etc/active-color"', 'for color in blue green; do',
    'docker ps -q --filter "label=org.labstack.app=$app"', 'sed "s/x/$app-$next-web/"',
    'compose -p labstack-proxy up', 'caddy reload --config /etc/caddy/Caddyfile',
])
def test_the_layout_literal_check_finds_spelled_out_names(line):
    assert layout_literals_in(line), line


@pytest.mark.parametrize("module", sorted((HOOKS / "agent").glob("*.py")), ids=lambda p: p.name)
def test_the_node_agent_needs_only_the_standard_library(module):
    """It runs with the server's own python3 (-I -S: no site-packages), as old as Ubuntu 22.04's 3.10."""
    import ast
    import sys

    tree = ast.parse(module.read_text(), feature_version=(3, 10))
    outside = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module]
        else:
            continue
        outside += [name for name in names if name.split(".")[0] not in (*sys.stdlib_module_names, "__future__",
                                                                          "agent")]
    assert outside == []
