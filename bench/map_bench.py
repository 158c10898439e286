"""Benchmark: labstack.map against the same calls run by hand, on the test bed, in one run.

  * Ray: `labstack.map(two_seconds, range(24), cluster=...)` on a 3-node Ray cluster stack (head + 2 workers, Ray
    started as the program's RayNode steps start it) against the same 24 tasks submitted by hand with Ray's own
    JobSubmissionClient: a driver script with one @ray.remote function, one job, its status polled until it ended,
    its log read for the results. Both sides read the cluster's token on the head over ssh, open an `ssh -L` tunnel
    to the dashboard (labstack.clusters.tunnel) and poll the job at the same interval. Goal <= 1.2x.
  * Servers: `labstack.map(two_seconds, range(24), stacks=[3 stacks])` (function jobs in containers of the
    python:3.11-slim stand-in, the server's CPU count at once on each) against 3 loops run at once, one per host,
    each running its share of the calls one after another as `ssh host python3 -c ...`. Goal <= 1.3x.

Both sides end when every result is back on this machine, both use the same warm hosts (Ray up, images loaded, one
untimed warm-up of each side first), and the rounds alternate which side goes first. Prints medians with their
range and the median of the per-round ratios (both sides of a round ran under the same load). Run as root after
`bash setup.sh --tests`:

    venv/bin/python bench/map_bench.py [--rounds N] [--calls N] [--only ray|servers]
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

import labstack  # noqa: E402
import labstack.stacks.stackfile  # noqa: E402
from bench.common import open_testbed, spread  # noqa: E402
from components.layout import HOOKS_DIR, REMOTE_HOOKS, hook  # noqa: E402
from labstack import clusters, parallel  # noqa: E402
from labstack.ssh.target import SshTarget  # noqa: E402
from tests.e2e.test_cluster import install_hooks, on_head, wait_alive  # noqa: E402
from tests.fakes import install_fake_pulumi  # noqa: E402
from tests.testbed.images import RAY_IMAGE, STANDARD_IMAGES  # noqa: E402
from tests.unit.helpers import base_config  # noqa: E402

SECONDS = 2  # each call's own work

HAND_DRIVER = """
import time
import ray

ray.init()


@ray.remote
def two_seconds(x):
    time.sleep({seconds})
    return x * x


print("RESULTS", ray.get([two_seconds.remote(x) for x in range({calls})]))
"""


CPUS = """
import ray
ray.init(address="auto", logging_level="ERROR")
print(ray.cluster_resources().get("CPU"))
"""


def two_seconds(x):
    import time

    time.sleep(2)
    return x * x


class Env:
    """monkeypatch's setenv for tests.fakes.install_fake_pulumi, outside pytest."""

    @staticmethod
    def setenv(name: str, value: str) -> None:
        os.environ[name] = value


def target_of(host, stack: str) -> SshTarget:
    return SshTarget(host=host.ip, user=host.user, key_path=Path(host.key_path), known_hosts=host.known_hosts_line(),
                     stack=stack)


# --- Ray ------------------------------------------------------------------------------------------------------------

def start_cluster(testbed) -> list:
    hosts = [testbed.new_host(images=(*STANDARD_IMAGES, RAY_IMAGE)) for _ in range(3)]
    head, *workers = hosts
    token = secrets.token_hex(32)
    for host in hosts:
        install_hooks(host)
    head.run(hook("ray-start.sh", "head", head.ip, RAY_IMAGE), input=token)
    for worker in workers:
        worker.run(hook("ray-start.sh", "worker", worker.ip, RAY_IMAGE, head.ip), input=token)
    wait_alive(head, {host.ip for host in hosts})
    return hosts


def ray_by_labstack(stack: str, calls: int) -> float:
    start = time.perf_counter()
    results = labstack.map(two_seconds, range(calls), cluster=stack, announce=lambda line: None)
    took = time.perf_counter() - start
    assert results == [x * x for x in range(calls)], results
    return took


