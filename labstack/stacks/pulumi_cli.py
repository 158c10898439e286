"""The Pulumi CLI as the tasks drive it: local file backend by default, one passphrase file, exact commands.

Tasks never talk to Pulumi's engine themselves; they run the same `pulumi` commands an operator would, so those
commands are what the tests check (with a recording `pulumi` on PATH).
"""
from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from labstack.stacks.stackfile import PROJECT_DIR

STATE_DIR = PROJECT_DIR / ".pulumi-state"  # local file backend: no Pulumi Cloud account needed
PASSPHRASE_FILE = Path.home() / ".config" / "labstack" / "pulumi-passphrase"
POLICY_PACK = PROJECT_DIR / "policy"  # labstack's policies run on every `pulumi up` the tasks start (README: Policies)
POLICY_CONFIG = POLICY_PACK / "config.json"  # optional: the operator's allow-lists


def _policy_args() -> list[str]:
    """labstack's policy pack, and its settings when the operator wrote policy/config.json."""
    config = ["--policy-pack-config", str(POLICY_CONFIG)] if POLICY_CONFIG.is_file() else []
    return ["--policy-pack", str(POLICY_PACK), *config]


def up_args(stack: str, yes: bool = False) -> list[str]:
    """`pulumi up` with labstack's policy pack."""
    return ["up", "--stack", stack, *_policy_args(), *(["--yes"] if yes else [])]


def preview_args(stack: str) -> list[str]:
    """`pulumi preview` with the policy pack `up` runs, so a preview shows what `up` would refuse."""
    return ["preview", "--stack", stack, *_policy_args()]


class PulumiError(RuntimeError):
    pass


@dataclass
class PulumiCli:
    project_dir: Path = PROJECT_DIR
    binary: str = "pulumi"

    def require(self) -> None:
        """Fail before anything is made (state folder, passphrase file, stack) when there is no CLI to use them."""
        if shutil.which(self.binary) is None:
            raise PulumiError("the Pulumi CLI is not installed: `curl -fsSL https://get.pulumi.com | sh`, then open a "
                              "new shell (see the README's prerequisites)")

    def environment(self, announce=print) -> dict[str, str]:
        self.require()
        env = dict(os.environ)
        if not env.get("PULUMI_BACKEND_URL") and not _logged_in_elsewhere():
            STATE_DIR.mkdir(exist_ok=True)
            env["PULUMI_BACKEND_URL"] = f"file://{STATE_DIR}"
        if not env.get("PULUMI_CONFIG_PASSPHRASE") and not env.get("PULUMI_CONFIG_PASSPHRASE_FILE"):
            if not PASSPHRASE_FILE.exists():
                PASSPHRASE_FILE.parent.mkdir(parents=True, exist_ok=True)
                PASSPHRASE_FILE.touch(mode=0o600)
                PASSPHRASE_FILE.write_text(secrets.token_urlsafe(32) + "\n")
                announce(f"Created {PASSPHRASE_FILE}: it encrypts this machine's stack secrets. Back it up; "
                         "without it `pulumi up` cannot read them.")
            env["PULUMI_CONFIG_PASSPHRASE_FILE"] = str(PASSPHRASE_FILE)
        return env

    def run(self, args: Sequence[str], *, env: Optional[dict] = None, capture: bool = False,
            check: bool = True) -> subprocess.CompletedProcess:
        self.require()
        pipe = subprocess.PIPE if capture else None
        with subprocess.Popen([self.binary, *args], cwd=self.project_dir, env=env or self.environment(),
                              stdout=pipe, stderr=pipe, text=True) as process:
            try:
                stdout, stderr = process.communicate()
            except KeyboardInterrupt:
                # The terminal's Ctrl-C reached pulumi too, which cancels gracefully: it lets the operations in
                # flight finish and records them. subprocess.run would SIGKILL it, and an instance created then
                # would be missing from the state, so no destroy would remove it. A second Ctrl-C also reaches
                # pulumi, which then stops at once.
                try:
                    process.communicate()
                except KeyboardInterrupt:
                    process.wait()
                raise
        result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
        if check and result.returncode != 0:
            detail = (result.stderr or "").strip() if capture else ""
            raise PulumiError(f"`pulumi {' '.join(args)}` failed (exit {result.returncode}){': ' + detail if detail else ''}")
        return result

    def select(self, stack: str, env: dict) -> None:
        self.run(["stack", "select", "--create", "--stack", stack], env=env)

    def up(self, stack: str, yes: bool = False) -> None:
        env = self.environment()
        self.select(stack, env)
        self.run(up_args(stack, yes), env=env)


def _logged_in_elsewhere() -> bool:
    """Respect an operator who already chose a backend with `pulumi login`."""
    credentials = Path.home() / ".pulumi" / "credentials.json"
    if not credentials.is_file():
        return False
    import json
    try:
        return bool(json.loads(credentials.read_text()).get("current"))
    except (ValueError, OSError):
        return False
