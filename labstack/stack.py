"""`Stack`: one experiment's stack from Python — the same verbs as the invoke tasks (check, up, stop, start, destroy,
outputs, cost) and crimpl's server workflow (submit a script with its files, run set-up commands).

    import labstack
    stack = labstack.Stack("rome-pilot")
    job = stack.submit(["python train.py --seed 1"], files=["train.py", "data/"])
    job.wait(); job.fetch("out/", dest="results")

The stack file (stacks/Pulumi.<name>.yaml) is the truth, validated by the one config model; Pulumi runs through
labstack.stacks.pulumi_cli with the same state folder and passphrase as the tasks.
"""
from __future__ import annotations

import io
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Sequence, Union

from labstack.project import use_project

if TYPE_CHECKING:
    from components.config import StackConfig
    from labstack.jobs.job import Job
    from labstack.ssh.target import SshTarget
    from labstack.stacks.pulumi_cli import PulumiCli

Commands = Union[str, Path, Sequence[str]]


@dataclass(frozen=True)
class RunResult:
    """What `Stack.run` got back: the commands' combined output and the exit code of the first that failed (or 0)."""

    output: str
    exit_code: int

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class Stack:
    """One stack file, stacks/Pulumi.<name>.yaml. Reading it never touches AWS; `up`, `stop`, `start` and `destroy`
    run Pulumi; `submit`, `run` and `jobs` reach the stack's server over its pinned SSH connection."""

    def __init__(self, name: str, *, project: Optional[Union[str, Path]] = None, cli: Optional["PulumiCli"] = None):
        if project is not None:
            use_project(project)
        from labstack.stacks import stackfile

        stackfile.read_stack_text(name)  # an unknown stack is refused here, naming the stacks there are
        self.name = name
        self._cli = cli
        self._target: Optional["SshTarget"] = None

    def __repr__(self) -> str:
        return f"Stack({self.name!r})"

    # --- the stack file ------------------------------------------------------------------------------------------

    @classmethod
    def create(cls, name: str, *, like: Optional[str] = None, region: Optional[str] = None,
               instance_type: Optional[str] = None, cluster: Union[None, int, Mapping[str, Any]] = None,
               data_volume: Union[None, int, Mapping[str, Any]] = None,
               auto_stop: Union[None, bool, Mapping[str, Any]] = None,
               settings: Optional[Mapping[str, Any]] = None) -> "Stack":
        """Write stacks/Pulumi.<name>.yaml: a copy of the stack `like` (comments kept) with these settings, validated
        by the config model before the file exists. `cluster=3` means 3 workers, `data_volume=100` a 100 GB volume,
        `auto_stop=False` none; a mapping sets the whole key (e.g. `auto_stop={"idleMinutes": 30}`); `settings` sets
        any other `labstack:` key by its stack-file name. A bad value raises ConfigError with the lines
        `invoke check` prints; nothing is written then."""
        from labstack.stacks import stackfile

        document = _document(like)
        config = document["config"]
        if region is not None:
            config["aws:region"] = region
        values = {"instanceType": instance_type, "cluster": {"workers": cluster} if isinstance(cluster, int) else cluster,
                  "dataVolume": {"sizeGb": data_volume} if isinstance(data_volume, int) else data_volume,
                  "autoStop": {"enabled": auto_stop} if isinstance(auto_stop, bool) else auto_stop, **(settings or {})}
        for key, value in values.items():
            if value is not None:
                config[key if ":" in key else f"labstack:{key}"] = _plain(value)
        text = _dump(document, like, name)
        path = stackfile.stack_file(name)
        if path.exists():
            raise stackfile.StackFileError(f"{path} exists already: choose another stack name, or use Stack({name!r})")
        offline = stackfile.offline_config(stackfile.parse_stack_text(path, text))
        stackfile.load_stack_config(offline.config, name, secret_keys=offline.secret_keys, warnings=offline.warnings)
        stackfile.write_new(name, text)
        return cls(name)

    @property
    def config(self) -> "StackConfig":
        """The typed config (ConfigError listing every problem of a broken stack file)."""
        from labstack.stacks import stackfile

        return stackfile.load(self.name)

    def check(self) -> dict[str, int]:
        """Evaluate the stack offline under Pulumi mocks, as `invoke check` does: {resource type: count}. A broken
        stack file raises ConfigError with the problem lines; the program failing raises its error."""
        from labstack.stacks import stackfile
        from labstack.stacks.offline import evaluate

        offline = stackfile.read_offline(self.name)
        result = evaluate(offline.config, self.name, secret_keys=offline.secret_keys)
        if result.error is not None:
            raise result.error
        counts: dict[str, int] = {}
        for resource in result.resources:
            counts[resource.type] = counts.get(resource.type, 0) + 1
        return counts

    # --- Pulumi ----------------------------------------------------------------------------------------------------

    @property
    def cli(self) -> "PulumiCli":
        from labstack.stacks.pulumi_cli import PulumiCli

        self._cli = self._cli or PulumiCli()
        return self._cli

    def up(self, yes: bool = True, progress: Callable[[str], None] = print) -> None:
        """`pulumi up` with labstack's policy pack (the stack is created in the state if new), one progress line per
        resource done (from Pulumi's event stream). From Python the default is yes=True: no confirmation prompt."""
        from labstack.stacks import stackfile
        from labstack.stacks.progress import EventProgress

        stackfile.load(self.name)  # a broken stack file: its problems now, not after Pulumi's start-up
        self.cli.up(self.name, yes=yes, on_output=None, on_event=EventProgress(progress))
        self._target = None

    def preview(self) -> None:
        """`pulumi preview` with labstack's policy pack: what `up` would change, printed."""
        from labstack.stacks import stackfile

        stackfile.load(self.name)
        self.cli.preview(self.name)

    def destroy(self, progress: Callable[[str], None] = print) -> None:
        """`pulumi destroy`: the program exports each app's data first (a failed export stops the destroy, nothing is
        lost) and snapshots or keeps the data volume as the stack file says."""
        from labstack.stacks.progress import EventProgress

        self.cli.destroy(self.name, on_output=None, on_event=EventProgress(progress))
        self._target = None

    def outputs(self) -> dict:
        """The stack's outputs (publicIp, knownHosts, sshCommand, urls...), secrets masked."""
        from labstack.ssh.target import stack_outputs

        return stack_outputs(self.name, self.cli)

    def status(self) -> dict:
        """Where the stack stands: the desired state from the stack file, the server's address and EC2's word on
        the instance (absent before the first `up`)."""
        outputs = self.outputs()
        state: dict[str, Any] = {"stack": self.name, "desiredState": self.config.desired_state,
                                 "publicIp": outputs.get("publicIp"), "instanceId": outputs.get("instanceId")}
        if outputs.get("instanceId") and outputs.get("region"):
            from labstack.stacks import lifecycle

            state["instanceState"] = lifecycle.instance_state(lifecycle.ec2_client(outputs["region"]),
                                                              outputs["instanceId"], self.name)
        return state

    def assert_powerable(self) -> None:
        """LifecycleError unless labstack powers this stack's server: it made it (not labstack:existingServer)."""
        from labstack.stacks import lifecycle

        if self.config.existing_server:
            raise lifecycle.LifecycleError(
                f"stack {self.name!r} deploys to an existing server (labstack:existingServer): labstack never powers "
                "a server it did not make on or off; stop or start it where it runs")

    def stop(self, yes: bool = True) -> None:
        """Stop the server (labstack:desiredState = stopped, then `pulumi up`); disk and address are kept."""
        from labstack.stacks import lifecycle

        self.assert_powerable()
        lifecycle.set_desired_state(self.name, "stopped", cli=self.cli, yes=yes)
        self._target = None

    def start(self, yes: bool = True) -> None:
        """Start the server again (labstack:desiredState = running, then `pulumi up`)."""
        from labstack.stacks import lifecycle

        self.assert_powerable()
        lifecycle.set_desired_state(self.name, "running", cli=self.cli, yes=yes)
        self._target = None

    def cost(self):
        """What the stack has cost since its resources were created and costs per month (a StackCost), priced as
        `invoke cost` prices it; None for an existing server (nothing of it is in AWS)."""
        from labstack.cost import report
        from labstack.stacks import stackfile

        reports = report.report([self.name], stackfile.load)
        return reports[0] if reports else None

    # --- the server ------------------------------------------------------------------------------------------------

    def target(self) -> "SshTarget":
        """The server's pinned SSH connection (address and host key from the outputs), read once per `up`."""
        if self._target is None:
            from labstack.ssh.target import target_for_stack

            self._target = target_for_stack(self.name, cli=self.cli)
        return self._target

    def use_target(self, target: "SshTarget") -> "Stack":
        """Reach the server through this connection instead of the stack's outputs (a server you already reach)."""
        self._target = target
        return self

    def submit(self, script: Commands, files: Sequence[Union[str, Path]] = (), *, image: Optional[str] = None,
               env: Optional[Mapping[str, str]] = None, name: Optional[str] = None, on_host: bool = False,
               on_progress: Optional[Callable[[str], None]] = None) -> "Job":
        """Start a job on the server and return it at once: `script` is a script file, or commands (a string or a
        list, run by bash, stopping at the first failure). `files` are uploaded beside it. It runs in a container
        of `image` (default: the stack's only app's image, else python:3.11-slim) or with on_host=True on the
        server itself."""
        from labstack.jobs import server
        from labstack.jobs.job import Job

        chosen = server.image_for(self.config, image, on_host)
        paths = [Path(p) for p in files]
        with tempfile.TemporaryDirectory(prefix="labstack-submit-") as folder:
            script_path = _script_file(script, Path(folder))
            server.upload_plan(script_path, paths)  # bad input refused before any SSH
            variables = server.parse_env(dict(env or {}))
            job_id = server.submit(self.target(), script_path, paths, image=chosen, on_host=on_host, name=name,
                                   env=variables, on_progress=on_progress)
        return Job(self, job_id)

    def export(self, app: Optional[str] = None, *, dest: Optional[Union[str, Path]] = None,
               progress: Callable[[str], None] = print) -> list:
        """Export each app's database (pg_dump, verified by a restore) and data folder, or only `app`'s, into
        dest/<stack>/<app>/ (default: labstack:exportsDir, where the export before a destroy writes); an
        ExportResult (path, manifest) per app. An app left half-updated is repaired first, so the export reads the
        release the server serves."""
        from labstack.data import export as export_data
        from labstack.ssh import commands as remote_commands
        from labstack.stacks import stackfile

        config = self.config
        if not config.apps:
            raise stackfile.StackFileError(f"stack {self.name!r} has no apps to export")
        apps = [stackfile.app_config(config, app)] if app is not None else list(config.apps)
        exports_dir = Path(dest) if dest is not None else stackfile.PROJECT_DIR / config.exports_dir
        target = self.target()
        with target:
            for app_config in apps:
                repaired = target.run(remote_commands.app_reconcile(app_config.name),
                                      what=f"repairing {app_config.name}")
                for line in repaired.stderr.decode(errors="replace").splitlines():
                    if "repaired:" in line:
                        progress(line.removeprefix("labstack: "))
            return export_data.export_stack(target, self.name, apps, progress=progress, exports_dir=exports_dir)

    def jobs(self) -> list["Job"]:
        """Every job on the server, oldest first, each with the status record just read (`job.last_record`)."""
        from labstack.jobs import server
        from labstack.jobs.job import Job

        return [Job(self, record["id"], record) for record in server.statuses(self.target())]

    def run(self, commands: Union[str, Sequence[str]], *, timeout: float = 600) -> RunResult:
        """Run set-up commands on the server now, as its login user (sudo works), and wait: their output (stdout
        and stderr together) and exit code. Commands run in one bash, stopping at the first failure."""
        lines = [commands] if isinstance(commands, str) else list(commands)
        script = "set -e\n" + "\n".join(lines) + "\n"
        result = self.target().run(f"bash -c {shlex.quote(script)} 2>&1", check=False, timeout=timeout,
                                   what="running commands")
        return RunResult(output=result.stdout.decode(errors="replace"), exit_code=result.returncode)


