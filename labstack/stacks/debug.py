"""`invoke debug`: one app of a stack on this machine's Docker engine (or DOCKER_HOST's), as the server runs it.

The compose files are the ones the server gets (components.render.app_files), loaded and re-pointed, not rendered a
second time: server paths become folders under `.debug/<stack>/<app>/` (no root needed), the external app network
becomes the debug project's own (so `down` removes it), and the web is published on 127.0.0.1 at a free port. The
app's Postgres and Redis are its own, with their data in that folder, kept across runs unless `--clean`.

Secrets: the stack file holds only ciphertexts. Each secret is taken from the environment variable of the same name
when set, else a plain value written in the stack file, else `pulumi config get` when the Pulumi CLI is installed;
otherwise the run stops before anything starts, naming the secrets and how to pass them.
"""
from __future__ import annotations

import os
import secrets as token
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import yaml

from components.config import AppConfig
from components.layout import STATE_FILES, app_file, name
from components.render.app_files import app_commands, app_compose, data_compose, secrets_env
from components.render.images import infra_image
from labstack.local import free_port
from labstack.stacks import stackfile
from labstack.stacks.pulumi_cli import PulumiCli

DEBUG_DIR = ".debug"
COLOR = "debug"  # LABSTACK_COLOR of the one release a debug run has


class DebugError(RuntimeError):
    """The debug run cannot start; the message says what is missing and how to give it."""


@dataclass
class DebugRun:
    stack: str
    app: AppConfig
    folder: Path
    port: int

    @property
    def project(self) -> str:
        return f"labstack-debug-{self.app.name}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def compose(self, *args: str, check: bool = True, capture: bool = False) -> subprocess.CompletedProcess:
        argv = ["docker", "compose", "-p", self.project, "--project-directory", str(self.folder),
                "-f", str(self.folder / "data.compose.yaml"), "-f", str(self.folder / "app.compose.yaml"), *args]
        password = (self.folder / "db-password").read_text().strip()
        env = dict(os.environ, LABSTACK_COLOR=COLOR, LABSTACK_DB_PASSWORD=password)
        return subprocess.run(argv, env=env, check=check, text=True, capture_output=capture)


def debug_folder(stack: str, app: str) -> Path:
    return stackfile.PROJECT_DIR / DEBUG_DIR / stack / app


def resolve_secrets(stack: str, app: AppConfig, environ: dict, cli: Optional[PulumiCli] = None) -> dict[str, str]:
    values, missing = {}, []
    cli = cli or PulumiCli()
    has_cli = shutil.which(cli.binary) is not None
    for key, secret in app.secrets.items():
        written = secret.get_secret_value()
        if key in environ:
            values[key] = environ[key]
        elif written != stackfile.OFFLINE_SECRET:
            values[key] = written
        elif has_cli:
            path = f"labstack:appSecrets.{app.name}.{key}"
            values[key] = cli.get_config(stack, path, path=True)
        else:
            missing.append(key)
    if missing:
        names = ", ".join(missing)
        raise DebugError(f"labstack:appSecrets.{app.name}: {names} only exist encrypted in the stack file and the "
                         f"Pulumi CLI (which decrypts them) is not installed: pass them in the environment, e.g. "
                         f"`{missing[0]}=… invoke debug -s {stack} --app {app.name}`")
    return values


def _local_source(app: AppConfig, folder: Path, source: str) -> str:
    """A bind-mount source of the server's layout, as the folder of this debug run."""
    server_srv, db_password = name("APP_SRV", app.name), app_file(app.name, "DB_PASSWORD")
    if source == db_password:
        return str(folder / "db-password")
    if source.startswith(server_srv + "/"):
        return str(folder / source[len(server_srv) + 1:])
    raise DebugError(f"unexpected bind mount {source!r} in the rendered compose of {app.name}")


def localized(app: AppConfig, folder: Path, text: str, port: Optional[int] = None) -> str:
    """A server compose file re-pointed at the debug folder, with its own network and (web) a published port."""
    compose = yaml.safe_load(text)
    for service_name, service in compose["services"].items():
        volumes = []
        for volume in service.get("volumes", []):
            source, _, rest = volume.partition(":")
            local = _local_source(app, folder, source)
            if service_name not in ("postgres", "redis"):
                Path(local).mkdir(parents=True, exist_ok=True)  # made by the user, not root, as on a server by root
            volumes.append(f"{local}:{rest}")
        if volumes:
            service["volumes"] = volumes
        if "env_file" in service:
            service["env_file"] = [str(folder / "secrets.env")]
        service.pop("restart", None)  # a debug run ends with its terminal
        if service_name == "web" and port is not None:
            service["ports"] = [f"127.0.0.1:{port}:{app.port}"]
    compose["networks"] = {"app": {"name": f"labstack-debug-{app.name}"}}
    return yaml.safe_dump(compose, sort_keys=False, width=1000)


