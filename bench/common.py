"""What the benchmarks share: a test bed to measure on, and how a list of timings is printed."""
from __future__ import annotations

import statistics
import sys
from typing import Optional

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
