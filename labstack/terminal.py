"""Where task results are printed: rich on a terminal; piped or captured, never wrapped (a value folded at 80 columns,
such as sshCommand or knownHosts, is unusable in a file or a script)."""
from __future__ import annotations

import sys

from rich.console import Console

UNWRAPPED_WIDTH = 100_000  # piped: lines as long as their values; tables are never stretched to it (expand=False)


def results_console() -> Console:
    """Results on stdout: the terminal's width on a terminal, no wrapping otherwise."""
    if sys.stdout.isatty():
        return Console(highlight=False)
    return Console(highlight=False, width=UNWRAPPED_WIDTH, soft_wrap=True)


def notes_console() -> Console:
    """Progress and notes on stderr (a spinner only on a terminal)."""
    return Console(stderr=True, highlight=False)


def print_json(value) -> None:
    """A list or map as JSON on stdout, for scripts (`--json`); dataclass rows become maps."""
    import dataclasses
    import json

    def plain(item):
        if dataclasses.is_dataclass(item):
            return dataclasses.asdict(item)
        return str(item)
    print(json.dumps(value, indent=2, default=plain))
