"""Self-tests of the test bed: a host must behave like the EC2 server labstack deploys to, in what labstack uses."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from . import host as hostmod
from . import fixtures as tbfix
from .host import traces_of

pytestmark = pytest.mark.testbed
REPO = Path(__file__).resolve().parents[2]


def retry(fn, what: str, attempts: int = 60, delay: float = 1.0):
    """Bounded retries (count and time) for things that come up asynchronously."""
    last = None
    for _ in range(attempts):
        try:
            return fn()
        except Exception as e:  # noqa: BLE001 - report the last one
            last = e
            time.sleep(delay)
    raise AssertionError(f"{what}: still failing after {attempts} attempts: {last}")


def gen_ed25519() -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    k = Ed25519PrivateKey.generate()
    priv = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                           serialization.NoEncryption()).decode()
    pub = k.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return priv, pub


# ----------------------------------------------------------------------------------------------- access
def test_ssh_login_as_ubuntu_with_pinned_host_key(testbed_host):
    h = testbed_host
    assert h.known_hosts_line() == f"{h.ip} {h.host_public_key}"
    assert h.host_public_key.startswith("ssh-ed25519 ")
    assert Path(h.known_hosts_path).read_text().strip() == h.known_hosts_line()
    r = h.run("id -un; id -Gn; echo $HOME; sudo -n true && echo SUDO_OK; docker compose version; "
              "docker info --format '{{.Name}} {{.DockerRootDir}}'; hostname")
    assert r.stderr == ""  # e.g. no "sudo: unable to resolve host"
    lines = r.stdout.splitlines()
    assert lines[0] == "ubuntu"
    assert "docker" in lines[1].split()
    assert lines[2] == "/home/ubuntu"
    assert lines[3] == "SUDO_OK"
    assert lines[4].startswith("Docker Compose version v2")
    assert lines[5] == f"{h.hostname} /var/lib/docker"
    assert lines[6] == h.hostname == "ip-" + h.ip.replace(".", "-")


def test_sftp_upload_as_ubuntu(testbed_host, tmp_path):
    # pulumi-command's CopyToRemote uses SFTP
    f = tmp_path / "payload.txt"
    f.write_text("uploaded\n")
    testbed_host.put(f, "/tmp/payload.txt")
    assert testbed_host.run("cat /tmp/payload.txt; stat -c %U /tmp/payload.txt").stdout.split() == ["uploaded", "ubuntu"]


def test_wrong_pinned_host_key_is_refused(testbed_host, tmp_path):
    h = testbed_host
    _, other_pub = gen_ed25519()
    kh = tmp_path / "known_hosts"
    kh.write_text(f"{h.ip} {other_pub}\n")
    argv = [a if not a.startswith("UserKnownHostsFile=") else f"UserKnownHostsFile={kh}" for a in h.ssh_base()]
    p = subprocess.run(argv + ["true"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 255
    assert "host key" in p.stderr.lower()


def test_only_the_hosts_key_logs_in_and_no_passwords(testbed_host, tmp_path):
    h = testbed_host
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    argv = [str(stranger) if a == str(h.key_path) else a for a in h.ssh_base()]
    p = subprocess.run(argv + ["true"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 255 and "permission denied" in p.stderr.lower()
    argv = h.ssh_base()[:-1] + ["-o", "PreferredAuthentications=password,keyboard-interactive",
                                "-o", "PubkeyAuthentication=no", h.ssh_base()[-1]]
    p = subprocess.run(argv + ["true"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 255 and "permission denied (publickey)" in p.stderr.lower()


def test_caller_supplied_host_key_is_served(testbed):
    priv, pub = gen_ed25519()
    h = testbed.new_host(images=(), host_key=priv)
    try:
        assert h.host_public_key == " ".join(pub.split()[:2])
        assert h.run("hostname -I || true; echo ok").stdout.strip().endswith("ok")
        # what a client sees on the wire is that key
        scan = subprocess.run(["ssh-keyscan", "-t", "ed25519", h.ip], capture_output=True, text=True, timeout=30)
        assert pub.split()[1] in scan.stdout
    finally:
        testbed.stop_host(h)


# ----------------------------------------------------------------------------------------------- images
def test_stand_in_images_run_inside_the_host(testbed_host):
    h = testbed_host
    out = h.run("docker run --rm python:3.11-slim python -c "
                "'import flask, psycopg2, redis, gunicorn, requests, sys; print(sys.version_info[:2])'").stdout
    assert out.strip() == "(3, 11)"
    # the example app's unpinned requirements are satisfied offline (hosts have no route out)
    out = h.run("printf 'flask\\npsycopg2\\nredis\\ngunicorn\\nrequests\\n' > /tmp/req.txt && "
                "docker run --rm -v /tmp/req.txt:/req.txt python:3.11-slim "
                "pip install --no-input --retries 0 --timeout 3 -r /req.txt", timeout=120).stdout
    assert out.count("Requirement already satisfied") >= 5
    assert "7." in h.run("docker run --rm redis:7 redis-server --version").stdout
    assert h.run("docker run --rm caddy:2 caddy version").stdout.lstrip("v").startswith("2.")
    out = h.run("docker run --rm postgres:16 sh -c 'psql --version; pg_dump --version; pg_isready --version'")
    assert out.stdout.count("PostgreSQL") == 3
    assert h.run("docker run --rm python:3.11-slim curl --version").stdout.startswith("curl ")


def test_postgres_entrypoint_contract(testbed_host):
    h = testbed_host
    h.run("mkdir -p /tmp/initdb && echo 'CREATE TABLE seeded (id int); INSERT INTO seeded VALUES (42);' "
          "> /tmp/initdb/01.sql && docker network create pgnet >/dev/null && "
          "docker run -d --name pg --network pgnet -e POSTGRES_USER=app -e POSTGRES_PASSWORD=s3cret "
          "-e POSTGRES_DB=appdb -v /tmp/initdb:/docker-entrypoint-initdb.d:ro postgres:16")
    retry(lambda: h.run("docker exec pg pg_isready -U app -d appdb -h 127.0.0.1"), "postgres ready", 60)
    # password auth over the docker network, from another container, as an app would
    q = ("docker run --rm --network pgnet -e PGPASSWORD=s3cret postgres:16 "
         "psql -h pg -U app -d appdb -tAc 'select id from seeded'")
    assert retry(lambda: h.run(q).stdout.strip(), "psql over TCP", 30) == "42"
    bad = h.run(q.replace("s3cret", "wrong"), check=False)
    assert bad.returncode != 0 and "password authentication failed" in bad.stderr
    dump = h.run("docker exec pg pg_dump -U app -d appdb")
    assert "CREATE TABLE public.seeded" in dump.stdout
    # data lives in PGDATA; a restarted container keeps it and does not initdb again
    h.run("docker restart pg")
    assert retry(lambda: h.run(q).stdout.strip(), "psql after restart", 30) == "42"
    assert h.run("docker exec pg sh -c 'echo $PGDATA'").stdout.strip() == "/var/lib/postgresql/data"


# ----------------------------------------------------------------------------------------------- compose
COMPOSE = """
services:
  db:
    image: postgres:16
    environment: {POSTGRES_USER: app, POSTGRES_PASSWORD: s3cret, POSTGRES_DB: appdb}
    volumes: [pgdata:/var/lib/postgresql/data]
    healthcheck: {test: ["CMD", "pg_isready", "-U", "app", "-d", "appdb"], interval: 1s, retries: 60}
    restart: unless-stopped
  redis:
    image: redis:7
    healthcheck: {test: ["CMD", "redis-cli", "ping"], interval: 1s, retries: 60}
    restart: unless-stopped
  web:
    image: python:3.11-slim
    working_dir: /app
    volumes: [./app.py:/app/app.py:ro]
    command: ["gunicorn", "-b", "0.0.0.0:8000", "app:app"]
    environment: {DATABASE_URL: "postgresql://app:s3cret@db:5432/appdb", REDIS_URL: "redis://redis:6379/0"}
    depends_on: {db: {condition: service_healthy}, redis: {condition: service_healthy}}
    restart: unless-stopped
  caddy:
    image: caddy:2
    ports: ["80:80", "443:443"]
    volumes: [./Caddyfile:/etc/caddy/Caddyfile:ro, caddy_data:/data, caddy_config:/config]
    depends_on: [web]
    restart: unless-stopped
