"""A cluster stack through the PROGRAM on the test bed: __main__.py evaluated under the mocks,
its remote commands replayed over real SSH by the e2e engine, each node on its own host (FakeAws.node_addresses: the
hosts share a link, so a host's IP is both the node's private and public address).

Shown, on four hosts (head + three workers): two workers come up with the head (3 alive Ray nodes); raising `workers`
to 3 on a fresh host runs exactly the new worker-3's steps, and the head and both workers keep their Ray node ids (4
alive); lowering it to 2 while a job's task runs on worker-3 runs exactly one command, worker-3's drain, and the job
still succeeds (its task finished on worker-3 within the drain's deadline); Ray then lists worker-3 as not alive and
the other three with their ids. Four hosts is this test's share of the test bed (docs/testbed.md: 8 hosts; no other
test holds more than 3, so two files side by side under xdist fit)."""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from components.layout import RAY_PROJECT
from labstack.stacks.offline import FakeAws
from tests.e2e.engine import RemoteEngine, evaluate_with_dependencies
from tests.e2e.fixtures import _new_host_key
from tests.e2e.test_cluster import job_result, on_head, submit_on_head, wait_alive
from tests.testbed.images import RAY_IMAGE, STANDARD_IMAGES

pytestmark = [pytest.mark.testbed, pytest.mark.e2e]

STACK = "sweep"

# A job's driver: one task placed on TARGET_NODE (soft: once that node drains, Ray may place a retry elsewhere) that
# sleeps, then names the Ray node it ran on.
PINNED_JOB = """
import ray, time
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
ray.init()
@ray.remote
def pinned():
    time.sleep(SLEEP_S)
    return ray.get_runtime_context().get_node_id()
strategy = NodeAffinitySchedulingStrategy(node_id="TARGET_NODE", soft=True)
print("PINNED", ray.get(pinned.options(scheduling_strategy=strategy).remote()))
"""

# Every Ray node the head's GCS knows, dead ones included: {node id: alive}.
ALL_NODES = """
import json, ray
ray.init(address="auto", logging_level="ERROR")
print(json.dumps({n["NodeID"]: n["Alive"] for n in ray.nodes()}))
"""


class ClusterStack:
    """The stack file's settings, the fake AWS answers (which host is which node) and the engine's state."""

    def __init__(self, head, pem: Path, exports: Path):
        self.head = head
        self.aws = FakeAws(public_ips=[head.ip], node_addresses={STACK: head.ip},
                           private_keys={f"{STACK}-host-key": head.host_key})
        self.config = {
            "aws:region": "eu-west-3",
            "labstack:serverPem": str(pem),
            "labstack:tls": "internal",
            "labstack:sshCidrs": ["0.0.0.0/0"],
            "labstack:exportsDir": str(exports),
            "labstack:cluster": {"workers": 0},
        }
        self.engine = RemoteEngine()

    def place(self, index: int, host) -> None:
        """worker-<index>'s instance is `host`: its address, and the host key the program generates for it."""
        name = f"{STACK}-worker-{index}"
        self.aws.node_addresses[name] = host.ip
        self.aws.private_keys[f"{name}-host-key"] = host.host_key

    def up(self, workers: int) -> list[tuple[str, str]]:
        self.config["labstack:cluster"] = {"workers": workers}
        runs = self.engine.apply(*evaluate_with_dependencies(self.config, STACK, self.aws))
        return [(run.resource, run.phase) for run in runs]


def new_node(testbed, pem: Path):
    """A fresh host standing for a new EC2 instance: the program's host key (cloud-init's job) and the stack's key
    pair in ubuntu's authorized_keys (EC2's job)."""
    host_key = _new_host_key()
    host = testbed.new_host(images=(*STANDARD_IMAGES, RAY_IMAGE), host_key=host_key)
    host.host_key = host_key
    public = subprocess.run(["ssh-keygen", "-y", "-f", str(pem)], check=True, capture_output=True, text=True).stdout
    host.run("cat >> ~/.ssh/authorized_keys", input=public)
    return host




def worker_steps(runs: list[tuple[str, str]], index: int) -> set[tuple[str, str]]:
    """The (resource, phase) pairs of worker-<index>'s own steps."""
    return {run for run in runs if run[0].startswith(f"{STACK}-worker-{index}-")}


def pinned_job(head, node_id: str, sleep: float) -> str:
    """One task placed on `node_id` (soft: Ray may run it elsewhere once that node drains) that sleeps, then names the
    node it ran on; the job id."""
    return submit_on_head(head, PINNED_JOB.replace("TARGET_NODE", node_id).replace("SLEEP_S", str(sleep)), "pinned")


