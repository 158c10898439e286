"""The ray.* tasks' logic without a cluster (labstack/clusters.py): which node a name means, the tunnel's argv, the
dashboard's node list, the job's runtime_env, and the messages of a stack that is not a Ray cluster."""
from __future__ import annotations

import pytest

from components.config import load_stack_config
from labstack import clusters as ray_cluster
from labstack.ssh.target import RemoteError, SshTarget
from tests.unit.helpers import base_config

HEAD_KEY = "203.0.113.1 ssh-ed25519 AAAAhead"
WORKER_KEY = "203.0.113.3 ssh-ed25519 AAAAworker"
OUTPUTS = {"publicIp": "203.0.113.1", "knownHosts": HEAD_KEY, "nodes": {
    "sweep": {"role": "head", "publicIp": "203.0.113.1", "knownHosts": HEAD_KEY},
    "sweep-worker-1": {"role": "worker", "publicIp": "203.0.113.2", "knownHosts": "203.0.113.2 ssh-ed25519 AAAAw1"},
    "sweep-worker-2": {"role": "worker", "publicIp": "203.0.113.3", "knownHosts": WORKER_KEY}}}


def config(pem, **settings):
    return load_stack_config(base_config(pem, **settings), "sweep")


@pytest.mark.parametrize("node", ["worker-2", "sweep-worker-2"])
def test_a_worker_is_reached_at_its_address_with_its_pinned_key(pem, node):
    target = ray_cluster.node_target("sweep", node, OUTPUTS, config(pem, cluster={"workers": 2}))
    assert (target.host, target.known_hosts, target.user, target.key_path, target.port) == (
        "203.0.113.3", WORKER_KEY, "ubuntu", pem, 22)


def test_head_is_the_server(pem):
    target = ray_cluster.node_target("sweep", "head", OUTPUTS, config(pem, cluster={"workers": 2}))
    assert (target.host, target.known_hosts) == ("203.0.113.1", HEAD_KEY)


def test_an_unknown_node_names_the_known_ones(pem):
    with pytest.raises(RemoteError) as error:
        ray_cluster.node_target("sweep", "worker-3", OUTPUTS, config(pem, cluster={"workers": 2}))
    assert str(error.value) == ("stack 'sweep' has no node 'worker-3' (known: head, worker-1, worker-2); after "
                                "changing labstack:cluster.workers, run `invoke up -s sweep`")


def test_a_plain_server_has_no_workers(pem):
    with pytest.raises(RemoteError) as error:
        ray_cluster.node_target("sweep", "worker-1", OUTPUTS, config(pem))
    assert str(error.value) == ("stack 'sweep' is not a cluster (no labstack:cluster): it has only its server; drop "
                                "--node")


def test_ray_tasks_need_a_ray_cluster(pem):
    with pytest.raises(RemoteError) as error:
        ray_cluster.require_ray("sweep", config(pem))
    assert str(error.value) == ("stack 'sweep' is not a cluster: set labstack:cluster (e.g. `invoke config -s sweep "
                                "--set 'labstack:cluster.workers'=2`) and run `invoke up -s sweep`")
    with pytest.raises(RemoteError) as error:
        ray_cluster.require_ray("sweep", config(pem, cluster={"workers": 1, "engine": "none"}))
    assert str(error.value) == ("stack 'sweep' runs no Ray (labstack:cluster.engine = 'none'); use `invoke ssh -s "
                                "sweep --node worker-1` to reach its machines")
    ray_cluster.require_ray("sweep", config(pem, cluster={"workers": 0}))


def test_the_tunnel_forwards_only_loopback_to_the_dashboard_with_the_pinned_key(pem):
    target = SshTarget(host="203.0.113.1", user="ubuntu", key_path=pem, known_hosts=HEAD_KEY, stack="sweep")
    argv = ray_cluster.tunnel_argv(target, 40123)
    assert argv[-6:] == ["-N", "-o", "ExitOnForwardFailure=yes", "-L", "127.0.0.1:40123:127.0.0.1:8265",
                         "ubuntu@203.0.113.1"]
    assert "StrictHostKeyChecking=yes" in argv
    assert f"UserKnownHostsFile={target.known_hosts_file()}" in argv
    assert target.known_hosts_file().read_text() == HEAD_KEY + "\n"


