"""Throwaway jobs (`invoke job.run`, and Python functions without a stack): a stack made for one job, brought up,
used and destroyed by one task.

The stack is an ordinary labstack stack, `job-<UTC time>-<4 hex>`, written to stacks/ as a minimal stack file and
checked by the same loader `invoke check` and `pulumi up` use before anything is created. It sets
`labstack:autoStop` (idle grace + --max-hours) so the server's watcher stops the instance even when this machine is
closed or loses its connection. Whatever happens after the stack is created (the job fails, the upload fails, the
operator presses Ctrl-C), the `finally` destroys it and removes the stack, unless --keep (or the operator's answer
to Ctrl-C) keeps it. What is kept locally, in jobs/<stack>/: the job's outputs (out/), its log, a copy of the stack
file, and record.json (what ran, where, its exit code, the pulumi commands, whether the stack was destroyed).
"""
from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Optional

import yaml

from labstack.stacks import stackfile
from labstack.stacks.pulumi_cli import PulumiCli, PulumiError
from labstack.ssh.target import SshTarget, target_for_stack

JOBS_DIR = stackfile.PROJECT_DIR / "jobs"  # local records of throwaway jobs (gitignored)
STACK_PREFIX = "job-"
DEFAULT_MAX_HOURS = 4
# The watcher's idle grace: long enough for `pulumi up` to finish and the job to be submitted (a submitted or
# running job counts as activity), short enough that a job whose operator went away costs a quarter of an hour.
IDLE_MINUTES = 15
DEFAULT_PEM = Path("~/.ssh/labstack_ed25519")  # the key the README's prerequisites make
# Where this machine's public address comes from when no --like stack names sshCidrs (AWS's own "My IP" service).
CHECKIP_URL = "https://checkip.amazonaws.com"
SSH_READY_SECONDS = 600  # `pulumi up` of a stack without apps returns before sshd answers
# Keys a --like stack lends a throwaway stack: where and how labstack connects, nothing about apps or size.
LIKE_KEYS = ("aws:region", "labstack:serverPem", "labstack:keyPair", "labstack:sshCidrs", "labstack:network",
             "labstack:creator", "labstack:tags")


class JobRunError(RuntimeError):
    """A throwaway job could not be set up, or its stack could not be destroyed; the message says what to do."""


@dataclass
class Machine:
    """The throwaway instance: its type, and where its settings come from."""

    instance_type: str
    region: Optional[str] = None  # default: the --like stack's, else AWS_REGION / AWS_DEFAULT_REGION
    like: Optional[str] = None  # a stack whose region, key and sshCidrs the throwaway stack copies
    max_hours: int = DEFAULT_MAX_HOURS  # whole hours: labstack:autoStop maxHours
    keep: bool = False


@dataclass
class Throwaway:
    """A throwaway stack while it exists: its name, the SSH target of its server, the local record folder."""

    stack: str
    target: Optional[SshTarget]
    record_dir: Path
    record: dict = field(default_factory=dict)


def new_stack_name(now: Optional[datetime] = None) -> str:
    now = now or datetime.now(timezone.utc)
    return f"{STACK_PREFIX}{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def operator_cidr(url: str = CHECKIP_URL, timeout: float = 10) -> str:
    """This machine's public IPv4 address as a /32: SSH to the throwaway server is open to nobody else."""
    import ipaddress
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            text = answer.read(100).decode().strip()
        return f"{ipaddress.IPv4Address(text)}/32"
    except (OSError, ValueError) as error:
        raise JobRunError(f"cannot learn this machine's public address from {url} ({error}) for "
                          "labstack:sshCidrs; pass --like STACK to use that stack's sshCidrs") from None


def stack_config(machine: Machine, operator_address: Callable[[], str] = operator_cidr) -> dict:
    """The throwaway stack's `config:`: copied connection settings, the instance type and the watcher's limits."""
    config: dict = {}
    if machine.like:
        written = stackfile.read_stack_text(machine.like).config
        config.update({key: written[key] for key in LIKE_KEYS if key in written})
    if machine.region:
        config["aws:region"] = machine.region
    elif "aws:region" not in config:
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if not region:
            raise JobRunError("no region for the throwaway instance: pass --region (e.g. eu-west-3) or --like STACK, "
                              "or set AWS_REGION")
        config["aws:region"] = region
    config.setdefault("labstack:serverPem", str(DEFAULT_PEM))
    if "labstack:sshCidrs" not in config:
        config["labstack:sshCidrs"] = [operator_address()]
    config["labstack:instanceType"] = machine.instance_type
    # Only SSH is open: a job serves nothing, so no HTTP ports and no ACME certificates (which would need them).
    config["labstack:ingressPorts"] = [22]
    config["labstack:tls"] = "internal"
    config["labstack:autoStop"] = {"idleMinutes": IDLE_MINUTES, "maxHours": machine.max_hours}
    return config


