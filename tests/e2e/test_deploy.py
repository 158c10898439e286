"""End to end on the test bed: exactly the remote commands the program declares, run over real SSH."""
from __future__ import annotations

import json
import threading
import time

import pytest
import yaml

from tests.e2e.engine import CommandFailed
from tests.unit.helpers import assert_deploy_order

pytestmark = [pytest.mark.testbed, pytest.mark.e2e]


def elif_app(image: str, **settings) -> dict:
    return {"elif": {"image": image, "host": "@", "workers": 1, "workerCommand": "python worker.py",
                     "env": {"APP_GREETING": "bonjour", "EXAMPLE_DEBUG_ENV": "1",
                             "WORKER_EVENT_LOG": "/data/worker-events.log"}, **settings}}


def _in_data(stack, role: str, *command: str) -> str:
    """Run a command in the app's Postgres or Redis container on the host."""
    container = stack.host.run(f"docker ps -q --filter label=org.labstack.app=elif --filter label=org.labstack.role={role}"
                               ).stdout.strip()
    return stack.host.run(" ".join(["docker", "exec", container, *command])).stdout.strip()


def _serving_color(stack) -> str:
    """The colour the app's state file names (hooks/app-state.sh)."""
    state = stack.host.run("sudo /opt/labstack/hooks/app-state.sh elif").stdout
    return dict(line.split("=", 1) for line in state.splitlines())["COLOR"]


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
    assert_deploy_order([r.resource for r in runs])
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

    # The database password, the secrets and the app's files on the host are readable by root only.
    modes = stack.host.run("sudo stat -c '%a %n' /etc/labstack/apps/elif/db.env /etc/labstack/apps/elif/blue/secrets.env "
                           "/etc/labstack/apps/elif/blue/app.compose.yaml /etc/labstack/apps/elif/blue "
                           "/etc/labstack/apps/elif").stdout.split("\n")
    assert [m.split()[0] for m in modes if m] == ["600", "600", "600", "700", "700"]

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

    # Jobs queued for the worker: 3 s each, 60 s in all, so the old release's worker is stopped in the middle of one.
    jobs = [f"sleep:3:job-{i}" for i in range(20)]
    _in_data(stack, "redis", "redis-cli", "LPUSH", "jobs", *jobs)
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
    # SIGTERM reached the old worker (its command runs as PID 1): it finished the job in hand and stopped well within
    # the grace period; the jobs still queued went to the new release's worker. None was lost or done twice.
    events = stack.host.run("sudo cat /srv/labstack/apps/elif/data/worker-events.log", check=False).stdout.splitlines()
    assert any("got SIGTERM during a job" in line for line in events), events
    term = next(line.split() for line in events if "got SIGTERM during a job" in line)
    stopped = next(line.split() for line in events if line.split()[1] == term[1] and line.endswith("stopped"))
    assert 0 <= float(stopped[0]) - float(term[0]) < 4, events
    done: list[str] = []
    for _ in range(90):
        done = _in_data(stack, "postgres", "psql", "-U", "elif", "-d", "elif", "-tAc",
                        "'SELECT payload FROM jobs_done'").splitlines()
        if len(done) >= len(jobs):
            break
        time.sleep(1)
    assert sorted(done) == sorted(jobs)
    assert stack.status_and_body("/files/notes.txt") == (200, "kept")  # the data directory survived

    # A broken image: the update fails with the app's logs and v2 keeps serving.
    stack.config["labstack:apps"] = elif_app(example_images.broken, healthTimeoutSeconds=15)
    with pytest.raises(CommandFailed) as failed:
        stack.up()
    assert "failed its health check" in failed.value.result.stderr
    assert "kept the previous release serving" in failed.value.result.stderr
    status, body = stack.status_and_body("/")
    assert status == 200 and json.loads(body)["version"] == "v2"

    # A misspelt worker command: the new web passes its health check and takes over, but its worker crash-loops, so
    # the deploy fails with the worker's output and switches back: v2 serves again, with its own worker running.
    serving = _serving_color(stack)
    stack.config["labstack:apps"] = elif_app(example_images.v1, workerCommand="pyton worker.py")
    with pytest.raises(CommandFailed) as failed:
        stack.up()
    assert "the new release's workers failed" in failed.value.result.stderr
    assert "pyton: not found" in failed.value.result.stderr
    assert f"rolled back: release {serving} serves again" in failed.value.result.stderr
    assert json.loads(stack.status_and_body("/")[1])["version"] == "v2"
    assert _serving_color(stack) == serving
    workers = stack.host.run("docker ps --filter label=org.labstack.app=elif --filter label=org.labstack.role=worker "
                             "--format '{{.Label \"org.labstack.color\"}} {{.State}}'").stdout.split("\n")
    assert [w for w in workers if w] == [f"{serving} running"]

    # Rollback is one config change: the previous digest (v1) is deployed blue/green again.
    colour = _serving_color(stack)
    stack.config["labstack:apps"] = elif_app(example_images.v1)
    runs = stack.up()
    assert [r.resource for r in runs] == ["paris-batch2-elif-deploy"]
    assert json.loads(stack.status_and_body("/")[1])["version"] == "dev"
    assert _serving_color(stack) != colour

    # The host's engine restarts: the proxy and the app come back by themselves.
    stack.host.restart_docker()
    stack.wait_serving("/health", seconds=120)
    assert json.loads(stack.status_and_body("/visits")[1])["db_visits"] == first["db_visits"] + 1


