"""Click-to-overlay latency on the Segment page, measured in the browser. Printed and saved, never asserted on.

One click = from the pointerdown on the prompt widget to the first animation frame in which it shows a new
background (the image with the mask overlay the server sent back). In between: the widget reports the new point,
Streamlit reruns the segmentation fragment (SAM's mask decoder and a JPEG of the overlay) and the browser decodes
and draws the new background.
"""

import json
import os
import platform
import re
import time

import numpy as np
import pytest

from tests.browser.conftest import ARTIFACTS
from tests.browser.drive import REDRAW_PROBE, finished_runs, open_page, wait_idle

pytestmark = pytest.mark.browser
CLICKS = 20


def _grid(n: int) -> list[tuple[float, float]]:
    """`n` click positions as fractions of the widget, apart from each other."""
    xs, ys = np.linspace(0.15, 0.85, 5), np.linspace(0.3, 0.85, (n + 4) // 5)
    return [(float(x), float(y)) for y in ys for x in xs][:n]


def test_segment_click_to_overlay_latency(page, capsys):
    open_page(page, "Segment")
    page.get_by_text("Click to add a point").wait_for()
    widget = page.locator(".vfm-prompt-canvas").first
    widget.evaluate("e => e.scrollIntoView({block: 'center'})")
    box = widget.bounding_box()

    latencies, decoder = [], []
    for x, y in _grid(CLICKS):
        before = finished_runs(page)
        widget.evaluate(REDRAW_PROBE)
        page.mouse.click(box["x"] + x * box["width"], box["y"] + y * box["height"])
        page.wait_for_function("() => window.__vfmProbe.drawn !== null", timeout=60_000, polling=50)
        latencies.append(page.evaluate("window.__vfmProbe.drawn - window.__vfmProbe.down"))
        wait_idle(page, before)
        caption = page.get_by_text("SAM's mask decoder took").inner_text()
        decoder.append(float(re.search(r"took (\d+) ms", caption).group(1)))

    ms = np.asarray(latencies)
    result = {
        "what": "Segment page: pointerdown on the image → new overlay drawn (Chromium, headless)",
        "clicks": CLICKS,
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "max_ms": round(float(ms.max()), 1),
        "decoder_p50_ms": round(float(np.median(decoder)), 1),
        "latencies_ms": [round(v, 1) for v in latencies],
        "decoder_ms": decoder,
        "profile": "tiny (random-init SAM)",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
        "date": time.strftime("%Y-%m-%d"),
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "latency.json").write_text(json.dumps(result, indent=2) + "\n")
    with capsys.disabled():
        print(
            f"\nSegment click-to-overlay over {CLICKS} clicks: p50 {result['p50_ms']:.0f} ms, "
            f"p95 {result['p95_ms']:.0f} ms (SAM decoder p50 {result['decoder_p50_ms']:.0f} ms) "
            f"→ {ARTIFACTS / 'latency.json'}"
        )
