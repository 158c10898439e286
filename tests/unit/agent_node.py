"""A server for the node agent's tests, without root: LABSTACK_ROOT is a temporary folder, the hooks run as on a
server (bash hooks/<name>.sh, which runs the agent), and tests/unit/fakes/docker is the engine."""
from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Optional

from components.layout import HOOKS_DIR, JOBS_SRV, JOBS_STORE
from hooks.agent import contract
from hooks.agent.node import process_start

FAKES = Path(__file__).resolve().parent / "fakes"


class Node:
    def __init__(self, root: Path):
        self.root = root
        self.bin = root / "fakebin"
        self.bin.mkdir(parents=True)
        (self.bin / "docker").symlink_to(FAKES / "docker")
        self.engine = root / "engine"
        self.engine.mkdir()
        self.env = {"PATH": f"{self.bin}:/usr/bin:/bin", "LABSTACK_ROOT": str(root), "FAKE_DOCKER": str(self.engine)}

    def path(self, server_path: str) -> Path:
        return self.root / server_path.lstrip("/")

    @property
    def jobs(self) -> Path:
        return self.path(JOBS_SRV)

    @property
    def store(self) -> Path:
        return self.path(JOBS_STORE)

    def hook(self, name: str, *args: str, stdin: bytes = b"", check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(["bash", str(HOOKS_DIR / f"{name}.sh"), *args], input=stdin, capture_output=True,
                                env=self.env, timeout=120)
        if check:
            assert result.returncode == 0, result.stderr.decode()
        return result

    def agent(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """An agent command no hook names (the supervisor, the waiting container), as the agent runs it."""
        result = subprocess.run(["python3", "-I", "-S", "-B", str(HOOKS_DIR / "agent"), *args], capture_output=True,
                                env=self.env, timeout=120)
        if check:
            assert result.returncode == 0, result.stderr.decode()
        return result

    def submit(self, job_id: str, script: str, files: Optional[dict] = None, image: str = "python:3.11-slim",
               env: str = "", name: str = "", check: bool = True, extra: Optional[dict] = None):
        """A job as labstack/jobs/server.py sends it: run.sh (`script`), `files`, .labstack/env (and `extra` lists)."""
        members = {"run.sh": script.encode(), **{k: v for k, v in (files or {}).items()},
                   contract.ENV_FILE: env.encode(), **(extra or {})}
        data = io.BytesIO()
        with tarfile.open(fileobj=data, mode="w", format=tarfile.PAX_FORMAT) as archive:
            for member, content in members.items():
                info = tarfile.TarInfo(member)
                info.size, info.mode = len(content), 0o644
                archive.addfile(info, io.BytesIO(content))
        size = str(sum(len(content) for content in members.values()))
        return self.hook("job-submit", job_id, size, image, "run.sh", name, "ana@laptop", stdin=data.getvalue(),
                         check=check)

    def status(self, job_id: str) -> dict:
        return json.loads(self.hook("job-status", job_id).stdout)

    def wait_for(self, job_id: str, *states: str, seconds: float = 60) -> dict:
        deadline = time.monotonic() + seconds
        while True:
            record = self.status(job_id)
            if record["state"] in states:
                return record
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} never reached {states}: {record}")
            time.sleep(0.1)

    def meta(self, job_id: str, name: str) -> Path:
        return self.jobs / job_id / contract.META_DIR / name

    def containers(self) -> list:
        return sorted(p.name for p in self.engine.iterdir() if p.is_dir())

    def waiting(self, seconds: float = 60) -> list:
        """The live waiting containers, once there is one (the supervisor starts it in the background)."""
        deadline = time.monotonic() + seconds
        while True:
            names = [n for n in self.containers() if n.startswith(contract.SPARE_PREFIX)
                     and not (self.engine / n / "exit").exists()]
            spares = [f for f in self.jobs.glob(".spare-*") if (f / contract.META_DIR / "spare").exists()]
            if (names and spares) or time.monotonic() > deadline:
                return names
            time.sleep(0.1)

    def supervisor_gone(self, job_id: str, seconds: float = 30) -> None:
        pid = int(self.meta(job_id, "supervisor").read_text().split()[0])
        deadline = time.monotonic() + seconds
        while process_start(pid) is not None:  # alive, and not a zombie
            assert time.monotonic() < deadline, "the supervisor did not end"
            time.sleep(0.05)

    def stop(self) -> None:
        """Every fake container still running ends (the supervisors then end too)."""
        for name in self.containers():
            pid = (self.engine / name / "pid")
            if pid.exists() and not (self.engine / name / "exit").exists():
                try:
                    os.killpg(int(pid.read_text()), 9)
                except OSError:
                    pass
