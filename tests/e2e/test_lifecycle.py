"""App lifecycle on the test bed: verbatim env, run-once init, post-deploy launch, clock service."""
from __future__ import annotations

import json

import pytest

from tests.e2e.engine import CommandFailed

pytestmark = [pytest.mark.testbed, pytest.mark.e2e]

TRICKY = "costs $5 ${HOME} $$ \"double\" 'single'  two  spaces\nsecond line\ttab"


def db_count(stack, table: str) -> int:
    query = f"select count(*) from {table}"
    out = stack.host.run("sudo docker exec $(sudo docker ps -q --filter label=com.docker.compose.project=elif-data "
                         f"--filter label=com.docker.compose.service=postgres) psql -U elif -d elif -tAc '{query}'")
    return int(out.stdout.strip())


def launched_app(image: str, **settings) -> dict:
    return {"elif": {"image": image, "host": "@", "workers": 1, "workerCommand": "python worker.py",
                     "clockCommand": "while true; do sleep 3600; done",
                     "initCommand": "python init_db.py",
                     "postDeploy": {"method": "POST", "path": "/launch", "expectStatus": 200, "when": "first"},
                     "env": {"EXAMPLE_DEBUG_ENV": "1", "mode": TRICKY}, **settings}}


def test_init_once_launch_through_public_name_and_env_verbatim(make_stack, example_images):
    stack = make_stack(launched_app(example_images.v1), **{"labstack:appSecrets": {"elif": {"API_TOKEN": TRICKY}}})
    runs = stack.up()
    # The launch endpoint needs the tables init made, so its success proves the order: init, web, launch.
    assert "post-deploy POST /launch answered 200" in runs[-1].result.stderr
    # The response comes back on the deploy's stdout, as the program shows it (secrets masked).
    from components.render.post_deploy import post_deploy_summary
    shown = post_deploy_summary(runs[-1].result.stdout, [TRICKY])
    assert shown.startswith("HTTP 200\n") and json.loads(shown.split("\n", 1)[1]) == {
        "launched": True, "url": "https://elif.experiments.test/"}
    assert db_count(stack, "init_runs") == 1
    status, body = stack.status_and_body("/launches")
    assert status == 200 and json.loads(body)["launches"] == 1
    url = stack.host.run("sudo docker exec $(sudo docker ps -q --filter label=com.docker.compose.project=elif-data "
                         "--filter label=com.docker.compose.service=postgres) psql -U elif -d elif -tAc "
                         "'select host from participants'").stdout.strip()
    assert url == "elif.experiments.test"  # the Host header of the public URL, not an internal address

    # Values reach the container verbatim; lower-case names keep their case.
    assert stack.status_and_body("/env/mode") == (200, TRICKY)
    assert stack.status_and_body("/env/API_TOKEN") == (200, TRICKY)  # secrets too, from their root-only env file
    assert stack.status_and_body("/env/MODE")[0] == 404
    # One image, several services: web, a worker and a clock.
    services = stack.host.run("docker ps --filter label=com.docker.compose.project=elif-blue "
                              "--format '{{.Label \"com.docker.compose.service\"}}'").stdout.split()
    assert sorted(services) == ["clock", "web", "worker"]

    # A redeploy and an engine restart neither re-run init nor launch again, and keep the data.
    stack.config["labstack:apps"] = launched_app(example_images.v2)
    stack.up()
    stack.host.restart_docker()
    stack.wait_serving("/health", seconds=120)
    assert db_count(stack, "init_runs") == 1
    assert json.loads(stack.status_and_body("/launches")[1])["launches"] == 1

    # Raising initRun is a new batch: init runs once more and the `first` launch is sent once more, and only once.
    stack.config["labstack:apps"] = launched_app(example_images.v2, initRun=2)
    stack.up()
    assert db_count(stack, "init_runs") == 2
    assert json.loads(stack.status_and_body("/launches")[1])["launches"] == 2
    assert stack.up() == []
    assert json.loads(stack.status_and_body("/launches")[1])["launches"] == 2


def test_failing_post_deploy_fails_the_update_with_the_response(make_stack, example_images):
    app = launched_app(example_images.v1)
    app["elif"].pop("initCommand")  # no tables: /launch answers 500
    app["elif"]["postDeploy"]["retries"] = 1
    stack = make_stack(app)
    with pytest.raises(CommandFailed) as failed:
        stack.up()
    stderr = failed.value.result.stderr
    assert "answered 500, expected 200" in stderr and "participants does not exist" in stderr


def test_destroy_exports_verified_data_first(make_stack, example_images):
    stack = make_stack(launched_app(example_images.v1))
    stack.up()
    stack.status_and_body("/visits", method="POST")
    stack.status_and_body("/files/answers.csv", method="POST", data="participant,answer\n1,yes\n")
    runs = stack.engine.destroy()
    # The export ran on this machine before the app was removed from the server.
    assert [(r.resource, r.phase) for r in runs][:2] == [("paris-batch2-elif-export-on-delete", "delete"),
                                                         ("paris-batch2-elif-deploy", "delete")]
    exports = list((stack.exports / "paris-batch2" / "elif").iterdir())
    assert len(exports) == 1 and not exports[0].name.endswith((".partial", ".failed")), exports
    manifest = json.loads((exports[0] / "manifest.json").read_text())
    tables = manifest["database"]["tables"]
    assert tables["public.visits"] == 1 and tables["public.participants"] == 1 and tables["public.init_runs"] == 1
    assert "row counts match" in manifest["database"]["verified"]
    assert stack.host.run("docker ps -q --filter label=com.docker.compose.project=elif-blue").stdout.strip() == ""


def test_failing_export_blocks_the_destroy_and_the_app_keeps_running(make_stack, example_images):
    stack = make_stack(launched_app(example_images.v1))
    stack.up()
    # The database is down: pg_dump cannot work, so the export fails.
    stack.host.run("sudo docker stop $(sudo docker ps -q --filter label=com.docker.compose.project=elif-data "
                   "--filter label=com.docker.compose.service=postgres)")
    with pytest.raises(CommandFailed) as failed:
        stack.engine.destroy()
    assert failed.value.resource == "paris-batch2-elif-export-on-delete"
    assert "nothing was deleted" in failed.value.result.stderr
    assert [r.resource for r in stack.engine.runs if r.phase == "delete"] == [
        "paris-batch2-elif-export-on-delete"]  # the failed export only: remove-app.sh never ran
    assert stack.host.run("docker ps -q --filter label=com.docker.compose.project=elif-blue").stdout.strip() != ""
    assert stack.host.run("test -e /etc/labstack/proxy/sites/elif.caddy", check=False).returncode == 0
    leftovers = [p.name for p in (stack.exports / "paris-batch2" / "elif").iterdir()]
    assert all(name.endswith(".failed") for name in leftovers), leftovers  # nothing named like a complete export


def test_discard_flag_lets_a_destroy_skip_the_export(make_stack, example_images):
    stack = make_stack(launched_app(example_images.v1))
    stack.up()
    stack.config["labstack:discardDataOnDestroy"] = "true"
    stack.up()  # applies the flag to the export resource's state, as `pulumi up` must before `pulumi destroy`
    runs = stack.engine.destroy()
    assert "not exported (labstack:discardDataOnDestroy is true)" in runs[0].result.stderr
    assert not (stack.exports).exists()
