"""Every hook is strict bash and shellcheck-clean (they run on servers, where a silent failure loses deploys)."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

HOOKS = Path(__file__).resolve().parents[2] / "hooks"
SCRIPTS = sorted(HOOKS.glob("*.sh"))
SOURCED = {"lib.sh", "layout.sh"}  # sourced by the hooks, never run


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
