"""The operator's side of a Ray cluster stack: `invoke ray.status/submit/jobs/logs/stop/token` and
`invoke ssh --node`.

Ray's dashboard and Jobs API listen on the head's 127.0.0.1 only. The tasks reach them through an SSH tunnel to the
head, pinned to its host key like every labstack connection (`ssh -L`, never a port open to the internet), read the
cluster's Ray token on the head (`sudo -n cat RAY_TOKEN_FILE`, over that same pinned SSH; never printed, never on a
command line) and present it as `Authorization: Bearer <token>` (contracts: "Ray token"). Jobs go through Ray's own
JobSubmissionClient; the node list through the dashboard's state API over the same tunnel.
"""
from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import subprocess
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

from components.config import StackConfig
from components.layout import RAY_PORTS, RAY_TOKEN_FILE
from labstack.local import free_port
from labstack.stacks import stackfile
from labstack.ssh.target import RemoteError, SshTarget, stack_outputs, target_for_stack

DASHBOARD_PORT = RAY_PORTS["RAY_DASHBOARD_PORT"]
TOKEN_RE = re.compile(r"^[0-9a-f]{64}$")
TUNNEL_WAIT_S = 20  # ssh's own ConnectTimeout is 15 s; the forward answers right after login


def require_ray(stack: str, config: StackConfig) -> None:
    """The ray.* tasks need a cluster stack that runs Ray."""
    if config.cluster is None:
        raise RemoteError(f"stack {stack!r} is not a cluster: set labstack:cluster (e.g. `invoke config -s {stack} "
                          f"--set 'labstack:cluster.workers'=2`) and run `invoke up -s {stack}`")
    if config.cluster.engine != "ray":
        raise RemoteError(f"stack {stack!r} runs no Ray (labstack:cluster.engine = {config.cluster.engine!r}); use "
                          f"`invoke ssh -s {stack} --node worker-1` to reach its machines")


def node_name(config: StackConfig, node: str) -> str:
    """`head`, `worker-2` or the full `<server>-worker-2` -> the node's name in the `nodes` output."""
    server = config.server_name
    if node in ("head", server):
        return server
    return node if node.startswith(f"{server}-") else f"{server}-{node}"


def node_target(stack: str, node: str, outputs: dict, config: StackConfig) -> SshTarget:
    """The SSH target of one node of a cluster stack, host key pinned from the stack's `nodes` output."""
    if config.cluster is None and node not in ("head", config.server_name):
        raise RemoteError(f"stack {stack!r} is not a cluster (no labstack:cluster): it has only its server; drop "
                          "--node")
    name = node_name(config, node)
    nodes = outputs.get("nodes") or {}
    if name not in nodes:
        known = ", ".join(["head", *(n.removeprefix(f"{config.server_name}-") for n in nodes
                                      if n != config.server_name)])
        raise RemoteError(f"stack {stack!r} has no node {node!r} (known: {known}); after changing "
                          f"labstack:cluster.workers, run `invoke up -s {stack}`")
    found = nodes[name]
    head = target_for_stack(stack, outputs=outputs, config=config)
    if name == config.server_name:
        return head
    return SshTarget(host=str(found["publicIp"]), user=head.user, key_path=head.key_path,
                     known_hosts=str(found["knownHosts"]), port=head.port, stack=stack)


def tunnel_argv(target: SshTarget, local_port: int) -> list[str]:
    """ssh forwarding 127.0.0.1:<local_port> here to the head's 127.0.0.1:RAY_DASHBOARD_PORT, no remote command;
    ExitOnForwardFailure so a taken port is an error, not a silent tunnel-less ssh."""
    argv = target.ssh_argv()
    login = argv.pop()  # user@host comes last
    return [*argv, "-N", "-o", "ExitOnForwardFailure=yes",
            "-L", f"127.0.0.1:{local_port}:127.0.0.1:{DASHBOARD_PORT}", login]


def read_token(target: SshTarget) -> str:
    token = target.text(f"sudo -n cat {RAY_TOKEN_FILE}", what="reading the Ray token").strip()
    if not TOKEN_RE.match(token):
        raise RemoteError(f"{RAY_TOKEN_FILE} on {target.host} does not hold a Ray token (64 hex characters); run "
                          f"`invoke up -s {target.stack}` to set Ray up again")
    return token


