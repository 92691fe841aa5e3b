"""Shared fixtures of the scale tests: synthetic image folders and one local Ray (num_cpus=2) per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def write_images(root: Path, n: int, classes: tuple[str, ...] = ("cats", "dogs"), seed: int = 0, side: int = 32):
    """n random side×side PNGs (lossless: decoding gives the array back) in class folders; returns {path: array}."""
    rng = np.random.default_rng(seed)
    written = {}
    for i in range(n):
        folder = root / classes[i % len(classes)]
        folder.mkdir(parents=True, exist_ok=True)
        image = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        path = folder / f"img_{i:05d}.png"
        Image.fromarray(image).save(path)
        written[str(path.resolve())] = image
    return written


@pytest.fixture(scope="session")
def local_ray():
    import ray

    from core.batch import init_ray

    init_ray(num_cpus=2)
    yield
    ray.shutdown()
