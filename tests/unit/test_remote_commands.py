"""The commands the operator side sends to a server, as the exact text the remote shell receives."""
from __future__ import annotations

import shlex
import subprocess

import pytest

from labstack.ssh import commands as rc


def test_containers_are_found_by_their_labels():
    assert rc.container_ids("elif") == "sudo -n docker ps -q --filter label=org.labstack.app=elif"
    assert rc.container_ids("elif", role="postgres") == (
        "sudo -n docker ps -q --filter label=org.labstack.app=elif --filter label=org.labstack.role=postgres")
    assert rc.container_ids("elif", role="web", color="blue") == (
        "sudo -n docker ps -q --filter label=org.labstack.app=elif --filter label=org.labstack.role=web "
        "--filter label=org.labstack.color=blue")
    assert rc.app_containers("elif") == (
        "sudo -n docker ps -a --format '{{json .}}' --filter label=org.labstack.app=elif")


def test_the_apps_records_come_from_the_layout():
    assert rc.read_app_file("elif", "ACTIVE_COLOR") == \
        "sudo -n cat /etc/labstack/apps/elif/active-color 2>/dev/null || true"
    assert rc.last_release("elif") == \
        "sudo -n tail -n 1 /etc/labstack/apps/elif/releases.log 2>/dev/null || true"
    assert rc.app_deployed("elif") == \
        "if sudo -n test -d /etc/labstack/apps/elif; then echo yes; else echo no; fi"
    with pytest.raises(KeyError):
        rc.read_app_file("elif", "no-such-record")


def test_the_apps_state_comes_from_its_hooks():
    assert rc.app_state("elif") == "sudo -n /opt/labstack/hooks/app-state.sh elif"
    assert rc.app_reconcile("elif") == "sudo -n /opt/labstack/hooks/app-reconcile.sh elif"


def test_pause_hook_takes_only_stop_or_start():
    assert rc.pause_app("elif", "stop") == "sudo -n /opt/labstack/hooks/pause-app.sh elif stop"
    assert rc.pause_app("elif", "start") == "sudo -n /opt/labstack/hooks/pause-app.sh elif start"
    with pytest.raises(ValueError, match="stop or start, not 'restart'"):
        rc.pause_app("elif", "restart")


def test_logs_shell_and_stats():
    assert rc.docker_logs("3f2a9c") == "sudo -n docker logs --tail 200 3f2a9c"
    assert rc.docker_logs("3f2a9c", tail=50, follow=True) == "sudo -n docker logs --tail 50 --follow 3f2a9c"
    assert rc.container_shell("3f2a9c") == ("sudo -n docker exec -it 3f2a9c sh -c 'if command -v bash >/dev/null; "
                                            "then exec bash; else exec sh; fi'")
    assert rc.container_stats() == "sudo -n docker stats --no-stream --format '{{json .}}'"
    assert rc.boot_id() == "cat /proc/sys/kernel/random/boot_id"


def test_host_stats_prints_the_figures_the_stats_task_reads():
    """Run locally: the same /proc, free and df the server has (Linux), 11 whitespace-separated figures."""
    figures = subprocess.run(["sh", "-c", rc.host_stats()], capture_output=True, text=True, check=True).stdout.split()
    assert len(figures) == 11
    load, memory, disk, uptime = figures[:3], figures[5:7], figures[7:9], figures[9]
    assert all(float(value) >= 0 for value in load) and float(uptime) > 0
    assert 0 < int(memory[1]) <= int(memory[0]) and 0 < int(disk[1]) <= int(disk[0])


def test_postgres_commands():
    assert rc.psql("c0ffee", "elif", "labstack_verify_1") == (
        "sudo -n docker exec -i c0ffee psql -X -q -At -v ON_ERROR_STOP=1 -U elif -d labstack_verify_1")
    assert rc.pg_dump("c0ffee", "elif", "00000003-00000002-1") == (
        "sudo -n docker exec c0ffee pg_dump -Fc -U elif -d elif --snapshot=00000003-00000002-1")
    assert rc.create_database("c0ffee", "elif", "scratch") == "sudo -n docker exec c0ffee createdb -U elif scratch"
    assert rc.pg_restore("c0ffee", "elif", "scratch") == (
        "sudo -n docker exec -i c0ffee pg_restore -U elif -d scratch --no-owner --no-privileges --exit-on-error")
    assert rc.drop_database("c0ffee", "elif", "scratch") == (
        "sudo -n docker exec c0ffee dropdb -U elif --if-exists scratch")


def test_every_word_is_quoted():
    """A value with shell syntax arrives as one word, never as shell code."""
    hostile = "x'; reboot; echo '"
    assert shlex.split(rc.docker_logs(hostile))[-1] == hostile
    assert shlex.split(rc.psql("c0ffee", hostile, "db"))[-3] == hostile
    assert shlex.split(rc.container_ids(hostile))[-1] == f"label=org.labstack.app={hostile}"
    assert shlex.split(rc.pause_app(hostile, "stop"))[-2] == hostile


def test_archive_script_tars_the_folders_that_exist(tmp_path, monkeypatch):
    """The script sudo runs, run here (without sudo) in a stand-in of the app's data folder."""
    command = rc.archive_app_data("elif", ("data", "redis"))
    argv = shlex.split(command)
    assert argv[:4] == ["sudo", "-n", "sh", "-c"] and argv[4].startswith("cd /srv/labstack/apps/elif || exit 2;")
    script = argv[4].replace("/srv/labstack/apps/elif", str(tmp_path))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "answers.csv").write_text("p1,yes\n")
    archive = subprocess.run(["sh", "-c", script], capture_output=True, check=True).stdout
    listing = subprocess.run(["tar", "-tzf", "-"], input=archive, capture_output=True, check=True).stdout.decode()
    assert listing.split() == ["data/", "data/answers.csv"]  # no redis/ folder here: not asked of tar
    missing = subprocess.run(["sh", "-c", script.replace(str(tmp_path), str(tmp_path / "gone"))],
                             capture_output=True)
    assert missing.returncode == 2


class _Printed:
    """A target whose remote command prints `output` (what app-state.sh printed on a server)."""

    def __init__(self, output: str):
        self.output, self.commands = output, []

    def text(self, command: str, **kwargs) -> str:
        self.commands.append(command)
        return self.output


def test_the_serving_colour_is_read_from_the_state_hook():
    from labstack.ssh.target import active_color, app_state

    printed = _Printed("COLOR=green\nRELEASE=0123456789abcdef\nIMAGE=ghcr.io/lab/elif@sha256:ab=\nWORKERS=2\n"
                       "SWITCHED_AT=2026-11-29T00:40:00Z\n")
    assert app_state(printed, "elif") == {"COLOR": "green", "RELEASE": "0123456789abcdef",
                                          "IMAGE": "ghcr.io/lab/elif@sha256:ab=", "WORKERS": "2",
                                          "SWITCHED_AT": "2026-11-29T00:40:00Z"}
    assert active_color(printed, "elif") == "green"
    assert printed.commands == ["sudo -n /opt/labstack/hooks/app-state.sh elif"] * 2
    assert active_color(_Printed(""), "elif") is None  # nothing serves
