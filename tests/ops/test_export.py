"""invoke export on the test bed: a real Postgres in the deploy hooks' layout, dumped and verified over SSH."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
from datetime import datetime, timezone

import pytest

from labstack.data import export
from labstack.ssh.target import RemoteError, SshTarget
from tests.ops.conftest import psql, start_app_postgres, target_of

pytestmark = pytest.mark.testbed

SEED = """
CREATE TABLE participants (id serial PRIMARY KEY, code text NOT NULL);
INSERT INTO participants (code) SELECT 'p' || g FROM generate_series(1, 250) g;
CREATE SCHEMA results;
CREATE TABLE results.answers (participant int, answer text);
INSERT INTO results.answers SELECT g % 250 + 1, repeat('x', g % 50) FROM generate_series(1, 1200) g;
CREATE TABLE empty_table (x int);
"""


def at(second: int) -> datetime:
    return datetime(2026, 11, 21, 10, 0, second, tzinfo=timezone.utc)


@pytest.fixture
def elif_host(testbed_host):
    start_app_postgres(testbed_host, "elif")
    psql(testbed_host, "elif", SEED)
    testbed_host.run("sudo sh -c 'mkdir -p /srv/labstack/apps/elif/data/uploads && "
                     "echo consent-form > /srv/labstack/apps/elif/data/uploads/p1.txt && "
                     "mkdir -p /srv/labstack/apps/elif/volumes/media && "
                     "echo recording > /srv/labstack/apps/elif/volumes/media/p1.wav && "
                     "printf \"%s r1 127.0.0.1:5000/lab/elif@sha256:%064d\\n\" 2026-11-21T09:00:00Z 0 "
                     "> /etc/labstack/apps/elif/releases.log'")
    return testbed_host


def scratch_databases(host) -> list[str]:
    return [name for name in psql(host, "elif", "SELECT datname FROM pg_database;").split()
            if name.startswith("labstack_verify")]


def test_export_dumps_verifies_and_pins_a_manifest(elif_host, tmp_path):
    notes = []
    with target_of(elif_host) as target:
        result = export.export_app(target, "paris-batch2", "elif", exports_dir=tmp_path, progress=notes.append,
                                   now=at(1))
    assert result.path == tmp_path / "paris-batch2" / "elif" / "20261121T100001Z"
    assert sorted(p.name for p in result.path.iterdir()) == ["data.tar.gz", "db.dump", "manifest.json"]
    assert [p.name for p in result.path.parent.iterdir()] == ["20261121T100001Z"]  # no .partial left
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["database"]["tables"] == {"public.empty_table": 0, "public.participants": 250,
                                              "results.answers": 1200}
    assert manifest["image"] == "127.0.0.1:5000/lab/elif@sha256:" + "0" * 64
    for name, entry in manifest["files"].items():
        data = (result.path / name).read_bytes()
        assert entry == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert (result.path / "db.dump").read_bytes()[:5] == b"PGDMP"  # custom format
    with tarfile.open(result.path / "data.tar.gz") as archive:
        assert archive.extractfile("data/uploads/p1.txt").read() == b"consent-form\n"
        assert archive.extractfile("volumes/media/p1.wav").read() == b"recording\n"  # the app's extra volumes
    assert any("verifying" in note for note in notes)
    assert scratch_databases(elif_host) == []  # the scratch database is gone again
    # The dump restores on its own too: the live rows, not just a readable file.
    assert shutil.which("pg_restore"), "pg_restore is missing: setup.sh --tests installs postgresql-client"
    listing = subprocess.run(["pg_restore", "--list", str(result.path / "db.dump")], capture_output=True, text=True)
    assert "TABLE DATA results answers" in listing.stdout

    # An app without Postgres: the data folder alone.
    with target_of(elif_host) as target:
        files_only = export.export_app(target, "paris-batch2", "elif", postgres=False, exports_dir=tmp_path, now=at(3))
    assert sorted(p.name for p in files_only.path.iterdir()) == ["data.tar.gz", "manifest.json"]
    assert files_only.manifest["database"] is None and files_only.manifest["data"]["entries"] == 6  # data/, uploads/, p1.txt, volumes/, media/, p1.wav


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_damaged_dump_is_caught_and_never_looks_complete(elif_host, tmp_path, monkeypatch, damage):
    original = export.verify_dump

    def damaged_then_verified(target, container, app, dump, expected, scratch, progress):
        data = bytearray(dump.read_bytes())
        if damage == "truncate":
            data = data[: len(data) * 2 // 3]
        else:  # flip bytes inside the compressed table data, past the header and table of contents
            for offset in range(len(data) - 400, len(data) - 300):
                data[offset] ^= 0xFF
        dump.write_bytes(bytes(data))
        return original(target, container, app, dump, expected, scratch, progress)

    monkeypatch.setattr(export, "verify_dump", damaged_then_verified)
    with target_of(elif_host) as target, pytest.raises(export.ExportError) as caught:
        export.export_app(target, "paris-batch2", "elif", exports_dir=tmp_path, now=at(2))
    message = str(caught.value)
    assert "dump" in message and "20261121T100002Z.failed" in message
    folder = tmp_path / "paris-batch2" / "elif"
    assert [p.name for p in folder.iterdir()] == ["20261121T100002Z.failed"]
    assert not (folder / "20261121T100002Z.failed" / "manifest.json").exists()
    assert "dump" in (folder / "20261121T100002Z.failed" / "FAILED.txt").read_text()
    assert scratch_databases(elif_host) == []
    # The live database is untouched.
    assert psql(elif_host, "elif", "SELECT count(*) FROM results.answers;").strip() == "1200"


def test_unknown_app_and_wrong_host_key_are_clear(elif_host, tmp_path):
    with target_of(elif_host) as target, pytest.raises(export.ExportError, match="app 'nope' is not deployed"):
        export.export_app(target, "paris-batch2", "nope", exports_dir=tmp_path)
    other_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHoP8v3EvvGpLZ0lP3uFqAqQjcnBJWyHqkJ2sl6kx0Wq"
    impostor = SshTarget(elif_host.ip, elif_host.user, target.key_path, f"{elif_host.ip} {other_key}")
    with impostor, pytest.raises(RemoteError, match="did not present the host key this stack pinned"):
        export.export_app(impostor, "paris-batch2", "elif", exports_dir=tmp_path)
    assert not (tmp_path / "paris-batch2").exists()
