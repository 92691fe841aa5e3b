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
and first images on the page 0.70 s after the mouse-up (1.0–1.6 s before the big map froze the imported objects).

`--app` times the Stored datasets page itself on a stored dataset of `--rows` rows (written once under `--folder`
with core.store, real image files shared by the rows): open it, project and draw, `--lassos` lassos of ~`--lasso`
points (mouse-up → the count and the first image on the page, timed in the page), a click on one point (its k-NN
search), and the Streamlit server's RSS and peak RSS (VmHWM, from /proc) after each step:

    .venv/bin/python -m bench.bench_bigmap --app [--rows 1000000] [--dim 384] [--files 4000] [--lassos 5]

Measured 2026-12-04 (2 shared cores, load average 3.4–4.0), 1,000,000 rows: lasso p50 252 ms (7 lassos), a click's
neighbours 0.92 s, server peak RSS 3.67 GB (docs/SCALE.md).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import shutil
import time
from pathlib import Path

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


# ---- in the app (--app) -------------------------------------------------------------------------------
APP_CLASSES = 10


def write_app_store(folder: Path, n: int, dim: int, files: int, seed: int = 0) -> tuple[Path, Path]:
    """(the data root, the stored dataset) under `folder`: `files` real 64-px PNGs in 10 class folders, shared by
    the `n` rows (each row a random file of its class), `dim`-D float32 vectors in 10 class clusters, written with
    core.store in 100,000-row commits and indexed as `core.batch embed` does. Reused when already written."""
    root, done = folder / "data", folder / f"written_{n}_{dim}_{files}"
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        child = multiprocessing.get_context("spawn").Process(target=_write_app_store, args=(root, n, dim, files, seed))
        child.start()  # its own process: the index it builds and keeps loaded is freed with it
        child.join()
        if child.exitcode:
            raise RuntimeError(f"writing the stored dataset failed ({child.exitcode})")
        done.touch()
    return root, root / "db"


def _write_app_store(root: Path, n: int, dim: int, files: int, seed: int) -> None:
    from core import store
    from tests.scale.conftest import write_images

    classes = tuple(f"class{c}" for c in range(APP_CLASSES))
    paths = np.array(list(write_images(root / "images", files, classes=classes, side=64)))  # file i: class i % 10
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(APP_CLASSES, dim)).astype(np.float32) * 3
    start = time.perf_counter()
    for first in range(0, n, 100_000):
        size = min(100_000, n - first)
        label = rng.integers(0, APP_CLASSES, size)
        which = label + APP_CLASSES * rng.integers(0, files // APP_CLASSES, size)
        vectors = centres[label] + rng.normal(size=(size, dim)).astype(np.float32)
        ids = [f"id{i:07d}" for i in range(first, first + size)]
        rows = store.images_rows(ids, paths[which], [classes[c] for c in label], "clip_tiny", "random", vectors)
        store.append(root / "db", store.IMAGES, rows)
    print(f"wrote {n:,} rows in {time.perf_counter() - start:.0f} s; {store.compact_and_index(root / 'db')}")


def server_pid(port: int) -> int:
    """The pid of this process's child `streamlit run` serving `port`."""
    for entry in Path("/proc").iterdir():
        try:
            if (
                not entry.name.isdigit()
                or int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) != os.getpid()
            ):
                continue
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"streamlit" in command and str(port).encode() in command:
            return int(entry.name)
    raise RuntimeError(f"no streamlit child on port {port}")


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (the peak so far) of `pid`, in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {name: int(fields[name].split()[0]) / 1024 for name in ("VmRSS", "VmHWM")}


