"""Driving Streamlit in Playwright: wait for reruns, open pages, read pixels of elements.

Reruns are followed through the `data-test-script-state` attribute Streamlit keeps on its app root: a
MutationObserver (installed in every page by `WATCH_RUNS`) counts finished runs, so "wait until the rerun
this click started has finished" needs no sleep. A run too short for React to render its "running" state leaves
no trace there, so the server's ScriptFinished messages are counted too: a run ends when either is seen. The
"Running…" status widget is no signal: Streamlit shows it only for runs longer than half a second.
"""

from __future__ import annotations

import io
import time
from contextlib import contextmanager

import numpy as np
from PIL import Image

WATCH_RUNS = """
(() => {
  // `finished` grows at every end of a run seen either way (most are seen both ways: only "> before" is meaningful)
  const runs = {byState: 0, byMessage: 0, last: performance.now(),
                get finished() { return this.byState + this.byMessage; }};
  window.__vfmRuns = runs;
  new MutationObserver((records) => {
    for (const r of records) {
      runs.last = performance.now();
      if (r.oldValue === 'running') runs.byState += 1;
    }
  }).observe(document, {subtree: true, attributes: true, attributeOldValue: true,
                        attributeFilter: ['data-test-script-state']});
  // A run so short that React never renders its "running" state changes no attribute: count the server's
  // ScriptFinished messages too. Streamlit sends one as a ForwardMsg of its metadata (field 2) and the status (field 6,
  // a varint: 0x30 and 0, 1 or 3; 2, "finished early for a rerun", is not a finished run) and nothing else.
  const finishedStatus = (bytes) => {
    const n = bytes.length, start = n === 2 ? 0 : bytes[0] === 0x12 && bytes[1] < 0x80 && bytes[1] + 4 === n ? n - 2 : -1;
    return start >= 0 && bytes[start] === 0x30 && bytes[start + 1] <= 3 ? bytes[start + 1] : -1;
  };
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (event) => {
        const data = event.data;
        if (!(data instanceof ArrayBuffer) || data.byteLength > 131) return;
        const status = finishedStatus(new Uint8Array(data));
        if (status >= 0 && status !== 2) { runs.byMessage += 1; runs.last = performance.now(); }
      });
    }
  };
})();
"""
_IDLE = """([before, quietMs]) => {
  const runs = window.__vfmRuns, app = document.querySelector('[data-testid=stApp]');
  return !!runs && !!app && runs.finished > before && app.getAttribute('data-test-script-state') === 'notRunning'
    && performance.now() - runs.last > quietMs;
}"""
RUN_TIMEOUT_MS = 120_000


def new_page(browser, url: str, timeout_ms: int = 60_000):
    """A fresh 1400 × 1000 page of `browser` at `url`, its reruns counted (`WATCH_RUNS`)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(WATCH_RUNS)
    page = context.new_page()
    page.set_default_timeout(timeout_ms)
    page.goto(url)
    return page


def finished_runs(page) -> int:
    return page.evaluate("window.__vfmRuns ? window.__vfmRuns.finished : 0")


def wait_idle(page, before: int = 0, timeout_ms: int = RUN_TIMEOUT_MS, quiet_ms: int = 400) -> None:
    """Wait until more than `before` runs have finished and the app has been idle for `quiet_ms`."""
    page.wait_for_function(_IDLE, arg=[before, quiet_ms], timeout=timeout_ms, polling=100)


@contextmanager
def rerun(page, timeout_ms: int = RUN_TIMEOUT_MS):
    """`with rerun(page): <action>` returns once the rerun(s) the action started have finished."""
    before = finished_runs(page)
    yield
    wait_idle(page, before, timeout_ms)


def open_page(page, title: str) -> None:
    """Click `title` in the sidebar and wait for its heading and the end of its run."""
    wait_idle(page)  # the first load
    if page.get_by_role("heading", name=title, exact=True).count():  # already there: its link may start no rerun
        return
    with rerun(page):
        page.get_by_role("link", name=title).first.click()
    page.get_by_role("heading", name=title, exact=True).first.wait_for()


def upload(page, files: dict[str, bytes], index: int = 0) -> None:
    """Put (name → bytes) into the `index`-th file uploader of the page and wait until it lists them."""
    payload = [{"name": name, "mimeType": "application/octet-stream", "buffer": data} for name, data in files.items()]
    with rerun(page):
        page.locator("[data-testid=stFileUploaderDropzoneInput]").nth(index).set_input_files(payload)
    for name in files:
        page.get_by_text(name, exact=True).first.wait_for()


# ---- Embedding Scatter --------------------------------------------------------------------------
_POINT = """(gd, [trace, i]) => {
  const layout = gd._fullLayout, data = gd._fullData[trace], box = gd.getBoundingClientRect();
  return [box.left + layout._size.l + layout.xaxis.d2p(data.x[i]), box.top + layout._size.t + layout.yaxis.d2p(data.y[i])];
}"""


def open_digits_scatter(page, per_class: int = 10):
    """Embedding Scatter on the built-in digits: press Embed and project; the first chart's locator, centred."""
    open_page(page, "Embedding Scatter")
    page.get_by_text("Digits (scikit-learn)").first.click()
    page.get_by_label("Images per class", exact=True).fill(str(per_class))
    with rerun(page):
        page.get_by_role("button", name="Embed and project").click()
    page.get_by_role("heading", name="Scatter", exact=True).wait_for()
    chart = page.locator("[data-testid=stPlotlyChart]").first
    chart.evaluate("e => e.scrollIntoView({block: 'center'})")
    return chart