def write_stack_file(stack: str, config: dict) -> Path:
    path = stackfile.stack_file(stack)
    if path.exists():
        raise JobRunError(f"{path} exists already; is another `invoke job.run` using the name {stack}?")
    header = (f"# Throwaway job stack made by `invoke job.run` at {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.\n"
              f"# It is destroyed when its job ends; if it was kept: `invoke destroy -s {stack}` then\n"
              f"# `invoke pulumi -s {stack} -- stack rm`.\n")
    path.write_text(header + yaml.safe_dump({"config": config}, sort_keys=False))
    return path


def finishing_command(stack: str, cli: PulumiCli, env: dict) -> str:
    """The one line an operator runs to finish a destroy this task could not: the same backend and passphrase."""
    settings = [f"{name}={shlex.quote(env[name])}" for name in ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE_FILE")
                if env.get(name) and env.get(name) != os.environ.get(name)]
    exports = f"export {' '.join(settings)} && " if settings else ""
    return (f"cd {shlex.quote(str(cli.project_dir))} && {exports}pulumi destroy --stack {stack} --yes && "
            f"pulumi stack rm --stack {stack} --yes")


def ask_keep(stack: str, ask: Optional[Callable[[str], str]] = None) -> bool:
    """Ctrl-C asks once; anything but keep (Enter, another Ctrl-C, end of input) destroys: nothing paid for by
    accident."""
    try:
        answer = (ask or input)(f"\nInterrupted. Keep {stack} running (keep) or destroy it (destroy)? [destroy] ")
    except (KeyboardInterrupt, EOFError):
        return False
    return answer.strip().lower() in ("k", "keep")


def wait_for_ssh(target: SshTarget, seconds: float = SSH_READY_SECONDS, announce=print) -> None:
    deadline = time.monotonic() + seconds
    announce(f"waiting for {target.host} to answer SSH")
    while not target.answers():
        if time.monotonic() > deadline:
            raise JobRunError(f"{target.host} did not answer SSH within {seconds:.0f}s")
        time.sleep(3)


@contextmanager
def throwaway(machine: Machine, *, dest: Optional[Path] = None, cli: Optional[PulumiCli] = None,
              announce=print, ask: Optional[Callable[[str], str]] = None,
              operator_address: Callable[[], str] = operator_cidr) -> Iterator[Throwaway]:
    """Write, check and bring up a throwaway stack; yield it; destroy and remove it on the way out, whatever
    happened (unless kept). Raises JobRunError, after the rest of the teardown, when the destroy fails."""
    from components.config import ConfigError

    cli = cli or PulumiCli()
    cli.require()  # no CLI: say so before a file is written
    stack = new_stack_name()
    config = stack_config(machine, operator_address)
    path = write_stack_file(stack, config)
    try:
        stackfile.load(stack)  # the loader `invoke check` and `pulumi up` use: bad input stops here
    except (ConfigError, stackfile.StackFileError):
        path.unlink()
        raise
    place = Throwaway(stack, None, Path(dest) if dest else JOBS_DIR / stack)
    place.record_dir.mkdir(parents=True, exist_ok=True)
    place.record.update(stack=stack, instanceType=machine.instance_type, region=config["aws:region"],
                        maxHours=machine.max_hours, createdAt=_now(), pulumi=[])
    env = cli.environment(announce)
    kept = machine.keep
    created = False
    try:
        _pulumi(place, "stack init", lambda: cli.stack(stack))
        created = True
        announce(f"bringing up {stack} ({machine.instance_type} in {config['aws:region']})")
        _pulumi(place, "up", lambda: cli.up(stack, yes=True, on_output=None))
        place.target = target_for_stack(stack, cli=cli)
        wait_for_ssh(place.target, announce=announce)
        yield place
    except KeyboardInterrupt:
        place.record["interrupted"] = True
        kept = kept or (created and ask_keep(stack, ask))
        raise
    finally:
        place.record.update(kept=kept, endedAt=_now())
        try:
            if kept:
                announce(f"{stack} is kept (its watcher stops it after {IDLE_MINUTES} idle minutes, "
                         f"{machine.max_hours} hours at most). When done: {finishing_command(stack, cli, env)}")
            elif created:
                _destroy(cli, place, env, announce)
            else:
                path.unlink(missing_ok=True)  # the stack could not be made in the state: nothing was made
        finally:
            _write_record(place)


