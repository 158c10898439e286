"""The pure parts of labstack/jobs/server.py: input checks, the submit command, status parsing, exit codes, image choice."""
from __future__ import annotations

import hashlib
import shlex
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from labstack.jobs import server as jobs
from labstack.ssh.target import RemoteError


def test_job_ids_sort_by_time_and_pass_the_hooks_pattern():
    first = jobs.new_job_id(datetime(2026, 11, 28, 21, 55, 1, tzinfo=timezone.utc))
    assert first.startswith("20261128-215501-") and len(first) == 20
    assert jobs.check_job_id(first) == first
    with pytest.raises(jobs.JobError, match="bad job id '../x'"):
        jobs.check_job_id("../x")


def test_env_items_are_checked():
    assert jobs.parse_env(["A=1", "B_2=x=y", "EMPTY="]) == {"A": "1", "B_2": "x=y", "EMPTY": ""}
    with pytest.raises(jobs.JobError, match="expected KEY=VALUE"):
        jobs.parse_env(["NOPE"])
    with pytest.raises(jobs.JobError, match="'1A' is not a variable name"):
        jobs.parse_env(["1A=x"])
    with pytest.raises(jobs.JobError, match="newline"):
        jobs.parse_env({"A": "two\nlines"})


@pytest.mark.parametrize("path", ["../../etc", "/etc", "", ".", "out/../../x", "./"])
def test_fetch_paths_outside_the_job_folder_are_refused(path):
    with pytest.raises(jobs.JobError, match="inside the job folder"):
        jobs.check_fetch_path(path)


def test_fetch_paths_inside_are_normalised():
    assert [jobs.check_fetch_path(p) for p in ("out/", "out/a.txt", "./out")] == ["out", "out/a.txt", "out"]


def test_upload_plan_names_each_path_at_the_top(tmp_path):
    (tmp_path / "run.sh").write_text("true\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x").write_bytes(b"12345")
    plan = jobs.upload_plan(tmp_path / "run.sh", [tmp_path / "data"])
    assert plan == {"run.sh": tmp_path / "run.sh", "data": tmp_path / "data"}
    assert jobs.plan_bytes(plan) == 5 + 5
    with pytest.raises(jobs.JobError, match="is a directory"):
        jobs.upload_plan(tmp_path / "data", [])
    with pytest.raises(jobs.JobError, match="no such file"):
        jobs.upload_plan(tmp_path / "nope.sh", [])
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "data").write_text("")
    with pytest.raises(jobs.JobError, match="two uploads are named 'data'"):
        jobs.upload_plan(tmp_path / "run.sh", [tmp_path / "data", tmp_path / "other" / "data"])
    (tmp_path / "status.json").write_text("{}")
    with pytest.raises(jobs.JobError, match="'status.json' cannot be used"):
        jobs.upload_plan(tmp_path / "run.sh", [tmp_path / "status.json"])


def test_submit_command_quotes_every_word():
    command = jobs.submit_argv("20261128-215501-3fa2", 10, "run.sh", image="python:3.11-slim", on_host=False,
                               name="", by="ana@laptop")
    assert shlex.split(command) == ["sudo", "-n", "/opt/labstack/hooks/job-submit.sh", "20261128-215501-3fa2", "10",
                                    "python:3.11-slim", "run.sh", "", "ana@laptop"]
    host = jobs.submit_argv("x1", 0, "run.sh", image=None, on_host=True, name="n", by="b")
    assert shlex.split(host)[5] == "--on-host"


def test_status_lines_parse_and_garbage_is_an_error():
    text = ('{"id":"a","state":"running","exitCode":null}\n\n'
            '{"id":"b","state":"failed","exitCode":7}\n')
    records = jobs.parse_statuses(text)
    assert [(r["id"], r["state"], r["exitCode"]) for r in records] == [("a", "running", None), ("b", "failed", 7)]
    with pytest.raises(RemoteError, match="not JSON"):
        jobs.parse_statuses("sudo: a password is required\n")
    with pytest.raises(RemoteError, match="unknown state 'weird'"):
        jobs.parse_statuses('{"state":"weird"}')


def test_exit_codes():
    assert jobs.exit_code_of({"state": "complete", "exitCode": 0}) == 0
    assert jobs.exit_code_of({"state": "failed", "exitCode": 7}) == 7
    assert jobs.exit_code_of({"state": "cancelled", "exitCode": 137}) == jobs.CANCELLED_EXIT
    assert jobs.exit_code_of({"state": "interrupted", "exitCode": None}) == jobs.INTERRUPTED_EXIT