def _script_file(script: Commands, folder: Path) -> Path:
    """The script to upload: the file given, or the commands written as job.sh."""
    if isinstance(script, Path) or (isinstance(script, str) and "\n" not in script and Path(script).is_file()):
        return Path(script)
    lines = [script] if isinstance(script, str) else list(script)
    if not lines or not all(isinstance(line, str) and line.strip() for line in lines):
        from labstack.jobs.server import JobError

        raise JobError(f"script {script!r}: give a script file, or commands as a string or a list of strings")
    path = folder / "job.sh"
    path.write_text("#!/bin/bash\nset -euo pipefail\n" + "\n".join(lines) + "\n")
    return path


def _document(like: Optional[str]):
    """The new stack file's document: the `like` stack's, comments and all, or an empty config."""
    from labstack.stacks import stackfile

    if like is None:
        return {"config": {}}
    stackfile.read_stack_text(like)  # an unknown or unreadable stack: the standard message
    document = stackfile.round_trip_yaml().load(stackfile.stack_file(like).read_text()) or {}
    if document.get("config") is None:
        document["config"] = {}
    return document


def _dump(document, like: Optional[str], name: str) -> str:
    from labstack.stacks import stackfile

    out = io.StringIO()
    if like is None:
        out.write(f"# Stack {name}, made by labstack.Stack.create.\n")
    stackfile.round_trip_yaml().dump(document, out)
    return out.getvalue()


def _plain(value: Any) -> Any:
    """Mappings and sequences as plain YAML values."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
