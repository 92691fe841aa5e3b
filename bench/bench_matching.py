"""Benchmark DINOv2 patch matching on DINOv2-B-like tokens at 448 px (32 × 32 grid, D = 768).

Times (a) compute_similarity for one image pair, (b) one click (similarity_map + top_matches k=5),
(c) compute_mutual_matches, (d) one click plus drawing its heat map over a 480 × 640 image, (e) one click
through the Patch Matching page's handler (`click_figures` on two sample photos, then the figure JSON that
`st.plotly_chart` sends). The click target is < 50 ms. Run from the repository root:

    .venv/bin/python -m bench.bench_matching
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import numpy as np
import torch

from core.analysis.imaging import blend, colorize, resize_map
from core.analysis.matching import compute_mutual_matches, compute_similarity, similarity_map, top_matches


def timings_ms(fn: Callable[[int], object], repeats: int, warmup: int = 3) -> np.ndarray:
    """Wall-clock milliseconds of `fn(i)` for i in range(repeats), after `warmup` untimed calls."""
    for i in range(warmup):
        fn(i)
    out = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        fn(i)
        out[i] = (time.perf_counter() - start) * 1e3
    return out


def report(name: str, ms: np.ndarray) -> None:
    print(f"{name:<42} median {np.median(ms):8.3f} ms   p95 {np.percentile(ms, 95):8.3f} ms   (n={ms.size})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=448, help="square input size in pixels (multiple of 14)")
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    grid = args.size // 14
    rng = np.random.default_rng(0)
    tokens_a, tokens_b = rng.normal(size=(2, grid, grid, args.dim)).astype(np.float32)
    print(
        f"{platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}, "
        f"grid {grid}×{grid}, D={args.dim}"
    )

    report("(a) compute_similarity", timings_ms(lambda _: compute_similarity(tokens_a, tokens_b), 20))
    sim = compute_similarity(tokens_a, tokens_b)
    patches = rng.integers(0, grid * grid, size=args.repeats + 3)

    def click(i: int) -> None:
        similarity_map(sim, int(patches[i]))
        top_matches(sim, int(patches[i]), k=5)

    report("(b) click: similarity_map + top_matches k=5", timings_ms(click, args.repeats))
    report("(c) compute_mutual_matches", timings_ms(lambda _: compute_mutual_matches(sim), 20))
    image = rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8)

    def click_and_draw(i: int) -> None:
        click(i)
        heat = resize_map(similarity_map(sim, int(patches[i])), image.shape[:2])
        blend(image, colorize(heat, vmin=-1.0, vmax=1.0), 0.5)

    report("(d) click + heat map over 480×640 image", timings_ms(click_and_draw, args.repeats))
    report("(e) page click handler + figure JSON", page_click_ms(tokens_a, tokens_b, args.repeats))


def page_click_ms(tokens_a: np.ndarray, tokens_b: np.ndarray, repeats: int) -> np.ndarray:
    """Milliseconds per click through `components.matching_charts.click_figures`, as the page's fragment runs it."""
    import plotly.io
    import plotly.tools

    from components.matching_charts import build_pair, click_figures
    from core.data import load_samples

    samples = load_samples().images
    pair = build_pair(("astronaut.png", "chelsea.png"), (samples[0], samples[1]), (tokens_a, tokens_b))
    clicks = np.random.default_rng(1).uniform(0, 1, size=(repeats + 3, 2))

    def click(i: int) -> None:
        _, fig_a, fig_b = click_figures(pair, tuple(clicks[i]), k=5, alpha=0.6, show_grid=False)
        for fig in (fig_a, fig_b):  # what st.plotly_chart does with a figure
            plotly.io.to_json(plotly.tools.return_figure_from_figure_or_data(fig, validate_figure=True), validate=False)

    return timings_ms(click, repeats)


if __name__ == "__main__":
    main()