volumes: {pgdata: {}, caddy_data: {}, caddy_config: {}}
"""

APP = """
import os, psycopg2, redis
from flask import Flask
app = Flask(__name__)

@app.get("/health")
def health():
    with psycopg2.connect(os.environ["DATABASE_URL"]) as c, c.cursor() as cur:
        cur.execute("select 1")
        db = cur.fetchone()[0]
    hits = redis.Redis.from_url(os.environ["REDIS_URL"]).incr("hits")
    return {"db": db, "hits": hits, "status": "ok"}
"""


def caddyfile(ip: str, marker: str) -> str:
    # default_sni: clients connecting by IP send no SNI, and behind Docker's DNAT caddy cannot infer the name
    return textwrap.dedent(f"""
        {{
        	local_certs
        	skip_install_trust
        	default_sni {ip}
        }}
        https://{ip} {{
        	tls internal
        	header X-Testbed {marker}
        	reverse_proxy web:8000
        }}
        """)


def _get(url: str):
    import requests
    import urllib3
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    # caddy's internal CA is not trusted here on purpose: the test is about the path, not the PKI
    r = requests.get(url, verify=False, timeout=5)
    r.raise_for_status()
    return r


def test_compose_stack_over_ssh_answers_https_from_the_machine(testbed_host):
    h = testbed_host
    d = "/srv/labstack/apps/demo"
    h.run(f"sudo mkdir -p {d} && sudo chown ubuntu: {d}")
    h.run(f"cat > {d}/compose.yaml", input=COMPOSE)
    h.run(f"cat > {d}/app.py", input=APP)
    h.run(f"cat > {d}/Caddyfile", input=caddyfile(h.ip, "one"))
    up = h.run(f"cd {d} && docker compose -p demo up -d --wait --wait-timeout 120", timeout=300)
    assert up.returncode == 0
    r = retry(lambda: _get(f"https://{h.ip}/health"), "https health", 60)
    assert r.json()["status"] == "ok" and r.json()["db"] == 1
    assert r.headers["X-Testbed"] == "one"
    # psql with the POSTGRES_* credentials through compose
    out = h.run(f"cd {d} && docker compose -p demo exec -T db psql -U app -d appdb -tAc 'select current_user'")
    assert out.stdout.strip() == "app"
    # caddy reload picks up a changed Caddyfile without a restart
    h.run(f"cat > {d}/Caddyfile.new && cat {d}/Caddyfile.new > {d}/Caddyfile", input=caddyfile(h.ip, "two"))
    h.run(f"cd {d} && docker compose -p demo exec -T caddy caddy reload --config /etc/caddy/Caddyfile "
          "--adapter caddyfile")
    assert retry(lambda: _get(f"https://{h.ip}/health").headers["X-Testbed"] == "two" or 1 / 0,
                 "caddy reload", 20)
    # after an engine restart, the restart policies bring the app back with its data
    hits = _get(f"https://{h.ip}/health").json()["hits"]
    h.restart_docker()
    r = retry(lambda: _get(f"https://{h.ip}/health"), "https health after engine restart", 90)
    assert r.json()["status"] == "ok" and r.json()["hits"] >= 1
    assert hits >= 2


# ----------------------------------------------------------------------------------------------- isolation
def test_two_hosts_reach_each_other_and_share_nothing(testbed_hosts):
    a, b = testbed_hosts(2, images=("redis:7",))
    assert a.ip != b.ip
    # a -> b over the test bed link, and a published container port on b
    b.run("docker run -d --name rds -p 6379:6379 redis:7")
    assert "SSH-2.0" in a.run(f"timeout 5 bash -c 'exec 3<>/dev/tcp/{b.ip}/22; head -c 7 <&3'").stdout
    pong = retry(lambda: a.run(f"docker run --rm redis:7 redis-cli -h {b.ip} ping").stdout.strip(), "redis a->b", 20)
    assert pong == "PONG"
    # private directories: what hooks write on one host is invisible on the other and on the machine
    a.run("sudo mkdir -p /srv/labstack /etc/labstack /opt/labstack && echo A | sudo tee /srv/labstack/who "
          "/etc/labstack/who /opt/labstack/who >/dev/null")
    assert b.run("cat /srv/labstack/who /etc/labstack/who /opt/labstack/who 2>&1 || true").stdout.count("No such") == 3
    assert not Path("/srv/labstack/who").exists() and not Path("/etc/labstack/who").exists()
    # the default socket inside each host is that host's own engine
    assert a.run("docker ps -a --format '{{.Names}}'").stdout.split() == []
    assert b.run("docker ps --format '{{.Names}}'").stdout.split() == ["rds"]
    assert a.run("sudo docker ps --format '{{.Names}}'").stdout.split() == []
    # the machine-side URL reaches the same engine
    assert [c.name for c in b.docker_client().containers.list()] == ["rds"]
    # docker networks live in 169.254.192.0/18 only
    for h in (a, b):
        nets = h.docker_client().networks.list()
        subnets = [c["Subnet"] for n in nets for c in (n.attrs.get("IPAM", {}).get("Config") or [])]
        assert subnets and all(s.startswith("169.254.") and 192 <= int(s.split(".")[2]) for s in subnets), subnets


# ----------------------------------------------------------------------------------------------- services
def test_moto_server_resets_between_uses(moto_server, moto_process):
    import boto3
    ec2 = boto3.client("ec2", endpoint_url=moto_server, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    assert moto_server.startswith("http://127.0.0.1:")
    ec2.create_key_pair(KeyName="selftest")
    assert [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]] == ["selftest"]
    moto_process.reset()
    assert ec2.describe_key_pairs()["KeyPairs"] == []


def test_build_engine_builds_and_pushes_to_the_registry(build_engine, registry, registry_service, testbed_hosts):
    import io
    tag = f"{registry}/labstack-selftest:1"
    img, _ = build_engine.images.build(fileobj=io.BytesIO(b"FROM debian:bookworm-slim\nRUN echo hi > /hi\n"),
                                       tag=tag, rm=True)
    errors = [ln for ln in build_engine.images.push(tag, stream=True, decode=True) if "error" in ln]
    assert errors == []  # docker-py does not raise on registry errors: scan the stream
    assert registry_service.tags("labstack-selftest") == ["1"]
    # another host pulls it through its own 127.0.0.1:PORT
    (other,) = testbed_hosts(1, images=())
    other.forward_port(registry_service.port)
    assert other.run(f"docker pull -q {tag} && docker run --rm {tag} cat /hi").stdout.splitlines()[-1] == "hi"


# ----------------------------------------------------------------------------------------------- teardown
def test_teardown_leaves_nothing(testbed):
    h = testbed.new_host(images=("redis:7",))
    h.run("docker run -d --restart always -p 6379:6379 redis:7 && sudo mkdir -p /srv/labstack/x")
    state = json.loads(json.dumps(h.state))
    assert traces_of(state)  # sanity: the checker sees a live host
    testbed.stop_host(h)
    assert traces_of(state) == []
    if not hostmod.read_states():
        hostmod.remove_bridge_if_unused()
        assert hostmod.sh(["ip", "link", "show", hostmod.BRIDGE], check=False).returncode != 0
        assert "LSTB-" not in hostmod.sh(["iptables", "-S"]).stdout
    # nothing of ours in the machine's iptables: the rest is as before; the bridge's own rules (LSTB-…) belong to
    # whichever sessions still run hosts (a parallel test worker may have made them meanwhile)
    from .fixtures import _iptables_snapshot

    def not_the_bridges(snapshot: str) -> list[str]:
        return [line for line in snapshot.splitlines() if "LSTB" not in line and hostmod.BRIDGE not in line]
    assert not_the_bridges(_iptables_snapshot()) == not_the_bridges(testbed.iptables_before)


def test_leftovers_of_a_killed_session_are_cleaned(testbed, tmp_path):
    """A session killed with SIGKILL runs no finalizer; the next session's cleanup must remove its host."""
    script = tmp_path / "crash.py"
    script.write_text(textwrap.dedent(f"""
        import sys, json
        sys.path.insert(0, {str(REPO)!r})
        from tests.testbed.host import TestbedHost
        h = TestbedHost.start("crashed{os.getpid() % 1000}")
        h.run("docker run -d redis:7 || true", check=False)
        print(json.dumps(h.state), flush=True)
        sys.stdin.read()
        """))
    p = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert line, "crash helper did not start a host"
        state = json.loads(line)
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
        assert traces_of(state)  # its host is still there...
        notes = hostmod.cleanup_leftovers(log=lambda m: None)
        assert any(state["name"] in n for n in notes)
        assert traces_of(state) == []  # ...and now it is gone
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=30)


