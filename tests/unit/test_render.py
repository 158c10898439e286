"""The renderers' output for fixed configs, compared with tests/unit/snapshots/, and the labels on every service.

An intended change of a rendered file: `LABSTACK_UPDATE_SNAPSHOTS=1 venv/bin/python -m pytest tests/unit/test_render.py`
rewrites the snapshots; review them in the diff. The two hashes of the hooks' own files (HOOKS_VERSION, the log
viewer's sha256 label) are replaced by placeholders there and checked separately, so editing a hook does not churn
the snapshots.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from components.config import load_stack_config
from components.layout import HOOKS_DIR, SERVER_APP, labels
from components.render.app_files import (DEPLOY_HOOKS, app_commands, app_compose, data_compose, release_conf,
                                         secrets_env)
from components.render import images
from components.render.proxy import dashboard_password_hash, proxy_files, site_file
from tests.unit.helpers import digest, write_private_key

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("LABSTACK_UPDATE_SNAPSHOTS") == "1"
UPDATE_COMMAND = "LABSTACK_UPDATE_SNAPSHOTS=1 venv/bin/python -m pytest tests/unit/test_render.py"
IMAGE = "ghcr.io/lab/elif@sha256:" + digest("9b1c")
HOST = "elif.experiments.test"
HOOKS_VERSION_RE = re.compile(r"^HOOKS_VERSION=([0-9a-f]{12})$", re.M)
SCRIPT_SHA_RE = re.compile(r"(org\.labstack\.(logviewer|docker-api)-sha256: )([0-9a-f]{64})$", re.M)
SCRIPTS = {"logviewer": "logviewer.py", "docker-api": "docker_api_proxy.py"}

APPS = {
    "elif": {"image": IMAGE, "workers": 2, "workerCommand": "python worker.py --queue $QUEUE",
             "clockCommand": "python clock.py", "initCommand": "python init_db.py", "initRun": 2,
             "command": "gunicorn -b 0.0.0.0:$PORT app:app", "healthTimeoutSeconds": 60,
             "env": {"mode": "live", "PRICE": "5$ each", "QUOTE": "say \"hi\": ok", "DEBUG": True},
             "postDeploy": {"path": "/launch", "expectStatus": 201, "retries": 2, "when": "always"}},
    "pilot": {"image": IMAGE, "port": 8000, "healthPath": "/ready", "postgres": False, "redis": False,
              "host": "@", "postDeploy": {"command": "flask launch"}},
}
SECRETS = {"API_TOKEN": 'to"k$en', "MULTI": "line one\nline two\ttab"}


@pytest.fixture(scope="module")
def pem(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("key") / "server.pem"
    write_private_key(path)
    return path


def config(pem: Path, **settings):
    raw = {"aws:region": "eu-west-3", "labstack:serverPem": str(pem), "labstack:dnsHost": "experiments.test",
           "labstack:sshCidrs": ["100.64.0.0/24"],
           "labstack:apps": APPS, **{f"labstack:{key}": value for key, value in settings.items()}}
    return load_stack_config(raw, "paris-batch2")


def normalised(text: str) -> str:
    text = HOOKS_VERSION_RE.sub("HOOKS_VERSION=<hash of the deploy hooks>", text)
    return SCRIPT_SHA_RE.sub(lambda m: f"{m.group(1)}<sha256 of {SCRIPTS[m.group(2)]}>", text)


def assert_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    text = normalised(text)
    if UPDATE:
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(text)
        return
    assert path.exists(), f"no snapshot {name} yet: run `{UPDATE_COMMAND}`"
    assert text == path.read_text(), (
        f"the rendered {name} differs from tests/unit/snapshots/{name}; if the change is intended, run "
        f"`{UPDATE_COMMAND}` and review the snapshot's diff")


PROXIES = {"acme": {"acmeEmail": "lab@uni.example"},
           "internal-logs": {"tls": "internal", "logViewer": "true", "dashboardPassword": "hunter2-hunter2"}}


@pytest.mark.parametrize("proxy", PROXIES)
def test_proxy_files(pem, proxy):
    files = proxy_files(config(pem, **PROXIES[proxy]).proxy)
    assert set(files) == {"Caddyfile", "compose.yaml"}
    for file_name, text in files.items():
        assert_snapshot(f"proxy-{proxy}.{file_name}", text)


SITES = {"plain": ({}, None), "dashboard": ({"dashboardPassword": "hunter2-hunter2"}, "hunter2-hunter2"),
         "dashboard-logs": ({"dashboardPassword": "hunter2-hunter2", "logViewer": "true", "dashboardUser": "lab"}, "hunter2-hunter2")}


KEY = "5e" * 32  # a stack's dashboard key (components.remote.state_secret.dashboard_key)


@pytest.mark.parametrize("site", SITES)
def test_site_file(pem, site):
    settings, password = SITES[site]
    proxy = config(pem, **settings).proxy
    dashboard = dashboard_password_hash(password, "elif", KEY) if password else None
    assert_snapshot(f"site-{site}.caddy", site_file(HOST, proxy, dashboard, app="elif"))


@pytest.mark.parametrize("app_name", APPS)
def test_app_files(pem, app_name):
    cfg = config(pem)
    app = next(app for app in cfg.apps if app.name == app_name)
    assert_snapshot(f"{app_name}.app.compose.yaml", app_compose(app))
    assert_snapshot(f"{app_name}.data.compose.yaml", data_compose(app))
    assert_snapshot(f"{app_name}.release.conf", release_conf(app, cfg.app_host(app, "203.0.113.7"),
                                                             tls_internal=False, server_id="i-0123456789abcdef0"))
    assert app_commands(app) == {"init.cmd": app.init_command or "",
                                 "post-deploy.cmd": app.post_deploy.command or "", "export.cmd": ""}


def test_secrets_env():
    assert_snapshot("secrets.env", secrets_env(SECRETS))


def test_every_snapshot_is_rendered_by_a_test():
    names = {f"proxy-{proxy}.{f}" for proxy in PROXIES for f in ("Caddyfile", "compose.yaml")}
    names |= {f"site-{site}.caddy" for site in SITES} | {"secrets.env"}
    names |= {f"{app}.{f}" for app in APPS for f in ("app.compose.yaml", "data.compose.yaml", "release.conf")}
    assert {p.name for p in SNAPSHOTS.iterdir()} == names, "remove snapshots no test renders"


def test_every_service_carries_its_labels(pem):
    cfg = config(pem, **PROXIES["internal-logs"])
    elif_app, pilot = cfg.apps
    compose = yaml.safe_load(app_compose(elif_app))["services"]
    color = "${LABSTACK_COLOR}"  # compose interpolates the colour deploy-app.sh gives the release
    assert {service: spec["labels"] for service, spec in compose.items()} == {
        "web": labels("elif", "web", color), "worker": labels("elif", "worker", color),
        "clock": labels("elif", "clock", color), "init": labels("elif", "init")}
    assert compose["web"]["labels"] == {"org.labstack.app": "elif", "org.labstack.role": "web",
                                        "org.labstack.color": color}
    assert compose["init"]["profiles"] == ["init"]  # never started by `up`, only run by deploy-app.sh
    assert {service: spec["labels"] for service, spec in yaml.safe_load(data_compose(elif_app))["services"].items()} \
        == {"postgres": labels("elif", "postgres"), "redis": labels("elif", "redis")}
    assert set(yaml.safe_load(app_compose(pilot))["services"]) == {"web"}
    assert yaml.safe_load(data_compose(pilot))["services"] == {}
    proxy = yaml.safe_load(proxy_files(cfg.proxy)["compose.yaml"])["services"]
    assert proxy["caddy"]["labels"] == labels(SERVER_APP, "proxy") == {"org.labstack.app": "_labstack",
                                                                       "org.labstack.role": "proxy"}
    viewer = proxy["logviewer"]["labels"]
    assert {k: v for k, v in viewer.items() if k != "org.labstack.logviewer-sha256"} == labels(SERVER_APP,
                                                                                              "logviewer")
    gate = proxy["docker-api"]["labels"]
    assert {k: v for k, v in gate.items() if k != "org.labstack.docker-api-sha256"} == labels(SERVER_APP,
                                                                                             "docker-api")
    assert not re.match(r"^[a-z]", SERVER_APP)  # never an app's name, so no app's filter finds the proxy


def test_hashes_left_out_of_the_snapshots(pem):
    app = config(pem).apps[0]
    version = HOOKS_VERSION_RE.search(release_conf(app, HOST, tls_internal=False)).group(1)
    hooks = b"".join((HOOKS_DIR / hook).read_bytes() for hook in DEPLOY_HOOKS)
    assert version == hashlib.sha256(hooks).hexdigest()[:12]
    compose = proxy_files(config(pem, **PROXIES["internal-logs"]).proxy)["compose.yaml"]
    found = {m.group(2): m.group(3) for m in SCRIPT_SHA_RE.finditer(compose)}
    assert found == {role: hashlib.sha256((HOOKS_DIR / "templates" / script).read_bytes()).hexdigest()
                     for role, script in SCRIPTS.items()}


def test_hooks_version_covers_every_file_the_deploy_hook_sources():
    """A change to any of them must redeploy, so all are in the hash."""
    sourced, todo = set(), ["deploy-app.sh"]
    while todo:
        hook = todo.pop()
        sourced.add(hook)
        text = (HOOKS_DIR / hook).read_text()
        todo += [found for found in re.findall(r'^source "\$\(dirname "[^"]+"\)/([\w.-]+)"', text, re.M)
                 if found not in sourced]
    assert sourced == {"deploy-app.sh", "deploy-steps.sh", "app-state.bash", "lib.sh", "layout.sh"}
    assert set(DEPLOY_HOOKS) == sourced


def test_only_the_docker_api_gate_holds_the_docker_socket(pem):
    proxy = yaml.safe_load(proxy_files(config(pem, **PROXIES["internal-logs"]).proxy)["compose.yaml"])["services"]
    holders = {name for name, spec in proxy.items() if any("docker.sock:" in v for v in spec.get("volumes", []))}
    assert holders == {"docker-api"}
    assert proxy["docker-api"]["network_mode"] == "none"  # nothing on any network reaches it
    assert "networks" not in proxy["docker-api"] and "ports" not in proxy["docker-api"]
    assert proxy["logviewer"]["environment"]["LABSTACK_DOCKER_SOCKET"] == "/run/labstack-docker/docker.sock"


def _gate():
    spec = importlib.util.spec_from_file_location("docker_api_proxy", HOOKS_DIR / "templates" / "docker_api_proxy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CONTAINER = "3f" * 32


# Every route of the Docker Engine API (v1.43, docs.docker.com/engine/api/v1.43), {id} filled in.
DOCKER_API_ROUTES = [(method, path.replace("{id}", CONTAINER)) for method, path in [
    ("GET", "/containers/json"), ("POST", "/containers/create"), ("GET", "/containers/{id}/json"),
    ("GET", "/containers/{id}/top"), ("GET", "/containers/{id}/logs"), ("GET", "/containers/{id}/changes"),
    ("GET", "/containers/{id}/export"), ("GET", "/containers/{id}/stats"), ("POST", "/containers/{id}/resize"),
    ("POST", "/containers/{id}/start"), ("POST", "/containers/{id}/stop"), ("POST", "/containers/{id}/restart"),
    ("POST", "/containers/{id}/kill"), ("POST", "/containers/{id}/update"), ("POST", "/containers/{id}/rename"),
    ("POST", "/containers/{id}/pause"), ("POST", "/containers/{id}/unpause"), ("POST", "/containers/{id}/attach"),
    ("GET", "/containers/{id}/attach/ws"), ("POST", "/containers/{id}/wait"), ("DELETE", "/containers/{id}"),
    ("HEAD", "/containers/{id}/archive"), ("GET", "/containers/{id}/archive"), ("PUT", "/containers/{id}/archive"),
    ("POST", "/containers/prune"), ("POST", "/containers/{id}/exec"),
    ("GET", "/images/json"), ("POST", "/build"), ("POST", "/build/prune"), ("POST", "/images/create"),
    ("GET", "/images/{id}/json"), ("GET", "/images/{id}/history"), ("POST", "/images/{id}/push"),
    ("POST", "/images/{id}/tag"), ("DELETE", "/images/{id}"), ("GET", "/images/search"), ("POST", "/images/prune"),
    ("POST", "/commit"), ("GET", "/images/{id}/get"), ("GET", "/images/get"), ("POST", "/images/load"),
    ("GET", "/networks"), ("GET", "/networks/{id}"), ("DELETE", "/networks/{id}"), ("POST", "/networks/create"),
    ("POST", "/networks/{id}/connect"), ("POST", "/networks/{id}/disconnect"), ("POST", "/networks/prune"),
    ("GET", "/volumes"), ("POST", "/volumes/create"), ("GET", "/volumes/{id}"), ("PUT", "/volumes/{id}"),
    ("DELETE", "/volumes/{id}"), ("POST", "/volumes/prune"),
    ("POST", "/exec/{id}/start"), ("POST", "/exec/{id}/resize"), ("GET", "/exec/{id}/json"),
    ("GET", "/swarm"), ("POST", "/swarm/init"), ("POST", "/swarm/join"), ("POST", "/swarm/leave"),
    ("POST", "/swarm/update"), ("GET", "/swarm/unlockkey"), ("POST", "/swarm/unlock"),
    ("GET", "/nodes"), ("GET", "/nodes/{id}"), ("DELETE", "/nodes/{id}"), ("POST", "/nodes/{id}/update"),
    ("GET", "/services"), ("POST", "/services/create"), ("GET", "/services/{id}"), ("DELETE", "/services/{id}"),
    ("POST", "/services/{id}/update"), ("GET", "/services/{id}/logs"),
    ("GET", "/tasks"), ("GET", "/tasks/{id}"), ("GET", "/tasks/{id}/logs"),
    ("GET", "/secrets"), ("POST", "/secrets/create"), ("GET", "/secrets/{id}"), ("DELETE", "/secrets/{id}"),
    ("POST", "/secrets/{id}/update"),
    ("GET", "/configs"), ("POST", "/configs/create"), ("GET", "/configs/{id}"), ("DELETE", "/configs/{id}"),
    ("POST", "/configs/{id}/update"),
    ("GET", "/plugins"), ("GET", "/plugins/privileges"), ("POST", "/plugins/pull"), ("GET", "/plugins/{id}/json"),
    ("DELETE", "/plugins/{id}"), ("POST", "/plugins/{id}/enable"), ("POST", "/plugins/{id}/disable"),
    ("POST", "/plugins/{id}/upgrade"), ("POST", "/plugins/create"), ("POST", "/plugins/{id}/push"),
    ("POST", "/plugins/{id}/set"),
    ("POST", "/auth"), ("GET", "/info"), ("GET", "/version"), ("GET", "/_ping"), ("HEAD", "/_ping"),
    ("GET", "/events"), ("GET", "/system/df"), ("GET", "/distribution/{id}/json"), ("POST", "/session"),
]]
# What the log viewer calls (hooks/templates/logviewer.py: app_containers and the logs read), nothing else.
VIEWER_CALLS = [("GET", "/containers/json"), ("GET", f"/containers/{CONTAINER}/logs")]


def test_docker_api_gate_refuses_every_route_the_log_viewer_does_not_call():
    gate = _gate()
    assert [route for route in DOCKER_API_ROUTES if gate.allowed(*route)] == VIEWER_CALLS
    for method, path in DOCKER_API_ROUTES:  # the same under a versioned path
        assert gate.allowed(method, f"/v1.43{path}") is ((method, path) in VIEWER_CALLS)


def test_the_log_viewer_calls_only_what_the_gate_passes():
    """Each Docker API call in logviewer.py is one of VIEWER_CALLS (the gate's list stays the viewer's list)."""
    source = (HOOKS_DIR / "templates" / "logviewer.py").read_text()
    called = re.findall(r'docker_get\(f"([^"?]+)', source)
    assert [re.sub(r"\{[^}]+\}", CONTAINER, path) for path in called] == [path for _, path in VIEWER_CALLS]


@pytest.mark.parametrize("method,target,passes", [
    ("GET", "/containers/json?all=1&filters=%7B%22label%22%3A%5B%22org.labstack.app%3Delif%22%5D%7D", True),
    ("GET", "/v1.43/containers/json", True),
    ("GET", f"/containers/{CONTAINER}/logs?stdout=1&stderr=1&timestamps=1&tail=300", True),
    ("GET", f"/containers/{CONTAINER}/json", False),  # inspect: the container's environment, with its secrets
    ("GET", f"/v1.43/containers/{CONTAINER}/json", False),
    ("GET", "/containers/json?size=1", False),  # parameters the viewer never sends
    ("GET", f"/containers/{CONTAINER}/logs?follow=1&stdout=1", False),  # would hold a thread forever
    ("GET", f"/containers/{CONTAINER}/logs?since=0&stdout=1", False),
    ("POST", "/containers/json", False),
    ("HEAD", f"/containers/{CONTAINER}/logs", False),
    ("GET", f"/containers/{CONTAINER}/archive?path=/etc", False),  # reading a container's files
    ("GET", f"/containers/{CONTAINER}/../../images/json", False),
    ("GET", f"/containers/{CONTAINER}/logs/../json", False),
    ("GET", "/containers/elif-blue-web/logs", False),  # by name: the viewer uses ids
])
def test_docker_api_gate_passes_only_the_log_viewer_calls(method, target, passes):
    assert _gate().allowed(method, target) is passes


PINNED = {"caddy": "caddy:2@sha256:" + "c" * 64, "postgres": "postgres:16@sha256:" + "d" * 64,
          "redis": "redis:7@sha256:" + "e" * 64, "python": "python:3.11-slim@sha256:" + "f" * 64,
          "ray": "rayproject/ray:2.60.0-py311@sha256:" + "a" * 64}
OFFICIAL = {"caddy", "postgres", "redis", "python"}  # Docker's official images: docker-library/repo-info records them


def test_infrastructure_images_come_from_one_file(pem, tmp_path, monkeypatch):
    """Every infrastructure image a server runs is read from images.json, nowhere else."""
    assert json.loads(images.IMAGES_FILE.read_text()).keys() == set(images.NAMES)
    file = tmp_path / "images.json"
    file.write_text(json.dumps({name: {"image": reference} for name, reference in PINNED.items()}))
    monkeypatch.setattr(images, "IMAGES_FILE", file)
    cfg = config(pem, **PROXIES["internal-logs"])
    proxy = yaml.safe_load(proxy_files(cfg.proxy)["compose.yaml"])["services"]
    data = yaml.safe_load(data_compose(cfg.apps[0]))["services"]
    assert {name: spec["image"] for name, spec in {**proxy, **data}.items()} == {
        "caddy": PINNED["caddy"], "logviewer": PINNED["python"], "docker-api": PINNED["python"],
        "postgres": PINNED["postgres"], "redis": PINNED["redis"]}


def test_every_infrastructure_image_is_pinned_with_its_record():
    """A server never runs an infrastructure image by tag alone: each official image is pinned to the digest its
    docker-library/repo-info record gives (commit and date beside it); only a non-official image may stay unpinned,
    with the reason written beside it."""
    entries = json.loads(images.IMAGES_FILE.read_text())
    for name, entry in entries.items():
        if images.PINNED.match(entry["image"]):
            assert re.match(r"\d{4}-\d{2}-\d{2}", entry["date"]), entry
            if name in OFFICIAL:
                repository, tag = entry["image"].split("@")[0].split(":")
                assert re.fullmatch(rf"docker-library/repo-info@[0-9a-f]{{40}} repos/{repository}/remote/{tag}\.md",
                                    entry["record"]) or entry["record"] == f"docker pull {repository}:{tag}", entry
        else:
            assert name not in OFFICIAL, f"{name}: official image {entry['image']} is not pinned by digest"
            assert len(entry.get("unpinned", "")) > 40, f"{name}: {entry['image']} unpinned without a reason"
    assert {name for name, entry in entries.items() if not images.PINNED.match(entry["image"])} <= {"ray"}


@pytest.mark.parametrize("reference", ["caddy:2", "caddy:2@sha256:" + "c" * 63, "caddy@sha256:" + "c" * 64,
                                       "caddy:2@sha1:" + "c" * 64])
def test_an_unpinned_reference_is_not_taken_for_a_pin(reference):
    assert not images.PINNED.match(reference)


def test_image_update_pins_each_tag_to_the_digest_docker_resolved(tmp_path, monkeypatch):
    file = tmp_path / "images.json"
    file.write_text(json.dumps({"caddy": {"image": "caddy:2", "unpinned": "not yet"},
                                "postgres": {"image": "postgres:16@sha256:" + "0" * 64, "record": "old",
                                             "date": "2020-01-01"}}))
    monkeypatch.setattr(images, "IMAGES_FILE", file)
    calls = []

    def docker(argv, **kwargs):
        calls.append(argv)
        digest = {"caddy:2": "a" * 64, "postgres:16": "b" * 64}[argv[-1]]
        repo = argv[-1].split(":")[0]
        return subprocess.CompletedProcess(argv, 0, stdout=f"{repo}@sha256:{digest}\nother/{repo}@sha256:{'9' * 64}\n")

    monkeypatch.setattr(images.subprocess, "run", docker)
    assert images.update() == {"caddy": "caddy:2@sha256:" + "a" * 64, "postgres": "postgres:16@sha256:" + "b" * 64}
    written = json.loads(file.read_text())
    assert written["postgres"]["image"] == "postgres:16@sha256:" + "b" * 64
    assert written["postgres"]["record"] == "docker pull postgres:16" and "unpinned" not in written["caddy"]
    assert ["docker", "pull", "-q", "postgres:16"] in calls  # the tag, never the old digest


def test_the_test_bed_registers_its_stand_ins_under_the_pinned_references(tmp_path):
    """The stand-ins carry the production tags; the test bed's engines also resolve each pinned reference to
    them (tests/testbed/images.py register_pins), so end-to-end tests run the program's own references."""
    from tests.testbed.images import STANDARD_IMAGES, register_pins
    store = tmp_path / "image" / "overlay2" / "repositories.json"
    store.parent.mkdir(parents=True)
    ids = {name: "sha256:" + hashlib.sha256(name.encode()).hexdigest() for name in STANDARD_IMAGES}
    store.write_text(json.dumps({"Repositories": {
        name.split(":")[0]: {name: image_id} for name, image_id in ids.items()}}))
    pins = register_pins(tmp_path, STANDARD_IMAGES)
    pinned = {entry.split("@")[0]: entry for entry in images.infra_images().values() if "@" in entry}
    assert pins == {tag: reference for tag, reference in pinned.items() if tag in STANDARD_IMAGES}
    assert set(pins) == {"caddy:2", "postgres:16", "redis:7", "python:3.11-slim"}
    repositories = json.loads(store.read_text())["Repositories"]
    for tag, reference in pins.items():
        repository = tag.split(":")[0]
        assert repositories[repository][f"{repository}@{reference.split('@')[1]}"] == ids[tag]


