"""labstack.map on a Ray cluster stack: Ray started on three test bed hosts as the program's RayNode steps start it
(tests/e2e/test_cluster.py's helpers), a cluster stack file whose outputs (a recording `pulumi`) name the head, and
the calls as Ray tasks of one Ray job submitted through Ray's own job client over the pinned SSH tunnel."""
from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import pytest
import yaml

import labstack
from components.layout import hook
from labstack import clusters
from labstack.functions import RemoteTraceback
from tests.e2e.test_cluster import install_hooks, on_head, wait_alive
from tests.fakes import install_fake_pulumi
from tests.ops.conftest import stacks_dir  # noqa: F401 - a fixture
from tests.testbed.images import RAY_IMAGE, STANDARD_IMAGES
from tests.unit.helpers import base_config

pytestmark = [pytest.mark.testbed, pytest.mark.e2e]

STACK = "ray-bed"

# The Ray tasks that run now, as the head's GCS sees them.
RUNNING_TASKS = """
import ray
from ray.util.state import list_tasks
ray.init(address="auto", logging_level="ERROR")
print(len(list_tasks(filters=[("state", "=", "RUNNING")], limit=1000)))
"""


@pytest.fixture(scope="module")
def cluster(testbed):
    """A head and two workers, Ray alive on all three."""
    started = []
    try:
        for _ in range(3):
            started.append(testbed.new_host(images=(*STANDARD_IMAGES, RAY_IMAGE)))
        head, *workers = started
        token = secrets.token_hex(32)
        for host in started:
            install_hooks(host)
        head.run(hook("ray-start.sh", "head", head.ip, RAY_IMAGE), input=token)
        for worker in workers:
            worker.run(hook("ray-start.sh", "worker", worker.ip, RAY_IMAGE, head.ip), input=token)
        wait_alive(head, {host.ip for host in started})
        yield head
    finally:
        for host in started:
            testbed.stop_host(host)


@pytest.fixture
def ray_stack(cluster, stacks_dir, tmp_path, monkeypatch):  # noqa: F811 - the fixture imported above
    (stacks_dir / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump(
        {"config": base_config(Path(cluster.key_path), cluster={"workers": 2})}))
    install_fake_pulumi(tmp_path, monkeypatch)
    monkeypatch.setenv("FAKE_PULUMI_OUTPUTS", json.dumps({"publicIp": cluster.ip,
                                                          "knownHosts": cluster.known_hosts_line()}))
    monkeypatch.setenv("PULUMI_BACKEND_URL", f"file://{tmp_path / 'state'}")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "test")
    return STACK


def square_where(x):
    import time

    import ray

    time.sleep(1)
    return x * x, ray.get_runtime_context().get_node_id()


def slow_or_fails(x):
    import time

    if x == 2:
        time.sleep(1)
        raise ValueError(f"cannot use {x}")
    time.sleep(120)
    return x


def sleeps(x):
    import time

    time.sleep(120)
    return x


def quiet(line):
    pass


def running_tasks(head) -> int:
    return int(on_head(head, RUNNING_TASKS).stdout.strip().splitlines()[-1])


def until_no_task_runs(head, seconds: float = 60) -> None:
    """A cancelled task is marked ended by Ray a moment after its worker was killed."""
    deadline = time.monotonic() + seconds
    while running_tasks(head):
        assert time.monotonic() < deadline, f"{running_tasks(head)} Ray tasks still run"
        time.sleep(1)


def map_jobs(stack: str) -> dict[str, str]:
    """The map's Ray jobs (the driver's entrypoint) and their states."""
    with clusters.ray_session(stack) as session:
        return {job.submission_id: str(job.status) for job in session.client.list_jobs()
                if job.entrypoint.endswith("ray_map_driver.py")}


def test_eight_calls_as_ray_tasks_come_back_in_input_order_and_a_failure_stops_the_rest(ray_stack, cluster):
    results = labstack.map(square_where, range(8), cluster=ray_stack, announce=quiet)
    assert [square for square, _ in results] == [x * x for x in range(8)]
    assert len({node for _, node in results}) >= 1
    assert list(map_jobs(ray_stack).values()) == ["SUCCEEDED"]

    with pytest.raises(ValueError, match=r"^cannot use 2$") as raised:
        labstack.map(slow_or_fails, range(8), cluster=ray_stack, announce=quiet)
    remote = raised.value.__cause__
    assert isinstance(remote, RemoteTraceback)
    assert "in slow_or_fails" in remote.text and remote.text.strip().endswith("ValueError: cannot use 2")
    assert sorted(map_jobs(ray_stack).values()) == ["FAILED", "SUCCEEDED"]
    until_no_task_runs(cluster)  # the other seven, cancelled by the driver before it failed


def test_cancel_stops_the_ray_job_and_its_tasks(ray_stack, cluster):
    before = map_jobs(ray_stack)
    future = labstack.map_async(sleeps, range(4), cluster=ray_stack, announce=quiet)
    deadline = time.monotonic() + 180
    while running_tasks(cluster) < 4:
        assert time.monotonic() < deadline, "the map's four tasks never ran"
        time.sleep(1)
    assert future.cancel() is True and future.cancelled()
    [job] = [job for job in map_jobs(ray_stack).items() if job[0] not in before]
    assert job[1] == "STOPPED"
    until_no_task_runs(cluster)
    assert all(call.cancelled() or call.exception(timeout=0) is not None for call in future.calls)