def test_two_apps_on_one_host_and_removal_keeps_data(make_stack, example_images):
    apps = {"elif": {"image": example_images.v1, "env": {"EXAMPLE_DEBUG_ENV": "1", "WHO": "elif"}},
            "pilot": {"image": example_images.v1, "host": "pilot", "redis": False, "healthPath": "/",
                      "env": {"EXAMPLE_DEBUG_ENV": "1", "WHO": "pilot"}}}
    stack = make_stack(apps)
    stack.up()
    elif_host, pilot_host = "elif.elif.experiments.test", "pilot.elif.experiments.test"
    stack.wait_serving("/env/WHO", host=elif_host)
    assert stack.status_and_body("/env/WHO", host=elif_host) == (200, "elif")
    assert stack.status_and_body("/env/WHO", host=pilot_host) == (200, "pilot")
    assert stack.status_and_body("/visits", host=elif_host, method="POST")[0] == 200
    assert stack.status_and_body("/files/keep.txt", host=pilot_host, method="POST", data="pilot data")[0] == 201
    # Each app has its own database and redis (pilot has none): separate compose projects on the host.
    projects = stack.host.run("docker ps --format '{{.Label \"com.docker.compose.project\"}}' | sort -u").stdout
    assert set(projects.split()) == {"labstack-proxy", "elif-data", "elif-blue", "pilot-data", "pilot-blue"}
    assert "pilot-data-redis" not in stack.host.run("docker ps --format '{{.Names}}'").stdout

    # Removing an app from the config stops it and removes its site; its data stays on the host.
    stack.config["labstack:apps"] = {"elif": apps["elif"]}
    runs = stack.up()
    # Its data is exported to this machine first (see test_lifecycle), then it is stopped.
    assert [(r.resource, r.phase) for r in runs] == [("paris-batch2-pilot-export-on-delete", "delete"),
                                                     ("paris-batch2-pilot-deploy", "delete")]
    assert "data is kept" in runs[1].result.stderr
    assert len(list((stack.exports / "paris-batch2" / "pilot").iterdir())) == 1
    assert stack.status_and_body("/env/WHO", host=elif_host) == (200, "elif")
    assert stack.status_and_body("/env/WHO", host=pilot_host)[0] != 200
    assert stack.host.run("sudo cat /srv/labstack/apps/pilot/data/keep.txt").stdout == "pilot data"
    assert stack.host.run("sudo test -s /srv/labstack/apps/pilot/postgres/pgdata/PG_VERSION", check=False).returncode == 0

    # Adding it back finds its data again.
    stack.config["labstack:apps"] = apps
    stack.up()
    stack.wait_serving("/env/WHO", host=pilot_host)
    assert stack.status_and_body("/files/keep.txt", host=pilot_host) == (200, "pilot data")


def test_wrong_host_key_is_refused_before_anything_runs(make_stack, example_images):
    stack = make_stack(elif_app(example_images.v1))
    # The program's key differs from the one the server really has (say, a server that was replaced).
    stack.aws.private_keys["paris-batch2-host-key"] = _other_private_key()
    with pytest.raises(CommandFailed) as failed:
        stack.up()
    assert failed.value.resource == "paris-batch2-hooks"
    assert "Host key verification failed" in failed.value.result.stderr
    assert stack.host.run("test -e /opt/labstack/hooks", check=False).returncode == 1


