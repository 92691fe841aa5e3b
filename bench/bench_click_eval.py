"""Benchmark the click protocol (#19): N objects × K clicks per model, the image embeddings timed apart from the
decoder loop (which must not encode again: the engine is asked how often each model encoded).

The objects are the built-in shapes' (`core.ground_truth.demo_ground_truth`: 3 images, 6 objects each), cycled to
`--objects`. Full-size models run with seeded random weights when their checkpoints are absent. Run from the
repository root:

    .venv/bin/python -m bench.bench_click_eval [--models sam_vit_b@random] [--objects 20] [--clicks 10] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("VFM_LENS_OFFLINE", "1")

import torch  # noqa: E402

from core.analysis.click_eval import Target, evaluate_model, summarize  # noqa: E402
from core.engine import Engine  # noqa: E402
from core.ground_truth import demo_ground_truth  # noqa: E402


def bench(model: str, objects: int, clicks: int, device: str | None) -> dict:
    engine = Engine(device=device, cache=None)
    gt = demo_ground_truth()
    all_targets = [
        Target(i, item.name, k, label, mask)
        for i, item in enumerate(gt.items)
        for k, (label, mask) in enumerate(zip(item.labels, item.masks, strict=True))
    ]
    targets = sorted((all_targets * (objects // len(all_targets) + 1))[:objects], key=lambda t: t.image)
    images = [item.image for item in gt.items]
    start = time.perf_counter()
    engine.model(model)
    load_s = time.perf_counter() - start
    adapter = engine.model(model).adapter
    encoded = []
    real = adapter.image_embedding
    adapter.image_embedding = lambda image, key="": encoded.append(key) or real(image, key)
    start = time.perf_counter()
    run = evaluate_model(engine, model, images, targets, clicks)
    total_s = time.perf_counter() - start
    decoded = sum(len(r.clicks) for _, r in run.runs)
    decode_s = sum(r.decode_s for _, r in run.runs)
    summary = summarize([r for _, r in run.runs])
    return {
        "model": model,
        "device": engine.device.type,
        "objects": len(targets),
        "clicks_max": clicks,
        "decoder_calls": decoded,
        "images_encoded": len(encoded),
        "load_s": round(load_s, 2),
        "embedding_s": round(run.embed_s, 2),
        "embedding_s_per_image": round(run.embed_s / max(len(encoded), 1), 2),
        "decoder_s": round(decode_s, 2),
        "decoder_ms_per_click": round(1000 * decode_s / max(decoded, 1), 1),
        "protocol_s_without_embedding": round(total_s - run.embed_s, 2),
        "total_s": round(total_s, 2),
        "mIoU@1": round(float(summary.miou[0]), 4),
        "weights": engine.model(model).status.label,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["sam_vit_b@random"])
    parser.add_argument("--objects", type=int, default=20)
    parser.add_argument("--clicks", type=int, default=10)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    host = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}"
    print(f"# click protocol, {host}")
    for model in args.models:
        print(json.dumps(bench(model, args.objects, args.clicks, args.device)))


if __name__ == "__main__":
    main()
