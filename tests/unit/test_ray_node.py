"""RayNode under Pulumi's mocks: what its step runs on a node, and that the token stays out of every command line."""
from __future__ import annotations

import contextvars

import pulumi
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from labstack.stacks.offline import FakeAws, RecordingMocks


def declare() -> list:
    """A head and a worker handle (addresses as EC2 gives them) with RayNode on each, as a cluster wires them."""
    from components.nodes import HEAD, WORKER, NodeHandle, connection
    from components.remote.ray_node import RayNode, RayNodeArgs, ray_token

    mocks = RecordingMocks(FakeAws())
    pulumi.runtime.set_mocks(mocks, project="labstack", stack="paris", preview=False)

    def program():
        def handle(name, role, private_ip):
            return NodeHandle(name=name, role=role, public_address=pulumi.Output.from_input("203.0.113.5"),
                              private_address=pulumi.Output.from_input(private_ip),
                              host_key=pulumi.Output.from_input("ssh-ed25519 AAAA"), login_user="ubuntu", ssh_port=22,
                              connection=connection("203.0.113.5", "ubuntu", "key", "ssh-ed25519 AAAA"), ready=[],
                              instance_id=pulumi.Output.from_input(f"i-{name}"),
                              availability_zone=pulumi.Output.from_input("eu-west-3a"))
        token = ray_token("paris")
        head = handle("paris", HEAD, "10.0.0.10")
        head_ray = RayNode(head.name, RayNodeArgs(node=head, role=HEAD, head_address=head.private_address,
                                                  image="rayproject/ray:2.60.0-py311", token=token))
        worker = handle("paris-worker-1", WORKER, "10.0.0.11")
        RayNode(worker.name, RayNodeArgs(node=worker, role=WORKER, head_address=head.private_address,
                                         image="rayproject/ray:2.60.0-py311", token=token, after=head_ray.ready))

    _sync_await(run_pulumi_func(program))
    return mocks.declared


def test_the_head_starts_ray_and_a_worker_joins_it_and_is_drained_on_delete():
    declared = contextvars.Context().run(declare)
    steps = {r.name: r for r in declared if r.type == "command:remote:Command"}
    head, worker = steps["paris-ray"], steps["paris-worker-1-ray"]
    assert head.inputs["create"] == ("sudo -n /opt/labstack/hooks/ray-start.sh head 10.0.0.10 "
                                     "rayproject/ray:2.60.0-py311")
    assert "delete" not in head.inputs
    assert worker.inputs["create"] == ("sudo -n /opt/labstack/hooks/ray-start.sh worker 10.0.0.11 "
                                       "rayproject/ray:2.60.0-py311 10.0.0.10")
    assert worker.inputs["delete"] == "sudo -n /opt/labstack/hooks/ray-drain.sh 10.0.0.11 60"
    # the same 64-hex token reaches both nodes on stdin only, as a secret
    token = head.inputs["stdin"]
    assert len(token) == 64 and int(token, 16) and worker.inputs["stdin"] == token
    assert "stdin" in head.secret_inputs and "stdin" in worker.secret_inputs
    assert all(token not in r.inputs["create"] and token not in r.inputs.get("delete", "") for r in (head, worker))
    assert head.inputs["triggers"][-1] == "i-paris"  # a replaced instance gets Ray again
    assert head.inputs["triggers"][1] == "1000:100"  # a Ray that ran as root (before RAY_USER) starts again
