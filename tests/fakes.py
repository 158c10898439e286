"""A recording `pulumi` for tests of tasks that drive the Pulumi CLI (which cannot be installed here)."""
from __future__ import annotations

import json
import os
from pathlib import Path

SCRIPT = """#!/usr/bin/env python3
import json, os, sys
with open({log!r}, "a") as out:
    out.write(json.dumps({{"argv": sys.argv[1:], "cwd": os.getcwd(),
                          "backend": os.environ.get("PULUMI_BACKEND_URL"),
                          "passphrase_file": os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE")}}) + "\\n")
if sys.argv[1:3] == ["stack", "output"]:
    print(os.environ.get("FAKE_PULUMI_OUTPUTS", "{{}}"))
sys.exit(int(os.environ.get("FAKE_PULUMI_EXIT", "0")))
"""


def install_fake_pulumi(folder: Path, monkeypatch):
    """Put a `pulumi` first on PATH that records each call (argv, cwd, backend settings) and answers
    `stack output` with FAKE_PULUMI_OUTPUTS; exits with FAKE_PULUMI_EXIT. Returns a reader of the calls."""
    log = folder / "pulumi-calls.jsonl"
    fake = folder / "bin" / "pulumi"
    fake.parent.mkdir(parents=True)
    fake.write_text(SCRIPT.format(log=str(log)))
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    return lambda: [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
