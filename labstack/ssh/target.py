"""SSH to a stack's server with the ssh client: the stack's own key, and only the host key the stack pinned.

The target comes from the stack's outputs (`pulumi stack output --json`: publicIp, knownHosts) and its config
(labstack:serverPem, the login user); tests build an SshTarget for a test bed host directly. Host keys are never
learnt on first use: the known_hosts file holds exactly the stack's `knownHosts` line and StrictHostKeyChecking is
on, so a server with another key is refused instead of trusted.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Optional

from components.config import APP_NAME_RE, LOGIN_USER, StackConfig  # the names hooks/lib.sh enforces too
from labstack.ssh import commands as remote_commands
from labstack.stacks import stackfile
from labstack.stacks.pulumi_cli import PulumiCli, PulumiError

KNOWN_HOSTS_DIR = Path.home() / ".cache" / "labstack" / "known_hosts"


class RemoteError(RuntimeError):
    """SSH could not reach the server, or a remote command failed; the message says which and why."""


@dataclass
class SshTarget:
    host: str
    user: str
    key_path: Path
    known_hosts: str  # one known_hosts line: "<names> <key type> <key>"
    port: int = 22
    stack: str = ""
    _known_hosts_file: Optional[Path] = field(default=None, repr=False)

    def known_hosts_file(self) -> Path:
        """A file holding only the pinned line (named after its content, so `invoke ssh` can exec into ssh with it
        and repeated runs reuse it). A public host key is no secret; the file is not removed afterwards."""
        if self._known_hosts_file is None:
            import hashlib

            line = self.known_hosts.strip() + "\n"
            KNOWN_HOSTS_DIR.mkdir(parents=True, exist_ok=True)
            path = KNOWN_HOSTS_DIR / f"{self.stack or 'host'}-{hashlib.sha256(line.encode()).hexdigest()[:16]}"
            if not path.is_file() or path.read_text() != line:
                handle, temporary = tempfile.mkstemp(dir=KNOWN_HOSTS_DIR)
                with os.fdopen(handle, "w") as out:
                    out.write(line)
                os.replace(temporary, path)  # atomic: a concurrent task never reads half a line
            self._known_hosts_file = path
        return self._known_hosts_file

    def close(self) -> None:
        self._known_hosts_file = None

    def __enter__(self) -> "SshTarget":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def ssh_argv(self, command: Optional[str] = None, *, tty: bool = False, compress: bool = False,
                 connect_timeout: int = 15) -> list[str]:
        argv = ["ssh", "-i", str(self.key_path), "-p", str(self.port),
                "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
                "-o", f"UserKnownHostsFile={self.known_hosts_file()}", "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", f"ConnectTimeout={connect_timeout}", "-o", "ServerAliveInterval=15",
                # A lost server is noticed after 2 minutes, a busy one (a long pg_dump on a loaded host) is not dropped.
                "-o", "ServerAliveCountMax=8", "-o", "LogLevel=ERROR"]
        if not tty:
            argv += ["-o", "BatchMode=yes", "-T"]
        else:
            argv.append("-t")
        if compress:
            argv.append("-C")
        argv.append(f"{self.user}@{self.host}")
        if command is not None:
            argv.append(command)
        return argv

    def run(self, command: str, *, check: bool = True, timeout: float = 300, input: Optional[bytes] = None,
            stdin: Optional[IO] = None, stdout: Optional[IO] = None, compress: bool = False,
            what: str = "") -> subprocess.CompletedProcess:
        """Run one remote shell command; stdout is captured (text) unless a file is given for it."""
        try:
            if stdin is None and input is None:
                stdin = subprocess.DEVNULL  # never let ssh read the operator's terminal
            result = subprocess.run(self.ssh_argv(command, compress=compress), input=input, stdin=stdin,
                                    stdout=stdout if stdout is not None else subprocess.PIPE,
                                    stderr=subprocess.PIPE, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RemoteError(f"{what or command!r} on {self.host} did not finish within {timeout:.0f}s") from None
        if check and result.returncode != 0:
            raise RemoteError(self.describe_failure(result, what or command))
        return result

    def text(self, command: str, **kwargs) -> str:
        return self.run(command, **kwargs).stdout.decode(errors="replace")

    def describe_failure(self, result: subprocess.CompletedProcess, what: str) -> str:
        stderr = (result.stderr or b"").decode(errors="replace").strip()
        if result.returncode == 255:  # ssh's own failure, not the remote command's
            if "Host key verification failed" in stderr or "REMOTE HOST IDENTIFICATION HAS CHANGED" in stderr:
                return (f"the server at {self.host} did not present the host key this stack pinned (knownHosts); "
                        f"refusing to connect. If the server was replaced, run `invoke up -s "
                        f"{self.stack or '<stack>'}` to refresh the outputs")
            return f"cannot reach {self.user}@{self.host}:{self.port} over SSH: {stderr.splitlines()[-1] if stderr else 'no answer'}"
        tail = "\n".join(stderr.splitlines()[-8:])
        return f"{what} failed on {self.host} (exit {result.returncode}){': ' + tail if tail else ''}"

    def answers(self, timeout: int = 10) -> bool:
        try:
            return subprocess.run(self.ssh_argv("true", connect_timeout=timeout), capture_output=True,
                                  stdin=subprocess.DEVNULL,
                                  timeout=timeout + 5).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def exec_interactive(self, command: Optional[str] = None) -> None:
        """Replace this process with ssh (a real terminal: job control, resize, Ctrl-C all go to the server)."""
        argv = self.ssh_argv(command, tty=True)
        os.execvp(argv[0], argv)


def stack_outputs(stack: str, cli: Optional[PulumiCli] = None) -> dict:
    cli = cli or PulumiCli()
    try:
        return cli.outputs(stack)
    except (PulumiError, ValueError) as error:
        raise RemoteError(f"cannot read the outputs of stack {stack!r} ({error}); has `invoke up -s {stack}` run?") \
            from None


def target_for_stack(stack: str, outputs: Optional[dict] = None, cli: Optional[PulumiCli] = None,
                     config: Optional[StackConfig] = None) -> SshTarget:
    """The SSH target of a stack: address and pinned host key from its outputs, key and login from its config."""
    config = config or stackfile.load(stack)
    outputs = outputs if outputs is not None else stack_outputs(stack, cli)
    host, known_hosts = outputs.get("publicIp"), outputs.get("knownHosts")
    if not host or not known_hosts:
        raise RemoteError(f"stack {stack!r} has no server address or host key in its outputs (publicIp, "
                          f"knownHosts): run `invoke up -s {stack}` first")
    if config.key_pair.pem_path is None:
        raise RemoteError(f"labstack:serverPem is not set in stack {stack!r}: labstack needs the private key to log "
                          f"in (`invoke config -s {stack} --set labstack:serverPem=~/.ssh/<key>`)")
    existing = config.existing_server
    return SshTarget(host=str(host), user=existing.user if existing else LOGIN_USER, key_path=config.key_pair.pem_path,
                     known_hosts=str(known_hosts), port=existing.port if existing else 22, stack=stack)


def checked_app(app: str) -> str:
    """App names go into remote paths and commands: only the names the stack config allows get that far."""
    if not APP_NAME_RE.match(app or ""):
        raise RemoteError(f"bad app name {app!r}: lower-case letters, digits and dashes, starting with a letter")
    return app


# --- reading the deploy hooks' records on the server ---------------------------------------------------------------

def container_ids(target: SshTarget, app: str, role: Optional[str] = None, color: Optional[str] = None) -> list[str]:
    """Running containers of an app, by their labels (optionally one role, e.g. postgres, and one colour)."""
    return target.text(remote_commands.container_ids(app, role, color), what="listing containers").split()


def app_state(target: SshTarget, app: str) -> dict[str, str]:
    """What serves, as the server's state file records it (COLOR, RELEASE, IMAGE, WORKERS, SWITCHED_AT); {} when no
    release serves."""
    text = target.text(remote_commands.app_state(app), what=f"reading {app}'s state")
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def active_color(target: SshTarget, app: str) -> Optional[str]:
    """The colour of the app's serving release, or None before its first deploy."""
    return app_state(target, app).get("COLOR") or None


def last_release(target: SshTarget, app: str) -> list[str]:
    """The last line of the app's releases log (deploy-app.sh): [utc time, release, image], or [] if none."""
    return target.text(remote_commands.last_release(app)).split()
