"""invoke debug before any container: secrets it cannot decrypt stop it with one message; the server's compose
files are re-pointed at the debug folder (no server path, its own network, the web on 127.0.0.1)."""
from __future__ import annotations

import pytest
import yaml

import labstack.stacks.stackfile
from components.layout import SRV
from labstack.stacks import debug
from labstack.stacks.pulumi_cli import PulumiCli
from tests.ops.test_debug import STACK
from tests.ops.test_tasks import invoke
from tests.unit.helpers import digest


@pytest.fixture
def debug_stack(write_stack, server_pem, tmp_path, monkeypatch):
    monkeypatch.setattr(labstack.stacks.stackfile, "PROJECT_DIR", tmp_path / "project")
    write_stack(text=STACK.format(pem=server_pem, image="127.0.0.1:5000/lab/elif@sha256:" + digest("ab")))


def test_an_encrypted_secret_without_cli_or_environment_is_one_clear_error(debug_stack, tmp_path):
    with pytest.raises(debug.DebugError) as failure:
        debug.prepare("paris-batch2", "elif", environ={}, cli=PulumiCli(binary="no-such-pulumi"))
    assert str(failure.value) == (
        "labstack:appSecrets.elif: API_TOKEN only exist encrypted in the stack file and the Pulumi CLI (which "
        "decrypts them) is not installed: pass them in the environment, e.g. `API_TOKEN=… invoke debug -s "
        "paris-batch2 --app elif`")
    assert not (tmp_path / "project" / ".debug").exists()  # nothing written before the check


def test_the_task_prints_that_message_and_exits_1(debug_stack, monkeypatch, capsys):
    monkeypatch.setenv("PATH", "/nonexistent")  # no pulumi
    monkeypatch.delenv("API_TOKEN", raising=False)
    assert invoke("debug", "-s", "paris-batch2", "--app", "elif") == 1
    assert "labstack: labstack:appSecrets.elif: API_TOKEN only exist encrypted" in capsys.readouterr().err


def test_compose_files_point_at_the_debug_folder(debug_stack, tmp_path):
    run = debug.prepare("paris-batch2", "elif", environ={"API_TOKEN": "x$y"}, port=18080)
    folder = tmp_path / "project" / ".debug" / "paris-batch2" / "elif"
    assert run.folder == folder and run.url == "http://127.0.0.1:18080/"
    app = yaml.safe_load((folder / "app.compose.yaml").read_text())
    data = yaml.safe_load((folder / "data.compose.yaml").read_text())
    assert app["services"]["web"]["ports"] == ["127.0.0.1:18080:5000"]
    assert app["services"]["web"]["volumes"] == [f"{folder}/data:/data"]
    assert app["services"]["web"]["env_file"] == [f"{folder}/secrets.env"]
    assert data["services"]["postgres"]["volumes"] == [f"{folder}/postgres:/var/lib/postgresql/data",
                                                       f"{folder}/db-password:/run/secrets/db-password:ro"]
    assert app["networks"] == data["networks"] == {"app": {"name": "labstack-debug-elif"}}
    assert SRV not in (folder / "app.compose.yaml").read_text() + (folder / "data.compose.yaml").read_text()
    assert (folder / "secrets.env").read_text() == 'API_TOKEN="x\\$y"\n'
    assert oct((folder / "secrets.env").stat().st_mode & 0o777) == "0o600"
