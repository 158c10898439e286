"""Ray on a cluster, on the test bed: one head and two workers on three hosts that share a link (a host's address is
its private IP). The hooks the program's RayNode steps run (hooks/ray-start.sh, hooks/ray-drain.sh) are installed
as HostSetup installs them and run over real SSH; Ray is the stand-in of the official image (Ray 2.60.0 from its
wheel). One test holds the hosts for all scenarios, so the slow cluster start is paid once."""
from __future__ import annotations

import base64
import json
import re
import secrets
import shlex
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr

import labstack.stacks.stackfile

from components.config import ProxyConfig
from components.layout import (HOOKS_DIR, PROXY_ACCESS_LOG, PROXY_NETWORK, PROXY_PROJECT, PROXY_SITES,
                               RAY_GATE_DIR, RAY_PORTS, RAY_PROJECT, RAY_TOKEN_FILE, RAY_USER, REMOTE_HOOKS, hook)
from components.render.bundle import directory_files, make_bundle
from components.render.images import infra_image
from components.render.proxy import dashboard_password_hash, proxy_files, ray_login_mark, ray_site_file
from components.remote.host_setup import _modes
from labstack.clusters import node_statuses, read_token, runtime_env, tunnel
from labstack.ssh.target import SshTarget
from tests.fakes import install_fake_pulumi
from tests.ops.test_tasks import invoke
from tests.testbed.images import RAY_IMAGE, STANDARD_IMAGES
from tests.unit.helpers import base_config

pytestmark = pytest.mark.testbed

RAY_DASHBOARD_PORT = RAY_PORTS["RAY_DASHBOARD_PORT"]

# A job's driver: many short tasks spread over the cluster, each reporting the Ray node it ran on.
SPREAD_JOB = """
import ray, time
ray.init()
@ray.remote(scheduling_strategy="SPREAD")
def where(i):
    time.sleep(SLEEP)
    return ray.get_runtime_context().get_node_id()
ids = ray.get([where.remote(i) for i in range(TASKS)])
print("NODES", " ".join(sorted(set(ids))))
"""

# Alive Ray nodes as the head's GCS sees them: {node ip: node id}.
NODES = """
import json, ray
ray.init(address="auto", logging_level="ERROR")
print(json.dumps({n["NodeManagerAddress"]: n["NodeID"] for n in ray.nodes() if n["Alive"]}))
"""


def install_hooks(host) -> None:
    """The HostSetup `hooks` step's own bundle and command line."""
    hooks = directory_files(HOOKS_DIR)
    host.run(f"sudo -n mkdir -p {REMOTE_HOOKS} && base64 -d | sudo -n tar -xzf - -C {REMOTE_HOOKS} --no-same-owner",
             input=make_bundle(hooks, modes=_modes(hooks)))


def on_head(head, script: str, timeout: float = 300):
    return head.run(f"sudo -n docker exec -i {RAY_PROJECT} python3 -", input=script, timeout=timeout)


def alive(head) -> dict[str, str]:
    return json.loads(on_head(head, NODES).stdout.strip().splitlines()[-1])


def wait_alive(head, ips: set[str], seconds: float = 240) -> dict[str, str]:
    deadline = time.monotonic() + seconds
    nodes: dict[str, str] = {}
    while time.monotonic() < deadline:
        nodes = alive(head)
        if set(nodes) == ips:
            return nodes
        time.sleep(3)
    raise AssertionError(f"alive Ray nodes {sorted(nodes)} never became {sorted(ips)}")


def submit_on_head(head, script: str, name: str) -> str:
    """`ray job submit` of the Python `script` on the head through the Jobs API (127.0.0.1, token from the mounted
    file), from its own working dir /tmp/<name>; the job id."""
    head.run(f"sudo -n docker exec -i {RAY_PROJECT} sh -c 'mkdir -p /tmp/{name} && cat > /tmp/{name}/{name}.py'",
             input=script)
    out = head.run(f"sudo -n docker exec {RAY_PROJECT} ray job submit --address http://127.0.0.1:{RAY_DASHBOARD_PORT}"
                   f" --no-wait --working-dir /tmp/{name} --entrypoint-num-cpus 0 -- python {name}.py").stdout
    return re.search(r"raysubmit_[A-Za-z0-9]+", out).group(0)


