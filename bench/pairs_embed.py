"""Pairs for bench/bench_vs_upstream.py: VFM Lens's own path against the plain upstream libraries, same process.

Every `pair_*` function prepares its inputs once and returns `(ours, plain)`: two callables without arguments, each
doing one round of the job and returning its wall time in seconds (lower is better). The runner calls them
alternately. Pairs:

  pair_embed_clip     40 photos (0.6–3.7 Mpx JPEG files) → CLIP ViT-B/32 embeddings, decode included: the engine's
                      `embed_files` against PIL open + convert + open_clip's own transform + `encode_image`
  pair_embed_dinov2   the same with DINOv2-S: against PIL + the transformers image processor + the model's CLS token
  pair_cache_hit      the same 40 photos embedded again (engine cache hit, decode included) — plain: none (None)
  pair_scatter        Embedding Scatter figure of 100k points, build + JSON, against `px.scatter` (webgl, colour,
                      hover name)

Random weights (no downloads); full-size architectures. Run them here, alternately, medians of `--repeats`:

    .venv/bin/python -m bench.pairs_embed [--pairs scatter embed_clip ...] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np

os.environ.setdefault("VFM_LENS_OFFLINE", "1")

Pair = tuple[Callable[[], float], Callable[[], float] | None]


def _timed(job: Callable[[], object]) -> Callable[[], float]:
    def run() -> float:
        start = time.perf_counter()
        job()
        return time.perf_counter() - start

    return run


# ---- scatter figure -------------------------------------------------------------------------------
def scatter_points(n: int = 100_000) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(coords (n, 2) float32, labels, names, is_test): 10 classes, a quarter held out (seed 0)."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, n).astype(str)
    coords = rng.normal(size=(n, 2)).astype(np.float32) + labels.astype(int)[:, None] * 0.3
    names = np.array([f"img_{i}.png" for i in range(n)])
    return coords, labels, names, rng.random(n) < 0.25


def pair_scatter(n: int = 100_000) -> Pair:
    import plotly.express as px

    from components.scatter_view import scatter_figure

    coords, labels, names, is_test = scatter_points(n)

    def ours() -> str:
        figure, _ = scatter_figure(coords, labels, names, is_test, np.arange(n))
        return figure.to_json()

    def plain() -> str:
        x, y = coords.T
        return px.scatter(x=x, y=y, color=labels, hover_name=names, render_mode="webgl").to_json()

    return _timed(ours), _timed(plain)


PAIRS: dict[str, Callable[[], Pair]] = {
    "scatter": pair_scatter,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=list(PAIRS))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for name in args.pairs:
        ours, plain = PAIRS[name]()
        times: dict[str, list[float]] = {"ours": [], "plain": []}
        for _ in range(args.repeats):
            times["ours"].append(ours())
            if plain is not None:
                times["plain"].append(plain())
        line = {
            k: f"{statistics.median(v) * 1000:.0f} ms ({min(v) * 1000:.0f}–{max(v) * 1000:.0f})"
            for k, v in times.items()
            if v
        }
        ratio = statistics.median(times["ours"]) / statistics.median(times["plain"]) if times["plain"] else float("nan")
        print(f"{name}: {line}; ours / plain = {ratio:.2f}", flush=True)


if __name__ == "__main__":
    main()
