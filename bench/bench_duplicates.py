"""Benchmark the near-duplicate report at scale: N random unit vectors (D = 384, DINOv2-S size) with planted
near-duplicate pairs (cosine ≈ 0.98), every row examined with `bucketed_pairs` (√N k-means buckets, four probes).
Random rows have pairwise cosine ≈ 0 ± 0.05 at D = 384, so the planted pairs are the only true pairs at 0.9:
recall and precision are exact. The all-pairs `exact_pairs` is timed on a slice and extrapolated (N² cost).
Run from the repository root:

    .venv/bin/python -m bench.bench_duplicates [--rows 1000000]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time

import numpy as np

from core.analysis.duplicates import bucketed_pairs, exact_pairs


def planted(
    rows: int, dim: int, copies: int, clusters: int = 0, seed: int = 0
) -> tuple[np.ndarray, set[tuple[int, int]]]:
    """Random rows (around `clusters` random centres, cosine to their centre ≈ 0.6, when > 0) and `copies` planted
    pairs; returns the rows and the planted pairs (i < j)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, dim), dtype=np.float32)
    if clusters:
        centres = rng.standard_normal((clusters, dim), dtype=np.float32)
        x = 0.75 * centres[rng.integers(0, clusters, rows)] + x
    picks = rng.choice(rows, 2 * copies, replace=False)
    sources, targets = picks[:copies], picks[copies:]
    x[targets] = x[sources] + 0.2 * rng.standard_normal((copies, dim), dtype=np.float32)
    return x, {(min(a, b), max(a, b)) for a, b in zip(sources.tolist(), targets.tolist(), strict=True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--copies", type=int, default=1000)
    parser.add_argument("--clusters", type=int, default=0, help="rows around this many centres (0: isotropic)")
    args = parser.parse_args()
    print(f"{platform.machine()} · {os.cpu_count()} CPUs · load {os.getloadavg()[0]:.1f} · {datetime.date.today()}")
    x, truth = planted(args.rows, args.dim, args.copies, args.clusters)
    print("rows:", f"around {args.clusters:,} centres" if args.clusters else "isotropic (the worst case for buckets)")

    start = time.perf_counter()
    pairs, _ = bucketed_pairs(x, 0.9)
    seconds = time.perf_counter() - start
    found = {tuple(p) for p in pairs.tolist()}
    recall, precision = len(found & truth) / len(truth), len(found & truth) / max(len(found), 1)
    print(
        f"bucketed_pairs, {args.rows:,} × {args.dim}: {seconds:.1f} s, recall {recall:.4f}, precision {precision:.4f}"
    )

    part = min(args.rows, 20_000)
    start = time.perf_counter()
    exact_pairs(x[:part], 0.9)
    slice_seconds = time.perf_counter() - start
    print(
        f"exact_pairs on {part:,} rows: {slice_seconds:.1f} s → all {args.rows:,} rows ≈ "
        f"{slice_seconds * (args.rows / part) ** 2 / 3600:.1f} h (N² extrapolation)"
    )


if __name__ == "__main__":
    main()
