"""SAM, SAM 2 and EdgeTAM side by side on this machine: one image embedding and clicks on it, full-size random
weights (seeded), one 2250 × 1500 photo (bench.pairs_sam.photo: skimage's astronaut, resized).

Each model is loaded as the engine loads it (`Engine.model`: SAM gets its fast paths, SDPA and on CPUs with native
bf16 a bf16 encoder; SAM 2 and EdgeTAM run transformers' own path). Timed:
  encode   the adapter's `image_embedding` under inference mode, as `Engine.sam_embedding` runs it (preprocessing
           included; hashing and caching not), `--encodes` rounds, the median reported;
  click    `Engine.sam_predict` with a single point (three candidates, masks at 2250 × 1500), `--clicks` clicks at
           fixed random points, p50 and p95.
Random weights time the same as trained ones (same shapes and operations). Run from the repository root:

    .venv/bin/python -m bench.bench_sam_families [--models sam_vit_b sam2_hiera_tiny ...] [--encodes 2] [--clicks 20]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import date

os.environ.setdefault("VFM_LENS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.pairs_sam import click_points, photo  # noqa: E402
from core.engine import Engine  # noqa: E402
from core.models import count_parameters  # noqa: E402
from core.models.sam import SamPrompt  # noqa: E402
from core.registry import get  # noqa: E402

MODELS = ("sam_vit_b", "sam2_hiera_tiny", "sam2_hiera_base_plus", "edgetam")


def measure(engine: Engine, name: str, encodes: int, clicks: int) -> dict:
    model = f"{name}@random"
    start = time.perf_counter()
    adapter = engine.model(model).adapter
    load_s = time.perf_counter() - start
    image = photo()
    encode_s = []
    for _ in range(encodes):
        start = time.perf_counter()
        with torch.inference_mode():
            embedding = adapter.image_embedding(image)
        encode_s.append(time.perf_counter() - start)
    click_ms = []
    for point in click_points(clicks):
        start = time.perf_counter()
        engine.sam_predict(embedding, model, SamPrompt(point[None], np.array([1])))
        click_ms.append((time.perf_counter() - start) * 1e3)
    cached = embedding.cached
    return {
        "model": name,
        "params_m": count_parameters(get(name)) / 1e6,
        "load_s": load_s,
        "encode_s": float(np.median(encode_s)),
        "encode_all": encode_s,
        "click_p50_ms": float(np.percentile(click_ms, 50)),
        "click_p95_ms": float(np.percentile(click_ms, 95)),
        "cached_mb": cached.nbytes / 2**20,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--encodes", type=int, default=2)
    parser.add_argument("--clicks", type=int, default=20)
    args = parser.parse_args(argv)
    engine = Engine(device="cpu", cache=None, max_models=1)  # one model in memory at a time
    print(
        f"{date.today()} · {platform.processor() or platform.machine()} · {os.cpu_count()} CPUs · torch "
        f"{torch.__version__} · {torch.get_num_threads()} threads · photo {photo().shape[1]}×{photo().shape[0]}"
    )
    print("| model | params (M) | encode (s) | click p50 (ms) | click p95 (ms) | cached per image (MB) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in args.models:
        row = measure(engine, name, args.encodes, args.clicks)
        rounds = ", ".join(f"{s:.1f}" for s in row["encode_all"])
        print(
            f"| {name} | {row['params_m']:.1f} | {row['encode_s']:.1f} ({rounds}) | {row['click_p50_ms']:.0f} | "
            f"{row['click_p95_ms']:.0f} | {row['cached_mb']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