def submit(head, tasks: int, sleep: float) -> str:
    """The spread job: `tasks` tasks that sleep, each naming the node it ran on."""
    return submit_on_head(head, SPREAD_JOB.replace("TASKS", str(tasks)).replace("SLEEP", str(sleep)), "spread")


def job_result(head, job_id: str, seconds: float = 300) -> str:
    deadline = time.monotonic() + seconds
    status = ""
    while time.monotonic() < deadline:
        status = head.run(f"sudo -n docker exec {RAY_PROJECT} ray job status --address "
                          f"http://127.0.0.1:{RAY_DASHBOARD_PORT} {job_id}").stdout
        status = status.lower()  # "Job '<id>' succeeded" / "failed" / "was stopped"
        if f"job '{job_id.lower()}' succeeded" in status:
            return head.run(f"sudo -n docker exec {RAY_PROJECT} ray job logs --address "
                            f"http://127.0.0.1:{RAY_DASHBOARD_PORT} {job_id}").stdout
        assert f"job '{job_id.lower()}' failed" not in status and "stopped" not in status, status
        time.sleep(3)
    raise AssertionError(f"job {job_id} did not finish within {seconds}s: {status}")


RAY_HOST = "ray.cluster.test"
PASSWORD = "correct horse battery"


def through_caddy(head, path: str, *headers: str) -> str:
    """The HTTP status of https://ray.<host><path> through the head's Caddy (its internal CA: -k)."""
    argv = ["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "20",
            "--resolve", f"{RAY_HOST}:443:{head.ip}"]
    for header in headers:
        argv += ["-H", header]
    return subprocess.run([*argv, f"https://{RAY_HOST}{path}"], check=False, capture_output=True, text=True).stdout


BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"  # Ray: a browser's request


def as_browser(site: str, ip: str, jar: Path, path: str, *headers: str, method: str = "GET") -> tuple[str, str, str]:
    """(status, lowercased header block, body) of one request a browser makes to https://<site><path>: its user
    agent, its cookies (curl's jar keeps and sends them by their Path and Secure, as a browser does) and the headers
    it adds (the basic auth it cached after the password prompt, or the header the page's script sets)."""
    argv = ["curl", "-sk", "-i", "--max-time", "20", "--resolve", f"{site}:443:{ip}", "-A", BROWSER,
            "-b", str(jar), "-c", str(jar), "-X", method]
    for header in headers:
        argv += ["-H", header]
    out = subprocess.run([*argv, f"https://{site}{path}"], check=False, capture_output=True, text=True).stdout
    head, _, body = out.partition("\n\n")  # text mode: curl's CRLFs are newlines here
    return (head.split()[1] if head else "000"), head.lower(), body


