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
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.pairs import Pair, timed

os.environ.setdefault("VFM_LENS_OFFLINE", "1")


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

    from components.charts import scatter_figure

    coords, labels, names, is_test = scatter_points(n)

    def ours() -> str:
        figure, _ = scatter_figure(coords, labels, names, is_test, np.arange(n))
        return figure.to_json()

    def plain() -> str:
        x, y = coords.T
        return px.scatter(x=x, y=y, color=labels, hover_name=names, render_mode="webgl").to_json()

    return timed(ours), timed(plain)


# ---- embedding photos -------------------------------------------------------------------------------
PHOTOS = 40
BATCH = 8  # the engine's CPU batch size; the plain pipelines use it too


def photo_folder(n: int = PHOTOS) -> list[Path]:
    """`n` JPEG photos of 0.6–3.7 Mpx (landscape and portrait, 4:3 and 3:2, quality 90), made once from
    scikit-image's sample photos with photo-like grain, under the system's temp folder."""
    import skimage.data
    from PIL import Image

    folder = Path(tempfile.gettempdir()) / f"vfm-lens-bench-photos-{n}"
    paths = [folder / f"photo_{i:02d}.jpg" for i in range(n)]
    if all(p.exists() for p in paths):
        return paths
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    sources = [getattr(skimage.data, name)() for name in ("astronaut", "chelsea", "coffee", "rocket")]
    for i, (path, mpx) in enumerate(zip(paths, np.linspace(0.6, 3.7, n), strict=True)):
        aspect = (4 / 3, 3 / 2)[i % 2]
        w, h = int(np.sqrt(mpx * 1e6 * aspect)), int(np.sqrt(mpx * 1e6 / aspect))
        w, h = (h, w) if i % 5 == 4 else (w, h)  # some portrait
        image = np.asarray(Image.fromarray(sources[i % len(sources)]).resize((w, h), Image.Resampling.BICUBIC))
        grain = rng.normal(0, 6, image.shape)
        Image.fromarray(np.clip(image + grain, 0, 255).astype(np.uint8)).save(path, quality=90)
    return paths


def _ours_embed(model: str, paths: list[Path], cache: bool) -> Callable[[], object]:
    """Files → working-set items (`load_image`, as an upload or a server folder reads them) → `Engine.embed`
    with the items' digests. Without `cache` every round computes (the memory cache holds one entry)."""
    from core.data import ImageItem, load_image
    from core.engine import Engine

    engine = Engine(device="cpu", cache=None, batch_size=BATCH, memory_bytes=1 << 30 if cache else 0)
    engine.model(model)

    def run() -> np.ndarray:
        items = [ImageItem(p.name, *load_image(p)) for p in paths]
        return engine.embed([it.image for it in items], model, digests=[it.digest for it in items])

    return run


def _plain_batches(paths: list[Path], preprocess: Callable, forward: Callable) -> np.ndarray:
    """PIL open + RGB, the upstream preprocessing, the forward pass in batches of BATCH."""
    import torch
    from PIL import Image

    out = []
    with torch.inference_mode():
        for start in range(0, len(paths), BATCH):
            images = [Image.open(p).convert("RGB") for p in paths[start : start + BATCH]]
            out.append(forward(preprocess(images)).float().numpy())
    return np.concatenate(out)


def _plain_adapter(model: str):
    """The same seeded random weights as the engine loads, built as upstream would run them: fp32, no fast path
    (the engine's copy may hold a bf16 image tower: `core.models.fast.cpu_bf16`)."""
    from core.models import build_adapter
    from core.registry import get

    return build_adapter(get(model), "random", None, "cpu")


def pair_embed_clip(model: str = "clip_vit_b32") -> Pair:
    """Ours against PIL + open_clip's own eval transform + `encode_image`, the same random weights."""
    import torch

    ours = _ours_embed(model, paths := photo_folder(), cache=False)
    adapter = _plain_adapter(model)
    module, transform = adapter.module, adapter.preprocess  # open_clip's module and eval transform

    def plain() -> np.ndarray:
        return _plain_batches(paths, lambda ims: torch.stack([transform(im) for im in ims]), module.encode_image)

    return timed(ours), timed(plain)


def pair_embed_dinov2(model: str = "dinov2_small") -> Pair:
    """Ours against PIL + the transformers image processor (DINOv2's eval crop) + the model's pooled CLS."""
    from core.models.dinov2 import _processor

    ours = _ours_embed(model, paths := photo_folder(), cache=False)
    adapter = _plain_adapter(model)
    processor = _processor(adapter.spec.input_size, crop=True)

    def plain() -> np.ndarray:
        return _plain_batches(
            paths,
            lambda ims: processor(images=ims, return_tensors="pt")["pixel_values"],
            lambda pixels: adapter.module(pixel_values=pixels).pooler_output,
        )

    return timed(ours), timed(plain)


def pair_cache_hit(model: str = "clip_vit_b32") -> Pair:
    """The same 40 working-set items embedded again: only the engine call is timed (plain: None)."""
    from core.data import ImageItem, load_image
    from core.engine import Engine

    engine = Engine(device="cpu", cache=None, batch_size=BATCH)
    items = [ImageItem(p.name, *load_image(p)) for p in photo_folder()]
    images, digests = [it.image for it in items], [it.digest for it in items]
    engine.embed(images, model, digests=digests)
    return timed(lambda: engine.embed(images, model, digests=digests)), None


PAIRS: dict[str, Callable[[], Pair]] = {
    "embed_clip": pair_embed_clip,
    "embed_dinov2": pair_embed_dinov2,
    "cache_hit": pair_cache_hit,
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
            print(
                f"  {name} round: " + ", ".join(f"{k} {v[-1] * 1000:.0f} ms" for k, v in times.items() if v), flush=True
            )
        line = {
            k: f"{statistics.median(v) * 1000:.1f} ms ({min(v) * 1000:.1f}–{max(v) * 1000:.1f})"
            for k, v in times.items()
            if v
        }
        ratio = statistics.median(times["ours"]) / statistics.median(times["plain"]) if times["plain"] else float("nan")
        print(f"{name}: {line}; ours / plain = {ratio:.2f}", flush=True)


if __name__ == "__main__":
    main()
