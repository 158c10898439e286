"""How a failed export is reported and kept (labstack/data/export.py): the reason line for each kind of failure, and the
`.failed` folder with FAILED.txt, also when FAILED.txt itself cannot be written."""
from __future__ import annotations

import errno
from pathlib import Path

import pytest

from labstack.data import export
from labstack.ssh.target import RemoteError


@pytest.mark.parametrize("error, reason", [
    (KeyboardInterrupt(), "interrupted (Ctrl-C); run the export again"),
    (PermissionError(errno.EACCES, "Permission denied", "/data/x"), "Permission denied (/data/x); fix that, then "
                                                                     "export again"),
    (RemoteError("cannot reach ubuntu@203.0.113.7:22 over SSH: no answer"),
     "cannot reach ubuntu@203.0.113.7:22 over SSH: no answer"),
    (ValueError("odd"), "ValueError: odd"),
])
def test_each_failure_is_one_line_with_what_to_do(error, reason, tmp_path):
    assert export.failure_reason(error, tmp_path) == reason


def test_a_full_disk_is_named_even_when_ssh_was_the_one_writing(tmp_path, monkeypatch):
    monkeypatch.setattr(export.shutil, "disk_usage", lambda path: type("U", (), {"free": 4096})())
    reason = export.failure_reason(RemoteError("ssh: write failed"), tmp_path)
    assert reason == (f"the disk holding {tmp_path} is full (0.0 MB free): free space there or set labstack:exportsDir "
                      "to a bigger disk, then export again")
    assert export.failure_reason(OSError(errno.ENOSPC, "No space left on device"), tmp_path) == reason


def test_the_failed_folder_keeps_its_reason_or_says_why_not(tmp_path, monkeypatch):
    partial, failed = tmp_path / "t.partial", tmp_path / "t.failed"
    partial.mkdir()
    assert export.keep_failed(partial, failed, "why") == f"the incomplete files are in {failed}"
    assert (failed / "FAILED.txt").read_text() == "why\n" and not partial.exists()
    again, failed_again = tmp_path / "u.partial", tmp_path / "u.failed"
    again.mkdir()
    original = Path.write_text

    def disk_full(self, *args, **kwargs):
        if self.name == "FAILED.txt":
            original(self, "")   # the file is made, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", disk_full)
    assert export.keep_failed(again, failed_again, "why") == (
        f"the incomplete files are in {failed_again}; FAILED.txt could not be written: No space left on device")
    assert list(failed_again.iterdir()) == []   # no empty, misleading FAILED.txt