def prepare(stack: str, app_name: Optional[str], environ: dict, port: Optional[int] = None,
            cli: Optional[PulumiCli] = None) -> DebugRun:
    """Everything checked and written before a container starts."""
    config = stackfile.load(stack)
    app = stackfile.app_config(config, app_name)
    values = resolve_secrets(stack, app, environ, cli)
    folder = debug_folder(stack, app.name)
    for sub in ("data", "postgres", "redis"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    password = folder / "db-password"
    if not password.exists():  # Postgres keeps the password of its first start: kept with its data
        password.write_text(token.token_urlsafe(24) + "\n")
    password.chmod(0o644)  # the container's postgres user reads it
    secrets_file = folder / "secrets.env"
    secrets_file.write_text(secrets_env(values))
    secrets_file.chmod(0o600)
    run = DebugRun(stack, app, folder, port or free_port())
    (folder / "data.compose.yaml").write_text(localized(app, folder, data_compose(app)))
    (folder / "app.compose.yaml").write_text(localized(app, folder, app_compose(app), run.port))
    return run


def _wait_for_postgres(run: DebugRun, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while run.compose("exec", "-T", "postgres", "pg_isready", "-q", "-U", run.app.name, "-d", run.app.name,
                      check=False, capture=True).returncode != 0:
        if time.monotonic() > deadline:
            raise DebugError(f"{run.app.name}'s Postgres did not become ready in {timeout:.0f} s: "
                             f"see `docker compose -p {run.project} logs postgres`")
        time.sleep(1)


def start(run: DebugRun, say: Callable[[str], None] = print) -> None:
    """Postgres and Redis, the init command once per init run (as the server does), then web, workers, clock."""
    if run.app.postgres or run.app.redis:
        run.compose("up", "-d", *(s for s, on in (("postgres", run.app.postgres), ("redis", run.app.redis)) if on))
    if run.app.postgres:
        _wait_for_postgres(run)
    init_done = run.folder / STATE_FILES["INIT_DONE"]
    command = app_commands(run.app)[STATE_FILES["INIT_CMD"]]
    if command and (not init_done.exists() or init_done.read_text().strip() != str(run.app.init_run)):
        say(f"running the init command (run {run.app.init_run})")
        run.compose("--profile", "init", "run", "--rm", "-T", "--no-deps", "init", "sh", "-c", command)
        init_done.write_text(f"{run.app.init_run}\n")
    run.compose("up", "-d", *(s for s, on in (("web", True), ("worker", run.app.workers),
                                              ("clock", run.app.clock_command)) if on))
    say(f"{run.app.name} of {run.stack} runs at {run.url} (Ctrl-C stops it)")


def stop(run: DebugRun, clean: bool = False, say: Callable[[str], None] = print) -> None:
    """Containers and network removed; the folder (data, Postgres, Redis) kept unless clean."""
    run.compose("--profile", "init", "down", "--remove-orphans", "--timeout", str(run.app.stop_grace_seconds))
    if clean:
        # Postgres and Redis wrote as their own users: a container of the same engine removes what they wrote.
        subprocess.run(["docker", "run", "--rm", "-u", "0", "-v", f"{run.folder}:/debug", infra_image("redis"),
                        "sh", "-c", "rm -rf /debug/* /debug/.[!.]*"], check=True, capture_output=True)
        shutil.rmtree(run.folder)
        say(f"removed {run.app.name}'s containers, network and data ({run.folder})")
    else:
        say(f"removed {run.app.name}'s containers and network; data kept in {run.folder} (--clean removes it)")


def follow(run: DebugRun) -> None:
    """The app's logs until Ctrl-C."""
    try:
        run.compose("logs", "-f", "--tail", "20", "web", check=False)
    except KeyboardInterrupt:
        pass


def debug(stack: str, app: Optional[str], *, clean: bool = False, port: Optional[int] = None,
          environ: Optional[dict] = None, wait: Callable[[DebugRun], None] = follow,
          say: Callable[[str], None] = print) -> DebugRun:
    run = prepare(stack, app, dict(os.environ) if environ is None else environ, port)
    try:
        start(run, say)
        wait(run)
    finally:
        stop(run, clean, say)
    return run
