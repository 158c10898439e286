"""The instance metadata service is root's on the host alone (hooks/metadata-guard.sh), on the test bed: a stand-in
metadata service on the machine's side of the test bed's link (never EC2's 169.254.169.254), the guard run as the
program runs it but pointed at the stand-in, then asked from the host as root and as a user, from a container on
Docker's bridge, and from the real Ray container ray-start.sh starts (a task Ray schedules included)."""
from __future__ import annotations

import http.server
import secrets
import shlex
import socketserver
import threading

import pytest

from components.layout import METADATA_GUARD_UNIT, RAY_PROJECT, RAY_TOKEN_FILE, RAY_USER, hook
from components.render.images import infra_image
from tests.e2e.test_cluster import install_hooks, on_head
from tests.testbed.host import BRIDGE_IP
from tests.testbed.images import RAY_IMAGE, STANDARD_IMAGES

pytestmark = [pytest.mark.testbed, pytest.mark.e2e]

USER_DATA = "#cloud-config\nssh_keys:\n  ed25519_private: STAND-IN HOST KEY\n"

# Asked from anywhere: the stand-in's user data, or why not (one line).
FETCH = ("import sys, urllib.request\n"
         "try:\n"
         "    print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode().splitlines()[-1])\n"
         "except OSError as error:\n"
         "    print('refused', type(getattr(error, 'reason', error)).__name__)\n")

# The same, from a task Ray schedules (a job's code runs so).
RAY_TASK = """
import ray, urllib.request
ray.init(address="auto", logging_level="ERROR")
@ray.remote
def fetch(url):
    try:
        return urllib.request.urlopen(url, timeout=5).read().decode().splitlines()[-1]
    except OSError as error:
        return "refused " + type(getattr(error, "reason", error)).__name__
print("TASK", ray.get(fetch.remote("URL")))
"""


class StandIn(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the http.server API
        body = USER_DATA.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def metadata_stand_in():
    """ADDRESS:PORT of a metadata stand-in on the machine's end of the test bed's link (hosts reach it as they
    would reach EC2's service: through their eth0, not as one of their own addresses)."""
    server = socketserver.ThreadingTCPServer((BRIDGE_IP, 0), StandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{BRIDGE_IP}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def fetch(host, service: str, prefix: str = "") -> str:
    url = f"http://{service}/latest/user-data"
    return host.run(f"{prefix}python3 -c {shlex.quote(FETCH)} {url}", check=False).stdout.strip()


def test_only_root_on_the_host_reaches_the_metadata_service(testbed_hosts, metadata_stand_in):
    host, = testbed_hosts(1, images=(*STANDARD_IMAGES, RAY_IMAGE))
    service = metadata_stand_in
    install_hooks(host)
    bridged = f"sudo -n docker run --rm {infra_image('python')} "
    as_ray = (f"sudo -n docker run --rm --network host --user {RAY_USER} --security-opt no-new-privileges "
              f"{infra_image('python')} ")
    # Without the guard every one of them reads the user data (the stand-in and its routes work).
    last_line = USER_DATA.splitlines()[-1].strip()
    assert [fetch(host, service, prefix) for prefix in ("sudo -n ", "", bridged)] == [last_line] * 3

    guard = hook("metadata-guard.sh", "block", service)
    host.run(guard)
    host.run(guard)  # again: nothing added
    rules = host.run("sudo -n iptables -S").stdout.splitlines()
    assert len([r for r in rules if "labstack-metadata-guard" in r]) == 2, rules
    assert fetch(host, service, "sudo -n ") == last_line  # root on the host: the ECR login, cloud-init
    assert fetch(host, service) == "refused ConnectionRefusedError"  # any other user on the host
    assert fetch(host, service, bridged) == "refused ConnectionRefusedError"  # apps, jobs, functions
    assert fetch(host, service, as_ray) == "refused ConnectionRefusedError"  # host networking, Ray's user
    unit = host.run(f"sudo -n cat /etc/systemd/system/{METADATA_GUARD_UNIT}.service").stdout
    assert f"ExecStart=/opt/labstack/hooks/metadata-guard.sh block {service}" in unit
    assert "Before=docker.service" in unit  # at boot, before any container starts

    # Ray as ray-start.sh runs it: its user, no new privileges; neither it nor a task it schedules gets through.
    token = secrets.token_hex(32)
    host.run(hook("ray-start.sh", "head", host.ip, RAY_IMAGE), input=token, timeout=400)
    identity = host.run(f"sudo -n docker exec {RAY_PROJECT} sh -c 'id -u; id -g; grep NoNewPrivs /proc/self/status'")
    assert identity.stdout.split() == [*RAY_USER.split(":"), "NoNewPrivs:", "1"]
    assert host.run(f"sudo -n stat -c '%a %u:%g' {RAY_TOKEN_FILE}").stdout.strip() == f"400 {RAY_USER}"
    assert fetch(host, service, f"sudo -n docker exec {RAY_PROJECT} ") == "refused ConnectionRefusedError"
    task = on_head(host, RAY_TASK.replace("URL", f"http://{service}/latest/user-data"))
    assert "TASK refused ConnectionRefusedError" in task.stdout, task.stdout

    # labstack:containerMetadata true: the rules and the unit go, and the containers read it again.
    host.run(hook("metadata-guard.sh", "allow", service))
    assert not [r for r in host.run("sudo -n iptables -S").stdout.splitlines() if "labstack-metadata-guard" in r]
    assert host.run(f"test -e /etc/systemd/system/{METADATA_GUARD_UNIT}.service", check=False).returncode == 1
    assert fetch(host, service, bridged) == last_line
    assert fetch(host, service, f"sudo -n docker exec {RAY_PROJECT} ") == last_line