def check_browser_login(site: str, ip: str, password: str, token: str, jar: Path) -> None:
    """Ray's dashboard in a browser at ray.<host>: Caddy's password prompt, then Ray's own token prompt, whose page
    posts the token to /api/authenticate (as `Authorization: Bearer`, so without the password) and gets Ray's
    cookie; every later call carries the cached password and that cookie."""
    basic = "Authorization: Basic " + base64.b64encode(f"admin:{password}".encode()).decode()
    # the password alone: the page and the authentication mode, and the site's login mark (not the token)
    status, head, body = as_browser(site, ip, jar, "/", basic)
    assert status == "200" and "<title>Ray Dashboard</title>" in body, (status, head)
    assert "set-cookie: labstack-ray-login=" in head and token not in head
    status, _, body = as_browser(site, ip, jar, "/api/authentication_mode", basic)
    assert (status, json.loads(body)) == ("200", {"authentication_mode": "token"})
    # Ray's data calls want the token: 401 (no WWW-Authenticate: the page shows its token prompt, not the browser's)
    status, head, _ = as_browser(site, ip, jar, "/api/v0/nodes", basic)
    assert status == "401" and "www-authenticate" not in head
    assert as_browser(site, ip, jar, "/api/jobs/", basic)[0] == "401"
    # the prompt: a wrong token is refused by Ray, the token without the mark (no password given) by Caddy
    login = ("/api/authenticate", "Content-Type: application/json")
    status, head, _ = as_browser(site, ip, jar, *login, "Authorization: Bearer wrong", method="POST")
    assert status == "403" and "ray-authentication-token" not in head
    status, head, _ = as_browser(site, ip, jar.with_suffix(".empty"), *login, f"Authorization: Bearer {token}",
                                 method="POST")
    assert status == "401" and 'www-authenticate: basic realm="restricted"' in head
    # the token with the mark: Ray's cookie, HttpOnly, SameSite=Strict and (through Caddy) Secure
    status, head, _ = as_browser(site, ip, jar, *login, f"Authorization: Bearer {token}", method="POST")
    cookie = next(line for line in head.splitlines() if line.startswith("set-cookie: ray-authentication-token="))
    assert status == "200" and {"httponly", "samesite=strict", "secure"} <= {
        part.strip() for part in cookie.split(";")}, cookie
    # the password and the cookie: Ray's data calls answer
    status, _, body = as_browser(site, ip, jar, "/api/v0/nodes?limit=10", basic)
    assert status == "200" and json.loads(body)["data"]["result"]["result"], body[:300]
    assert as_browser(site, ip, jar, "/api/jobs/", basic)[0] == "200"
    # the cookie without the password: Caddy refuses, Ray never sees it
    status, head, _ = as_browser(site, ip, jar, "/api/jobs/")
    assert status == "401" and 'www-authenticate: basic realm="restricted"' in head


def serve_ray_site(head) -> None:
    """Caddy as HostSetup starts it, then the ray site as the head's RayNode installs it."""
    proxy = ProxyConfig(tls="internal", acme_email=None, dashboard_user="admin", dashboard_path="/dashboard",
                        log_viewer=False, dashboard_password=SecretStr(PASSWORD))
    head.run(f"sudo -n mkdir -p {PROXY_SITES}")
    head.run(hook("proxy-up.sh"), input=make_bundle(proxy_files(proxy)), timeout=180)
    key = "4d" * 32  # the stack's dashboard key
    site = ray_site_file(RAY_HOST, proxy, dashboard_password_hash(PASSWORD, "ray", key), ray_login_mark(PASSWORD, key))
    head.run(hook("ray-site.sh", infra_image("caddy")), input=site)


# From a container: one line per address, whether Ray's dashboard port answers there.
PROBE = ("import socket, sys\n"
         "for address in sys.argv[1:]:\n"
         "    try:\n"
         "        socket.create_connection((address, PORT), 3).close(); print(address, 'open')\n"
         "    except OSError:\n"
         "        print(address, 'refused')\n").replace("PORT", str(RAY_DASHBOARD_PORT))


def assert_no_container_reaches_rays_gate(head) -> None:
    """Only Caddy reaches Ray's gate (a socket in a directory only Caddy's container mounts): a container on the
    proxy network beside Caddy, or on Docker's default bridge, finds Ray's dashboard port closed on every address of
    the head (the networks' gateways, its private IP)."""
    gateways = [head.run(f"sudo -n docker network inspect -f '{{{{range .IPAM.Config}}}}{{{{.Gateway}}}}{{{{end}}}}' "
                         f"{network}").stdout.strip() for network in (PROXY_NETWORK, "bridge")]
    addresses = [*gateways, head.ip]
    for network in (PROXY_NETWORK, "bridge"):
        seen = head.run(f"sudo -n docker run --rm --network {network} {infra_image('python')} python3 -c "
                        f"{shlex.quote(PROBE)} {' '.join(addresses)}").stdout.splitlines()
        assert seen == [f"{address} refused" for address in addresses], (network, seen)
    mounts = head.run("sudo -n docker ps -q | xargs sudo -n docker inspect -f "
                      "'{{.Name}} {{range .Mounts}}{{.Destination}} {{end}}'").stdout.splitlines()
    holders = sorted(line.split()[0] for line in mounts if RAY_GATE_DIR in line.split()[1:])
    assert holders == sorted([f"/{RAY_PROJECT}-gate", f"/{PROXY_PROJECT}-caddy-1"]), mounts