_PROBE = """() => {
  // mouse-up → the script run starts, the selection's count and its first image (loaded) are on the page
  const view = window.__vfmBigMaps.get('stored_map'), app = document.querySelector('[data-testid=stApp]');
  const probe = {up: null, started: null, counted: null, shown: null, finished: null, count: null};
  window.__lassoProbe = probe;
  window.addEventListener('pointerup', () => { probe.up = performance.now(); }, {capture: true, once: true});
  const tick = () => {
    const now = performance.now();
    if (probe.up !== null && view.selected) {
      probe.count = view.selected.length;
      const label = `${probe.count.toLocaleString('en-US')} selected`, caption = `row ${view.selected[0]}`;
      const state = app.getAttribute('data-test-script-state');
      if (probe.started === null && state === 'running') probe.started = now;
      if (probe.started !== null && probe.finished === null && state !== 'running') probe.finished = now;
      if (probe.counted === null
          && [...document.querySelectorAll('[data-testid=stMarkdownContainer] strong')].some(
               (e) => e.textContent === label)) probe.counted = now;
      if (probe.shown === null && [...document.querySelectorAll('[data-testid=stImageContainer]')].some(
            (e) => e.textContent.trim() === caption
                   && [...e.querySelectorAll('img')].some((i) => i.complete && i.naturalWidth > 0))) probe.shown = now;
      if (probe.counted !== null && probe.shown !== null && probe.finished !== null) return;
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""
_RADIUS = """([index, target]) => {
  // the radius (px) of the circle around point `index` that holds `target` points
  const v = window.__vfmBigMaps.get('stored_map'), cx = v.x[index], cy = v.y[index];
  const d = new Float32Array(v.n);
  for (let i = 0; i < v.n; i++) d[i] = (v.x[i] - cx) ** 2 + (v.y[i] - cy) ** 2;
  d.sort();
  return Math.sqrt(d[target]) * v.k;
}"""


def draw_lasso(page, polygon: np.ndarray) -> None:
    """In lasso mode, drag the mouse along `polygon` (V, 2 page coordinates) back to its start; the button stays down."""
    page.get_by_role("button", name="Lasso", exact=True).click()
    page.mouse.move(*polygon[0])
    page.mouse.down()
    for x, y in polygon[1:]:
        page.mouse.move(x, y)
    page.mouse.move(*polygon[0])


def bench_app(browser, args) -> dict:
    """The Stored datasets page on an `args.rows`-row stored dataset: open it, project every row (PCA), lasso
    ~`args.lasso` points `args.lassos` times, click one point (its k-NN search); the server's memory at each step."""
    from tests.browser.drive import new_page, open_page, rerun, wait_idle
    from tests.browser.server import serve

    root, db = write_app_store(Path(args.folder), args.rows, args.dim, args.files)
    out: dict = {"memory": {}, "lassos": []}
    with serve(VFM_LENS_DATA_ROOTS=str(root)) as url:
        pid = server_pid(int(url.rsplit(":", 1)[1]))
        out["memory"]["started"] = memory_mb(pid)
        page = new_page(browser, url, 300_000)
        open_page(page, "Stored datasets")
        out["memory"]["page"] = memory_mb(pid)
        start = time.perf_counter()
        with rerun(page, timeout_ms=300_000):
            page.get_by_role("textbox", name="…or its folder").fill(str(db))
            page.get_by_role("textbox", name="…or its folder").press("Enter")
        out["open"] = time.perf_counter() - start
        out["memory"]["opened"] = memory_mb(pid)
        start = time.perf_counter()
        page.get_by_role("button", name="Project every row").click()
        page.locator(".vfm-big-map[data-drawn='1']").wait_for()
        out["drawn"] = time.perf_counter() - start
        wait_idle(page, timeout_ms=300_000)
        out["memory"]["drawn"] = memory_mb(pid)
        page.locator(".vfm-big-map canvas").evaluate("e => e.scrollIntoView({block: 'center'})")
        box = page.locator(".vfm-big-map canvas").bounding_box()
        rng = np.random.default_rng(1)
        while len(out["lassos"]) < args.lassos:
            index = int(rng.integers(args.rows))
            cx, cy = page.evaluate(f"() => window.__vfmBigMaps.get('stored_map').toPage({index})")
            radius = page.evaluate(_RADIUS, [index, args.lasso])
            if not (box["x"] + radius + 5 < cx < box["x"] + box["width"] - radius - 5
                    and box["y"] + radius + 5 < cy < box["y"] + box["height"] - radius - 5):  # fmt: skip
                continue  # the circle would leave the map
            angles, outer = (
                np.linspace(0, 2 * np.pi, 40, endpoint=False),
                radius / np.cos(np.pi / 40),
            )  # holds the circle
            draw_lasso(page, np.column_stack([cx + outer * np.cos(angles), cy + outer * np.sin(angles)]))
            page.evaluate(_PROBE)
            with rerun(page):
                page.mouse.up()
            page.wait_for_function(
                "() => ['shown', 'counted', 'finished'].every((k) => window.__lassoProbe[k] !== null)", timeout=60_000
            )
            probe = page.evaluate("window.__lassoProbe")
            out["lassos"].append({k: probe[k] - probe["up"] if k != "count" else probe[k] for k in probe if k != "up"})
        out["memory"]["lassoed"] = memory_mb(pid)
        page.get_by_role("button", name="Pan / zoom", exact=True).click()
        index = int(rng.integers(args.rows))
        start = time.perf_counter()
        with rerun(page):
            page.mouse.click(*page.evaluate(f"() => window.__vfmBigMaps.get('stored_map').toPage({index})"))
        page.get_by_text("Picked:").first.wait_for()
        page.locator("[data-testid=stDataFrame]").first.wait_for()
        out["search"] = time.perf_counter() - start
        out["memory"]["searched"] = memory_mb(pid)
        assert page.locator("[data-testid=stException]").count() == 0
        page.context.close()
    return out


def print_app(r: dict, args) -> None:
    lassos = r["lassos"]
    shown = np.array([x["shown"] for x in lassos])
    print(
        f"app, {args.rows:,} stored rows ({args.dim}-D, {args.files:,} image files): opened in {r['open']:.1f} s, "
        f"projected (PCA) and drawn {r['drawn']:.1f} s after the click; {len(lassos)} lassos of "
        f"{min(x['count'] for x in lassos):,}–{max(x['count'] for x in lassos):,} points: mouse-up → count and first "
        f"image shown p50 {np.median(shown):.0f} ms (min {shown.min():.0f}, max {shown.max():.0f}; run started p50 "
        f"{np.median([x['started'] for x in lassos]):.0f} ms, count shown p50 "
        f"{np.median([x['counted'] for x in lassos]):.0f} ms); a click on one point → its neighbours shown "
        f"{r['search']:.2f} s"
    )
    print("each lasso (ms after the mouse-up):", [{k: round(v) for k, v in x.items()} for x in lassos])
    print("server memory (MB):", {step: {k: round(v) for k, v in m.items()} for step, m in r["memory"].items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--lasso", type=int, default=10_000)
    parser.add_argument("--plotly", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--app", action="store_true", help="time a lasso and measure memory in the app instead")
    parser.add_argument("--rows", type=int, default=1_000_000, help="--app: rows of the stored dataset")
    parser.add_argument("--dim", type=int, default=384, help="--app: its vectors' dimension")
    parser.add_argument("--files", type=int, default=4000, help="--app: real image files the rows share")
    parser.add_argument("--lassos", type=int, default=5, help="--app: lassos timed")
    parser.add_argument("--folder", default="/tmp/vfm-bench-bigmap-app", help="--app: where the dataset is kept")
    args = parser.parse_args()
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}, headless Chromium")
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), headless=True, args=CHROMIUM_ARGS)
        if args.app:
            print_app(bench_app(browser, args), args)
            browser.close()
            return
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
