"""How a task ends on a known failure: one `labstack: …` line and exit code 1, never a traceback.

Light on purpose (tasks import it at startup): the failure types are looked up only when something failed."""
from __future__ import annotations

import contextlib
from typing import Iterator

from invoke import Exit


@contextlib.contextmanager
def one_line_errors() -> Iterator[None]:
    from labstack.tasks.actions import error_message, ops_errors

    try:
        yield
    except ops_errors() as error:
        raise Exit(error_message(error), code=1)


def call(action, *args, **kwargs):
    """`action(*args, **kwargs)` under one_line_errors."""
    with one_line_errors():
        return action(*args, **kwargs)
