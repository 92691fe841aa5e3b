"""Benchmark SAM 2 video tracking: frames per second of `VideoTracker.propagate` (one object, one click) on a
synthetic clip (a disc moving over a checkered background), and the peak memory it holds. Random weights (the
architecture's cost does not depend on them). Run from the repository root:

    .venv/bin/python -m bench.bench_video --model sam2_video_hiera_tiny@random --frames 30 --side 512 [--device cuda]

`--side` is the clip's longest side (SAM 2 resizes every frame to its 1024 × 1024 input whatever the clip's size).
"""

from __future__ import annotations

import argparse
import platform
import resource
import time

import numpy as np
import torch

from core.engine import Engine
from core.video import VideoTracker


def disc_clip(frames: int, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    yy, xx = np.mgrid[:h, :w]
    background = (((yy // 32 + xx // 32) % 2) * 60 + 60).astype(np.uint8)[..., None].repeat(3, axis=2)
    out = np.empty((frames, h, w, 3), np.uint8)
    for t in range(frames):
        cx = w * (0.15 + 0.7 * t / max(frames - 1, 1))
        disc = (xx - cx) ** 2 + (yy - h / 2) ** 2 < (h / 6) ** 2
        out[t] = np.where(disc[..., None], np.array([230, 60, 40], np.uint8), background)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="sam2_video_hiera_tiny@random")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--side", type=int, default=512)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    engine = Engine(device=args.device)
    loaded = engine.video_model(args.model)
    size = (args.side * 9 // 16 // 2 * 2, args.side)
    frames = disc_clip(args.frames, size)
    tracker = VideoTracker(loaded.adapter, frames, loaded.lock)
    start = time.perf_counter()
    tracker.add_prompt(0, 1, points=np.array([[size[1] * 0.15, size[0] / 2]]))
    first = time.perf_counter() - start
    run = tracker.propagate("forward")
    cuda = engine.device.type == "cuda"
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        f"{args.model} on {engine.device} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} "
        f"threads): clip {args.frames} frames {size[1]}×{size[0]}; first click {first:.2f} s; propagation "
        f"{run.done} frames in {run.seconds:.1f} s = {run.frames_per_second:.2f} frames/s; "
        f"peak GPU memory {peak:.2f} GiB; peak RSS {rss:.2f} GiB"
    )


if __name__ == "__main__":
    main()
