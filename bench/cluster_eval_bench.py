"""Benchmark: evaluating the program under Pulumi mocks (labstack/stacks/offline.py, preview=False) for cluster stacks of
10, 100 and 300 workers (engine ray: each worker is a Node, its host key, HostSetup and RayNode steps). Prints the
seconds per size (median of the rounds, with the range) and the growth per worker between sizes. Goal: <= 10 s at
100 workers, and linear growth (seconds per added worker about the same between 10->100 and 100->300).

    venv/bin/python bench/cluster_eval_bench.py [--rounds N] [--sizes 10,100,300]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from labstack.stacks.offline import FakeAws, evaluate  # noqa: E402
from tests.unit.helpers import base_config, write_private_key  # noqa: E402

INSTANCE = "aws:ec2/instance:Instance"


def timed_evaluation(pem: Path, workers: int) -> tuple[float, int]:
    """Seconds for one evaluation of a stack with this many workers, and how many instances it declared."""
    config = base_config(pem, network="create", cluster={"workers": workers})
    started = time.perf_counter()
    evaluation = evaluate(config, "sweep", FakeAws()).ok()
    seconds = time.perf_counter() - started
    return seconds, len(evaluation.of_type(INSTANCE))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sizes", default="10,100,300")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        pem = Path(tmp) / "server.pem"
        write_private_key(pem)
        timed_evaluation(pem, 1)  # warm-up: imports and Pulumi's first start are not the program's cost
        medians: dict[int, float] = {}
        for workers in sizes:
            runs = []
            for _ in range(args.rounds):
                seconds, instances = timed_evaluation(pem, workers)
                assert instances == workers + 1, f"{workers} workers declared {instances} instances"
                runs.append(seconds)
            medians[workers] = statistics.median(runs)
            print(f"workers={workers:4d}: {medians[workers]:7.2f}s (range {min(runs):.2f}-{max(runs):.2f}, "
                  f"{args.rounds} rounds, {workers + 1} instances)", flush=True)
    for low, high in zip(sizes, sizes[1:]):
        per_worker = (medians[high] - medians[low]) / (high - low)
        print(f"growth {low}->{high}: {per_worker * 1000:.1f} ms per added worker")
    if 100 in medians:
        print(f"goal <= 10 s at 100 workers: {'met' if medians[100] <= 10 else 'NOT met'} ({medians[100]:.2f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
