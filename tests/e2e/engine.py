"""Plays the Pulumi engine's part for the remote commands the program declares, over real SSH.

The program is evaluated under mocks (labstack.stacks.offline.evaluate); this module takes the `command:remote:Command` and
`command:local:Command` resources it declared, in declaration order (which respects dependencies: a resource registers only once its
inputs and depends_on are resolved), and does what the engine and pulumi-command would do with them. Given the
dependencies the program registered (`evaluate_with_dependencies`), independent commands run concurrently, as the
Pulumi engine runs them (e.g. the workers of a cluster provision in parallel); without, one by one:

  * a new resource runs `create`;
  * changed `triggers` replace it: `create` of the new, then `delete` of the old (create-before-delete), or the
    other way round when the program registered it with `delete_before_replace` (e.g. a worker's Ray step: the old
    node is drained before Ray starts again under the same container name);
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
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from labstack.stacks.offline import Evaluation, FakeAws, evaluate
from tests.unit.helpers import recorded_dependencies, registered

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
    _delete_first: frozenset[str] = frozenset()
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def apply(self, evaluation: Evaluation, dependencies: Optional[dict[str, set[str]]] = None,
              delete_before_replace: frozenset[str] = frozenset(), parallel: int = 8) -> list[Run]:
        """One `pulumi up`: returns the runs it made; raises CommandFailed at the first failing command (after the
        commands already running have ended, as the engine lets them). With `dependencies` (resource name -> the
        names it registered as dependencies), a command starts as soon as the commands it depends on (directly or
        through other resources) are done. `delete_before_replace`: the names registered with that option."""
        start = len(self.runs)
        self._delete_first = delete_before_replace
        commands = [r for r in evaluation.resources if r.type in (REMOTE_COMMAND, LOCAL_COMMAND)]
        wanted = {r.name for r in commands}
        if dependencies is None:
            for resource in commands:
                self._step(resource.name, resource.inputs)
        else:
            self._concurrently(commands, _command_prerequisites(evaluation, dependencies, wanted), parallel)
        for name in reversed(list(self.order)):
            if name not in wanted:
                self._run(name, "delete", self.state.pop(name))
                self.order.remove(name)
        return self.runs[start:]

    def _step(self, name: str, new: dict) -> None:
        """What the engine does with one declared command: create, replace, update or nothing."""
        old = self.state.get(name)
        if old is None:
            self._run(name, "create", new)
        elif old.get("triggers") != new.get("triggers"):
            if name in self._delete_first:
                self._run(name, "delete", old)
                self._run(name, "create", new)
            else:
                self._run(name, "create", new)
                self._run(name, "delete", old)
        elif _comparable(old) != _comparable(new):
            self._run(name, "update" if new.get("update") else "create", new)
        with self._lock:
            self.state[name] = new
            if name not in self.order:
                self.order.append(name)

    def _concurrently(self, commands: list, prerequisites: dict[str, set[str]], parallel: int) -> None:
        pending = {r.name: r.inputs for r in commands}
        done: set[str] = set()
        failure: Optional[BaseException] = None
        running: dict[Future, str] = {}
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            while pending or running:
                if failure is None:
                    for name in [n for n in pending if prerequisites[n] <= done]:
                        running[pool.submit(self._step, name, pending.pop(name))] = name
                if not running:
                    break  # a failure stopped new starts (or nothing can start: would be a cycle)
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    name = running.pop(future)
                    if future.exception() is not None:
                        failure = failure or future.exception()
                    else:
                        done.add(name)
        if failure is not None:
            raise failure
        if pending:
            raise RuntimeError(f"commands wait on each other in a cycle: {sorted(pending)}")

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
        with self._lock:
            self.runs.append(Run(name, phase, result))
        if result.returncode != 0:
            raise CommandFailed(name, phase, result)


def _command_prerequisites(evaluation: Evaluation, dependencies: dict[str, set[str]],
                           commands: set[str]) -> dict[str, set[str]]:
    """For each command, the commands it waits for: its dependencies, seen through resources that run nothing
    (an instance, a component's other children) down to the commands behind them."""
    known = {r.name for r in evaluation.resources}

    def behind(name: str, seen: set[str]) -> set[str]:
        found: set[str] = set()
        for dependency in dependencies.get(name, set()) & known:
            if dependency in seen:
                continue
            seen.add(dependency)
            found |= {dependency} if dependency in commands else behind(dependency, seen)
        return found

    return {name: behind(name, set()) for name in commands}


def evaluate_with_dependencies(config: dict, stack: str,
                               aws: FakeAws) -> tuple[Evaluation, dict[str, set[str]], frozenset[str]]:
    """labstack.stacks.offline.evaluate, plus what each resource was registered as depending on and the names registered with
    delete_before_replace (RemoteEngine.apply's arguments, in its order)."""
    with recorded_dependencies() as dependencies, registered(lambda request: request.deleteBeforeReplace) as options:
        evaluation = evaluate(config, stack, aws).ok()
    return evaluation, dependencies, frozenset(name for name, flags in options.items() if any(flags))


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


