"""Is the million-point map interactive? Time the big map (components/big_map.py) and plotly in headless Chromium.

The big map's own frontend (the vendored regl-scatterplot bundle + big_map.js) is loaded as the module Streamlit
would load, and given the payload bytes `encode_points` builds for N points in 10 classes, one class a tight blob of
exactly `--lasso` points away from the rest. Timed in the page: the first draw (payload bytes → parsed → points on
screen after the next animation frame), zoom frames (a wheel event on the canvas → the next frame drawn) and
pan frames (pointer drags: the time to draw each frame), then a lasso drawn with the mouse around the blob → the selection's payload decoded in
Python (`decode_rows`, through Playwright's exposed function). Plotly's Embedding Scatter figure
(bench.bench_scatter) at `--plotly` points is timed beside it in the same run.

    .venv/bin/python -m bench.bench_bigmap [--points 1000000] [--lasso 10000] [--plotly 100000] [--repeats 10]

Measured 2026-12-04, x86_64 with 2 CPU cores (shared), headless Chromium, software GL (SwiftShader; the big map
draws on a 2-D canvas and needs no GL), one run:
- big map, 1,000,000 points: payload 8.6 MB (9.0 B/point) built in 445 ms; first draw 102 ms (parse and grid
  index 50 ms, first frame 36 ms); wheel zoom → frame drawn median 17 ms (max 20); pan frame median 14 ms (p95 19);
  lasso around 10,000 points → selection decoded in Python 29 ms after the mouse-up (exactly the 10,000).
- plotly (the Embedding Scatter figure), 100,000 points: figure + JSON 255 ms (3.3 MB); first draw 546 ms; zoom
  median 102 ms; selection redraw median 321 ms.
- regl-scatterplot 1.16.0 (WebGL, the candidate not taken), same machine: 1,000,000 points first draw ~3.5 s, zoom
  and pan frames ~1.1 s; 10,000 points ~80 ms a frame.
End to end in the app (tests/browser/test_big_map.py, 200,000 stored rows): a lasso of ~23,000 points → their count
and first images on the page 1.0–1.6 s after the mouse-up (the rerun reads the images from disk).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import time

import numpy as np
from playwright.sync_api import sync_playwright

from components.big_map import _JS, category_codes, decode_rows, encode_points
from tests.browser.server import CHROMIUM_ARGS

ORIGIN = "http://bench.invalid"
_MOUNT = """async () => {
  const module = await import(URL.createObjectURL(new Blob([window.__js], {type: 'text/javascript'})));
  const t0 = performance.now();
  const bytes = new Uint8Array(await (await fetch('/payload')).arrayBuffer());
  const fetched = performance.now() - t0;
  const parent = document.getElementById('map');
  window.__sent = [];
  const t1 = performance.now();
  module.default({data: bytes, parentElement: parent, key: 'bench',
                  setTriggerValue: (event, value) => { window.__sent.push([event, value, performance.now()]);
                                                       if (event === 'selection') window.__toPython(value); }});
  const view = window.__vfmBigMaps.get('bench');
  await view.ready;
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  return {fetch: fetched, draw: performance.now() - t1, parse: view.timings.parse, gl: view.timings.draw,
          webgl: !!document.createElement('canvas').getContext('webgl2'),
          renderer: (() => { const gl = document.createElement('canvas').getContext('webgl');
                             const ext = gl && gl.getExtension('WEBGL_debug_renderer_info');
                             return ext ? gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) : 'unknown'; })()};
}"""
_ZOOM = """async (repeats) => {
  const view = window.__vfmBigMaps.get('bench'), canvas = view.canvas, r = canvas.getBoundingClientRect();
  const frames = [];
  for (let i = 0; i < repeats; i++) {
    const drawn = new Promise((resolve) => { const done = () => { view.onDraw.delete(done); resolve(); };
                                             view.onDraw.add(done); });
    const t = performance.now();
    canvas.dispatchEvent(new WheelEvent('wheel', {deltaY: i % 2 ? 120 : -120, clientX: r.left + r.width / 2,
                                                  clientY: r.top + r.height / 2, bubbles: true, cancelable: true}));
    await drawn;
    frames.push(performance.now() - t);
  }
  return frames;
}"""
_FRAME_LOG = """() => { const view = window.__vfmBigMaps.get('bench'); window.__draws = [];
  view.onDraw.add(() => window.__draws.push(view.timings.frame)); }"""


def blob_points(n: int, lasso: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) float32 points in 10 classes: 9 Gaussian classes around the origin and class "9", exactly `lasso`
    points in a tight blob at (8, 8), far from the rest (a lasso around it selects exactly those)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 9, n)
    xy = rng.normal(size=(n, 2)) + np.column_stack([np.cos(labels), np.sin(labels)]) * 2.5
    blob = rng.choice(n, lasso, replace=False)
    labels[blob] = 9
    xy[blob] = rng.normal(size=(lasso, 2)) * 0.15 + 8
    return xy.astype(np.float32), labels.astype(str)


def bench_big_map(page, n: int, lasso: int, repeats: int) -> dict:
    xy, labels = blob_points(n, lasso)
    start = time.perf_counter()
    codes, classes = category_codes(labels)
    payload = encode_points(xy, codes, classes, key="bench", height=560)
    build = time.perf_counter() - start
    received: list[tuple[float, np.ndarray]] = []
    page.expose_function("__toPython", lambda value: received.append((time.perf_counter(), decode_rows(value["rows"]))))
    page.route(f"{ORIGIN}/payload", lambda route: route.fulfill(body=payload, content_type="application/octet-stream"))
    page.evaluate("js => { window.__js = js; }", _JS)
    first = page.evaluate(_MOUNT)
    zooms = page.evaluate(_ZOOM, repeats)
    page.evaluate(_FRAME_LOG)
    box = page.locator("#map canvas").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    pans = []
    for i in range(repeats):  # drags: each frame drawn while dragging, timed in the page
        page.evaluate("() => { window.__draws = []; }")
        page.mouse.move(cx, cy)
        page.mouse.down()
        for step in range(1, 6):
            page.mouse.move(cx + step * 12 * (1 if i % 2 == 0 else -1), cy + step * 6)
        page.mouse.up()
        page.wait_for_timeout(150)
        draws = page.evaluate("window.__draws")
        pans += draws
    page.locator("#map button", has_text="Reset view").click()
    page.wait_for_timeout(300)
    # the blob's centre (8, 8) on screen: find it through one blob point's screen position
    blob_index = int(np.flatnonzero(labels == "9")[0])
    bx, by = page.evaluate(f"() => window.__vfmBigMaps.get('bench').toPage({blob_index})")
    page.locator("#map button", has_text="Lasso").click()
    radius = 40
    angles = np.linspace(0, 2 * np.pi, 40)
    page.mouse.move(bx + radius, by)
    page.mouse.down()
    t0 = time.perf_counter()
    for a in angles[1:]:
        page.mouse.move(bx + radius * np.cos(a), by + radius * np.sin(a))
    t_up = time.perf_counter()
    page.mouse.up()
    deadline = time.monotonic() + 30
    while not received and time.monotonic() < deadline:
        page.wait_for_timeout(5)
    back, rows = received[-1] if received else (float("nan"), np.zeros(0, np.int64))
    in_blob = np.isin(rows, np.flatnonzero(labels == "9")).sum() if rows.size else 0
    return {"n": n, "bytes": len(payload), "build": build, **first, "zooms": zooms, "pans": pans,
            "lasso_drag": t_up - t0, "lasso_back": back - t_up, "selected": rows.size, "unique": np.unique(rows).size, "in_blob": int(in_blob)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--lasso", type=int, default=10_000)
    parser.add_argument("--plotly", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}, headless Chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.route(
            f"{ORIGIN}/",
            lambda route: route.fulfill(
                body="<html><body><div id='map' style='width:900px'></div></body></html>", content_type="text/html"
            ),
        )
        page.goto(f"{ORIGIN}/")
        r = bench_big_map(page, args.points, args.lasso, args.repeats)
        print(
            f"big map, {r['n']:,} points ({r['renderer']}): payload {r['bytes'] / 2**20:.1f} MB "
            f"({r['bytes'] / r['n']:.1f} B/point) built in {r['build'] * 1000:.0f} ms; first draw {r['draw']:.0f} ms "
            f"(parse and index {r['parse']:.0f} ms, first frame {r['gl']:.0f} ms); wheel zoom → frame drawn median "
            f"{np.median(r['zooms']):.0f} ms (max {np.max(r['zooms']):.0f}); pan frame (drawn while dragging) median "
            f"{np.median(r['pans']) if r['pans'] else float('nan'):.0f} ms (p95 "
            f"{np.percentile(r['pans'], 95) if r['pans'] else float('nan'):.0f}); lasso around {args.lasso:,} points: "
            f"selection decoded in Python {r['lasso_back'] * 1000:.0f} ms after the mouse-up "
            f"({r['selected']:,} rows, {r['unique']:,} unique, {r['in_blob']:,} of them in the blob)"
        )
        page.close()
        if args.plotly:
            from plotly.offline import get_plotlyjs

            from bench.bench_scatter import _TIME, _figure_json

            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_content(f"<html><body><div id='plot'></div><script>{get_plotlyjs()}</script></body></html>")
            figure, build, size = _figure_json(args.plotly)
            timing = page.evaluate(_TIME, [figure, 5])
            print(
                f"plotly, {args.plotly:,} points: figure + JSON {build * 1000:.0f} ms ({size / 2**20:.1f} MB); first "
                f"draw {timing['draw']:.0f} ms; zoom median {np.median(timing['zooms']):.0f} ms; selection redraw "
                f"median {np.median(timing['selects']):.0f} ms"
            )
        browser.close()


if __name__ == "__main__":
    main()
