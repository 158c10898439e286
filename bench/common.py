"""What the benchmarks share: a test bed to measure on, and how a list of timings is printed."""
from __future__ import annotations

import statistics
import sys
import time
from typing import Optional

from tests.e2e.engine import RemoteEngine
from tests.testbed import images as imagemod
from tests.testbed.fixtures import Testbed, missing_prerequisites
from tests.testbed.host import cleanup_leftovers


def open_testbed(extra_images: tuple[str, ...] = ()) -> Optional[Testbed]:
    """A test bed with the cached stand-in images, leftovers of crashed runs removed; None (said why) if unavailable."""
    missing = missing_prerequisites()
    if missing:
        print("bench: the test bed is not available: " + "; ".join(missing), file=sys.stderr)
        return None
    cleanup_leftovers(log=lambda m: None)
    return Testbed(imagemod.ensure_images((*imagemod.STANDARD_IMAGES, *extra_images), log=print))


def spread(values: list[float]) -> str:
    """Median and range: one slow round on a shared machine shows as a range, not as the figure."""
    return f"{statistics.median(values):6.2f}s ({min(values):.2f}-{max(values):.2f})"


class TimedEngine(RemoteEngine):
    """The e2e engine, noting when each remote command started and ended, in seconds after `t0` (the bench's clock;
    default: when the engine was made): the critical path shows as the chain of ends and starts."""

    def __init__(self, t0: Optional[float] = None):
        super().__init__()
        self.t0 = time.perf_counter() if t0 is None else t0
        self.times: list[tuple[str, float, float]] = []

    def _run(self, name: str, phase: str, inputs: dict) -> None:
        start, count = time.perf_counter(), len(self.runs)
        try:
            super()._run(name, phase, inputs)
        finally:
            if len(self.runs) > count:
                self.times.append((f"{name} {phase}", start - self.t0, time.perf_counter() - self.t0))

    def durations(self) -> list[tuple[str, float]]:
        """(command, seconds it took), in the order they ended."""
        return [(name, end - start) for name, start, end in self.times]
