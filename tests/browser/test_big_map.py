"""The big map in Chromium: a 200,000-row stored dataset drawn whole; a lasso → the selected images appear, and
their count equals the points inside the lasso (counted here from the points' screen positions)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from bench.bench_bigmap import draw_lasso
from tests.browser.conftest import ARTIFACTS
from tests.browser.drive import new_page, open_page, rerun
from tests.browser.server import serve

pytestmark = pytest.mark.browser
N = 200_000
FILES = 24  # real image files; the rows share them


@pytest.fixture(scope="module")
def big_store(tmp_path_factory) -> tuple[Path, Path]:
    pytest.importorskip("lancedb")
    from core import store
    from tests.scale.conftest import write_images

    root = tmp_path_factory.mktemp("bigmap") / "data"
    files = list(write_images(root / "images", FILES, side=48))
    rng = np.random.default_rng(0)
    which = np.arange(N) % FILES
    centres = rng.normal(size=(FILES, 16)).astype(np.float32) * 3
    vectors = centres[which] + rng.normal(size=(N, 16)).astype(np.float32)
    paths = [files[i] for i in which]
    labels = [Path(p).parent.name for p in paths]
    ids = [f"id{i:06d}" for i in range(N)]
    store.append(root / "db", store.IMAGES, store.images_rows(ids, paths, labels, "clip_tiny", "random", vectors))
    return root, root / "db"


def _inside(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd rule: which of `points` (P, 2) lie inside `polygon` (V, 2)."""
    x, y, inside = points[:, 0], points[:, 1], np.zeros(len(points), bool)
    for (xa, ya), (xb, yb) in zip(polygon, np.roll(polygon, 1, axis=0), strict=True):
        with np.errstate(divide="ignore", invalid="ignore"):
            crosses = ((ya > y) != (yb > y)) & (x < (xb - xa) * (y - ya) / (yb - ya) + xa)
        inside ^= crosses
    return inside


def test_a_lasso_on_200k_points_shows_the_selected_images(browser, big_store):
    root, db = big_store
    with serve(VFM_LENS_DATA_ROOTS=str(root)) as url:
        page = new_page(browser, url, 120_000)
        open_page(page, "Stored datasets")
        with rerun(page):
            page.get_by_role("textbox", name="…or its folder").fill(str(db))
            page.get_by_role("textbox", name="…or its folder").press("Enter")
        with rerun(page):
            page.get_by_role("button", name="Project every row").click()
        started = time.perf_counter()
        page.locator(".vfm-big-map[data-drawn='1']").wait_for()
        drawn = time.perf_counter() - started
        page.locator(".vfm-big-map canvas").evaluate("e => e.scrollIntoView({block: 'center'})")
        assert page.locator(".vfm-big-map").get_attribute("data-n") == str(N)

        positions = np.asarray(
            page.evaluate("""() => { const v = window.__vfmBigMaps.get('stored_map'), out = [];
                                     for (let i = 0; i < v.n; i++) out.push(...v.toPage(i)); return out; }"""),
        ).reshape(-1, 2)
        box = page.locator(".vfm-big-map canvas").bounding_box()
        cx, cy = box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.5
        angles = np.linspace(0, 2 * np.pi, 30, endpoint=False)
        polygon = np.column_stack([cx + 70 * np.cos(angles), cy + 45 * np.sin(angles)])
        expected = np.flatnonzero(_inside(positions, polygon))
        assert 100 < expected.size < N // 2, expected.size  # a region, not everything

        draw_lasso(page, polygon)
        with rerun(page):
            released = time.perf_counter()
            page.mouse.up()
        page.get_by_text(f"{expected.size:,} selected").first.wait_for()
        shown = page.locator("[data-testid=stImage]").filter(has_text=f"row {expected[0]}")
        shown.first.wait_for()
        back = time.perf_counter() - released
        widths = shown.locator("img").evaluate_all("imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
        assert widths and min(widths) > 0, widths
        assert page.locator(".vfm-big-map").get_attribute("data-selected") == str(expected.size)
        assert page.locator("[data-testid=stException]").count() == 0
        page.locator(".vfm-big-map").screenshot(path=str(ARTIFACTS.mkdir(exist_ok=True) or ARTIFACTS / "big_map.png"))
        print(f"\n200k points: drawn {drawn:.2f} s after the projection's rerun; lasso of {expected.size:,} points → "
              f"images shown {back:.2f} s after the mouse-up")  # fmt: skip
        page.context.close()
