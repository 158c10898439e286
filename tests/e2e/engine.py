"""Plays the Pulumi engine's part for the remote commands the program declares, over real SSH.

The program is evaluated under mocks (ops.offline.evaluate); this module takes the `command:remote:Command` and
`command:local:Command` resources it declared, in declaration order (which respects dependencies: a resource registers only once its
inputs and depends_on are resolved), and does what the engine and pulumi-command would do with them:

  * a new resource runs `create`;
  * changed `triggers` replace it: `create` of the new, then `delete` of the old (create-before-delete);
  * any other changed input runs `update`, or `create` when there is no update command;
  * unchanged inputs run nothing;
  * a resource that disappeared runs its `delete`, in reverse order.

Commands run over OpenSSH with the connection's private key and with the connection's `hostKey` as the only
known host key (StrictHostKeyChecking=yes), exactly as the provider pins it; local commands run with `sh -c` in
their `dir` with their `environment`, as the provider runs them. Nothing here knows the hooks.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ops.offline import Evaluation

REMOTE_COMMAND = "command:remote:Command"
LOCAL_COMMAND = "command:local:Command"


class CommandFailed(RuntimeError):
    """What `pulumi up` would report: the resource, the exit code and the command's output."""

    def __init__(self, resource: str, phase: str, result: subprocess.CompletedProcess):
        self.resource, self.phase, self.result = resource, phase, result
        super().__init__(f"{resource}: {phase} exited {result.returncode}\nstdout:\n{result.stdout}\n"
                         f"stderr:\n{result.stderr}")


@dataclass
class Run:
    resource: str
    phase: str  # create | update | delete
    result: subprocess.CompletedProcess


@dataclass
class RemoteEngine:
    """Holds the 'state' between applies, like a stack's checkpoint does."""

    state: dict[str, dict] = field(default_factory=dict)  # resource name -> inputs last applied
    order: list[str] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    timeout: float = 900

    def apply(self, evaluation: Evaluation) -> list[Run]:
        """One `pulumi up`: returns the runs it made; raises CommandFailed at the first failing command."""
        start = len(self.runs)
        commands = [r for r in evaluation.resources if r.type in (REMOTE_COMMAND, LOCAL_COMMAND)]
        wanted = {r.name for r in commands}
        for resource in commands:
            old = self.state.get(resource.name)
            new = resource.inputs
            if old is None:
                self._run(resource.name, "create", new)
            elif old.get("triggers") != new.get("triggers"):
                self._run(resource.name, "create", new)
                self._run(resource.name, "delete", old)
            elif _comparable(old) != _comparable(new):
                self._run(resource.name, "update" if new.get("update") else "create", new)
            self.state[resource.name] = new
            if resource.name not in self.order:
                self.order.append(resource.name)
        for name in reversed(list(self.order)):
            if name not in wanted:
                self._run(name, "delete", self.state.pop(name))
                self.order.remove(name)
        return self.runs[start:]

    def destroy(self) -> list[Run]:
        """`pulumi destroy` for the remote commands: deletes in reverse order of creation."""
        start = len(self.runs)
        for name in reversed(list(self.order)):
            self._run(name, "delete", self.state.pop(name))
            self.order.remove(name)
        return self.runs[start:]

    def _run(self, name: str, phase: str, inputs: dict) -> None:
        script = inputs.get(phase) or (inputs.get("create") if phase == "update" else None)
        if not script:
            return  # e.g. no delete command: the engine just forgets the resource
        # The provider sends stdin with create/update only.
        stdin = inputs.get("stdin") if phase != "delete" else None
        if "connection" in inputs:
            result = ssh(inputs["connection"], script, stdin, self.timeout)
        else:
            result = subprocess.run(["sh", "-c", script], input=stdin or "", capture_output=True, text=True,
                                    cwd=inputs.get("dir"), env={**os.environ, **(inputs.get("environment") or {})},
                                    timeout=self.timeout)
        self.runs.append(Run(name, phase, result))
        if result.returncode != 0:
            raise CommandFailed(name, phase, result)


def _comparable(inputs: dict) -> dict:
    return {k: v for k, v in inputs.items() if k != "triggers"}


def ssh(connection: dict, script: str, stdin: Optional[str], timeout: float) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="labstack-e2e-") as scratch:
        key = Path(scratch) / "key"
        key.write_text(connection["privateKey"])
        os.chmod(key, 0o600)
        known_hosts = Path(scratch) / "known_hosts"
        port = int(connection.get("port") or 22)
        host = connection["host"] if port == 22 else f"[{connection['host']}]:{port}"
        known_hosts.write_text(f"{host} {connection['hostKey']}\n")
        argv = ["ssh", "-F", "/dev/null", "-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known_hosts}",
                "-o", "GlobalKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR",
                "-p", str(port), f"{connection['user']}@{connection['host']}", "--", script]
        return subprocess.run(argv, input=stdin if stdin is not None else "", capture_output=True, text=True,
                              timeout=timeout)