@contextlib.contextmanager
def tunnel(target: SshTarget) -> Iterator[str]:
    """The head's dashboard as http://127.0.0.1:<port> for the duration of the block."""
    port = free_port()
    # Its own session: a terminal's Ctrl-C must not cut the tunnel while the interrupted caller still stops its Ray
    # job through it (labstack.map); the `finally` below ends the tunnel.
    process = subprocess.Popen(tunnel_argv(target, port), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + TUNNEL_WAIT_S
        while True:
            if process.poll() is not None:
                stderr = process.stderr.read().decode(errors="replace").strip() if process.stderr else ""
                raise RemoteError(f"the SSH tunnel to Ray's dashboard on {target.host} failed: "
                                  f"{stderr.splitlines()[-1] if stderr else f'ssh exited {process.returncode}'}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if time.monotonic() > deadline:
                raise RemoteError(f"the SSH tunnel to Ray's dashboard on {target.host} did not open within "
                                  f"{TUNNEL_WAIT_S}s")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
        if process.poll() is None:
            process.kill()
            process.wait()


def ray_head(stack: str) -> SshTarget:
    config = stackfile.load(stack)
    require_ray(stack, config)
    return target_for_stack(stack, outputs=stack_outputs(stack), config=config)


def cluster_token(stack: str) -> str:
    """The cluster's Ray token, read on the head over the pinned SSH connection (`invoke ray.token`): what Ray's
    dashboard asks for in a browser at ray.<host>, after the dashboard password."""
    return read_token(ray_head(stack))


@dataclass
class RaySession:
    url: str
    headers: dict[str, str]  # holds the token: never printed
    client: Any  # ray.job_submission.JobSubmissionClient


RAY_MISSING = ("Ray's client is not installed in this virtualenv (optional, ~250 MB): add it with "
               "`bash setup.sh --ray` (or `venv/bin/pip install -r requirements-ray.txt`)")


def require_ray_client() -> None:
    """The ray.* tasks need Ray's client, which `bash setup.sh` leaves out unless asked (--ray)."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise RemoteError(RAY_MISSING)


@contextlib.contextmanager
def ray_session(stack: str) -> Iterator[RaySession]:
    require_ray_client()
    target = ray_head(stack)
    headers = {"Authorization": f"Bearer {read_token(target)}"}
    with tunnel(target) as url:
        from ray.job_submission import JobSubmissionClient  # heavy: only once a session is really needed

        yield RaySession(url, headers, JobSubmissionClient(url, headers=headers))


@dataclass(frozen=True)
class NodeStatus:
    node_id: str
    ip: str
    alive: bool
    head: bool
    cpus: float
    gpus: float
    memory_gb: float


def parse_nodes(answer: dict) -> list[NodeStatus]:
    """The dashboard's GET /api/v0/nodes answer: {"data": {"result": {"result": [node, ...]}}}."""
    try:
        rows = answer["data"]["result"]["result"]
    except (KeyError, TypeError):
        raise RemoteError("Ray's dashboard answered /api/v0/nodes in an unexpected shape") from None
    found = []
    for row in rows:
        resources = row.get("resources_total") or {}
        found.append(NodeStatus(
            node_id=row.get("node_id", ""), ip=row.get("node_ip", ""), alive=row.get("state") == "ALIVE",
            head=bool(row.get("is_head_node")), cpus=float(resources.get("CPU", 0)),
            gpus=float(resources.get("GPU", 0)), memory_gb=float(resources.get("memory", 0)) / 2**30))
    return sorted(found, key=lambda node: (not node.head, node.ip))


def node_statuses(url: str, headers: dict[str, str]) -> list[NodeStatus]:
    import requests

    response = requests.get(f"{url}/api/v0/nodes", params={"detail": "true", "limit": "10000"}, headers=headers,
                            timeout=30)
    if response.status_code in (401, 403):
        raise RemoteError(f"Ray refused the cluster's token ({response.status_code}); run `invoke up` to set Ray "
                          "up again")
    response.raise_for_status()
    return parse_nodes(response.json())


def runtime_env(working_dir: Optional[str], pip: Optional[list[str]]) -> Optional[dict]:
    """Ray's runtime_env for a job: the local folder uploaded to every node, pip packages installed for it."""
    env: dict[str, Any] = {}
    if working_dir:
        env["working_dir"] = working_dir
    if pip:
        env["pip"] = list(pip)
    return env or None


def entrypoint(words: str) -> str:
    if not words.strip():
        raise RemoteError("give the job's command after --, e.g. `invoke ray.submit -s STACK -- python train.py`")
    return words.strip()


def follow_logs(client: Any, job_id: str, write: Callable[[str], None]) -> None:
    """Stream a job's logs until it ends (Ray's tail_job_logs is an async generator)."""
    async def tail() -> None:
        async for chunk in client.tail_job_logs(job_id):
            write(chunk)
    asyncio.run(tail())
