"""A cluster stack through the PROGRAM on the test bed (issue 11 items 2 and 5): __main__.py evaluated under the mocks,
its remote commands replayed over real SSH by the e2e engine, each node on its own host (FakeAws.node_addresses: the
hosts share a link, so a host's IP is both the node's private and public address).

Shown: two workers come up with the head (3 alive Ray nodes); lowering `workers` to 1 runs only worker-2's delete
step, the drain, while a job runs, and the job still finishes; raising it to 2 again creates only the new worker-2's
steps (on a fresh host: a new instance) and keeps the head's and worker-1's Ray node ids. The test holds at most 3
hosts, the test bed's share for this work, hence 2 -> 1 -> 2 rather than 2 -> 3 -> 2: the same create-only and
drain-first paths run."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from components.layout import RAY_PROJECT
from ops.offline import FakeAws
from tests.e2e.engine import RemoteEngine, evaluate_with_dependencies
from tests.e2e.fixtures import STANDIN_IMAGES, _new_host_key
from tests.e2e.test_cluster import job_result, submit, wait_alive
from tests.testbed.images import RAY_IMAGE, STANDARD_IMAGES

pytestmark = [pytest.mark.testbed, pytest.mark.e2e]

STACK = "sweep"


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


def test_workers_two_one_two_through_the_program_drain_first_create_only_the_missing(testbed, tmp_path, monkeypatch):
    monkeypatch.setenv("LABSTACK_INFRA_IMAGES", str(STANDIN_IMAGES))
    pem = tmp_path / "stack.pem"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(pem)], check=True)
    hosts = []
    try:
        head, w1, w2 = (new_node(testbed, pem) for _ in range(3))
        hosts += [head, w1, w2]
        stack = ClusterStack(head, pem, tmp_path / "exports")
        stack.place(1, w1)
        stack.place(2, w2)

        # workers: 2 -> every node's steps; Ray on the head and both workers
        first_runs = stack.up(2)
        assert {name for name, phase in first_runs if phase == "create"} >= {
            f"{STACK}-ray", f"{STACK}-worker-1-ray", f"{STACK}-worker-2-ray", f"{STACK}-proxy",
            f"{STACK}-worker-1-docker", f"{STACK}-worker-2-docker"}
        assert not [run for run in first_runs if run[0].startswith(f"{STACK}-worker-") and run[0].endswith("-proxy")]
        first = wait_alive(head, {head.ip, w1.ip, w2.ip})
        print(f"workers 2: alive Ray nodes {len(first)}")

        # workers: 1 while a job runs -> only worker-2's drain (its delete step); the job still finishes
        running = submit(head, tasks=40, sleep=2)
        wait_alive(head, {head.ip, w1.ip, w2.ip})
        assert stack.up(1) == [(f"{STACK}-worker-2-ray", "delete")]
        assert w2.run(f"sudo -n docker ps -aq -f name=^{RAY_PROJECT}$").stdout.strip() == ""
        # tasks had run on the drained node (SPREAD), and what ran there at the drain was retried elsewhere
        out = job_result(head, running)
        assert first[w2.ip] in next(line for line in out.splitlines() if line.startswith("NODES")).split()
        shrunk = wait_alive(head, {head.ip, w1.ip})
        assert shrunk == {head.ip: first[head.ip], w1.ip: first[w1.ip]}
        print(f"workers 1: alive Ray nodes {len(shrunk)}")
        testbed.stop_host(w2)  # the instance goes after its drain
        hosts.remove(w2)
        assert stack.up(1) == []  # nothing changed: nothing runs

        # workers: 2 again -> a new instance; only its steps run, the others keep their Ray node ids
        w2b = new_node(testbed, pem)
        hosts.append(w2b)
        stack.place(2, w2b)  # a new host key too: the old one went with the old worker's state
        grown_runs = stack.up(2)
        assert grown_runs and all(name.startswith(f"{STACK}-worker-2-") and phase == "create"
                                  for name, phase in grown_runs), grown_runs
        assert (f"{STACK}-worker-2-ray", "create") in grown_runs
        grown = wait_alive(head, {head.ip, w1.ip, w2b.ip})
        assert grown[head.ip] == first[head.ip] and grown[w1.ip] == first[w1.ip]
        assert grown[w2b.ip] not in first.values()
        print(f"workers 2 again: alive Ray nodes {len(grown)}")
    finally:
        for host in hosts:
            testbed.stop_host(host)