def test_missing_prerequisites_fail_in_ci(monkeypatch):
    monkeypatch.setenv("LABSTACK_REQUIRE_TESTBED", "1")
    with pytest.raises(pytest.fail.Exception, match="TEST BED UNAVAILABLE"):
        tbfix.testbed_unavailable("simulated")
    monkeypatch.setenv("LABSTACK_REQUIRE_TESTBED", "0")
    with pytest.raises(pytest.skip.Exception, match="TEST BED UNAVAILABLE"):
        tbfix.testbed_unavailable("simulated")


# ------------------------------------------------------------------------------------------------ power
SYS_BOOT = 1 << 22   # CAP_SYS_BOOT in /proc/<pid>/status Cap* masks


def _cap_bounding(status_text: str) -> int:
    return int(next(line.split()[1] for line in status_text.splitlines() if line.startswith("CapBnd:")), 16)


def test_nothing_in_a_host_can_reboot_the_machine(testbed_host):
    """The hard layer: no process of a host holds CAP_SYS_BOOT, so reboot(2) fails whoever calls it. The probe is
    the harmless reboot(2) command (Ctrl-Alt-Del handling, LINUX_REBOOT_CMD_CAD_OFF = 0), never a power-off."""
    h = testbed_host
    probe = ("import ctypes, os; libc = ctypes.CDLL(None, use_errno=True); "
             "print(libc.reboot(0), os.strerror(ctypes.get_errno()))")
    assert _cap_bounding(h.run("sudo -n cat /proc/self/status").stdout) & SYS_BOOT == 0
    assert h.run(f"sudo -n python3 -c '{probe}'").stdout.split(None, 1) == ["-1", "Operation not permitted\n"]
    container = h.run("docker run --rm --cap-add SYS_BOOT python:3.11-slim cat /proc/self/status", check=False)
    assert container.returncode != 0 or _cap_bounding(container.stdout) & SYS_BOOT == 0
    engine = h.state["procs"][[r["role"] for r in h.state["procs"]].index("dockerd")]["pid"]
    assert _cap_bounding(Path(f"/proc/{engine}/status").read_text()) & SYS_BOOT == 0
    assert _cap_bounding(Path("/proc/self/status").read_text()) & SYS_BOOT   # the machine's own processes keep it


