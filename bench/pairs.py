"""What a pair module (bench/pairs_*.py) returns: `() -> Pair`, two no-argument callables (ours, plain or None)
that each run one round and return its seconds. `bench_vs_upstream` runs them alternately."""

from __future__ import annotations

import time
from collections.abc import Callable

Pair = tuple[Callable[[], float], Callable[[], float] | None]


def timed(job: Callable[[], object]) -> Callable[[], float]:
    """`job` as a round that returns its wall-clock seconds."""

    def run() -> float:
        start = time.perf_counter()
        job()
        return time.perf_counter() - start

    return run