def check_ops_tasks(head, token: str, ips: set[str], tmp_path: Path) -> None:
    """What `invoke ray.status/submit/logs/stop` run (labstack/clusters.py), through the pinned SSH tunnel."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    target = SshTarget(host=head.ip, user=head.user, key_path=Path(head.key_path),
                       known_hosts=head.known_hosts_line(), stack="testbed")
    assert read_token(target) == token
    headers = {"Authorization": f"Bearer {token}"}
    work = tmp_path / "job"
    work.mkdir()
    (work / "hello.py").write_text("import ray, socket\nray.init()\nprint('HELLO', len(ray.nodes()))\n")
    (work / "wait.py").write_text("import time\nprint('WAITING', flush=True)\ntime.sleep(600)\n")
    with tunnel(target) as url:
        nodes = node_statuses(url, headers)
        assert {node.ip for node in nodes} == ips and all(node.alive for node in nodes)
        assert [node.head for node in nodes] == [True, False, False]
        assert all(node.cpus >= 1 and node.memory_gb > 0.1 and node.gpus == 0 for node in nodes), nodes
        client = JobSubmissionClient(url, headers=headers)
        job = client.submit_job(entrypoint="python hello.py", runtime_env=runtime_env(str(work), None))
        deadline = time.monotonic() + 180
        while client.get_job_status(job) not in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
            assert time.monotonic() < deadline, f"job {job} still {client.get_job_status(job)}"
            time.sleep(2)
        assert client.get_job_status(job) == JobStatus.SUCCEEDED, client.get_job_logs(job)
        assert "HELLO 3" in client.get_job_logs(job)
        assert job in [info.submission_id for info in client.list_jobs()]
        waiting = client.submit_job(entrypoint="python wait.py", runtime_env=runtime_env(str(work), None))
        deadline = time.monotonic() + 120
        while "WAITING" not in client.get_job_logs(waiting):
            assert time.monotonic() < deadline, client.get_job_status(waiting)
            time.sleep(2)
        assert client.stop_job(waiting)
        deadline = time.monotonic() + 60
        while client.get_job_status(waiting) != JobStatus.STOPPED:
            assert time.monotonic() < deadline, client.get_job_status(waiting)
            time.sleep(2)


def check_invoke_tasks(head, token: str, tmp_path: Path, monkeypatch, capsys) -> None:
    """`invoke ray.status/submit/logs/stop/jobs/token` as an operator runs them: a cluster stack file whose outputs (a recording
    `pulumi`) name the head, so the tasks reach it over their own pinned SSH tunnel."""
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    monkeypatch.setattr(labstack.stacks.stackfile, "STACKS_DIR", stacks)
    (stacks / "Pulumi.bed.yaml").write_text(yaml.safe_dump(
        {"config": base_config(Path(head.key_path), cluster={"workers": 2})}))
    install_fake_pulumi(tmp_path / "pulumi", monkeypatch)
    monkeypatch.setenv("FAKE_PULUMI_OUTPUTS", json.dumps({"publicIp": head.ip, "knownHosts": head.known_hosts_line()}))
    capsys.readouterr()
    assert invoke("ray.status", "-s", "bed") == 0
    assert "3 alive, 0 dead" in capsys.readouterr().out
    assert invoke("ray.submit", "-s", "bed", "--working-dir", str(tmp_path / "job"), "--follow", "--",
                  "python", "hello.py") == 0
    out = capsys.readouterr().out
    job = re.search(r"^submitted (\S+)$", out, re.M).group(1)
    assert "HELLO 3" in out
    assert invoke("ray.logs", "-s", "bed", "--job", job) == 0
    assert "HELLO 3" in capsys.readouterr().out
    assert invoke("ray.submit", "-s", "bed", "--working-dir", str(tmp_path / "job"), "--", "python", "wait.py") == 0
    waiting = re.search(r"^submitted (\S+)$", capsys.readouterr().out, re.M).group(1)
    deadline = time.monotonic() + 120
    while True:
        assert invoke("ray.logs", "-s", "bed", "--job", waiting) == 0
        if "WAITING" in capsys.readouterr().out:
            break
        assert time.monotonic() < deadline, f"{waiting} never printed WAITING"
        time.sleep(2)
    assert invoke("ray.stop", "-s", "bed", "--job", waiting) == 0
    assert capsys.readouterr().out.strip() == f"stopped {waiting}"
    # ray.jobs: every job of the cluster (check_ops_tasks' two and these two) with its state, once the stop landed
    deadline = time.monotonic() + 60
    while True:
        assert invoke("ray.jobs", "-s", "bed") == 0
        rows = dict(re.findall(r"(raysubmit_\w+)\s*│\s*([A-Z]+)\s*│", capsys.readouterr().out))
        if rows.get(waiting) != "RUNNING":
            break
        assert time.monotonic() < deadline, f"{waiting} still RUNNING in ray.jobs a minute after ray.stop"
        time.sleep(2)
    assert len(rows) == 4 and (rows[job], rows[waiting]) == ("SUCCEEDED", "STOPPED"), rows
    assert sorted(rows.values()) == ["STOPPED", "STOPPED", "SUCCEEDED", "SUCCEEDED"], rows
    # ray.token: what Ray's dashboard prompt asks for in a browser, read on the head over the pinned SSH connection
    assert invoke("ray.token", "-s", "bed") == 0
    assert capsys.readouterr().out == f"{token}\n"


def test_head_and_two_workers_run_spread_tasks_drain_rejoin_and_refuse_unauthenticated_calls(testbed_hosts, tmp_path,
                                                                                             monkeypatch, capsys):
    head, w1, w2 = testbed_hosts(3, images=(*STANDARD_IMAGES, RAY_IMAGE))
    token = secrets.token_hex(32)
    for host in (head, w1, w2):
        install_hooks(host)
    start_head = hook("ray-start.sh", "head", head.ip, RAY_IMAGE)
    head.run(start_head, input=token)
    for worker in (w1, w2):  # workers join the head's private IP
        worker.run(hook("ray-start.sh", "worker", worker.ip, RAY_IMAGE, head.ip), input=token)

    # three alive nodes, each under its host's private IP; the token file is root's alone and in no command line
    first = wait_alive(head, {head.ip, w1.ip, w2.ip})
    assert len(set(first.values())) == 3
    # readable by Ray's own user alone (RAY_USER: the image's ray user, which Ray runs as)
    assert head.run(f"sudo -n stat -c '%a %u:%g' {RAY_TOKEN_FILE}").stdout.split() == ["400", RAY_USER]
    assert token not in head.run(f"sudo -n docker inspect {RAY_PROJECT}").stdout
    assert token not in head.run("ps -eo args").stdout

    # the same settings again change nothing (the container is kept)
    before = head.run(f"sudo -n docker inspect -f '{{{{.Id}}}}' {RAY_PROJECT}").stdout
    head.run(start_head, input=token)
    assert head.run(f"sudo -n docker inspect -f '{{{{.Id}}}}' {RAY_PROJECT}").stdout == before

    # the Jobs API answers on the head's loopback only, and only with the token
    api = f"http://127.0.0.1:{RAY_DASHBOARD_PORT}/api/jobs/"
    curl = "curl -s -o /dev/null -w '%{http_code}' "
    assert head.run(curl + api).stdout == "401"
    assert head.run(curl + "-H 'Authorization: Bearer wrong' " + api).stdout == "403"
    assert head.run(curl + "-H @- " + api, input=f"Authorization: Bearer {token}\n").stdout == "200"
    assert head.run(curl + f"--max-time 5 http://{head.ip}:{RAY_DASHBOARD_PORT}/api/jobs/", check=False).stdout == "000"

    # ray.<host> through Caddy: the dashboard password first, then Ray's own token (Proxy-Authorization)
    serve_ray_site(head)
    gate = f"sudo -n docker inspect -f '{{{{.Id}}}}' {RAY_PROJECT}-gate"
    gate_id = head.run(gate).stdout
    assert through_caddy(head, "/api/version") == "401"
    basic = "Authorization: Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    assert through_caddy(head, "/api/version", basic) == "401"  # Ray's answer: no token
    assert through_caddy(head, "/api/jobs/", basic) == "401"
    assert through_caddy(head, "/api/jobs/", basic, "Proxy-Authorization: Bearer wrong") == "403"
    assert through_caddy(head, "/api/jobs/", basic, f"Proxy-Authorization: Bearer {token}") == "200"
    assert through_caddy(head, "/api/version", basic, f"Proxy-Authorization: Bearer {token}") == "200"
    assert through_caddy(head, "/api/jobs/", f"Proxy-Authorization: Bearer {token}") == "401"  # no password
    # the gate is a socket only Caddy mounts: no other container on the head reaches it
    assert_no_container_reaches_rays_gate(head)
    outside = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
                              f"http://{head.ip}:{RAY_DASHBOARD_PORT}/api/version"], check=False, capture_output=True, text=True)
    assert outside.stdout == "000"
    check_browser_login(RAY_HOST, head.ip, PASSWORD, token, tmp_path / "cookies")
    # the token is in no log (not in the cookies either); the same site again changes nothing
    assert token not in head.run(f"sudo -n cat {PROXY_ACCESS_LOG}").stdout
    assert token not in head.run("sudo -n sh -c 'docker logs $(docker ps -q -f "
                                   "label=com.docker.compose.service=caddy) 2>&1'", check=False).stdout
    serve_ray_site(head)
    assert head.run(gate).stdout == gate_id

    check_ops_tasks(head, token, {head.ip, w1.ip, w2.ip}, tmp_path)
    check_invoke_tasks(head, token, tmp_path, monkeypatch, capsys)

    # a job's tasks run on all three nodes and its output comes back
    out = job_result(head, submit(head, tasks=30, sleep=0.5))
    reported = next(line for line in out.splitlines() if line.startswith("NODES")).split()[1:]
    assert set(reported) == set(first.values())

    # removing a worker drains it while a job runs: the job still finishes, on the two nodes left
    running = submit(head, tasks=40, sleep=2)
    time.sleep(8)
    w2.run(hook("ray-drain.sh", w2.ip, "20"))
    assert w2.run(f"sudo -n docker ps -aq -f name=^{RAY_PROJECT}$").stdout.strip() == ""
    assert "NODES" in job_result(head, running)
    assert wait_alive(head, {head.ip, w1.ip}) == {head.ip: first[head.ip], w1.ip: first[w1.ip]}
    w2.run(hook("ray-drain.sh", w2.ip))  # again: nothing to drain

    # adding it back keeps the other nodes' Ray ids and adds one
    w2.run(hook("ray-start.sh", "worker", w2.ip, RAY_IMAGE, head.ip), input=token)
    grown = wait_alive(head, {head.ip, w1.ip, w2.ip})
    assert grown[head.ip] == first[head.ip] and grown[w1.ip] == first[w1.ip]
    assert grown[w2.ip] not in first.values()

    # an engine restart on a worker: the restart policy brings Ray back and it rejoins
    w1.restart_docker()
    rejoined = wait_alive(head, {head.ip, w1.ip, w2.ip})
    assert rejoined[head.ip] == first[head.ip]