def test_existing_server_mode_deploys_without_aws(make_stack, example_images):
    stack = make_stack(elif_app(example_images.v1, volumes={"uploads": "/app/uploads"}))
    stack.config.pop("aws:region")
    stack.config["labstack:existingServer"] = {"host": stack.host.ip, "user": "ubuntu",
                                               "hostKey": stack.host.host_public_key}
    evaluation = stack.evaluate()
    assert [r.type for r in evaluation.resources if r.type.startswith(("aws:", "tls:"))] == []
    stack.engine.apply(evaluation)
    stack.wait_serving("/health")
    # The DNS record is the user's here: SSH outputs name the address labstack connects to.
    assert evaluation.outputs["knownHosts"] == f"{stack.host.ip} {stack.host.host_public_key}"
    assert evaluation.outputs["url"] == "https://elif.experiments.test"
    # A declared volume: the server folder volumes/<name>, mounted where the app said, in web and workers alike.
    for role in ("web", "worker"):
        container = stack.host.run(f"docker ps -q --filter label=org.labstack.app=elif "
                                   f"--filter label=org.labstack.role={role}").stdout.strip()
        stack.host.run(f"docker exec {container} sh -c 'echo from-{role} > /app/uploads/{role}.txt'")
    assert stack.host.run("sudo cat /srv/labstack/apps/elif/volumes/uploads/web.txt "
                          "/srv/labstack/apps/elif/volumes/uploads/worker.txt").stdout == "from-web\nfrom-worker\n"


def _other_private_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()).decode()


def test_log_viewer_and_dashboard_need_the_password(make_stack, example_images):
    stack = make_stack(elif_app(example_images.v1), **{"labstack:dashboardPassword": "hunter2 $x-long",
                                                       "labstack:logViewer": "true"})
    stack.up()
    stack.wait_serving("/health")
    for path in ("/labstack-logs/", "/labstack-logs/web", "/dashboard"):
        assert stack.status_and_body(path)[0] == 401, path
        assert stack.status_and_body(path, auth="admin:wrong")[0] == 401, path
    status, listing = stack.status_and_body("/labstack-logs/", auth="admin:hunter2 $x-long")
    assert status == 200 and "web" in listing and "postgres" in listing and "elif-blue" in listing
    # Caddy names the app itself: a client's own X-Labstack-App header cannot point it at another app.
    status, logs = stack.status_and_body("/labstack-logs/web?tail=50", auth="admin:hunter2 $x-long",
                                         headers=("X-Labstack-App: labstack",))
    assert status == 200 and "GET /health" in logs
    assert stack.status_and_body("/labstack-logs/nope", auth="admin:hunter2 $x-long")[0] == 404
    # The app itself is unaffected.
    assert stack.status_and_body("/")[0] == 200


def test_a_process_without_a_sigterm_handler_stops_on_sigterm(make_stack, example_images):
    """`sleep` installs no SIGTERM handler: as a container's PID 1 the kernel would drop the signal and `docker stop`
    would kill it at the end of the grace period (exit 137). Docker's init runs as PID 1 and forwards the signal,
    so the clock ends by SIGTERM itself (exit 143), like the worker, which handles it (exit 0), within the grace."""
    stack = make_stack(elif_app(example_images.v1, clockCommand="sleep 100000", stopGraceSeconds=300))
    stack.up()
    stack.wait_serving("/health")
    clock = stack.host.run("docker ps -q --filter label=org.labstack.app=elif --filter label=org.labstack.role=clock"
                           ).stdout.strip()
    processes = stack.host.run(f"docker exec {clock} sh -c 'cd /proc && for pid in [0-9]*; do "
                               "echo \"$pid $(cat $pid/comm)\"; done'").stdout.splitlines()
    assert "1 docker-init" in processes and any(line.endswith(" sleep") for line in processes), processes
    # The pause before an export stops web, workers and clock with the app's grace period (300 s).
    stack.host.run("sudo /opt/labstack/hooks/pause-app.sh elif stop", timeout=600)
    exits = dict(line.split() for line in stack.host.run(
        "docker ps -a --filter label=org.labstack.app=elif --filter label=org.labstack.color "
        "--format '{{.Label \"org.labstack.role\"}} {{.ID}}' | while read -r role id; do "
        "echo \"$role $(docker inspect -f '{{.State.ExitCode}}' \"$id\")\"; done").stdout.splitlines())
    assert exits == {"web": "0", "worker": "0", "clock": "143"}, exits
