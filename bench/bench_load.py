"""A lecture hall on one server: N concurrent browser sessions upload and click (not a test).

Starts its own `streamlit run` on 127.0.0.1 (tiny models; loopback only), opens N sessions in one headless
Chromium (each its own browser context, so its own Streamlit session), and in every session at once:
  1. uploads an image under a name only that session knows, and checks that its thumbnails show its own
     file and no other session's;
  2. opens Segment and clicks CLICKS points (different per session), timing each click to the new overlay;
  3. after every session is done, re-reads its overlay: it must be unchanged (no session's clicks leak into
     another's masks).
Finally the Models page must say the SAM model was loaded once. Bounded: N ≤ 30, an overall deadline.

    .venv/bin/python -m bench.bench_load [--sessions 20] [--clicks 3] [--deadline 600]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import time

import numpy as np
from playwright.async_api import async_playwright

from tests import corpus
from tests.browser.drive import REDRAW_PROBE, WATCH_RUNS
from tests.browser.server import CHROMIUM_ARGS, serve

_SHOWN = ".vfm-prompt-canvas img"  # the Segment widget's background: the image with this session's masks


class _Barrier:
    """Released once every session has finished clicking (or failed), so masks are re-read after all clicks."""

    def __init__(self, parties: int) -> None:
        self.left, self.event = parties, asyncio.Event()

    def arrive(self) -> None:
        self.left -= 1
        if self.left <= 0:
            self.event.set()


async def _session(browser, url: str, n: int, clicks: int, barrier: _Barrier) -> dict:
    try:
        return await _clicks(browser, url, n, clicks, barrier)
    except Exception:
        barrier.arrive()  # a failed session must not hold the others
        raise


async def _clicks(browser, url: str, n: int, clicks: int, barrier: _Barrier) -> dict:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    await context.add_init_script(WATCH_RUNS)
    page = await context.new_page()
    page.set_default_timeout(300_000)
    await page.goto(url)
    mine = f"student_{n:02d}.png"
    await page.locator("[data-testid=stFileUploaderDropzoneInput]").first.set_input_files(
        [{"name": mine, "mimeType": "image/png", "buffer": corpus.encode(corpus.rgb(64, 48, seed=n))}]
    )
    await page.get_by_role("button", name="Add uploaded files").click()
    await page.get_by_text(mine, exact=True).last.wait_for()
    captions = await page.locator("[data-testid=stImageCaption]").all_inner_texts()
    others = [c for c in captions if c.startswith("student_") and c != mine]

    await page.get_by_role("link", name="Segment", exact=True).click()
    await page.get_by_text("Click to add a point").wait_for()
    widget = page.locator(".vfm-prompt-canvas").first
    await widget.evaluate("e => e.scrollIntoView({block: 'center'})")
    box = await widget.bounding_box()
    rng = np.random.default_rng(n)
    latencies = []
    for x, y in rng.uniform(0.2, 0.8, size=(clicks, 2)):
        await widget.evaluate(REDRAW_PROBE)
        await page.mouse.click(box["x"] + x * box["width"], box["y"] + y * box["height"])
        await page.wait_for_function("() => window.__vfmProbe.drawn !== null", timeout=300_000, polling=50)
        latencies.append(await page.evaluate("window.__vfmProbe.drawn - window.__vfmProbe.down"))
    await asyncio.sleep(1.0)  # let the last rerun settle
    mask_before = await page.locator(_SHOWN).first.get_attribute("src")
    barrier.arrive()
    await barrier.event.wait()  # every other session has finished clicking
    mask_after = await page.locator(_SHOWN).first.get_attribute("src")
    return {"others_seen": others, "latencies": latencies, "mask_kept": mask_before == mask_after, "page": page}


async def _run(url: str, sessions: int, clicks: int) -> dict:
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=shutil.which("chromium") or "chromium", headless=True, args=CHROMIUM_ARGS
        )
        barrier = _Barrier(sessions)
        results = await asyncio.gather(*(_session(browser, url, n, clicks, barrier) for n in range(sessions)))
        page = results[0]["page"]
        await page.get_by_role("link", name="Models", exact=True).click()
        try:
            await page.get_by_text("sam_tiny@random").first.wait_for(timeout=300_000)
        finally:
            await page.screenshot(path="test-artifacts/load_models.png", full_page=True)
        loads = await page.locator("li").filter(has_text="@").all_inner_texts()
        await browser.close()
    return {"results": results, "models_table": loads}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--clicks", type=int, default=3)
    parser.add_argument("--deadline", type=float, default=600, help="seconds for the whole run")
    args = parser.parse_args()
    sessions = max(1, min(args.sessions, 30))
    start = time.monotonic()
    with serve() as url:
        outcome = asyncio.run(asyncio.wait_for(_run(url, sessions, args.clicks), args.deadline))
    results = outcome["results"]
    ms = np.asarray([v for r in results for v in r["latencies"]])
    leaks = sum(bool(r["others_seen"]) for r in results)
    kept = sum(r["mask_kept"] for r in results)
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}, tiny models")
    print(f"{sessions} concurrent sessions, {args.clicks} clicks each, {time.monotonic() - start:.0f} s in all")
    print(f"click → new overlay: p50 {np.percentile(ms, 50):.0f} ms, p95 {np.percentile(ms, 95):.0f} ms")
    print(f"sessions that saw another session's upload: {leaks}")
    print(f"sessions whose mask was unchanged after all others clicked: {kept}/{sessions}")
    print("models in memory:", "; ".join(outcome["models_table"]))


if __name__ == "__main__":
    main()
