"""Benchmark: labstack's deploy against raw `docker compose up -d` of the same services, each on a fresh host.

Every round gives each side a fresh test bed host seeded with the same cached base images, both pulling the app's
image from the same test bed registry; the side that goes first alternates from round to round. Raw compose gets
the same health semantics as labstack: web and worker wait for a healthy Postgres (healthcheck + depends_on
condition, polled as often as labstack polls), and its clock stops, like labstack's, when web answers its health
path. Labstack runs exactly as in the e2e tests: the program evaluated under mocks, its remote commands replayed
over real SSH by tests/e2e/engine.py. Measured per round:

  * first deploy, until /health answers 200 (labstack through Caddy, raw compose on its published port);
  * no-op redeploy: `pulumi up` with nothing changed (no remote command runs) against `docker compose up -d`
    again; and deploy-app.sh sent the same release again (its keep-serving path), as a forced redeploy would;
  * update to a new image: until the new version answers /, with a bounded request loop running throughout that
    counts failed requests (labstack: blue/green through Caddy; raw compose: recreates web in place).

Prints medians with min-max, per-round ratios, labstack's time per remote command and deploy-app.sh's own time per
step (its `step times` line). Run as root after `bash setup.sh --tests`:

    venv/bin/python bench/deploy_bench.py [--rounds N]
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import TimedEngine, open_testbed, spread  # noqa: E402
from labstack import images  # noqa: E402
from labstack.stacks.offline import FakeAws  # noqa: E402
from tests.e2e.fixtures import DNS_HOST, EXAMPLE, ZONES, Stack, _derived_image, _new_host_key  # noqa: E402
from tests.testbed.services import Registry  # noqa: E402

POLL = 0.1  # the bench's own polling, the same for both sides
RAW_HEALTH_INTERVAL = "0.2s"  # as often as deploy-app.sh looks at Postgres
RAW_ENV = '{DATABASE_URL: "postgresql://raw:raw@postgres:5432/raw", REDIS_URL: "redis://redis:6379/0"}'
RAW_COMPOSE = f"""services:
  postgres:
    image: postgres:16
    environment: {{POSTGRES_USER: raw, POSTGRES_DB: raw, POSTGRES_PASSWORD: raw}}
    healthcheck:
      test: ["CMD", "pg_isready", "-q", "-h", "127.0.0.1", "-U", "raw", "-d", "raw"]
      interval: {RAW_HEALTH_INTERVAL}
      timeout: 5s
      retries: 300
  redis:
    image: redis:7
  web:
    image: {{image}}
    environment: {RAW_ENV}
    ports: ["8080:5000"]
    depends_on: {{postgres: {{condition: service_healthy}}, redis: {{condition: service_started}}}}
  worker:
    image: {{image}}
    command: ["python", "worker.py"]
    environment: {RAW_ENV}
    depends_on: {{postgres: {{condition: service_healthy}}, redis: {{condition: service_started}}}}
"""
DEPLOY_STEP_TIMES = re.compile(r"step times \(s\): (.*)")


def deploy_step_times(runs) -> dict[str, float]:
    """deploy-app.sh's `step times` line, from the runs of one apply."""
    for run in runs:
        match = DEPLOY_STEP_TIMES.search(run.result.stderr or "")
        if match:
            return {key: float(value) for key, value in (item.split("=") for item in match.group(1).split())}
    return {}


