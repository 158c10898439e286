"""Benchmark: a cluster's bring-up by labstack against the same Ray containers started by hand.

Nothing -> all 3 nodes (1 head + 2 workers) alive in Ray's state, on fresh test bed hosts (3 per side, the stand-in
Ray image already in each engine, as a cached image would be). Hosts are started before the clock starts, on both
sides; the sides alternate which goes first from round to round, each on its own fresh hosts.

  * labstack: the program evaluated under mocks for `labstack:cluster: {workers: 2}` and its remote commands
    replayed over real SSH by tests/e2e/engine.py, concurrently as Pulumi runs them (hooks, boot wait, Docker check,
    disk, watcher, hooks/ray-start.sh on every node; no Caddy: the stack has no apps and no dashboard password);
  * by hand: one `ssh host docker run ...` per node, the same image, host networking, restart policy and token
    authentication (token file on the node, RAY_AUTH_MODE=token), `ray start --head` then, as soon as the head's
    `docker run` returned, both workers' `ray start --address <head>:6379` at once (Ray's own retries wait for the GCS).

Same health semantics on both sides: the clock stops when Ray's state lists 3 alive nodes: the head's dashboard
GET /api/v0/nodes (what `invoke ray.status` reads, labstack/clusters.parse_nodes), asked over ssh with curl on the
head's loopback with the side's token, polled the same way. Prints medians with min-max, per-round ratios (goal <= 1.3x),
when each of labstack's remote commands started and ended (the critical path) and ray-start.sh's own timings. Run as
root after `bash setup.sh --tests`:

    venv/bin/python bench/cluster_bench.py [--rounds N]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shlex
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import TimedEngine, open_testbed, spread  # noqa: E402
from components.layout import RAY_PORTS, RAY_PROJECT, RAY_TOKEN_FILE  # noqa: E402
from labstack.stacks.offline import FakeAws  # noqa: E402
from tests.e2e.engine import evaluate_with_dependencies  # noqa: E402
from tests.e2e.fixtures import _new_host_key  # noqa: E402
from labstack.clusters import parse_nodes  # noqa: E402
from labstack.ssh.target import RemoteError  # noqa: E402
from tests.testbed.images import RAY_IMAGE, STANDARD_IMAGES  # noqa: E402

RAY_DASHBOARD_PORT = RAY_PORTS["RAY_DASHBOARD_PORT"]
POLL = 0.2  # the bench's own polling, the same for both sides
STACK = "bench"
HAND_TOKEN = "/etc/ray-by-hand/token"
RAY_START_LOG = re.compile(r"image ready after ([\d.]+)s, in the cluster ([\d.]+)s after its docker run, "
                           r"all done after ([\d.]+)s")


def new_hosts(testbed, pem: Path) -> list:
    """Three fresh hosts in parallel, each with its own host key and the stack's key pair authorized (EC2's job)."""
    public = subprocess.run(["ssh-keygen", "-y", "-f", str(pem)], check=True, capture_output=True, text=True).stdout

    def one(_):
        host_key = _new_host_key()
        host = testbed.new_host(images=(*STANDARD_IMAGES, RAY_IMAGE), host_key=host_key)
        host.run("cat >> ~/.ssh/authorized_keys", input=public)
        return host, host_key

    with ThreadPoolExecutor(max_workers=3) as pool:
        return list(pool.map(one, range(3)))


def wait_alive(head, token_file: str, count: int, seconds: float = 300) -> None:
    """Until the dashboard lists `count` alive nodes. The token stays on the head: curl reads the header from a file
    written there by root (never on a command line)."""
    header = f"/root/{STACK}-ray-header"
    head.run(f"sudo -n sh -c 'umask 077; printf \"Authorization: Bearer %s\\n\" \"$(cat {token_file})\" > {header}'")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        answer = head.run(f"sudo -n curl -s --max-time 5 -H @{header} "
                          f"'http://127.0.0.1:{RAY_DASHBOARD_PORT}/api/v0/nodes?detail=true&limit=1000'",
                          check=False).stdout
        try:
            if sum(node.alive for node in parse_nodes(json.loads(answer))) == count:
                return
        except (ValueError, RemoteError):
            pass  # the dashboard not up yet
        time.sleep(POLL)
    raise RuntimeError(f"{count} Ray nodes were not alive within {seconds}s")


def measure_labstack(testbed, pem: Path) -> dict:
    (head, head_key), (w1, k1), (w2, k2) = nodes = new_hosts(testbed, pem)
    try:
        config = {"aws:region": "eu-west-3", "labstack:serverPem": str(pem), "labstack:tls": "internal",
                  "labstack:sshCidrs": ["0.0.0.0/0"], "labstack:cluster": {"workers": 2}}
        aws = FakeAws(public_ips=[head.ip],
                      node_addresses={STACK: head.ip, f"{STACK}-worker-1": w1.ip, f"{STACK}-worker-2": w2.ip},
                      private_keys={f"{STACK}-host-key": head_key, f"{STACK}-worker-1-host-key": k1,
                                    f"{STACK}-worker-2-host-key": k2})
        start = time.perf_counter()
        engine = TimedEngine(start)
        plan = evaluate_with_dependencies(config, STACK, aws)
        evaluated = time.perf_counter() - start
        engine.apply(*plan)
        applied = time.perf_counter() - start
        wait_alive(head, RAY_TOKEN_FILE, 3)
        return {"alive": time.perf_counter() - start, "evaluate": evaluated, "apply": applied,
                "remote": list(engine.times), "ray": ray_start_times(engine.runs)}
    finally:
        for host, _ in nodes:
            testbed.stop_host(host)


def ray_start_times(runs) -> dict[str, list[float]]:
    """hooks/ray-start.sh's own figures per node (its last log line): image ready, in the cluster after its docker
    run, all done."""
    found = {}
    for run in runs:
        match = RAY_START_LOG.search(run.result.stderr or "")
        if match:
            found[run.resource.removeprefix(STACK + "-")] = [float(value) for value in match.groups()]
    return found


def hand_start(host, node_ip: str, token: str, head_ip: str | None) -> None:
    """What a person would type: the token into a root-only file, then one docker run of Ray."""
    if head_ip is None:
        ray = f"ray start --head --node-ip-address={node_ip} --port=6379 --disable-usage-stats --block"
    else:
        ray = f"ray start --address={head_ip}:6379 --node-ip-address={node_ip} --disable-usage-stats --block"
    host.run(f"sudo -n install -d -m 0700 {os.path.dirname(HAND_TOKEN)} && sudo -n sh -c 'umask 077; cat > "
             f"{HAND_TOKEN}' && sudo -n docker run -d --name {RAY_PROJECT} --network host --restart unless-stopped "
             f"--shm-size=1g -v {HAND_TOKEN}:/run/secrets/ray-token:ro -e RAY_AUTH_MODE=token "
             f"-e RAY_AUTH_TOKEN_PATH=/run/secrets/ray-token --entrypoint '' {shlex.quote(RAY_IMAGE)} {ray}",
             input=token)


def measure_hand(testbed, pem: Path) -> dict:
    (head, _), (w1, _), (w2, _) = nodes = new_hosts(testbed, pem)
    try:
        token = secrets.token_hex(32)
        start = time.perf_counter()
        hand_start(head, head.ip, token, None)
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(lambda worker: hand_start(worker, worker.ip, token, head.ip), (w1, w2)))
        started = time.perf_counter() - start
        wait_alive(head, HAND_TOKEN, 3)
        return {"alive": time.perf_counter() - start, "started": started}
    finally:
        for host, _ in nodes:
            testbed.stop_host(host)


def report(ours: list[dict], hand: list[dict]) -> None:
    ratios = [o["alive"] / h["alive"] for o, h in zip(ours, hand)]
    print(f"\n{len(ours)} alternated rounds, 1 head + 2 workers on 3 fresh hosts per side; median (min-max)")
    print(f"{'':36} {'labstack':>22} {'by hand':>22} {'ratio':>7}  per round")
    print(f"{'nothing -> 3 nodes alive in Ray':36} {spread([o['alive'] for o in ours]):>22} "
          f"{spread([h['alive'] for h in hand]):>22} {statistics.median(ratios):6.2f}x  "
          f"{' '.join(f'{x:.2f}' for x in ratios)}   (goal <= 1.3x)")
    print(f"{'labstack: evaluation under mocks':36} {spread([o['evaluate'] for o in ours]):>22}")
    print(f"{'labstack: all remote commands done':36} {spread([o['apply'] for o in ours]):>22}")
    print(f"{'by hand: docker runs returned':36} {'':>22} {spread([h['started'] for h in hand]):>22}")
    print("\nlabstack's remote commands, seconds after the clock started (median start, end and duration):")
    for name, *_ in sorted(ours[0]["remote"], key=lambda row: row[1]):
        rows = [row for o in ours for row in o["remote"] if row[0] == name]
        begin, end = statistics.median(r[1] for r in rows), statistics.median(r[2] for r in rows)
        took = statistics.median(r[2] - r[1] for r in rows)
        print(f"  {name.removeprefix(STACK + '-'):28} {begin:6.2f} {end:6.2f} {took:6.2f}")
    print("\nhooks/ray-start.sh's own figures (median s: image ready after the step began; in the cluster after "
          "its docker run; all done after the step began):")
    for node in ours[0]["ray"]:
        figures = [o["ray"][node] for o in ours if node in o["ray"]]
        print(f"  {node:28} " + " ".join(f"{statistics.median(f[i] for f in figures):6.2f}" for i in range(3)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds (default 3)")
    args = parser.parse_args()
    testbed = open_testbed((RAY_IMAGE,))
    if testbed is None:
        return 1
    scratch = Path(subprocess.run(["mktemp", "-d"], check=True, capture_output=True, text=True).stdout.strip())
    pem = scratch / "stack.pem"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(pem)], check=True)
    try:
        ours, hand = [], []
        for n in range(args.rounds):
            sides = [("labstack", measure_labstack, ours), ("by hand", measure_hand, hand)]
            for name, measure, results in (sides if n % 2 == 0 else sides[::-1]):
                print(f"round {n + 1}: {name}", flush=True)
                results.append(measure(testbed, pem))
                print("  " + ", ".join(f"{key} {value:.2f}" for key, value in results[-1].items()
                                       if isinstance(value, float)), flush=True)
                for node, figures in results[-1].get("ray", {}).items():  # a slow round shows which node was slow
                    print(f"    {node}: in the cluster {figures[1]:.1f}s after its docker run", flush=True)
        report(ours, hand)
        return 0
    finally:
        testbed.stop_all()
        subprocess.run(["rm", "-rf", str(scratch)], check=False)


if __name__ == "__main__":
    sys.exit(main())