def wait_task_running(host, task: str, seconds: float = 180) -> None:
    """Until a Ray worker process on `host` runs `task` (Ray names it `ray::<task>`)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ps = host.run(f"sudo -n docker exec {RAY_PROJECT} ps -eo args=", check=False).stdout
        if any(line.startswith(f"ray::{task}") for line in ps.splitlines()):
            return
        time.sleep(1)
    raise AssertionError(f"no ray::{task} process on {host.ip} within {seconds}s")


def test_workers_two_three_two_through_the_program_create_only_the_missing_drain_first(testbed, tmp_path):
    pem = tmp_path / "stack.pem"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(pem)], check=True)
    hosts = []
    try:
        for _ in range(3):
            hosts.append(new_node(testbed, pem))
        head, w1, w2 = hosts
        stack = ClusterStack(head, pem, tmp_path / "exports")
        stack.place(1, w1)
        stack.place(2, w2)

        # workers: 2 -> every node's steps; Ray on the head and both workers
        first_runs = stack.up(2)
        assert {name for name, phase in first_runs if phase == "create"} >= {
            f"{STACK}-ray", f"{STACK}-worker-1-ray", f"{STACK}-worker-2-ray",
            f"{STACK}-worker-1-docker", f"{STACK}-worker-2-docker"}
        # No apps and no dashboard password: no node serves HTTP, so none starts Caddy.
        assert not [run for run in first_runs if run[0].endswith("-proxy")]
        first = wait_alive(head, {head.ip, w1.ip, w2.ip})
        print(f"workers 2: alive Ray nodes {len(first)}")

        # workers: 3 on a fresh host -> exactly worker-3's steps (the ones worker-2 got), all on that host; nobody
        # else's step runs and the three nodes keep their Ray node ids
        w3 = new_node(testbed, pem)
        hosts.append(w3)
        stack.place(3, w3)
        grown_runs = stack.up(3)
        expected = {(name.replace(f"{STACK}-worker-2-", f"{STACK}-worker-3-"), phase)
                    for name, phase in worker_steps(first_runs, 2)}
        assert len(grown_runs) == len(set(grown_runs)) and set(grown_runs) == expected, grown_runs
        assert all(phase == "create" for _, phase in grown_runs)
        assert (f"{STACK}-worker-3-ray", "create") in grown_runs
        assert {stack.engine.state[name]["connection"]["host"] for name, _ in grown_runs
                if "connection" in stack.engine.state[name]} == {w3.ip}
        grown = wait_alive(head, {head.ip, w1.ip, w2.ip, w3.ip})
        assert {ip: grown[ip] for ip in first} == first
        assert grown[w3.ip] not in first.values()
        print(f"workers 3: alive Ray nodes {len(grown)}; {len(grown_runs)} steps ran, all worker-3's")

        # workers: 2 while a task runs on worker-3 -> exactly one command, worker-3's drain; the job still succeeds
        job = pinned_job(head, grown[w3.ip], sleep=20)
        wait_task_running(w3, "pinned")
        started = time.monotonic()
        assert stack.up(2) == [(f"{STACK}-worker-3-ray", "delete")]
        drain_s = time.monotonic() - started
        drain_log = stack.engine.runs[-1].result.stderr
        assert f"Ray node {grown[w3.ip]} draining" in drain_log, drain_log  # Ray accepted the drain request
        assert w3.run(f"sudo -n docker ps -aq -f name=^{RAY_PROJECT}$").stdout.strip() == ""
        out = job_result(head, job)  # asserts SUCCEEDED
        ran_on = next(line for line in out.splitlines() if line.startswith("PINNED")).split()[1]
        # the 20 s task was running on worker-3 when the drain began and had its deadline (60 s) to finish there
        assert ran_on == grown[w3.ip], (ran_on, grown)
        print(f"workers 2 again: drain took {drain_s:.0f} s; the pinned task finished on worker-3")
        shrunk = wait_alive(head, {head.ip, w1.ip, w2.ip})
        assert shrunk == first
        known = json.loads(on_head(head, ALL_NODES).stdout.strip().splitlines()[-1])
        assert known.get(grown[w3.ip], False) is False, known  # dead, or forgotten
        print(f"workers 2 again: alive Ray nodes {len(shrunk)}; worker-3 "
              f"{'listed dead' if grown[w3.ip] in known else 'gone from the list'}")
        testbed.stop_host(w3)  # the instance goes after its drain
        hosts.remove(w3)
        assert stack.up(2) == []  # nothing changed: nothing runs
    finally:
        for host in hosts:
            testbed.stop_host(host)
