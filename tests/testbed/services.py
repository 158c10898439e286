"""Machine-side services of the test bed: moto in server mode and Debian's docker-registry, both on 127.0.0.1.

Each runs as a child process on a free port with its PID (and start time) recorded under RUN_ROOT/services/, so a
later session can stop what a crashed one left behind without signalling anything else.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from labstack.local import free_port  # noqa: F401 (tests/ops/conftest.py takes it from here too)

from .host import RUN_ROOT, TestbedError, kill_record, owner_record, proc_alive, proc_record

# moto and the registry need no root: without it their records go to a per-user directory
SERVICES_DIR = RUN_ROOT / "services" if os.geteuid() == 0 else \
    Path(tempfile.gettempdir()) / f"labstack-testbed-{os.geteuid()}" / "services"


def _http_ok(url: str, method: str = "GET") -> bool:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=2) as r:
            return 200 <= r.status < 300
    except (urllib.error.URLError, OSError):
        return False


class Service:
    """A started child process with a record file; stop() is idempotent."""

    def __init__(self, kind: str, argv: list[str], port: int, workdir: Path, ready_url: str, env=None):
        self.kind, self.port, self.workdir = kind, port, workdir
        SERVICES_DIR.mkdir(parents=True, exist_ok=True)
        self.record_path = SERVICES_DIR / f"{kind}-{port}.json"
        self.log_path = workdir / f"{kind}.log"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True, env=env)
        self.record = proc_record(self.proc.pid, kind)
        self.record_path.write_text(json.dumps({"proc": self.record, "owner": owner_record(),
                                                "workdir": str(workdir)}))
        deadline = time.monotonic() + 30
        while not _http_ok(ready_url):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""
                self.stop()
                raise TestbedError(f"{kind} did not come up on port {port}; log:\n{tail}")
            time.sleep(0.1)

    def stop(self) -> None:
        kill_record(self.record, wait=10)
        self.proc.poll()
        self.record_path.unlink(missing_ok=True)
        shutil.rmtree(self.workdir, ignore_errors=True)


class MotoServer(Service):
    def __init__(self):
        port = free_port()
        workdir = Path(tempfile.mkdtemp(prefix="labstack-moto-"))
        self.url = f"http://127.0.0.1:{port}"
        # fake credentials only: moto accepts anything, and nothing must ever reach real AWS
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
        super().__init__("moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                         port, workdir, f"{self.url}/moto-api/data.json", env=env)

    def reset(self) -> None:
        """Forget every resource (moto's reset API), so each test starts from an empty account."""
        req = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            if r.status != 200:
                raise TestbedError(f"moto reset -> HTTP {r.status}")


class Registry(Service):
    """Debian's docker-registry (distribution v2) with its own config and storage directory."""

    def __init__(self):
        port = free_port()
        workdir = Path(tempfile.mkdtemp(prefix="labstack-registry-"))
        (workdir / "storage").mkdir()
        cfg = workdir / "config.yml"
        cfg.write_text(f"""version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {workdir / 'storage'}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
""")
        self.address = f"127.0.0.1:{port}"
        binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
        super().__init__("registry", [binary, "serve", str(cfg)], port, workdir, f"http://{self.address}/v2/")

    def catalog(self) -> list[str]:
        with urllib.request.urlopen(f"http://{self.address}/v2/_catalog", timeout=10) as r:
            return json.loads(r.read())["repositories"]

    def tags(self, repo: str) -> list[str]:
        with urllib.request.urlopen(f"http://{self.address}/v2/{repo}/tags/list", timeout=10) as r:
            return json.loads(r.read()).get("tags") or []


def cleanup_service_leftovers(log=print) -> list[str]:
    notes = []
    for p in sorted(SERVICES_DIR.glob("*.json")) if SERVICES_DIR.is_dir() else []:
        try:
            rec = json.loads(p.read_text())
        except (OSError, ValueError):
            p.unlink(missing_ok=True)
            continue
        owner = rec.get("owner")
        if owner and proc_alive(owner):
            continue  # a live session on this machine (maybe this one) owns it
        if proc_alive(rec["proc"]):
            kill_record(rec["proc"], wait=10)
            notes.append(f"stopped {rec['proc']['role']} pid {rec['proc']['pid']}")
        if rec.get("workdir"):
            shutil.rmtree(rec["workdir"], ignore_errors=True)
        p.unlink(missing_ok=True)
    for n in notes:
        log(f"testbed: cleaned leftover {n}")
    return notes
