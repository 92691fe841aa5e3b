"""Benchmark SAM clicks with a cached image embedding, in process and in a real browser.

In process, for each model: (a) `Engine.sam_predict` alone, 20 clicks at random points, each feeding the previous
mask's logits back in as the page does; (b) one click as the page serves it: predict, overlay at canvas size, JPEG.
With --browser: (c) the time from a mouse click on the Segment page's image (chromium through Playwright, against
`streamlit run`) to the prompt widget showing the new overlay. Full-size models run with seeded random weights
when their checkpoints are absent; the one-off image embedding (~35 s for ViT-B on a 2-core CPU) is not timed.
Run from the repository root:

    .venv/bin/python -m bench.bench_segment [--models sam_tiny sam_vit_b@random] [--browser]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("VFM_LENS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.bench_matching import report, timings_ms  # noqa: E402
from components.prompt_canvas import CanvasFrame  # noqa: E402
from core.analysis.imaging import resize_map  # noqa: E402
from core.analysis.masks import canvas_background  # noqa: E402
from core.data import load_samples  # noqa: E402
from core.engine import Engine  # noqa: E402
from core.models.sam import SamPrompt  # noqa: E402

# Installed before the app loads: timestamps of WebSocket sends and receipts (with sizes), and of data-URL images
# being set and loaded (the prompt widget decodes each new background in an Image before it shows it). Read back per click by `_TIMELINE`.
_TRACE = """(() => {
  const t = window.__vfmTrace = {send: [], recv: [], img: []};
  const Base = window.WebSocket;
  window.WebSocket = class extends Base {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (e) => t.recv.push([performance.now(), e.data.byteLength ?? e.data.length]));
    }
    send(data) { t.send.push([performance.now(), data.byteLength ?? data.length]); return super.send(data); }
  };
  const src = Object.getOwnPropertyDescriptor(HTMLImageElement.prototype, 'src');
  Object.defineProperty(HTMLImageElement.prototype, 'src', {
    configurable: true, get() { return src.get.call(this); },
    set(v) {
      if (typeof v === 'string' && v.startsWith('data:image')) {
        const entry = [performance.now(), null];
        t.img.push(entry);
        this.addEventListener('load', () => { entry[1] = performance.now(); }, {once: true});
      }
      src.set.call(this, v);
    },
  });
})()"""
# Empties the trace before a click (then `tests.browser.drive.REDRAW_PROBE` times the click's redraw).
_CLEAR = "() => { const t = window.__vfmTrace; t.send.length = t.recv.length = t.img.length = 0; }"
# One click's milestones in ms after its pointerdown (null when absent). The widget's background is the only
# message over 20 kB in a click's rerun.
_TIMELINE = """() => {
  const p = window.__vfmProbe, t = window.__vfmTrace, at = (x) => (x == null ? null : x - p.down);
  const big = t.recv.find(([, n]) => n > 20000), img = t.img.find(([s]) => s >= p.down);
  return {origin: performance.timeOrigin + p.down, send: at(t.send[0]?.[0]), first: at(t.recv[0]?.[0]), big: at(big?.[0]), bigKB: big ? big[1] / 1e3 : null,
          last: at(t.recv.at(-1)?.[0]), messages: t.recv.length, kB: t.recv.reduce((a, [, n]) => a + n, 0) / 1e3,
          imgSet: at(img?.[0]), imgLoaded: at(img?.[1]), drawn: at(p.drawn)};
}"""
# Milestones → the parts of a click, as (label, start milestone, end milestone).
_PARTS = (
    ("pointerdown → widget sends", None, "send"),
    ("send → first reply (rerun starts)", "send", "first"),
    ("send → background message (decoder + JPEG + ...)", "send", "big"),
    ("background message → image src set (frontend)", "big", "imgSet"),
    ("image src set → loaded (decode)", "imgSet", "imgLoaded"),
    ("image loaded → new pixels in a frame", "imgLoaded", "drawn"),
    ("send → last message of the rerun", "send", "last"),
    ("pointerdown → new pixels (total)", None, "drawn"),
)


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
        prediction = engine.sam_predict(
            embedding, model, SamPrompt(points[i : i + 1], np.array([1]), None, previous[0])
        )
        previous[0] = prediction.logits[[int(np.argmax(prediction.scores))]]
        return prediction

    report("(a) Engine.sam_predict, one click", timings_ms(click, clicks))
    frame = CanvasFrame.fit(image.shape[:2])
    display = resize_map(image, (frame.height, frame.width)).round().astype(np.uint8)

    def click_and_draw(i: int) -> None:
        prediction = click(i)
        canvas_background(display, [prediction.masks[int(np.argmax(prediction.scores))]], [(30, 144, 255)], 0.5, 2)

    report("(b) click + overlay + JPEG at canvas size", timings_ms(click_and_draw, clicks))


# The segmentation fragment's parts, as (label, function in components.segment_view); timed by wrapping them.
_FRAGMENT_PARTS = (
    ("decoder and prompt bookkeeping (decode_received)", "decode_received"),  # SegmentSession.decode
    ("overlay + JPEG (canvas_background)", "canvas_background"),
    ("candidates (_show_candidates)", "_show_candidates"),
    ("kept objects (_show_kept)", "_show_kept"),
    ("exports (_show_exports)", "_show_exports"),
)


def bench_fragment(profile: str, clicks: int) -> None:
    """The Segment page's fragment body in AppTest, split into its parts, for clicks that add one point each
    (as the browser bench clicks); "prompt_canvas" is the widget call with its data-URL encoding and proto."""
    os.environ["VFM_LENS_PROFILE"] = profile
    from streamlit.testing.v1 import AppTest

    import components.segment_view as view
    from tests.pages.test_segment import PAGE
    from tests.widgets import send_trigger

    spent: dict[str, list[float]] = {}

    def timed(name: str, fn):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent.setdefault(name, []).append((time.perf_counter() - start) * 1e3)

        return wrapper

    at = AppTest.from_file(PAGE, default_timeout=600).run()
    names = [name for _, name in _FRAGMENT_PARTS] + ["prompt_canvas", "_segmenter"]
    originals = {name: getattr(view, name) for name in names}
    try:
        for name, fn in originals.items():
            setattr(view, name, timed(name, fn))
        rng = np.random.default_rng(0)
        for _ in range(clicks + 2):
            xy = [float(v) for v in rng.uniform([0.1, 0.2], [0.9, 0.9])]
            send_trigger(at, "vfm_prompt_canvas", "prompt", {"kind": "point", "xy": xy, "positive": True})
    finally:
        for name, fn in originals.items():
            setattr(view, name, fn)
    print(f"\nfragment body in AppTest, profile {profile}, {clicks} clicks (after 2 untimed):")
    for label, name in (
        *_FRAGMENT_PARTS,
        ("prompt_canvas (data URL, proto)", "prompt_canvas"),
        ("whole fragment", "_segmenter"),
    ):
        report(f"    {label}", np.array(spent[name][-clicks:]))


def bench_browser(profile: str, clicks: int, startup_s: float) -> None:
    """Click the Segment page's image in chromium; time until the widget shows a new overlay, and the parts of
    that time from the page's WebSocket messages and image loads."""
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import _chromium
    from tests.browser.drive import REDRAW_PROBE
    from tests.browser.server import CHROMIUM_ARGS, serve

    with serve(VFM_LENS_PROFILE=profile) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.add_init_script(_TRACE)
        page.goto(url)
        page.get_by_role("link", name="Segment").first.click()
        started = time.perf_counter()
        target = page.locator(".vfm-prompt-canvas").first
        target.wait_for(timeout=startup_s * 1000)  # the embedding is computed before the widget appears
        widget = target.element_handle()
        page.wait_for_function("el => el.querySelector('img').complete", arg=widget, timeout=30_000)
        print(
            f"\nbrowser, profile {profile}: page ready after {time.perf_counter() - started:.1f} s (embedding included)"
        )
        box = target.bounding_box()
        rng = np.random.default_rng(0)
        times, timelines, misses = [], [], 0
        for _ in range(clicks + 2):
            page.wait_for_timeout(300)  # the previous rerun's last messages
            x, y = rng.uniform([0.1, 0.2], [0.9, 0.9]) * [box["width"], box["height"]]
            page.evaluate(_CLEAR)
            widget.evaluate(REDRAW_PROBE)
            start = time.perf_counter()
            page.mouse.click(box["x"] + x, box["y"] + y)
            try:
                page.wait_for_function("() => window.__vfmProbe.drawn !== null", polling=50, timeout=15_000)
                times.append((time.perf_counter() - start) * 1e3)
                page.wait_for_timeout(200)
                timelines.append(page.evaluate(_TIMELINE))
            except Exception:  # noqa: BLE001 - the same overlay again: no change to wait for
                misses += 1
        browser.close()
    report(f"(c) browser click → new overlay ({misses} unchanged)", np.array(times[2:]))
    report_timelines(timelines[2:])
    if os.environ.get("VFM_BENCH_TIMELINES"):
        Path(os.environ["VFM_BENCH_TIMELINES"]).write_text(json.dumps(timelines, indent=1))


