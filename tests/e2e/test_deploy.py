"""End to end on the test bed: exactly the remote commands the program declares, run over real SSH."""
from __future__ import annotations

import json
import threading
import time

import pytest
import yaml

from tests.e2e.engine import CommandFailed

pytestmark = [pytest.mark.testbed, pytest.mark.e2e]


def elif_app(image: str, **settings) -> dict:
    return {"elif": {"image": image, "workers": 1, "workerCommand": "python worker.py",
                     "env": {"APP_GREETING": "bonjour", "EXAMPLE_DEBUG_ENV": "1"}, **settings}}


def test_deploy_serve_noop_update_broken_restart(make_stack, example_images):
    stack = make_stack(elif_app(example_images.v1))
    evaluation = stack.evaluate()

    # The host key the program generated reaches the server through cloud-init, and every command pins it.
    cloud_config = yaml.safe_load(evaluation.one("aws:ec2/instance:Instance").inputs["userData"])
    assert cloud_config["ssh_keys"]["ed25519_private"] == stack.aws.private_keys["paris-batch2-host-key"]
    assert stack.host.host_public_key.split()[:2] == cloud_config["ssh_keys"]["ed25519_public"].split()[:2]
    assert evaluation.outputs["knownHosts"] == f"{stack.config['labstack:dnsHost']},{stack.host.ip} " + \
        cloud_config["ssh_keys"]["ed25519_public"]

    # First deploy: every step runs once, and HTTPS through Caddy reaches the app, Postgres and Redis.
    runs = stack.engine.apply(evaluation)
    assert [r.resource for r in runs] == ["paris-batch2-hooks", "paris-batch2-ready", "paris-batch2-docker",
                                          "paris-batch2-grow-fs", "paris-batch2-proxy", "paris-batch2-elif-deploy"]
    stack.wait_serving("/health")
    status, body = stack.status_and_body("/visits", method="POST")
    assert status == 200, body
    first = json.loads(body)
    status, body = stack.status_and_body("/visits", method="POST")
    assert json.loads(body)["db_visits"] == first["db_visits"] + 1
    assert json.loads(body)["redis_visits"] == first["redis_visits"] + 1
    assert stack.status_and_body("/env/APP_GREETING") == (200, "bonjour")
    assert stack.status_and_body("/files/notes.txt", method="POST", data="kept")[0] == 201

    # Plain HTTP redirects to HTTPS.
    redirect = stack.host.run(f"curl -s -o /dev/null -w '%{{http_code}} %{{redirect_url}}' "
                              f"-H 'Host: {stack.config['labstack:dnsHost']}' http://127.0.0.1/")
    assert redirect.stdout.startswith("308 https://")

    # The secret-free .env/compose files on the host are readable by root only.
    modes = stack.host.run("sudo stat -c '%a %n' /etc/labstack/apps/elif/db.env "
                           "/etc/labstack/apps/elif/app.compose.yaml /etc/labstack/apps/elif").stdout.split("\n")
    assert [m.split()[0] for m in modes if m] == ["600", "600", "700"]

    # Nothing changed: nothing runs.
    assert stack.up() == []

    # Update: v2 replaces v1 with no failed request in a bounded loop running across the swap.
    failures, answers = [], []
    stop = threading.Event()

    def hammer():
        deadline = time.monotonic() + 300
        for _ in range(3000):
            if stop.is_set() or time.monotonic() > deadline:
                break
            status, body = stack.status_and_body("/", timeout=10)
            (answers if status == 200 else failures).append((status, body[:200]))
            time.sleep(0.05)

    loop = threading.Thread(target=hammer)
    loop.start()
    try:
        stack.config["labstack:apps"] = elif_app(example_images.v2)
        runs = stack.up()
    finally:
        time.sleep(1)
        stop.set()
        loop.join()
    assert [r.resource for r in runs] == ["paris-batch2-elif-deploy"]
    assert failures == [] and len(answers) > 10
    assert json.loads(answers[-1][1])["version"] == "v2"
    assert stack.status_and_body("/files/notes.txt") == (200, "kept")  # the data directory survived

    # A broken image: the update fails with the app's logs and v2 keeps serving.
    stack.config["labstack:apps"] = elif_app(example_images.broken, healthTimeoutSeconds=15)
    with pytest.raises(CommandFailed) as failed:
        stack.up()
    assert "failed its health check" in failed.value.result.stderr
    assert "kept the previous release serving" in failed.value.result.stderr
    status, body = stack.status_and_body("/")
    assert status == 200 and json.loads(body)["version"] == "v2"

    # Rollback is one config change: back to v2 is "no change" on the server's side of things.
    stack.config["labstack:apps"] = elif_app(example_images.v2)
    stack.up()
    assert json.loads(stack.status_and_body("/")[1])["version"] == "v2"

    # The host's engine restarts: the proxy and the app come back by themselves.
    stack.host.restart_docker()
    stack.wait_serving("/health", seconds=120)
    assert json.loads(stack.status_and_body("/visits")[1])["db_visits"] == first["db_visits"] + 1