def test_the_dashboards_node_list_is_read():
    answer = {"result": True, "msg": "", "data": {"result": {"total": 3, "result": [
        {"node_id": "b" * 56, "node_ip": "10.0.0.12", "state": "DEAD", "is_head_node": False,
         "resources_total": {"CPU": 4.0, "memory": 8 * 2**30}},
        {"node_id": "a" * 56, "node_ip": "10.0.0.11", "state": "ALIVE", "is_head_node": True,
         "resources_total": {"CPU": 2.0, "GPU": 1.0, "memory": 4 * 2**30}}]}}}
    assert ray_cluster.parse_nodes(answer) == [
        ray_cluster.NodeStatus("a" * 56, "10.0.0.11", alive=True, head=True, cpus=2.0, gpus=1.0, memory_gb=4.0),
        ray_cluster.NodeStatus("b" * 56, "10.0.0.12", alive=False, head=False, cpus=4.0, gpus=0.0, memory_gb=8.0)]
    with pytest.raises(RemoteError):
        ray_cluster.parse_nodes({"detail": "Not Found"})


def test_runtime_env_and_entrypoint():
    assert ray_cluster.runtime_env(None, None) is None
    assert ray_cluster.runtime_env("src", ["numpy==2.1.0", "scipy"]) == {"working_dir": "src",
                                                                         "pip": ["numpy==2.1.0", "scipy"]}
    assert ray_cluster.entrypoint(" python train.py --lr 0.1 ") == "python train.py --lr 0.1"
    with pytest.raises(RemoteError) as error:
        ray_cluster.entrypoint("  ")
    assert str(error.value) == "give the job's command after --, e.g. `invoke ray.submit -s STACK -- python train.py`"


def test_a_tunnel_that_cannot_connect_says_why(pem):
    closed = SshTarget(host="127.0.0.1", user="ubuntu", key_path=pem, known_hosts="127.0.0.1 ssh-ed25519 AAAAx",
                       port=1, stack="sweep")
    with pytest.raises(RemoteError) as error:
        with ray_cluster.tunnel(closed):
            pytest.fail("the block must not run without a tunnel")
    assert str(error.value).startswith("the SSH tunnel to Ray's dashboard on 127.0.0.1 failed: ")
    assert "Connection refused" in str(error.value)


class RecordingClient:
    """Stands in for JobSubmissionClient: records what the task asks Ray for."""

    def __init__(self):
        self.submitted = []

    def submit_job(self, entrypoint, runtime_env):
        self.submitted.append((entrypoint, runtime_env))
        return "raysubmit_abc"

    async def tail_job_logs(self, job_id):
        for chunk in ("step 1\n", "done\n"):
            yield chunk

    def get_job_status(self, job_id):
        return "SUCCEEDED"


def test_submit_sends_the_command_and_runtime_env_and_prints_the_id(monkeypatch, capsys):
    import contextlib

    from labstack.tasks import clusters as ray_tasks

    client = RecordingClient()
    monkeypatch.setattr(ray_cluster, "ray_session", lambda stack: contextlib.nullcontext(
        ray_cluster.RaySession("http://127.0.0.1:1", {}, client)))
    final = ray_tasks._submit("sweep", "python train.py --lr 0.1", "src", ["optuna==4.1.0"], True)
    assert client.submitted == [("python train.py --lr 0.1", {"working_dir": "src", "pip": ["optuna==4.1.0"]})]
    assert (final, capsys.readouterr().out) == ("SUCCEEDED", "submitted raysubmit_abc\nstep 1\ndone\n")
