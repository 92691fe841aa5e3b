"""Live camera analysis speed: frames per second the server can analyse (PCA colours) per model and input size,
on a 640 × 480 frame, without the browser (the page's frames/s is at most this; WebRTC adds its own encode/decode).

    .venv/bin/python -m bench.bench_live [--models dinov2_small@random dinov3_small@random] [--sizes 224 448]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from core.engine import Engine
from core.live import LiveAnalysis, LiveSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["dinov2_small@random", "dinov3_small@random"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[224, 448])
    parser.add_argument("--frames", type=int, default=12)
    args = parser.parse_args()
    engine = Engine(cache=None)
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    print(f"device {engine.device.type}; {args.frames} frames each after 2 warm-up frames")
    for model in args.models:
        for size in args.sizes:
            live = LiveAnalysis(engine, LiveSettings(model, size))
            for _ in range(2):
                live.process(frame)
            times = []
            for _ in range(args.frames):
                start = time.perf_counter()
                live.process(frame)
                times.append(time.perf_counter() - start)
            p50 = float(np.median(times))
            print(f"{model:24s} {size:4d} px: {p50 * 1e3:7.1f} ms p50 per frame → {1 / p50:5.1f} frames/s")


if __name__ == "__main__":
    main()
