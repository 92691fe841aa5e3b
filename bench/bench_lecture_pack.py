"""Lecture pack: time from starting the server with a pack to the first click on the Segment page answered (mask
drawn in chromium), against the same start without the pack (the SAM image embedding computed on the spot).

    .venv/bin/python -m bench.bench_lecture_pack [--model sam_vit_b@random] [--images 20]

The pack holds 20 real-looking photos (scikit-image's and scikit-learn's samples, crops of them) and the model's
precomputed SAM image embeddings. Numbers go to docs/PERFORMANCE.md with device and date.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from core import lecture_pack
from core.data import load_samples


def _photos(folder: Path, n: int) -> None:
    """`n` photos: the 9 samples, then crops of them (each a different image)."""
    samples = [item.image for item in load_samples().items]
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image = samples[i % len(samples)]
        if i >= len(samples):
            h, w = image.shape[:2]
            image = image[(i * 7) % (h // 4) :, (i * 11) % (w // 4) :]
        Image.fromarray(np.ascontiguousarray(image)).save(folder / f"photo_{i:02d}.jpg", quality=92)


def _first_click(env: dict[str, str], startup_s: float) -> float:
    """Seconds from starting the server to the first click's mask on the Segment page."""
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import _chromium
    from tests.browser.drive import REDRAW_PROBE
    from tests.browser.server import CHROMIUM_ARGS, serve

    started = time.perf_counter()
    with serve(startup_s=startup_s, **env) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(url + "/segment")
        target = page.locator(".vfm-prompt-canvas").first
        target.wait_for(timeout=startup_s * 1000)
        widget = target.element_handle()
        page.wait_for_function("el => el.querySelector('img').complete", arg=widget, timeout=30_000)
        widget.evaluate(REDRAW_PROBE)
        box = target.bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
        page.wait_for_function("() => window.__vfmProbe.drawn !== null", polling=50, timeout=startup_s * 1000)
        seconds = time.perf_counter() - started
        browser.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="sam_vit_b@random")
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--startup", type=float, default=600)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vfm-bench-pack-") as tmp:
        root = Path(tmp)
        _photos(root / "photos", args.images)
        started = time.perf_counter()
        summary = lecture_pack.build_pack([args.model], root / "photos", root / "hall.vfmpack")
        print(f"build: {summary.describe()} ({time.perf_counter() - started:.1f} s)")
        started = time.perf_counter()
        env = lecture_pack.open_pack(summary.path, into=root / "opened")
        print(f"open (extract): {time.perf_counter() - started:.2f} s")
        name = args.model.partition("@")[0]
        plain = {
            "VFM_LENS_PROFILE": "default",
            "VFM_LENS_MODELS": args.model,
            "VFM_LENS_START_IMAGES": env["VFM_LENS_START_IMAGES"],
        }
        with_pack = {**env, "VFM_LENS_PROFILE": "default"}
        print(f"first click with the pack: {_first_click(with_pack, args.startup):.1f} s ({name})")
        print(f"first click without it:   {_first_click(plain, args.startup):.1f} s (image embedding computed)")


if __name__ == "__main__":
    main()