def wait_until(check, what: str, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(POLL)
    raise RuntimeError(f"{what} did not happen within {seconds}s")


def curl(url: str, *options: str, timeout: float = 5) -> tuple[int, str]:
    result = subprocess.run(["curl", "-sk", "--max-time", str(timeout), *options, "-w", "\n%{http_code}", url],
                            capture_output=True, text=True, timeout=timeout + 5)
    body, _, code = result.stdout.rpartition("\n")
    return int(code or 0), body


class RequestLoop:
    """Requests `/` every 50 ms (bounded: at most `seconds`) from a thread; notes when `version` first answers and
    every request that did not answer 200."""

    def __init__(self, get, version: str, seconds: float = 180):
        self.get, self.version, self.seconds = get, version, seconds
        self.failed, self.total, self.new_at = 0, 0, None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        deadline = time.perf_counter() + self.seconds
        while not self.stop.is_set() and time.perf_counter() < deadline:
            status, body = self.get()
            self.total += 1
            if status != 200:
                self.failed += 1
            elif self.new_at is None and _version(body) == self.version:
                self.new_at = time.perf_counter()
            time.sleep(0.05)

    def __enter__(self) -> "RequestLoop":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


def _version(body: str):
    try:
        return json.loads(body).get("version")
    except ValueError:
        return None


def measure_labstack(testbed, registry, v1: str, update: str, version: str) -> dict:
    host_key = _new_host_key()
    host = testbed.new_host(host_key=host_key)
    try:
        host.forward_port(registry.port)
        config = {"aws:region": "eu-west-3", "labstack:serverPem": str(host.key_path), "labstack:dnsHost": DNS_HOST,
                  "labstack:sshCidrs": ["0.0.0.0/0"],
                  "labstack:tls": "internal",
                  "labstack:apps": {"elif": {"image": v1, "host": "@", "workers": 1,
                                             "workerCommand": "python worker.py"}}}
        stack = Stack("bench", host, config,
                      FakeAws(zones=dict(ZONES), public_ips=[host.ip], private_keys={"bench-host-key": host_key}))
        stack.engine = TimedEngine()

        def get(path: str):
            return curl(f"https://{DNS_HOST}{path}", "--resolve", f"{DNS_HOST}:443:{host.ip}")

        start = time.perf_counter()
        first_runs = stack.up()
        wait_until(lambda: get("/health")[0] == 200, "labstack's /health")
        first = time.perf_counter() - start
        remote = stack.engine.durations()

        start = time.perf_counter()
        noop_runs = stack.up()
        noop = time.perf_counter() - start
        deploy = next(name for name in stack.engine.order if name.endswith("-deploy"))
        stack.engine.times.clear()
        stack.engine._run(deploy, "create", stack.engine.state[deploy])  # the same release sent again
        same_release = stack.engine.durations()[0][1]
        same_release_steps = deploy_step_times(stack.engine.runs[-1:])

        stack.config["labstack:apps"]["elif"]["image"] = update
        with RequestLoop(lambda: get("/"), version) as loop:
            start = time.perf_counter()
            update_runs = stack.up()
            done = time.perf_counter() - start
            wait_until(lambda: loop.new_at is not None, "labstack's new version")
            time.sleep(0.5)
        return {"first": first, "noop": noop, "noop_commands": len(noop_runs), "same_release": same_release,
                "update": loop.new_at - start, "update_done": done, "failed": loop.failed, "requests": loop.total,
                "remote": remote, "first_steps": deploy_step_times(first_runs),
                "same_release_steps": same_release_steps, "update_steps": deploy_step_times(update_runs)}
    finally:
        testbed.stop_host(host)


def measure_raw(testbed, registry, v1: str, update: str, version: str) -> dict:
    host = testbed.new_host()
    try:
        host.forward_port(registry.port)

        def up(image: str) -> None:
            host.run(f"mkdir -p ~/raw && cat > ~/raw/compose.yaml <<'EOF'\n{RAW_COMPOSE.replace('{image}', image)}EOF")
            host.run("cd ~/raw && docker compose -p raw up -d --quiet-pull 2>&1")

        def get(path: str):
            return curl(f"http://{host.ip}:8080{path}")

        start = time.perf_counter()
        up(v1)
        wait_until(lambda: get("/health")[0] == 200, "raw compose's /health")
        first = time.perf_counter() - start

        start = time.perf_counter()
        up(v1)
        noop = time.perf_counter() - start

        with RequestLoop(lambda: get("/"), version) as loop:
            start = time.perf_counter()
            up(update)
            done = time.perf_counter() - start
            wait_until(lambda: loop.new_at is not None, "raw compose's new version")
            time.sleep(0.5)
        return {"first": first, "noop": noop, "update": loop.new_at - start, "update_done": done,
                "failed": loop.failed, "requests": loop.total}
    finally:
        testbed.stop_host(host)


def report(ours: list[dict], raw: list[dict]) -> None:
    print(f"\n{len(ours)} alternated rounds, each deploy on a fresh host; median (min-max); ratio = median of the "
          "per-round ratios")
    print(f"{'':34} {'labstack':>22} {'raw compose':>22} {'ratio':>7}  per round")
    for key, label in (("first", "first deploy, to /health 200"), ("noop", "no-op redeploy"),
                       ("update", "update, to new version on /"), ("update_done", "update, command returned")):
        ratios = [o[key] / r[key] for o, r in zip(ours, raw)]
        print(f"{label:34} {spread([o[key] for o in ours]):>22} {spread([r[key] for r in raw]):>22} "
              f"{statistics.median(ratios):6.2f}x  {' '.join(f'{x:.2f}' for x in ratios)}")
    print(f"{'failed requests during the update':34} {str([o['failed'] for o in ours]):>22} "
          f"{str([r['failed'] for r in raw]):>22}  (of {[o['requests'] for o in ours]} / "
          f"{[r['requests'] for r in raw]})")
    print(f"labstack no-op: {[o['noop_commands'] for o in ours]} remote commands; same release sent to deploy-app.sh "
          f"again: {spread([o['same_release'] for o in ours])} over SSH")
    print("\nlabstack's remote commands on the first deploy (median s):")
    names = [name for name, _ in ours[0]["remote"]]
    for name in names:
        values = [dict(o["remote"]).get(name) for o in ours]
        print(f"  {name.removeprefix('bench-'):28} {statistics.median(v for v in values if v is not None):6.2f}")
    print("deploy-app.sh's steps (median s; `pull` runs beside `data` and `postgres`):")
    for key, label in (("first_steps", "first"), ("update_steps", "update"), ("same_release_steps", "same release")):
        steps = [name for name in ours[0][key]]
        print(f"  {label:13} " + " ".join(
            f"{name}={statistics.median(o[key].get(name, 0) for o in ours):.2f}" for name in steps))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds (default 3)")
    args = parser.parse_args()
    testbed = open_testbed(("debian:bookworm-slim",))
    if testbed is None:
        return 1
    registry = Registry()
    try:
        builder = testbed.new_host()
        builder.forward_port(registry.port)
        client = builder.docker_client()
        repository = f"{registry.address}/labstack/example"
        v1 = images.build(client, EXAMPLE, repository)
        v1_ref = images.push(client, v1)
        updates = [images.push(client, _derived_image(client, v1.reference, repository, f"r{n}",
                                                       f"ENV APP_VERSION=r{n}")) for n in range(args.rounds)]
        client.close()
        testbed.stop_host(builder)

        ours, raw = [], []
        for n in range(args.rounds):
            sides = [("labstack", measure_labstack, ours), ("raw compose", measure_raw, raw)]
            for name, measure, results in (sides if n % 2 == 0 else sides[::-1]):
                print(f"round {n + 1}: {name}", flush=True)
                results.append(measure(testbed, registry, v1_ref, updates[n], f"r{n}"))
                print("  " + ", ".join(f"{key} {value:.2f}" for key, value in results[-1].items()
                                       if isinstance(value, float)), flush=True)
        report(ours, raw)
        return 0
    finally:
        testbed.stop_all()
        registry.stop()


if __name__ == "__main__":
    sys.exit(main())
