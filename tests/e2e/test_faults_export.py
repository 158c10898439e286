"""Faults in the export before a delete, and a busy port on a fresh server, on test bed hosts.

The export before a delete is the program's own step (its `command:local:Command` delete, labstack/data/destroy_export.py),
run here with the environment the program declared, as Pulumi would: only the exports folder differs per fault.
After each fault: one `labstack:` line with the cause and the fix, only `<timestamp>.failed` in the exports folder,
the app serves again; and in the end a completed export holds every row written before it.
"""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.engine import CommandFailed
from tests.e2e.test_lifecycle import launched_app

pytestmark = [pytest.mark.testbed, pytest.mark.e2e]
EXPORT = "paris-batch2-elif-export-on-delete"


def export_before_delete(stack, exports: Path) -> subprocess.Popen:
    """The destroy's export step as the engine (and Pulumi) runs it, into `exports`."""
    inputs = stack.engine.state[EXPORT]
    env = {**os.environ, **inputs["environment"], "LABSTACK_EXPORTS_DIR": str(exports)}
    return subprocess.Popen(shlex.split(inputs["delete"]), cwd=inputs.get("dir"), env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def failed_cleanly(stack, process: subprocess.Popen, exports: Path) -> str:
    """The step failed with one labstack line, left only .failed folders and the app serves again."""
    out, err = process.communicate(timeout=300)
    assert process.returncode == 1, err
    lines = [line for line in err.splitlines() if line.startswith("labstack:") and "failed" in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("labstack: elif: the export before the delete failed, so nothing was deleted and elif "
                               "serves again: "), lines[0]
    left = [p.name for p in (exports / "paris-batch2" / "elif").iterdir()] if (exports / "paris-batch2").exists() \
        else []
    assert all(name.endswith(".failed") for name in left), left
    assert stack.status_and_body("/visits")[0] == 200
    return lines[0]


def test_every_export_failure_leaves_a_failed_folder_a_message_and_a_serving_app(make_stack, example_images,
                                                                                 tmp_path):
    stack = make_stack(launched_app(example_images.v1))
    stack.up()
    stack.wait_serving()
    for _ in range(2):
        stack.status_and_body("/visits", method="POST")

    # 1. The destination disk fills up: a 64 KiB filesystem, and a 1 MB recording among the app's files.
    stack.host.run("sudo dd if=/dev/urandom of=/srv/labstack/apps/elif/data/recording.bin bs=1M count=1 status=none")
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "labstack-test-full", str(small)], check=True)
    try:
        line = failed_cleanly(stack, export_before_delete(stack, small), small)
        assert f"the disk holding {small} is full (" in line, line
        assert "free space there or set labstack:exportsDir to a bigger disk, then export again" in line
        [failed] = list((small / "paris-batch2" / "elif").iterdir())
        reason = (failed / "FAILED.txt").read_text() if (failed / "FAILED.txt").exists() else ""
        assert reason.startswith("the disk holding") or "FAILED.txt could not be written" in line
    finally:
        subprocess.run(["umount", str(small)], check=True)

    # 2. Ctrl-C while the files come in.
    exports = tmp_path / "exports-interrupted"
    process = export_before_delete(stack, exports)
    deadline = time.monotonic() + 120
    app_exports = exports / "paris-batch2" / "elif"
    while time.monotonic() < deadline and not (app_exports.exists() and any(
            p.name.endswith(".partial") for p in app_exports.iterdir())):
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)   # Ctrl-C: the terminal sends SIGINT to the step's process
    line = failed_cleanly(stack, process, exports)
    assert "interrupted (Ctrl-C)" in line
    [failed] = list(app_exports.iterdir())
    assert failed.name.endswith(".failed") and (failed / "FAILED.txt").read_text().startswith("interrupted (Ctrl-C)")

    # 3. A folder that cannot be made: the exports folder would be below a file.
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    line = failed_cleanly(stack, export_before_delete(stack, blocker / "exports"), tmp_path / "none")
    assert f"cannot make the export folder {blocker}/exports/paris-batch2/elif (Not a directory)" in line

    # In the end the delete goes through: its export holds every row written before it.
    stack.status_and_body("/visits", method="POST")
    visits = json.loads(stack.status_and_body("/visits")[1])["db_visits"]
    runs = stack.engine.destroy()
    assert runs[0].resource == EXPORT
    [done] = [p for p in (stack.exports / "paris-batch2" / "elif").iterdir() if not p.name.endswith(".failed")]
    assert json.loads((done / "manifest.json").read_text())["database"]["tables"]["public.visits"] == visits == 3


def test_a_busy_port_80_is_named_and_nothing_is_left_half_made(make_stack, example_images):
    stack = make_stack(launched_app(example_images.v1))
    squatter = subprocess.Popen(stack.host._nsenter() + ["/usr/bin/python3", "-m", "http.server", "80"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and stack.host.run("ss -Hltn '( sport = :80 )'").stdout.strip() == "":
            time.sleep(0.2)
        assert squatter.poll() is None, "the process holding port 80 did not start"
        with pytest.raises(CommandFailed) as failed:
            stack.up()
        assert failed.value.resource == "paris-batch2-proxy"
        message = failed.value.result.stderr.strip().splitlines()[-1]
        assert message.startswith("labstack: error: port 80 is already in use on this server by python3 (pid ")
        assert message.endswith("labstack's Caddy needs ports 80 and 443 for HTTPS: stop that service or move it to "
                                "another port (sudo ss -ltnp shows who listens), then run pulumi up again")
        assert stack.host.run("docker ps -aq --filter label=com.docker.compose.project=labstack-proxy").stdout == ""
    finally:
        squatter.terminate()
        squatter.wait(timeout=10)
    stack.up()   # the port is free again: the same deploy now goes through
    stack.wait_serving()