@pytest.mark.parametrize("command, argv", [
    ("python worker.py", ["sh", "-c", "exec python worker.py"]),  # PID 1: SIGTERM reaches it
    ("gunicorn -b 0.0.0.0:$PORT 'app:create()'", ["sh", "-c", "exec gunicorn -b 0.0.0.0:$$PORT 'app:create()'"]),
    ("exec python worker.py", ["sh", "-c", "exec python worker.py"]),
    ("cd /app && python worker.py", ["sh", "-c", "cd /app && python worker.py"]),  # the shell must stay
    ("python worker.py > /data/log", ["sh", "-c", "python worker.py > /data/log"]),
    ("QUEUE=high python worker.py", ["sh", "-c", "QUEUE=high python worker.py"]),
])
def test_a_single_command_runs_as_pid_1_of_its_container(command, argv):
    from components.render.app_files import process_command
    assert process_command(command) == argv


def test_extra_volumes_are_mounted_in_every_release_service(pem):
    import yaml as _yaml
    from components.config.stack import load_stack_config
    from components.render.app_files import app_compose
    from tests.unit.helpers import base_config

    config = load_stack_config(base_config(pem, apps={"elif": {
        "image": "ghcr.io/lab/elif@sha256:" + digest("9b1c"), "workers": 1, "workerCommand": "python worker.py",
        "volumes": {"uploads": "/app/uploads", "media": "/srv/media"}}}), stack="s")
    services = _yaml.safe_load(app_compose(config.apps[0]))["services"]
    expected = ["/srv/labstack/apps/elif/data:/data", "/srv/labstack/apps/elif/volumes/media:/srv/media",
                "/srv/labstack/apps/elif/volumes/uploads:/app/uploads"]
    assert services["web"]["volumes"] == services["worker"]["volumes"] == expected
