"""Beyond one machine (not a test): Ray Data embedding throughput, Lance index build and search latency.

1. images/s through `core.batch` (decode + embed + Lance write) with 1 and 2 CPU actors on synthetic 32×32 PNGs,
   against the engine's direct path (`Engine.embed` on the same decoded images, no Ray) in the same run;
   on a GPU, `--gpu-images` CIFAR-sized images with `--gpu-model` through Ray (one actor) and direct.
2. A Lance table of `--rows` random `--dim`-D vectors: write time, k-NN index build time, search latency
   (median / p95 over `--queries` queries, k=10) with the index and as an exact scan.
3. `--photos N` (e.g. 2000): Ray Data against the direct engine path with a full-size model (`--photo-model`,
   default DINOv2-S, random weights) on N photo-sized JPEGs, so the model's work dominates. Both run the same
   steps (decode, embed, Lance writes, index): `core.batch.embed_in_process` (no Ray) then `embed_dataset`.

    .venv/bin/python -m bench.bench_scale [--images 2000] [--model dinov2_tiny] [--rows 1000000] [--dim 384]
    .venv/bin/python -m bench.bench_scale --photos 2000 --skip-tiny --skip-search
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

os.environ.setdefault("VFM_LENS_OFFLINE", "1")


def write_images(root: Path, n: int, side: int = 32, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    images = []
    for i in range(n):
        folder = root / f"class_{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        image = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        Image.fromarray(image).save(folder / f"{i:06d}.png")
        images.append(image)
    return images


def bench_ray(images_dir: Path, model: str, actors: int, batch_size: int):
    """The run's summary: images/s overall and after start-up (Ray workers, model load in each actor)."""
    from core.batch import embed_dataset

    with tempfile.TemporaryDirectory() as out:
        return embed_dataset(images_dir, Path(out) / "db", model, batch_size, actors, progress=False)


def write_photos(root: Path, n: int, seed: int = 0) -> None:
    """n JPEGs (quality 90, 640–1024 px on the long side) cut from the built-in sample photos: random crop, flip
    and size, so every file differs and decodes like a real photo."""
    from core.data import load_samples

    rng = np.random.default_rng(seed)
    sources = [Image.fromarray(item.image) for item in load_samples().items]
    for i in range(n):
        photo = sources[i % len(sources)]
        w, h = photo.size
        cw, ch = int(w * rng.uniform(0.6, 1.0)), int(h * rng.uniform(0.6, 1.0))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        crop = photo.crop((x, y, x + cw, y + ch))
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else crop
        side = int(rng.integers(640, 1025))
        crop = crop.resize((side, max(1, round(side * ch / cw))) if cw >= ch else (max(1, round(side * cw / ch)), side))
        folder = root / f"class_{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        crop.save(folder / f"{i:06d}.jpg", quality=90)


def bench_ray_vs_direct(photos: Path, model: str, batch_size: int) -> tuple:
    """(direct summary, Ray summary) for the same folder, each into a fresh stored dataset."""
    from core.batch import embed_dataset, embed_in_process
    from core.engine import Engine

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        engine = Engine(device="cpu", cache=None, memory_bytes=0, batch_size=batch_size)  # as each Ray actor's
        direct = embed_in_process(photos, Path(out) / "direct", model, engine, batch_size)
        direct_total = time.perf_counter() - start  # model build included, as in the Ray run
        ray_run = embed_dataset(photos, Path(out) / "ray", model, batch_size, progress=False)
    return direct, direct_total, ray_run


def bench_direct(images: list[np.ndarray], model: str, device: str | None, batch_size: int) -> float:
    from core.engine import Engine

    engine = Engine(device=device, cache=None, memory_bytes=0, batch_size=batch_size)
    engine.embed(images[:batch_size], model)  # load and warm up
    engine = Engine(device=device, cache=None, memory_bytes=0, batch_size=batch_size)
    start = time.perf_counter()
    engine.embed(images, model)
    return len(images) / (time.perf_counter() - start)


