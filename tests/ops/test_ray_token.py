"""`invoke ray.token` without a Ray cluster: one clear message and exit 1, before any SSH connection (the test bed
test, tests/e2e/test_cluster.py, reads the token of a real head)."""
from __future__ import annotations

from tests.ops.test_tasks import invoke


def test_ray_token_of_a_stack_that_is_not_a_cluster_says_how_to_make_one(write_stack, recording_pulumi, capsys):
    write_stack()
    assert invoke("ray.token", "-s", "paris-batch2") == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "stack 'paris-batch2' is not a cluster: set labstack:cluster" in captured.err
    assert recording_pulumi() == []  # refused before reading the stack's outputs
