"""Pulumi as labstack drives it: the Automation API (pulumi.automation, a local workspace on the project folder), the
local file backend by default and one passphrase file.

The Automation API runs the `pulumi` CLI for every step, so the commands it runs are what the tests check (with a
recording `pulumi` on PATH), and each runs through run_pulumi, which keeps a Ctrl-C from killing pulumi mid-update.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

from labstack.stacks.stackfile import PROJECT_DIR

STATE_DIR = PROJECT_DIR / ".pulumi-state"  # local file backend: no Pulumi Cloud account needed
PASSPHRASE_FILE = Path.home() / ".config" / "labstack" / "pulumi-passphrase"
POLICY_PACK = PROJECT_DIR / "policy"  # labstack's policies run on every `pulumi up` the tasks start (README: Policies)
POLICY_CONFIG = POLICY_PACK / "config.json"  # optional: the operator's allow-lists


class PulumiError(RuntimeError):
    pass


def run_pulumi(argv: Sequence[str], *, cwd: Path, env: dict, on_output: Optional[Callable[[str], None]] = None,
               on_error: Optional[Callable[[str], None]] = None) -> tuple[int, str, str]:
    """Run one pulumi command, its lines handed to the callbacks as they come; (exit code, stdout, stderr).

    Ctrl-C never kills pulumi: pulumi cancels gracefully, letting the operations in flight finish and recording
    them (an instance created then and missing from the state would be left running and billing). A terminal's
    Ctrl-C reaches pulumi by itself (same process group); one that only reached Python (a notebook's interrupt) is
    passed on. A second Ctrl-C also reaches pulumi, which then stops at once."""
    import threading

    lines: dict[str, list[str]] = {"out": [], "err": []}

    def pump(stream, sink: list[str], callback) -> None:
        for line in iter(stream.readline, ""):
            sink.append(line.rstrip("\n"))
            if callback:
                callback(line.rstrip("\n"))
        stream.close()

    with subprocess.Popen(list(argv), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, encoding="utf-8", errors="replace") as process:
        pumps = [threading.Thread(target=pump, args=(process.stdout, lines["out"], on_output), daemon=True),
                 threading.Thread(target=pump, args=(process.stderr, lines["err"], on_error), daemon=True)]
        for thread in pumps:
            thread.start()
        interrupted = False
        while True:
            try:
                process.wait()
                break
            except KeyboardInterrupt:
                interrupted = True
                if not _terminal_signals_children():
                    process.send_signal(signal.SIGINT)
        for thread in pumps:
            thread.join()
    if interrupted:
        raise KeyboardInterrupt
    return process.returncode, "\n".join(lines["out"]), "\n".join(lines["err"])


def _terminal_signals_children() -> bool:
    """True when this process runs in the foreground of a terminal, whose Ctrl-C reaches pulumi too."""
    try:
        return os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    except (OSError, ValueError, AttributeError):
        return False


def _automation_command(binary: str):
    """Pulumi's Automation API, running the CLI through run_pulumi (so a Ctrl-C is safe there too)."""
    from pulumi.automation import PulumiCommand
    from pulumi.automation._cmd import CommandResult
    from pulumi.automation.errors import create_command_error

    class LabstackPulumiCommand(PulumiCommand):
        def run(self, args, cwd, additional_env, on_output=None, on_error=None):
            if "--non-interactive" not in args:
                args = ["--non-interactive", *args]
            env = {**os.environ, **additional_env, "PULUMI_AUTOMATION_API": "true"}
            code, stdout, stderr = run_pulumi([self.command, *args], cwd=Path(cwd), env=env, on_output=on_output,
                                              on_error=on_error)
            result = CommandResult(stdout=stdout, stderr=stderr, code=code)
            if code != 0:
                error = create_command_error(result)
                error.labstack_argv = [a for a in args if a != "--non-interactive"]
                error.labstack_result = result
                raise error
            return result

    command = LabstackPulumiCommand()  # asks `pulumi version`: a CLI older than the SDK's minimum is refused here
    command.command = binary
    return command


@dataclass
class PulumiCli:
    """Stacks driven through Pulumi's Automation API (a local workspace on the project folder) with labstack's
    backend and passphrase rules; every call is the `pulumi` CLI underneath."""

    project_dir: Path = PROJECT_DIR
    binary: str = "pulumi"
    _handles: dict = field(default_factory=dict, init=False, repr=False)  # stack name -> Automation API handle
    _automation: object = field(default=None, init=False, repr=False)  # the PulumiCommand, made on first use

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

    def stack(self, stack: str, *, create: bool = True, announce=print):
        """The Automation API's handle on `stack` (created in the state when new and create=True)."""
        from pulumi import automation as auto

        handles = self._handles
        if stack in handles:  # selected (or created) once per PulumiCli: every later step uses the same handle
            return handles[stack]
        env = self.environment(announce)
        options = auto.LocalWorkspaceOptions(work_dir=str(self.project_dir), env_vars=env,
                                             pulumi_command=self._command())
        with self._errors():
            if create:
                handles[stack] = auto.create_or_select_stack(stack_name=stack, work_dir=str(self.project_dir),
                                                             opts=options)
            else:
                handles[stack] = auto.select_stack(stack_name=stack, work_dir=str(self.project_dir), opts=options)
        return handles[stack]

    def _command(self):
        self.require()
        if self._automation is None:
            with self._errors():
                self._automation = _automation_command(self.binary)
        return self._automation

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """The Automation API's errors as one PulumiError naming the command and its last error line."""
        from pulumi.automation.errors import CommandError, InvalidVersionError

        try:
            yield
        except CommandError as error:
            argv = getattr(error, "labstack_argv", None) or []
            result = getattr(error, "labstack_result", None)
            stderr = [line for line in (result.stderr if result else str(error)).splitlines() if line.strip()]
            detail = f": {stderr[-1].strip()}" if stderr else ""
            code = result.code if result else "?"
            shown = " ".join(_without_automation_flags(argv))
            raise PulumiError(f"`pulumi {shown}` failed (exit {code}){detail}") from None
        except InvalidVersionError as error:
            raise PulumiError(f"the Pulumi CLI is too old for labstack ({error}); update it: "
                              "`curl -fsSL https://get.pulumi.com | sh`") from None
        except subprocess.CalledProcessError as error:
            raise PulumiError(f"`{' '.join(map(str, error.cmd))}` failed (exit {error.returncode})") from None

    def can_update(self, stack: str, yes: bool, confirm: Callable[[str], str] = input) -> None:
        """Refuse, before anything changes, an update nobody could confirm (no --yes, no terminal to ask in)."""
        if not yes and confirm is input and not sys.stdin.isatty():
            raise PulumiError(f"updating {stack} needs a yes: run it in a terminal to confirm after the preview, or "
                              f"pass --yes (yes=True in Python) to update without asking")

    def up(self, stack: str, yes: bool = False, on_output: Optional[Callable[[str], None]] = print,
           on_event: Optional[Callable] = None, confirm: Callable[[str], str] = input) -> None:
        """`pulumi up` with labstack's policy pack. Without yes, the preview is shown first and the update runs only
        after a yes at the prompt (the Automation API itself never prompts)."""
        self.can_update(stack, yes, confirm)
        handle = self.stack(stack)
        with self._errors():
            if not yes:
                handle.preview(policy_packs=[str(POLICY_PACK)], policy_pack_configs=_policy_configs(),
                               on_output=on_output or print)  # what the question is about is always shown
                if confirm(f"Do you want to perform this update on {stack}? [y/N] ").strip().lower() not in ("y", "yes"):
                    raise PulumiError(f"update of {stack} not confirmed: nothing was changed")
            handle.up(policy_packs=[str(POLICY_PACK)], policy_pack_configs=_policy_configs(), on_output=on_output,
                      on_event=on_event)

    def preview(self, stack: str, on_output: Optional[Callable[[str], None]] = print) -> None:
        """`pulumi preview` with the policy pack `up` runs, so a preview shows what `up` would refuse."""
        handle = self.stack(stack)
        with self._errors():
            handle.preview(policy_packs=[str(POLICY_PACK)], policy_pack_configs=_policy_configs(), on_output=on_output)

    def destroy(self, stack: str, on_output: Optional[Callable[[str], None]] = print,
                on_event: Optional[Callable] = None) -> None:
        handle = self.stack(stack, create=False)
        with self._errors():
            handle.destroy(on_output=on_output, on_event=on_event)

    def set_config(self, stack: str, key: str, value: str, *, path: bool = False, secret: bool = False) -> None:
        from pulumi.automation import ConfigValue

        handle = self.stack(stack)
        with self._errors():
            handle.set_config(key, ConfigValue(value=value, secret=secret), path=path)

    def all_config(self, stack: str) -> dict:
        """The stack's config: key -> ConfigValue (value, secret)."""
        handle = self.stack(stack)
        with self._errors():
            return handle.get_all_config()

    def get_config(self, stack: str, key: str, *, path: bool = False) -> str:
        handle = self.stack(stack, create=False)
        with self._errors():
            return handle.get_config(key, path=path).value

    def outputs(self, stack: str) -> dict:
        """The stack's outputs, secrets shown as `[secret]`. One `pulumi stack output --json`, not the Automation
        API: its outputs() runs `pulumi version`, `stack select` and a second read that decrypts every secret, four
        CLI starts where every ssh, logs or apps task needs one masked read of the address and host key."""
        argv = ["stack", "output", "--json", "--stack", stack]
        code, stdout, stderr = run_pulumi([self.binary, *argv], cwd=self.project_dir, env=self.environment())
        if code != 0:
            lines = [line for line in stderr.splitlines() if line.strip()]
            raise PulumiError(f"`pulumi {' '.join(argv)}` failed (exit {code}){': ' + lines[-1].strip() if lines else ''}")
        try:
            return json.loads(stdout or "{}")
        except ValueError:
            raise PulumiError(f"`pulumi {' '.join(argv)}` did not answer JSON") from None

    def remove(self, stack: str) -> None:
        """Remove the stack from the state, keeping its stack file (`pulumi stack rm` would delete it)."""
        handle = self.stack(stack, create=False)
        with self._errors():
            handle.workspace.remove_stack(stack, preserve_config=True)


def _without_automation_flags(argv: list[str]) -> list[str]:
    """A command as an operator would type it: without the Automation API's own flags."""
    shown, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--exec-kind", "--event-log"):
            skip = True
        elif arg not in ("--skip-preview", "--non-interactive"):
            shown.append(arg)
    return shown


def _policy_configs() -> Optional[list[str]]:
    return [str(POLICY_CONFIG)] if POLICY_CONFIG.is_file() else None


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
