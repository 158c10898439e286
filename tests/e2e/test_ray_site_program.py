"""ray.<host> through the PROGRAM on the test bed: a head-only cluster stack with a dashboard
password, __main__.py evaluated under the mocks and its remote commands replayed over real SSH (HostSetup's Caddy,
the head's RayNode and its ray-site step), then Ray's Jobs API reached through Caddy with both keys, and Ray's
dashboard as a browser uses it (the password, then Ray's token prompt and cookie)."""
from __future__ import annotations

import base64
import subprocess
import time
from pathlib import Path

import pytest

from components.layout import PROXY_ACCESS_LOG, RAY_TOKEN_FILE
from tests.e2e.test_cluster import assert_no_container_reaches_rays_gate, check_browser_login
from tests.e2e.test_cluster_program import STACK, ClusterStack, new_node

pytestmark = [pytest.mark.testbed, pytest.mark.e2e]

PASSWORD = "correct horse battery"


def status(host: str, ip: str, path: str, *headers: str) -> str:
    argv = ["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "20", "--resolve", f"{host}:443:{ip}"]
    for header in headers:
        argv += ["-H", header]
    return subprocess.run([*argv, f"https://{host}{path}"], check=False, capture_output=True, text=True).stdout


def test_the_programs_head_serves_ray_behind_the_password_and_the_token(testbed, tmp_path):
    pem = tmp_path / "stack.pem"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(pem)], check=True)
    head = new_node(testbed, pem)
    try:
        stack = ClusterStack(head, pem, tmp_path / "exports")
        stack.config["labstack:dashboardPassword"] = PASSWORD
        runs = stack.up(workers=0)
        assert (f"{STACK}-ray-site", "create") in runs
        site = f"ray.{head.ip}.nip.io"  # the rayDashboardUrl output's host (tests/unit/test_ray_site.py)
        token = head.run(f"sudo -n cat {RAY_TOKEN_FILE}").stdout.strip()
        basic = "Authorization: Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
        assert status(site, head.ip, "/api/jobs/") == "401"
        assert status(site, head.ip, "/api/jobs/", basic) == "401"
        assert status(site, head.ip, "/api/version", basic, f"Proxy-Authorization: Bearer {token}") == "200"
        # no container but Caddy reaches Ray's gate
        assert_no_container_reaches_rays_gate(head)
        # a browser: the password, then Ray's own token prompt and its cookie; the token in no log of Caddy's
        check_browser_login(site, head.ip, PASSWORD, token, tmp_path / "cookies")
        assert token not in head.run(f"sudo -n cat {PROXY_ACCESS_LOG}").stdout
        assert token not in head.run("sudo -n sh -c 'docker logs $(docker ps -q -f "
                                     "label=com.docker.compose.service=caddy) 2>&1'").stdout
        # a second `up` with nothing changed runs nothing
        assert stack.up(workers=0) == []
        # a Docker engine restart: Ray, Caddy and the gate come back by their restart policies
        head.restart_docker()
        both = (basic, f"Proxy-Authorization: Bearer {token}")
        deadline = time.monotonic() + 180
        while status(site, head.ip, "/api/version", *both) != "200":
            assert time.monotonic() < deadline, "ray.<host> did not answer 200 within 180 s of an engine restart"
            time.sleep(3)
    finally:
        testbed.stop_host(head)
