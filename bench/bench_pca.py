"""Time the PCA foreground + RGB PCA recompute on DINOv2-S-sized tokens (4 images at 448 px).

Run from the repository root: ``python -m bench.bench_pca [--repeats 20]``. Target: median < 200 ms on CPU.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from core.analysis.pca import compute_foreground, compute_rgb_pca

N, GRID, DIM = 4, 448 // 14, 384  # DINOv2-S/14 at 448 px: a 32 × 32 patch grid of 384 channels


def make_tokens(seed: int = 0) -> np.ndarray:
    """(N, 32, 32, 384) float32 noise with a strong direction planted on a central disk of every image."""
    rng = np.random.default_rng(seed)
    tokens = rng.normal(size=(N, GRID, GRID, DIM)).astype(np.float32)
    yy, xx = np.mgrid[:GRID, :GRID]
    disk = (yy - GRID / 2) ** 2 + (xx - GRID / 2) ** 2 <= (GRID / 4) ** 2
    direction = rng.normal(size=DIM).astype(np.float32)
    tokens[:, disk] += 8 * direction / np.linalg.norm(direction)
    return tokens


def recompute(tokens: np.ndarray) -> np.ndarray:
    foreground = compute_foreground(tokens)
    return compute_rgb_pca(tokens, foreground.mask).rgb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    tokens = make_tokens()
    for _ in range(2):  # warm-up: BLAS threads, first-call allocations
        recompute(tokens)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        recompute(tokens)
        times.append((time.perf_counter() - start) * 1000)
    print(f"device: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores")
    print(f"foreground + RGB PCA, tokens {tokens.shape}, {args.repeats} repeats")
    print(f"median {np.median(times):.1f} ms, p95 {np.percentile(times, 95):.1f} ms (target < 200 ms)")


if __name__ == "__main__":
    main()
