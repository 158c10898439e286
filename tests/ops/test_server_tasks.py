"""apps / logs / stats / export as tasks, on a server deployed for real by the program's own remote commands."""
from __future__ import annotations

import json
import subprocess
import tarfile

import pytest

from tests.e2e.fixtures import DNS_HOST
from tests.ops.test_tasks import invoke

pytestmark = [pytest.mark.testbed, pytest.mark.e2e]


def test_tasks_on_a_deployed_stack(make_stack, example_images, write_stack, recording_pulumi, monkeypatch, capfd,
                                   tmp_path):
    from labstack.tasks import actions as commands

    # The app's own export writes into its working folder ($LABSTACK_EXPORT_DIR), reading the app's database.
    own_export = ("mkdir -p data && (cd /app && python -c 'import db; c = db.connect(); k = c.cursor(); "
                  "k.execute(\"SELECT count(*) FROM visits\"); print(k.fetchone()[0])') > data/visits.txt "
                  "&& echo $LABSTACK_EXPORT_DIR > where.txt")
    stack = make_stack({"elif": {"image": example_images.v1, "workers": 1, "workerCommand": "python worker.py",
                                 "exportCommand": own_export}})
    evaluation = stack.evaluate()
    stack.engine.apply(evaluation)
    site = f"elif.{DNS_HOST}"  # an app without `host` is served at <app>.<dns host>
    stack.wait_serving("/health", host=site)
    for _ in range(3):
        status, body = stack.status_and_body("/visits", method="POST", host=site)
        assert status == 200, body
    # What `pulumi stack output --json` would answer after this `pulumi up`.
    monkeypatch.setenv("FAKE_PULUMI_OUTPUTS", json.dumps(evaluation.outputs))
    write_stack(text=f"config:\n  aws:region: eu-west-3\n  labstack:serverPem: {stack.host.key_path}\n"
                     "  labstack:sshCidrs: [100.64.0.0/24]\n"
                     f"  labstack:exportsDir: {tmp_path / 'exports'}\n"
                     f"  labstack:apps:\n    elif:\n      image: {example_images.v1}\n")
    capfd.readouterr()

    assert invoke("apps", "-s", "paris-batch2") == 0  # the task as typed; the rows it shows, asserted below
    assert "elif" in capfd.readouterr().out
    [row] = commands.apps("paris-batch2")
    assert (row["app"], row["color"], row["image"]) == ("elif", "blue", example_images.v1)
    assert {(c["service"], c["state"]) for c in row["containers"]} == {
        ("web", "running"), ("worker", "running"), ("postgres", "running"), ("redis", "running")}
    capfd.readouterr()

    assert invoke("stats", "-s", "paris-batch2") == 0
    assert capfd.readouterr().out.startswith("load ")
    data = commands.stats("paris-batch2")
    names = {c["name"] for c in data["containers"]}
    assert {"elif-blue-web-1", "elif-data-postgres-1"} <= names
    assert 0 < data["disk_mb"]["used"] < data["disk_mb"]["total"]

    assert invoke("logs", "-s", "paris-batch2", "--service", "postgres", "--tail", "50") == 0
    assert "database system is ready to accept connections" in "".join(capfd.readouterr())

    # `invoke ssh --app elif` execs ssh with a terminal into the serving web container, host key pinned.
    execs = []
    monkeypatch.setattr("os.execvp", lambda file, argv: execs.append(argv))
    assert invoke("ssh", "-s", "paris-batch2", "--app", "elif") == 0
    web = stack.host.run("sudo docker ps -q --filter label=com.docker.compose.project=elif-blue "
                         "--filter label=com.docker.compose.service=web").stdout.strip()
    [argv] = execs
    assert argv[0] == "ssh" and "-t" in argv and "StrictHostKeyChecking=yes" in argv
    assert argv[-2] == f"ubuntu@{stack.host.ip}" and argv[-1].startswith(f"sudo -n docker exec -it {web} sh -c")
    # The same login without a terminal runs in that container.
    options = [a for a in argv[1:-2] if a != "-t"]
    probe = subprocess.run(["ssh", *options, "-T", "-o", "BatchMode=yes", argv[-2],
                            f"sudo -n docker exec {web} sh -c 'test -f /app/app.py && echo inside'"],
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert probe.stdout.strip() == "inside", probe.stderr

    # `invoke exec` runs a command line in the serving container without a terminal: output and exit code come back.
    capfd.readouterr()
    assert invoke("exec", "-s", "paris-batch2", "--app", "elif", "--", "cd /app && ls app.py &&",
                  "python -c 'import sys; print(6 * 7); sys.exit(3)'") == 3
    assert capfd.readouterr().out.split() == ["app.py", "42"]
    assert invoke("exec", "-s", "paris-batch2", "--service", "postgres", "--", "pg_isready -q") == 0
    assert invoke("exec", "-s", "paris-batch2") == 1
    assert capfd.readouterr().err.strip() == ("labstack: give the command after --, e.g. `invoke exec -s STACK --app "
                                              "APP -- dallinger-housekeeper`")

    # An interrupted run left the serving release's worker stopped: the export repairs first.
    worker = "label=com.docker.compose.project=elif-blue --filter label=com.docker.compose.service=worker"
    stack.host.run(f"sudo docker stop $(sudo docker ps -q --filter {worker})")
    assert invoke("export", "-s", "paris-batch2") == 0
    assert stack.host.run(f"sudo docker ps -q --filter {worker} --filter status=running").stdout.strip() != ""
    exports = sorted((tmp_path / "exports" / "paris-batch2" / "elif").iterdir())
    assert len(exports) == 1 and not exports[0].name.endswith((".partial", ".failed"))
    manifest = json.loads((exports[0] / "manifest.json").read_text())
    assert manifest["image"] == example_images.v1
    assert manifest["database"]["tables"]["public.visits"] == 3
    assert set(manifest["files"]) == {"db.dump", "data.tar.gz", "app-export.tar.gz"}
    assert manifest["appExport"] == {"file": "app-export.tar.gz", "entries": 3}  # data/, data/visits.txt, where.txt
    with tarfile.open(exports[0] / "app-export.tar.gz") as own:
        assert own.extractfile("./data/visits.txt").read() == b"3\n"
        assert own.extractfile("./where.txt").read() == b"/labstack-export\n"
    assert stack.host.run("sudo ls -A /srv/labstack/export-scratch").stdout == ""  # nothing left on the server

    capfd.readouterr()
    assert invoke("logs", "-s", "paris-batch2", "--app", "elif", "--service", "clock") == 1  # the app has no clock
    assert capfd.readouterr().err.strip() == ("labstack: no running 'clock' container for app 'elif' on "
                                              f"{stack.host.ip} (serving release: blue)")
    assert invoke("logs", "-s", "paris-batch2", "--app", "elif", "--service", "nope") == 1
    assert capfd.readouterr().err.strip() == \
        "labstack: bad service name 'nope': one of web, worker, clock, postgres, redis"