def bench_search(rows: int, dim: int, queries: int, folder: Path) -> dict[str, float]:
    from core import store

    rng = np.random.default_rng(0)
    start = time.perf_counter()
    chunk = 100_000
    for i in range(0, rows, chunk):
        n = min(chunk, rows - i)
        vectors = rng.standard_normal((n, dim), dtype=np.float32)
        ids = [f"r{j}" for j in range(i, i + n)]
        store.append(folder, store.IMAGES, store.images_rows(ids, ids, [None] * n, "dinov2_small", "random", vectors))
    table = store.open_store(folder).table
    result = {"write_s": time.perf_counter() - start}
    probe = [rng.standard_normal(dim, dtype=np.float32) for _ in range(queries)]
    result["exact_ms"] = _latency(table, probe[: max(3, queries // 10)])
    start = time.perf_counter()
    result["index"] = store.build_index(table, min_rows=1)
    result["index_s"] = time.perf_counter() - start
    store.search(table, probe[0])  # load the index
    result["indexed_ms"], result["indexed_p95_ms"] = _latency(table, probe, p95=True)
    return result


def _latency(table, probe: list[np.ndarray], p95: bool = False):
    from core import store

    times = []
    for q in probe:
        start = time.perf_counter()
        store.search(table, q, k=10)
        times.append((time.perf_counter() - start) * 1e3)
    return (float(np.median(times)), float(np.percentile(times, 95))) if p95 else float(np.median(times))


def run_tiny(args: argparse.Namespace) -> None:
    """Part 1: the tiny model through Ray against the direct path (and on a GPU, the GPU model)."""
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        images = write_images(Path(tmp) / "images", args.images)
        direct = bench_direct(images, args.model, "cpu", args.batch_size)
        print(f"engine direct (CPU, no Ray), {args.model}: {direct:.0f} images/s")
        for actors in (1, 2):
            s = bench_ray(Path(tmp) / "images", args.model, actors, args.batch_size)
            print(
                f"Ray Data, {actors} CPU actor(s), {args.model}, {args.images} images: {s.images_per_second:.0f} "
                f"images/s overall, {s.steady_images_per_second:.0f} after {s.startup_seconds:.0f} s start-up"
            )
        if torch.cuda.is_available():
            gpu_dir = Path(tmp) / "gpu"
            gpu_images = write_images(gpu_dir, args.gpu_images)
            direct = bench_direct(gpu_images, args.gpu_model, "cuda", 256)
            rate = bench_ray(gpu_dir, args.gpu_model, 1, 256).steady_images_per_second
            print(f"GPU {args.gpu_model}, {args.gpu_images} images: direct {direct:.0f}/s, Ray {rate:.0f}/s "
                  f"(Ray overhead {100 * (direct / rate - 1):.0f} %)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--model", default="dinov2_tiny")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--gpu-images", type=int, default=100_000)
    parser.add_argument("--gpu-model", default="clip_vit_b32")
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument("--skip-tiny", action="store_true", help="leave out the tiny-model throughput part")
    parser.add_argument("--photos", type=int, default=0, help="Ray vs direct on this many photos (0: not run)")
    parser.add_argument("--photo-model", default="dinov2_small")
    parser.add_argument("--photo-batch", type=int, default=16)
    args = parser.parse_args()

    import torch

    from core.batch import init_ray

    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}")
    init_ray(num_cpus=os.cpu_count() if torch.cuda.is_available() else 2)
    if args.photos:
        with tempfile.TemporaryDirectory() as tmp:
            write_photos(Path(tmp), args.photos)
            direct, direct_total, ray_run = bench_ray_vs_direct(Path(tmp), args.photo_model, args.photo_batch)
        print(
            f"{args.photos} photos, {args.photo_model} (random weights), batch {args.photo_batch}, load {os.getloadavg()[0]:.1f}:"
        )
        print(
            f"  direct (embed_in_process, no Ray): {direct.embedded / direct_total:.2f} images/s ({direct_total:.0f} s)"
        )
        print(
            f"  Ray Data: {ray_run.images_per_second:.2f} images/s ({ray_run.seconds:.0f} s, first block after "
            f"{ray_run.startup_seconds:.0f} s; {ray_run.steady_images_per_second:.2f} images/s after it)"
        )
        print(f"  Ray / direct: {ray_run.images_per_second / (direct.embedded / direct_total):.3f}")  # fmt: skip
    if not args.skip_tiny:
        run_tiny(args)
    if not args.skip_search:
        with tempfile.TemporaryDirectory() as tmp:
            r = bench_search(args.rows, args.dim, args.queries, Path(tmp) / "vectors")
        print(f"Lance, {args.rows:,} × {args.dim}: write {r['write_s']:.1f} s; exact scan {r['exact_ms']:.0f} ms/query")
        print(
            f"{r['index']}: built in {r['index_s']:.1f} s; search k=10 median {r['indexed_ms']:.1f} ms, p95 {r['indexed_p95_ms']:.1f} ms"
        )


if __name__ == "__main__":
    main()
