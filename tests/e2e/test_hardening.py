"""End to end on the test bed: what a server holds and allows once labstack runs on it: a site Caddy
refuses never stays, secrets out of `docker inspect` where the image allows, apps on networks of their own, and a
log viewer without the Docker socket."""
from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.testbed, pytest.mark.e2e]

ELIF_HOST, PILOT_HOST = "elif.elif.experiments.test", "pilot.elif.experiments.test"
PASSWORD = "hunter2 $x long enough"
TOKEN = "s3cr3t-token-value"


def container(stack, app: str, role: str) -> str:
    found = stack.host.run(f"docker ps -q --filter label=org.labstack.app={app} "
                           f"--filter label=org.labstack.role={role}").stdout.split()
    assert len(found) == 1, (app, role, found)
    return found[0]


def python_in(stack, container_id: str, code: str):
    return stack.host.run(f"docker exec {container_id} python3 -c '{code}'", check=False)


def test_server_hardening(make_stack, example_images):
    apps = {"elif": {"image": example_images.v1, "env": {"EXAMPLE_DEBUG_ENV": "1", "WHO": "elif"}},
            "pilot": {"image": example_images.v1, "host": "pilot", "redis": False, "healthPath": "/",
                      "env": {"EXAMPLE_DEBUG_ENV": "1", "WHO": "pilot"}}}
    stack = make_stack(apps, **{"labstack:dashboardPassword": PASSWORD, "labstack:logViewer": "true",
                                "labstack:appSecrets": {"elif": {"API_TOKEN": TOKEN}},
                                "labstack:sshCidrs": ["0.0.0.0/0"]})
    stack.up()
    stack.wait_serving("/env/WHO", host=ELIF_HOST)
    stack.wait_serving("/env/WHO", host=PILOT_HOST)
    assert stack.status_and_body("/env/API_TOKEN", host=ELIF_HOST) == (200, TOKEN)  # the app still gets it

    # Secrets: Postgres reads its password from a file; neither its compose file nor `docker inspect` holds it.
    password = stack.host.run("sudo cat /etc/labstack/apps/elif/db-password").stdout.strip()
    assert len(password) == 48
    postgres = json.loads(stack.host.run(f"docker inspect {container(stack, 'elif', 'postgres')}").stdout)[0]
    assert "POSTGRES_PASSWORD_FILE=/run/secrets/db-password" in postgres["Config"]["Env"]
    assert password not in json.dumps(postgres)
    for compose in ("blue/app.compose.yaml", "data.compose.yaml"):  # the release's, the data services'
        assert password not in stack.host.run(f"sudo cat /etc/labstack/apps/elif/{compose}").stdout
    assert TOKEN not in stack.host.run("sudo cat /etc/labstack/apps/elif/blue/app.compose.yaml").stdout
    # The site files hold the dashboard password hash: root and Caddy only.
    modes = stack.host.run("sudo stat -c '%a %U' /etc/labstack/proxy/sites/elif.caddy "
                           "/etc/labstack/proxy/sites/pilot.caddy /srv/labstack/proxy/docker-api").stdout.split("\n")
    assert [m for m in modes if m] == ["640 root", "640 root", "700 root"]
    assert stack.status_and_body("/dashboard", host=ELIF_HOST, auth=f"admin:{PASSWORD}")[0] != 401

    # Apps share no network: pilot's containers reach neither elif's web nor the log viewer, by name or address.
    pilot_web, elif_web = container(stack, "pilot", "web"), container(stack, "elif", "web")
    elif_address = stack.host.run(f"docker inspect -f '{{{{(index .NetworkSettings.Networks \"labstack-elif\")"
                                  f".IPAddress}}}}' {elif_web}").stdout.strip()
    assert elif_address
    for target in ("elif-blue-web", elif_address, "labstack-logviewer"):
        port = 8080 if target == "labstack-logviewer" else 5000
        reach = python_in(stack, pilot_web, f"import socket; socket.create_connection((\"{target}\", {port}), 3)")
        assert reach.returncode != 0, f"pilot reached {target}:{port}"
    assert python_in(stack, pilot_web, "import socket; socket.create_connection((\"pilot-blue-web\", 5000), 3)") \
        .returncode == 0  # the check itself works: its own web answers

    # The log viewer has no Docker socket; its gate refuses anything but the reads it needs.
    viewer = container(stack, "_labstack", "logviewer")
    mounts = json.loads(stack.host.run(f"docker inspect -f '{{{{json .Mounts}}}}' {viewer}").stdout)
    assert not [m for m in mounts if m["Source"].endswith("docker.sock")]
    gate = ("import http.client, socket\n"
            "class C(http.client.HTTPConnection):\n"
            "    def connect(self):\n"
            "        self.sock = socket.socket(socket.AF_UNIX); self.sock.connect(\"/run/labstack-docker/docker.sock\")\n"
            "c = C(\"localhost\"); c.request(\"{method}\", \"{path}\"); print(c.getresponse().status)\n")
    answers = {(method, path): python_in(stack, viewer, gate.format(method=method, path=path)).stdout.strip()
               for method, path in (("GET", "/containers/json"), ("GET", f"/containers/{elif_web}/logs?stdout=1"),
                                    ("GET", f"/containers/{elif_web}/json"), ("POST", "/containers/create"),
                                    ("GET", "/images/json"), ("POST", f"/containers/{elif_web}/stop"))}
    # Not even inspect: it holds a container's environment (the app's secrets, DATABASE_URL).
    assert answers == {("GET", "/containers/json"): "200", ("GET", f"/containers/{elif_web}/logs?stdout=1"): "200",
                       ("GET", f"/containers/{elif_web}/json"): "403", ("POST", "/containers/create"): "403",
                       ("GET", "/images/json"): "403", ("POST", f"/containers/{elif_web}/stop"): "403"}
    status, logs = stack.status_and_body("/labstack-logs/web?tail=20", host=ELIF_HOST, auth=f"admin:{PASSWORD}")
    assert status == 200 and "GET /" in logs

    # A site Caddy refuses (pilot's release claiming elif's host name) fails the deploy with Caddy's message and
    # never stays on disk: both apps keep serving, also after Caddy restarts.
    pilot_site = stack.host.run("sudo cat /etc/labstack/proxy/sites/pilot.caddy").stdout
    bundle = stack.host.run(
        "sudo sh -c 'd=$(mktemp -d) && cd /etc/labstack/apps/pilot/blue && cp release.conf app.compose.yaml "
        "../data.compose.yaml site.caddy init.cmd post-deploy.cmd export.cmd secrets.env \"$d\" && "
        f"sed -i \"1s/^{PILOT_HOST} /{ELIF_HOST} /\" \"$d/site.caddy\" && grep -q \"^{ELIF_HOST} \" \"$d/site.caddy\" "
        "&& tar -C \"$d\" -czf - . | base64 -w0 && rm -rf \"$d\"'").stdout
    refused = stack.host.run("sudo /opt/labstack/hooks/deploy-app.sh pilot", input=bundle, check=False)
    assert refused.returncode != 0
    assert "ambiguous site definition" in refused.stderr, refused.stderr  # Caddy's own words
    assert "Caddy refused the new site (above); the previous site is back and release blue keeps serving" \
        in refused.stderr
    assert stack.host.run("sudo cat /etc/labstack/proxy/sites/pilot.caddy").stdout == pilot_site
    assert stack.host.run("sudo ls /etc/labstack/proxy/sites").stdout.split() == ["elif.caddy", "pilot.caddy"]
    stack.host.run(f"docker restart {container(stack, '_labstack', 'proxy')}")
    assert stack.wait_serving("/env/WHO", host=ELIF_HOST) == (200, "elif")
    assert stack.wait_serving("/env/WHO", host=PILOT_HOST) == (200, "pilot")