def report_timelines(timelines: list[dict]) -> None:
    """Medians and p95s of the parts of a click in the page's own clock (ms after pointerdown)."""
    for label, a, b in _PARTS:
        ms = [t[b] - (t[a] if a else 0) for t in timelines if t[b] is not None and (a is None or t[a] is not None)]
        if ms:
            report(f"    {label}", np.array(ms))
    for name in ("messages", "kB", "bigKB"):
        values = [t[name] for t in timelines if t[name] is not None]
        print(f"    {name} per click: median {np.median(values):.1f}" if values else f"    {name}: none")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=["sam_tiny", "sam_vit_b@random"])
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--browser", action="store_true", help="also time clicks in chromium (tiny and default)")
    parser.add_argument("--profiles", nargs="+", default=["tiny", "default"], help="with --browser")
    parser.add_argument("--fragment", action="store_true", help="time the page's fragment parts in AppTest")
    parser.add_argument("--startup", type=float, default=300, help="seconds to wait for the page and embedding")
    args = parser.parse_args()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}, load average {load}")
    for model in args.models:
        bench_engine(model, args.clicks)
    if args.fragment:
        for profile in args.profiles:
            bench_fragment(profile, args.clicks)
    if args.browser:
        for profile in args.profiles:
            bench_browser(profile, args.clicks, args.startup)


if __name__ == "__main__":
    main()