def test_a_hosts_power_off_is_caught_recorded_and_it_boots_again(testbed_host):
    h = testbed_host
    h.run("docker run -d --name keeps --restart unless-stopped redis:7 && docker run -d --name goes redis:7 "
          "&& touch /tmp/scratch && sudo -n touch /srv/kept")
    # not a power command: the real systemctl answers (no systemd runs in a host)
    other = h.run("systemctl is-system-running", check=False)
    assert other.returncode != 0 and h.power_log() == []
    refused = h.run("/sbin/shutdown -h now", check=False)   # as ubuntu (whose PATH has no sbin), without sudo
    assert refused.returncode == 1 and "Access denied" in refused.stderr and h.power_log() == []
    h.run("sudo -n shutdown -h now 'labstack: idle for 60 minutes'")
    record = h.wait_powered_off(timeout=60)
    assert record["action"] == "poweroff" and record["command"].startswith("shutdown -h now")
    assert [r["state"] for r in h.power_log()] == ["requested", "off"]
    assert not hostmod._tcp_open(h.ip, 22)
    assert not any(hostmod.proc_alive(r) for r in h.state["procs"] if r["role"] in ("sshd", "dockerd"))
    assert hostmod.power.processes_in(h.state["netns_ino"], h.state["mntns_ino"],
                                      exclude={r["pid"] for r in h.state["procs"] if r["role"] == "holder"}) == []
    h.power_on()
    assert h.run("ls /tmp; ls /srv").stdout.split() == ["kept"]   # /tmp emptied, disks kept
    running = lambda: h.run("docker ps --format '{{.Names}}'").stdout.split()  # noqa: E731
    assert retry(lambda: running() if running() == ["keeps"] else 1 / 0, "the restart-policy container") == ["keeps"]
    h.run("sudo -n reboot")
    assert h.wait_powered_off(timeout=60)["action"] == "reboot"


def test_power_commands_are_recognised():
    act = hostmod.power.requested_action
    assert act(["/sbin/shutdown", "-h", "now"]) == ("poweroff", 0.0)
    assert act(["shutdown", "-r", "+2"]) == ("reboot", 120.0)
    assert act(["shutdown"]) == ("poweroff", 60.0)
    assert act(["shutdown", "-c"]) is None
    assert act(["/usr/sbin/poweroff", "-ff"]) == ("poweroff", 0.0)
    assert act(["halt"]) == ("poweroff", 0.0)
    assert act(["reboot", "-f"]) == ("reboot", 0.0)
    assert act(["telinit", "0"]) == ("poweroff", 0.0)
    assert act(["telinit", "3"]) is None
    assert act(["systemctl", "--force", "poweroff"]) == ("poweroff", 0.0)
    assert act(["systemctl", "kexec"]) == ("reboot", 0.0)
    assert act(["systemctl", "restart", "docker"]) is None
    with pytest.raises(ValueError, match="invalid time 'soon'"):
        act(["shutdown", "soon"])
