"""invoke debug against a test bed host's engine: the app's rendered compose, its own Postgres and Redis, the web on
127.0.0.1:PORT (inside the host's namespace, so reached with curl there), secrets from the environment; stopped,
nothing of it is left but its data folder, which --clean removes too."""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

import labstack.stacks.stackfile
from labstack.stacks import debug
from labstack import images

pytestmark = pytest.mark.testbed

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "app"
STACK = """\
config:
  aws:region: eu-west-3
  labstack:serverPem: {pem}
  labstack:sshCidrs: [100.64.0.0/24]
  labstack:apps:
    elif:
      image: {image}
      workers: 1
      workerCommand: python worker.py
      initCommand: python init_db.py
      env:
        EXAMPLE_DEBUG_ENV: "1"
  labstack:appSecrets:
    elif:
      API_TOKEN:
        secure: v1:AAAAAAAAAAAAAAAA:ciphertext-not-readable-offline
"""


@pytest.fixture
def project_dir(monkeypatch):
    """The project folder of the debug runs: under /var/tmp, which a test bed host's dockerd shares with this
    machine (its /tmp is the host's own), so the engine bind-mounts the same folders the task wrote."""
    folder = Path(tempfile.mkdtemp(prefix="labstack-debug-", dir="/var/tmp"))
    monkeypatch.setattr(labstack.stacks.stackfile, "PROJECT_DIR", folder)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def get(host, port: int, path: str, method: str = "GET") -> tuple[int, str]:
    answer = host.run(f"curl -sS -X {method} -o /dev/stdout -w '\\n%{{http_code}}' http://127.0.0.1:{port}{path}",
                      check=False).stdout
    body, _, status = answer.rpartition("\n")
    return int(status or 0), body


def leftovers(host, app: str = "elif") -> tuple[str, str]:
    containers = host.docker("ps", "-a", "--filter", f"label=com.docker.compose.project=labstack-debug-{app}",
                             "--format", "{{.Names}}").stdout.strip()
    networks = host.docker("network", "ls", "--filter", f"name=labstack-debug-{app}", "--format",
                           "{{.Name}}").stdout.strip()
    return containers, networks


def test_debug_runs_the_app_locally_and_removes_it(build_engine, write_stack, server_pem, project_dir, monkeypatch):
    host = build_engine.testbed_host
    built = images.build(build_engine, EXAMPLE, f"{build_engine.registry}/lab/elif")
    pinned = images.push(build_engine, built)
    write_stack(text=STACK.format(pem=server_pem, image=pinned))
    monkeypatch.setenv("DOCKER_HOST", host.docker_url)
    environ = {"API_TOKEN": "t0ken with $ and 'quotes'"}
    said: list[str] = []
    seen: dict = {}

    def first_visit(run: debug.DebugRun) -> None:
        for _ in range(60):
            seen["health"] = get(host, run.port, "/health")
            if seen["health"][0] == 200:
                break
            host.run("sleep 1")
        seen["visit"] = get(host, run.port, "/visits", "POST")
        seen["secret"] = get(host, run.port, "/env/API_TOKEN")
        seen["workers"] = host.docker("ps", "--filter", "label=org.labstack.role=worker", "--format",
                                      "{{.Status}}").stdout.split("\n")[0]
        seen["leftovers_while_running"] = leftovers(host)

    run = debug.debug("paris-batch2", "elif", environ=environ, wait=first_visit, say=said.append)

    assert seen["health"][0] == 200 and json.loads(seen["health"][1]) == {"db": True, "ok": True, "redis": True}
    assert json.loads(seen["visit"][1]) == {"db_visits": 1, "redis_visits": 1}
    assert seen["secret"] == (200, environ["API_TOKEN"])
    assert seen["workers"].startswith("Up")
    assert any(line == f"elif of paris-batch2 runs at http://127.0.0.1:{run.port}/ (Ctrl-C stops it)" for line in said)
    assert "running the init command (run 1)" in said
    assert leftovers(host) == ("", "")
    assert run.folder == project_dir / ".debug" / "paris-batch2" / "elif"
    assert (run.folder / "postgres" / "pgdata" / "PG_VERSION").exists()

    # Again: the data was kept (the visit counted before is still there), the init is not run twice.
    said.clear()

    def count_visits(run: debug.DebugRun) -> None:
        for _ in range(60):
            if get(host, run.port, "/health")[0] == 200:
                break
            host.run("sleep 1")
        seen["visits"] = get(host, run.port, "/visits")

    run = debug.debug("paris-batch2", "elif", environ=environ, wait=count_visits, say=said.append, clean=True)
    assert json.loads(seen["visits"][1]) == {"db_visits": 1, "redis_visits": 1}
    assert not any("init" in line for line in said)
    assert leftovers(host) == ("", "") and not run.folder.exists()
