"""Benchmark SAM clicks with a cached image embedding, in process and in a real browser.

In process, for each model: (a) `Engine.sam_predict` alone, 20 clicks at random points, each feeding the previous
mask's logits back in as the page does; (b) one click as the page serves it: predict, overlay at canvas size, JPEG.
With --browser: (c) the time from a mouse click on the Segment page's canvas (chromium through Playwright, against
`streamlit run`) to a changed overlay on the canvas's background. Full-size models run with seeded random weights
when their checkpoints are absent; the one-off image embedding (~35 s for ViT-B on a 2-core CPU) is not timed.
Run from the repository root:

    .venv/bin/python -m bench.bench_segment [--models sam_tiny sam_vit_b@random] [--browser]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("VFM_LENS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.bench_matching import report, timings_ms  # noqa: E402
from components.segment_view import CanvasFrame, canvas_background  # noqa: E402
from core.analysis.imaging import resize_map  # noqa: E402
from core.data import load_samples  # noqa: E402
from core.engine import Engine  # noqa: E402

# A checksum of the canvas background's pixels (every 101st byte), read in the page.
_PIXELS = """el => { const d = el.getContext('2d').getImageData(0, 0, el.width, el.height).data; let s = 0;
  for (let i = 0; i < d.length; i += 101) s = (s * 31 + d[i]) % 1000000007; return s; }"""


def bench_engine(model: str, clicks: int) -> None:
    engine = Engine(cache=None)
    image = load_samples().items[0].image
    start = time.perf_counter()
    embedding = engine.sam_embedding(image, model)
    print(f"\n{model} on {engine.device.type}: image embedding {time.perf_counter() - start:.1f} s (once, not timed)")
    rng = np.random.default_rng(0)
    h, w = image.shape[:2]
    points = rng.uniform([0, 0], [w, h], size=(clicks + 3, 2)).astype(np.float32)
    previous: list = [None]

    def click(i: int):
        prediction = engine.sam_predict(embedding, model, points[i : i + 1], np.array([1]), mask_input=previous[0])
        previous[0] = prediction.logits[[int(np.argmax(prediction.scores))]]
        return prediction

    report("(a) Engine.sam_predict, one click", timings_ms(click, clicks))
    frame = CanvasFrame.fit(image.shape[:2])
    display = resize_map(image, (frame.height, frame.width)).round().astype(np.uint8)

    def click_and_draw(i: int) -> None:
        prediction = click(i)
        canvas_background(display, [prediction.masks[int(np.argmax(prediction.scores))]], [(30, 144, 255)], 0.5, 2)

    report("(b) click + overlay + JPEG at canvas size", timings_ms(click_and_draw, clicks))


def bench_browser(profile: str, clicks: int, startup_s: float) -> None:
    """Click the Segment page's canvas in chromium; time until its background shows a new overlay."""
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import _chromium
    from tests.browser.server import CHROMIUM_ARGS, serve

    with serve(VFM_LENS_PROFILE=profile) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(url)
        page.get_by_role("link", name="Segment").first.click()
        started = time.perf_counter()
        target = page.locator("canvas.upper-canvas").first
        target.wait_for(timeout=startup_s * 1000)  # the embedding is computed before the canvas appears
        background = page.locator("canvas.dc-background-canvas").first.element_handle()
        page.wait_for_function(f"el => ({_PIXELS})(el) !== 0", arg=background, timeout=30_000)
        print(
            f"\nbrowser, profile {profile}: page ready after {time.perf_counter() - started:.1f} s (embedding included)"
        )
        box = target.bounding_box()
        rng = np.random.default_rng(0)
        times, misses = [], 0
        for _ in range(clicks + 2):
            before = page.evaluate(_PIXELS, background)
            x, y = rng.uniform([0.1, 0.2], [0.9, 0.9]) * [box["width"], box["height"]]  # below the toolbar
            start = time.perf_counter()
            page.mouse.click(box["x"] + x, box["y"] + y)
            try:
                page.wait_for_function(
                    f"([el, before]) => ({_PIXELS})(el) !== before",
                    arg=[background, before],
                    polling="raf",
                    timeout=15_000,
                )
                times.append((time.perf_counter() - start) * 1e3)
            except Exception:  # noqa: BLE001 - the same overlay again: no change to wait for
                misses += 1
        browser.close()
    report(f"(c) browser click → new overlay ({misses} unchanged)", np.array(times[2:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=["sam_tiny", "sam_vit_b@random"])
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--browser", action="store_true", help="also time clicks in chromium (tiny and default)")
    parser.add_argument("--profiles", nargs="+", default=["tiny", "default"], help="with --browser")
    parser.add_argument("--startup", type=float, default=300, help="seconds to wait for the page and embedding")
    args = parser.parse_args()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}, load average {load}")
    for model in args.models:
        bench_engine(model, args.clicks)
    if args.browser:
        for profile in args.profiles:
            bench_browser(profile, args.clicks, args.startup)


if __name__ == "__main__":
    main()