def ray_by_hand(head, calls: int, work: Path) -> float:
    from ray.job_submission import JobStatus, JobSubmissionClient

    folder = work / f"hand-{secrets.token_hex(4)}"
    folder.mkdir()
    (folder / "driver.py").write_text(HAND_DRIVER.format(seconds=SECONDS, calls=calls))
    start = time.perf_counter()
    target = target_of(head, "by-hand")
    token = clusters.read_token(target)
    with clusters.tunnel(target) as url:
        client = JobSubmissionClient(url, headers={"Authorization": f"Bearer {token}"})
        job = client.submit_job(entrypoint="python3 driver.py", runtime_env={"working_dir": str(folder)})
        while client.get_job_status(job) not in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
            time.sleep(parallel.POLL_MIN / 2)  # map's own poll interval
        logs = client.get_job_logs(job)
    took = time.perf_counter() - start
    line = next(line for line in logs.splitlines() if line.startswith("RESULTS"))
    assert line == f"RESULTS {[x * x for x in range(calls)]}", line
    return took


def bench_ray(testbed, rounds: int, calls: int, work: Path) -> tuple[list[float], list[float]]:
    hosts = start_cluster(testbed)
    head = hosts[0]
    try:
        stack = "bench-ray"
        (labstack.stacks.stackfile.STACKS_DIR / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(
            {"config": base_config(Path(head.key_path), cluster={"workers": 2})}))
        os.environ["FAKE_PULUMI_OUTPUTS"] = json.dumps({"publicIp": head.ip, "knownHosts": head.known_hosts_line()})
        cpus = on_head(head, CPUS).stdout.strip().splitlines()[-1]
        print(f"Ray cluster on {', '.join(h.ip for h in hosts)}: {cpus or '?'} CPUs; warm-up of each side",
              flush=True)
        ray_by_labstack(stack, calls)
        ray_by_hand(head, calls, work)
        ours, hand = [], []
        for n in range(rounds):
            sides = [("labstack.map", lambda: ours.append(ray_by_labstack(stack, calls))),
                     ("by hand", lambda: hand.append(ray_by_hand(head, calls, work)))]
            for name, measure in sides if n % 2 == 0 else sides[::-1]:
                measure()
            print(f"  round {n + 1}: labstack.map {ours[-1]:.2f}s, by hand {hand[-1]:.2f}s", flush=True)
        return ours, hand
    finally:
        for host in hosts:
            testbed.stop_host(host)


# --- servers --------------------------------------------------------------------------------------------------------

def hand_loop(host, items: list[int]) -> list[int]:
    """What a person would type: one `ssh host python3 -c ...` per call, one after another."""
    target = target_of(host, "by-hand")
    results = []
    for x in items:
        code = f"import time; time.sleep({SECONDS}); print({x} * {x})"
        results.append(int(target.text(f"python3 -c {shlex.quote(code)}")))
    return results