def _destroy(cli: PulumiCli, place: Throwaway, env: dict, announce) -> None:
    stack = place.stack
    announce(f"destroying {stack}")
    try:
        _pulumi(place, "destroy", lambda: cli.destroy(stack, on_output=None))
        # The stack file is kept (moved into the record below), not deleted with the stack.
        _pulumi(place, "stack rm", lambda: cli.remove(stack))
    except (PulumiError, KeyboardInterrupt) as error:
        place.record["destroyed"] = False
        _write_record(place)
        raise JobRunError(f"the throwaway stack {stack} was NOT destroyed ({error or 'interrupted'}); its instance "
                          f"may still cost money. Finish it with: {finishing_command(stack, cli, env)}") from None
    place.record["destroyed"] = True
    shutil.move(str(stackfile.stack_file(stack)), place.record_dir / stackfile.stack_file(stack).name)
    announce(f"destroyed {stack}; its record is in {place.record_dir}")


def _pulumi(place: Throwaway, step: str, action: Callable[[], object]) -> None:
    """One Pulumi step of the throwaway stack, recorded (in order) in its record.json."""
    place.record["pulumi"].append(step)
    action()


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_record(place: Throwaway) -> None:
    (place.record_dir / "record.json").write_text(json.dumps(place.record, indent=2) + "\n")


# --- a script job on a throwaway instance (`invoke job.run`) --------------------------------------------------------

@dataclass
class ScriptJob:
    script: Path
    files: list[Path] = field(default_factory=list)
    fetch: Optional[str] = "out/"  # None: fetch nothing
    image: Optional[str] = None
    on_host: bool = False
    name: Optional[str] = None
    env: Optional[dict] = None


def check_job_files(job: ScriptJob) -> None:
    """Bad input is refused before a stack is written, let alone created."""
    if not job.script.exists():
        raise JobRunError(f"--script {job.script}: no such file")
    if not job.script.is_file():
        raise JobRunError(f"--script {job.script}: is a directory; give the script file, and the folder with --files")
    for path in job.files:
        if not path.exists():
            raise JobRunError(f"--files {path}: no such file or folder")


def run_job(machine: Machine, job: ScriptJob, *, dest: Optional[Path] = None, cli: Optional[PulumiCli] = None,
            announce=print, ask: Optional[Callable[[str], str]] = None,
            operator_address: Callable[[], str] = operator_cidr) -> int:
    """Run one script job on a throwaway instance; returns the job's exit code (the stack is gone, or kept)."""
    check_job_files(job)
    with throwaway(machine, dest=dest, cli=cli, announce=announce, ask=ask,
                   operator_address=operator_address) as place:
        from labstack.jobs import server as jobs

        target = place.target
        place.record.update(script=str(job.script), files=[str(p) for p in job.files], image=job.image,
                            onHost=job.on_host)
        job_id = jobs.submit(target, job.script, job.files, image=job.image, on_host=job.on_host, name=job.name,
                             env=job.env)
        place.record["jobId"] = job_id
        announce(f"job {job_id} submitted on {place.stack}")
        code = jobs.wait(target, job_id, on_progress=_progress(announce))
        place.record.update(exitCode=code, status=jobs.statuses(target, job_id)[0])
        announce(f"job {job_id} ended with exit code {code}")
        _keep_log(target, job_id, place)
        if job.fetch:
            try:
                fetched = jobs.fetch(target, job_id, path=job.fetch, dest=place.record_dir)
                place.record["outputs"] = str(fetched)
                announce(f"outputs in {fetched}")
            except Exception as error:  # a failed job may have written no outputs: its record says so
                place.record["fetchError"] = str(error)
                announce(f"fetching {job.fetch} failed: {error}")
                if code == 0:
                    raise
        return code


def _progress(announce) -> Callable[[dict], None]:
    seen: list[str] = []

    def show(status: dict) -> None:
        state = status.get("state", "?")
        if not seen or seen[-1] != state:
            seen.append(state)
            announce(f"  {_now()} {state}")
    return show


def _keep_log(target: SshTarget, job_id: str, place: Throwaway) -> None:
    from labstack.jobs import server as jobs

    try:
        text = jobs.logs(target, job_id)
    except Exception as error:  # the log is a convenience; the outputs are the job's result
        place.record["logError"] = str(error)
        return
    if isinstance(text, str):
        (place.record_dir / "job.log").write_text(text)
