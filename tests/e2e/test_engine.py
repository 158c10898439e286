"""The e2e engine runs independent commands concurrently and each only after what it depends on (local commands,
no test bed needed)."""
from __future__ import annotations

import pytest

from labstack.stacks.offline import Declared, Evaluation
from tests.e2e.engine import LOCAL_COMMAND, CommandFailed, RemoteEngine


def command(name: str, create: str, directory) -> Declared:
    return Declared(LOCAL_COMMAND, name, {"create": create, "dir": str(directory)}, {}, True)


# Each waits (bounded) for the other's file: both succeed only when they run at the same time.
def rendezvous(mine: str, other: str) -> str:
    return f"touch {mine}; for i in $(seq 100); do [ -e {other} ] && exit 0; sleep 0.1; done; exit 1"


def test_independent_commands_run_together_and_a_dependent_one_after_both(tmp_path):
    evaluation = Evaluation("s", [command("worker-1", rendezvous("a", "b"), tmp_path),
                                  command("worker-2", rendezvous("b", "a"), tmp_path),
                                  command("after", "test -e a && test -e b && touch c", tmp_path)], {})
    dependencies = {"worker-1": {"head"}, "worker-2": {"head"}, "after": {"worker-1", "worker-2"},
                    "head": set()}
    runs = RemoteEngine().apply(evaluation, dependencies)
    assert sorted(r.resource for r in runs) == ["after", "worker-1", "worker-2"]
    assert runs[-1].resource == "after" and (tmp_path / "c").exists()


def test_a_failure_stops_new_starts_and_is_raised(tmp_path):
    evaluation = Evaluation("s", [command("broken", "exit 3", tmp_path),
                                  command("after", "touch c", tmp_path)], {})
    with pytest.raises(CommandFailed) as failed:
        RemoteEngine().apply(evaluation, {"after": {"broken"}})
    assert failed.value.resource == "broken" and failed.value.result.returncode == 3
    assert not (tmp_path / "c").exists()


def test_without_dependencies_commands_run_one_by_one_in_declaration_order(tmp_path):
    evaluation = Evaluation("s", [command("first", "echo 1 >> log", tmp_path),
                                  command("second", "echo 2 >> log", tmp_path)], {})
    assert [r.resource for r in RemoteEngine().apply(evaluation)] == ["first", "second"]
    assert (tmp_path / "log").read_text() == "1\n2\n"


def replaced(tmp_path, delete_before_replace: frozenset) -> list[str]:
    """A command whose trigger changes between two applies: the phases in the order the engine ran them."""
    engine = RemoteEngine()
    for trigger in ("old", "new"):
        step = Declared(LOCAL_COMMAND, "ray", {"create": f"echo create {trigger} >> log", "dir": str(tmp_path),
                                               "delete": f"echo delete {trigger} >> log", "triggers": [trigger]}, {}, True)
        engine.apply(Evaluation("s", [step], {}), {}, delete_before_replace)
    return (tmp_path / "log").read_text().splitlines()


def test_a_replacement_creates_first_unless_registered_delete_before_replace(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert replaced(tmp_path / "a", frozenset()) == ["create old", "create new", "delete old"]
    assert replaced(tmp_path / "b", frozenset({"ray"})) == ["create old", "delete old", "create new"]