def servers_by_hand(hosts: list, calls: int) -> float:
    shares = [list(range(calls))[n::len(hosts)] for n in range(len(hosts))]
    results: dict[int, list[int]] = {}
    start = time.perf_counter()
    threads = [threading.Thread(target=lambda n=n: results.__setitem__(n, hand_loop(hosts[n], shares[n])))
               for n in range(len(hosts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.perf_counter() - start
    assert all(results[n] == [x * x for x in shares[n]] for n in range(len(hosts))), results
    return took


def servers_by_labstack(stacks: list[str], calls: int, per_server=None) -> float:
    start = time.perf_counter()
    results = labstack.map(two_seconds, range(calls), stacks=stacks, per_server=per_server,
                           announce=lambda line: None)
    took = time.perf_counter() - start
    assert results == [x * x for x in range(calls)], results
    return took


def bench_servers(testbed, rounds: int, calls: int) -> tuple:
    hosts = [testbed.new_host() for _ in range(3)]
    try:
        outputs = {}
        stacks = [f"bench-server-{n}" for n in range(len(hosts))]
        for stack, host in zip(stacks, hosts):
            host.exec_in(["mkdir", "-p", REMOTE_HOOKS])  # what HostSetup copies on a server
            host.exec_in(["sh", "-c", f"cp {HOOKS_DIR}/*.sh {HOOKS_DIR}/*.bash {REMOTE_HOOKS}/"])
            (labstack.stacks.stackfile.STACKS_DIR / f"Pulumi.{stack}.yaml").write_text(
                f"config:\n  aws:region: eu-west-3\n  labstack:serverPem: {host.key_path}\n"
                "  labstack:sshCidrs: [0.0.0.0/0]\n")
            outputs[stack] = {"publicIp": host.ip, "knownHosts": host.known_hosts_line()}
        os.environ["FAKE_PULUMI_OUTPUTS_BY_STACK"] = json.dumps(outputs)
        cpus = [target_of(host, "bench").text("nproc").strip() for host in hosts]
        print(f"3 servers ({', '.join(h.ip for h in hosts)}), {'/'.join(cpus)} CPUs; warm-up of each side",
              flush=True)
        servers_by_labstack(stacks, calls)
        servers_by_hand(hosts, calls)
        ours, one_at_a_time, all_at_once, hand = [], [], [], []
        every = -(-calls // len(hosts))  # each server's share of the calls, all submitted at once
        for n in range(rounds):
            sides = [("labstack.map", lambda: ours.append(servers_by_labstack(stacks, calls))),
                     ("labstack.map per_server=1",
                      lambda: one_at_a_time.append(servers_by_labstack(stacks, calls, per_server=1))),
                     ("labstack.map all at once",
                      lambda: all_at_once.append(servers_by_labstack(stacks, calls, per_server=every))),
                     ("by hand", lambda: hand.append(servers_by_hand(hosts, calls)))]
            for name, measure in sides if n % 2 == 0 else sides[::-1]:
                measure()
            print(f"  round {n + 1}: labstack.map {ours[-1]:.2f}s, per_server=1 {one_at_a_time[-1]:.2f}s, "
                  f"per_server={every} {all_at_once[-1]:.2f}s, by hand {hand[-1]:.2f}s", flush=True)
        return ours, one_at_a_time, all_at_once, hand, every
    finally:
        for host in hosts:
            testbed.stop_host(host)


def ratio_line(name: str, ours: list[float], hand: list[float], goal: float) -> str:
    ratios = [a / b for a, b in zip(ours, hand)]
    ratio = statistics.median(ratios)
    return (f"  {name:40s} {spread(ours)}  by hand {spread(hand)}  ratio {ratio:.2f}x "
            f"({min(ratios):.2f}-{max(ratios):.2f}; goal <= {goal}x: {'met' if ratio <= goal else 'NOT met'})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds (default 3)")
    parser.add_argument("--calls", type=int, default=24, help="calls of the 2-second function (default 24)")
    parser.add_argument("--only", choices=("ray", "servers"))
    args = parser.parse_args()
    testbed = open_testbed((RAY_IMAGE,))
    if testbed is None:
        return 2
    work = Path(tempfile.mkdtemp(prefix="map-bench-"))
    (work / "stacks").mkdir()
    labstack.stacks.stackfile.STACKS_DIR = work / "stacks"
    install_fake_pulumi(work / "pulumi", Env)
    os.environ.setdefault("PULUMI_BACKEND_URL", f"file://{work / 'state'}")
    os.environ.setdefault("PULUMI_CONFIG_PASSPHRASE", "bench")
    lines = []
    try:
        if args.only in (None, "ray"):
            ours, hand = bench_ray(testbed, args.rounds, args.calls, work)
            lines.append(ratio_line(f"Ray cluster, {args.calls} calls", ours, hand, 1.2))
        if args.only in (None, "servers"):
            ours, one_at_a_time, all_at_once, hand, every = bench_servers(testbed, args.rounds, args.calls)
            lines.append(ratio_line(f"3 servers, {args.calls} calls", ours, hand, 1.3))
            lines.append(ratio_line("3 servers, per_server=1", one_at_a_time, hand, 1.3))
            lines.append(ratio_line(f"3 servers, per_server={every} (all at once)", all_at_once, hand, 1.3))
        print(f"\n{args.rounds} alternated rounds, a {SECONDS}-second function; median (min-max)")
        print("\n".join(lines))
        return 0
    finally:
        testbed.stop_all()
        subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    sys.exit(main())