def point_position(chart, trace: int, index: int) -> tuple[float, float]:
    """Page coordinates (x, y) of point `index` of 2-D scatter trace `trace` in `chart`."""
    return tuple(chart.locator(".js-plotly-plot").first.evaluate(_POINT, [trace, index]))


# ---- pixels -------------------------------------------------------------------------------------
def pixels(locator) -> np.ndarray:
    """A screenshot of the element as (H, W, 3) int16 RGB (the page as drawn, overlays included)."""
    return np.asarray(Image.open(io.BytesIO(locator.screenshot(animations="disabled"))).convert("RGB"), np.int16)


def settled_pixels(locator, differs_from: np.ndarray | None = None, timeout_s: float = 30.0) -> np.ndarray:
    """`pixels` once two screenshots in a row are identical (images decoded, charts redrawn).

    With `differs_from`, a picture still equal to it does not count yet (a redraw may be on its way); if
    none differs within `timeout_s`, the unchanged picture is returned for the caller's assertion to reject.
    """
    previous, deadline = pixels(locator), time.monotonic() + timeout_s
    while True:
        time.sleep(0.3)
        current = pixels(locator)
        stable = current.shape == previous.shape and np.array_equal(current, previous)
        if stable and (differs_from is None or changed_share(differs_from, current) > 0.0005):
            return current
        if time.monotonic() > deadline:
            if stable:
                return current
            raise AssertionError(f"{locator} kept changing for {timeout_s:.0f} s")
        previous = current


def _common(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both crops cut to their common size (an element's box can differ by a sub-pixel row)."""
    h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
    return a[:h, :w], b[:h, :w]


def changed_share(a: np.ndarray, b: np.ndarray, tolerance: int = 40) -> float:
    """Share of pixels whose largest channel difference exceeds `tolerance` (0–255)."""
    a, b = _common(a, b)
    return float((np.abs(a - b).max(axis=-1) > tolerance).mean())


def share_toward(a: np.ndarray, b: np.ndarray, rgb: tuple[int, int, int], by: float = 40.0) -> float:
    """Share of pixels that moved at least `by` closer to colour `rgb` from `a` to `b` (an overlay laid on)."""
    a, b = _common(a, b)
    target = np.asarray(rgb, np.float32)
    distance = [np.linalg.norm(x.astype(np.float32) - target, axis=-1) for x in (a, b)]
    return float((distance[0] - distance[1] > by).mean())


# ---- redraw latency -----------------------------------------------------------------------------
# Evaluated on the Segment page's prompt widget (components/prompt_canvas.py), arms a probe (`window.__vfmProbe`):
# the time of the next pointerdown, then of the first animation frame in which the widget shows a new background
# (the image with the overlay the server sent back). The widget swaps its background only once the new image is
# decoded, so that frame paints the new pixels.
REDRAW_PROBE = """widget => {
  const img = widget.querySelector('img');
  const probe = {base: img.getAttribute('src'), down: null, drawn: null};
  window.__vfmProbe = probe;
  window.addEventListener('pointerdown', () => { probe.down = probe.down ?? performance.now(); },
                          {capture: true, once: true});
  const tick = () => {
    if (probe.down !== null && img.getAttribute('src') !== probe.base && img.complete) probe.drawn = performance.now();
    else requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""


def write_y4m(path, frames: int = 40, width: int = 160, height: int = 120) -> None:
    """A YUV4MPEG2 clip (Chromium's fake-camera format): a bright disc moving across a textured background."""
    rng = np.random.default_rng(0)
    texture = rng.integers(40, 120, (height, width)).astype(np.uint8)
    yy, xx = np.mgrid[:height, :width]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(frames):
            luma = texture.copy()
            cx = 20 + (width - 40) * i / (frames - 1)
            luma[(xx - cx) ** 2 + (yy - height / 2) ** 2 < 20**2] = 235
            chroma = np.full((height // 2, width // 2), 128, np.uint8)
            f.write(b"FRAME\n" + luma.tobytes() + chroma.tobytes() + chroma.tobytes())


def fake_camera_args(clip) -> list[str]:
    """Chromium flags that make `clip` (a y4m file) the camera and grant the permission without asking."""
    return [
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={clip}",
    ]
