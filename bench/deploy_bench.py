"""Benchmark: labstack's deploy against raw `docker compose up -d` of the same services on the same test bed host.

Prints, for a first deploy, a no-op redeploy and an image update, labstack's wall time next to raw compose's and
the ratio. Raw compose is the floor (no health check, no blue/green, no proxy reload, downtime on update);
labstack pays for those guarantees, and the ratios show how much. Run as root after `bash setup.sh --tests`:

    sudo venv/bin/python bench/deploy_bench.py [--rounds N]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ops import images  # noqa: E402
from tests.e2e.fixtures import DNS_HOST, EXAMPLE, ZONES, Stack, _derived_image, _new_host_key  # noqa: E402
from ops.offline import FakeAws  # noqa: E402
from tests.testbed import images as imagemod  # noqa: E402
from tests.testbed.fixtures import Testbed, missing_prerequisites  # noqa: E402
from tests.testbed.host import cleanup_leftovers  # noqa: E402
from tests.testbed.services import Registry  # noqa: E402

RAW_COMPOSE = """services:
  postgres:
    image: postgres:16
    environment: {{POSTGRES_USER: raw, POSTGRES_DB: raw, POSTGRES_PASSWORD: raw}}
  redis:
    image: redis:7
  web:
    image: {image}
    environment: {{DATABASE_URL: "postgresql://raw:raw@postgres:5432/raw", REDIS_URL: "redis://redis:6379/0"}}
    ports: ["8080:5000"]
  worker:
    image: {image}
    command: ["python", "worker.py"]
    environment: {{DATABASE_URL: "postgresql://raw:raw@postgres:5432/raw", REDIS_URL: "redis://redis:6379/0"}}
"""


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def raw_compose(host, image: str) -> float:
    host.run(f"mkdir -p ~/raw && cat > ~/raw/compose.yaml <<'EOF'\n{RAW_COMPOSE.format(image=image)}EOF")
    return timed(lambda: host.run("cd ~/raw && docker compose -p raw up -d --quiet-pull 2>&1"))


def wait_http(host, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if host.run("curl -fsS -o /dev/null http://127.0.0.1:8080/health", check=False).returncode == 0:
            return
        time.sleep(0.5)
    raise RuntimeError("raw compose web never answered")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="update rounds to average (default 3)")
    args = parser.parse_args()
    missing = missing_prerequisites()
    if missing:
        print("bench: the test bed is not available: " + "; ".join(missing), file=sys.stderr)
        return 1
    cleanup_leftovers(log=lambda m: None)
    testbed = Testbed(imagemod.ensure_images((*imagemod.STANDARD_IMAGES, "debian:bookworm-slim"), log=print))
    registry = Registry()
    try:
        builder = testbed.new_host()
        builder.forward_port(registry.port)
        client = builder.docker_client()
        repository = f"{registry.address}/labstack/example"
        v1 = images.build(client, EXAMPLE, repository)
        refs = [images.push(client, v1)]
        for round_number in range(args.rounds):
            variant = _derived_image(client, v1.reference, repository, f"r{round_number}",
                                     f"ENV APP_VERSION=r{round_number}")
            refs.append(images.push(client, variant))
        testbed.stop_host(builder)

        host_key = _new_host_key()
        host = testbed.new_host(host_key=host_key)
        host.forward_port(registry.port)
        config = {"aws:region": "eu-west-3", "labstack:serverPem": str(host.key_path), "labstack:dnsHost": DNS_HOST,
                  "labstack:tls": "internal",
                  "labstack:apps": {"elif": {"image": refs[0], "host": "@", "workers": 1,
                                             "workerCommand": "python worker.py"}}}
        stack = Stack("bench", host, config,
                      FakeAws(zones=dict(ZONES), public_ips=[host.ip], private_keys={"bench-host-key": host_key}))

        ours_first = timed(lambda: (stack.up(), stack.wait_serving("/health")))
        raw_first = timed(lambda: (raw_compose(host, refs[0]), wait_http(host)))
        ours_noop = timed(stack.up)
        raw_noop = raw_compose(host, refs[0])
        ours_updates, raw_updates = [], []
        for ref in refs[1:]:
            stack.config["labstack:apps"]["elif"]["image"] = ref
            ours_updates.append(timed(stack.up))
            raw_updates.append(timed(lambda ref=ref: (raw_compose(host, ref), wait_http(host))))

        rows = [("first deploy (to healthy)", ours_first, raw_first),
                ("no-op redeploy", ours_noop, raw_noop),
                (f"update cut-over (median of {args.rounds})", statistics.median(ours_updates),
                 statistics.median(raw_updates))]
        print(f"\n{'':38} {'labstack':>10} {'raw compose':>12} {'ratio':>7}")
        for label, ours, raw in rows:
            print(f"{label:38} {ours:9.2f}s {raw:11.2f}s {ours / raw:6.2f}x")
        print("\nlabstack's update includes a health check and a blue/green swap with zero failed requests; raw "
              "compose recreates the web container in place (requests fail meanwhile).")
        return 0
    finally:
        testbed.stop_all()
        registry.stop()


if __name__ == "__main__":
    sys.exit(main())