def _config(*images):
    return SimpleNamespace(apps=[SimpleNamespace(image=image) for image in images])


def test_image_choice_and_pinned_stacks():
    pinned = "ghcr.io/lab/elif@sha256:" + "a" * 64
    assert jobs.image_for(_config(), None, False) == "python:3.11-slim"
    assert jobs.image_for(_config(pinned), None, False) == pinned
    assert jobs.image_for(_config("ghcr.io/lab/elif:1"), "python:3.12-slim", False) == "python:3.12-slim"
    assert jobs.image_for(_config(pinned), None, True) is None
    with pytest.raises(jobs.JobError, match="apps run pinned images"):
        jobs.image_for(_config(pinned), "python:3.11-slim", False)
    with pytest.raises(jobs.JobError, match="exclude each other"):
        jobs.image_for(_config(), "python:3.11-slim", True)
    with pytest.raises(jobs.JobError, match="not an image reference"):
        jobs.image_for(_config(), "bad image", False)


def test_sha256_lists_of_either_tool_verify_and_a_difference_is_refused():
    digests = {"out/a b.txt": "ab" * 32, "out/c": "cd" * 32}
    jobs._verify(f"{'ab' * 32}  out/a b.txt\n{'cd' * 32}  out/c\n".encode(), digests, "j")  # sha256sum
    jobs._verify(f"{'ab' * 32} *out/a b.txt\n{'cd' * 32} *out/c\n".encode(), digests, "j")  # openssl dgst -r
    with pytest.raises(jobs.JobError, match=r"different \['out/c'\]"):
        jobs._verify(f"{'ab' * 32}  out/a b.txt\n{'ee' * 32}  out/c\n".encode(), digests, "j")
    with pytest.raises(jobs.JobError, match="does not match"):
        jobs._verify(b"", digests, "j")


def test_files_are_hashed_once_tar_has_named_the_next_member(tmp_path):
    """tar -v's names as they come: a member is hashed when the next one is named; the last one, links and
    directories are left to the pass after tar has ended."""
    (tmp_path / "out" / "d").mkdir(parents=True)
    (tmp_path / "out" / "a b").write_bytes(b"one")
    (tmp_path / "out" / "d" / "c").write_bytes(b"two")
    (tmp_path / "out" / "l").symlink_to("a b")
    (tmp_path / "out" / "last").write_bytes(b"three")
    names = [b"out/\n", b"out/a b\n", b"out/l\n", b"out/d/\n", b"out/d/c\n", b"../x\n", b"out/last\n"]
    assert jobs._hash_as_extracted(iter(names), tmp_path) == {
        "out/a b": hashlib.sha256(b"one").hexdigest(), "out/d/c": hashlib.sha256(b"two").hexdigest()}
    # A name that comes again is hashed from its last version, after the member that follows it.
    (tmp_path / "out" / "a b").write_bytes(b"four")
    hashed = jobs._hash_as_extracted(iter([b"out/a b\n", b"out/d/c\n", b"out/a b\n", b"out/last\n"]), tmp_path)
    assert hashed == {"out/a b": hashlib.sha256(b"four").hexdigest(), "out/d/c": hashlib.sha256(b"two").hexdigest()}
    assert jobs._digests(tmp_path, "out", {"out/d/c": "cd" * 32}) == {
        "out/a b": hashlib.sha256(b"four").hexdigest(), "out/d/c": "cd" * 32,
        "out/last": hashlib.sha256(b"three").hexdigest()}


def test_only_large_files_adding_up_to_8_mib_are_offered_for_reuse(tmp_path):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    script = tmp_path / "run.sh"
    script.write_text("true\n")
    (data / "small.txt").write_bytes(b"x" * (jobs.REUSE_MIN_FILE - 1))
    (data / "sub" / "big.bin").write_bytes(b"\0" * (4 << 20))
    (data / "odd\nname.bin").write_bytes(b"\0" * (4 << 20))  # a line break: never in the line-per-file lists
    plan = jobs.upload_plan(script, [data])
    assert jobs.large_files(plan) == {}  # 4 MiB offered in all: not worth a round trip
    (data / "other.bin").write_bytes(b"\0" * (4 << 20))
    assert jobs.large_files(plan) == {"data/other.bin": data / "other.bin", "data/sub/big.bin": data / "sub" / "big.bin"}
