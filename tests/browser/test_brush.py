"""The brush on Measure segmentation in Chromium (#19): a stroke drawn with the mouse on the canvas is added to SAM's
mask, and the kept mask's exported PNG gains exactly the stroke's pixels (no more, none elsewhere)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser.drive import rerun

pytestmark = pytest.mark.browser


def _settled(page) -> None:
    page.wait_for_timeout(500)  # the run starts after the click's message reaches the server
    page.wait_for_function(
        "() => document.querySelector('[data-testid=stApp]')?.getAttribute('data-test-script-state') === 'notRunning'",
        timeout=120_000,
    )


def _keep_and_export(page) -> np.ndarray:
    """Keep the corrected mask and export it (the export picks the latest kept mask): (H, W) bool."""
    page.get_by_role("button", name="Keep", exact=True).click()
    _settled(page)
    button = page.locator("[data-testid=stDownloadButton]").filter(has_text="Mask PNG").locator("button")
    for attempt in range(3):  # a click that lands on the button of the run before (being replaced) downloads nothing
        try:
            with page.expect_download(timeout=20_000) as download:
                button.click()
            return np.asarray(Image.open(download.value.path())) > 0
        except PlaywrightTimeout:
            if attempt == 2:
                raise
            _settled(page)
    raise AssertionError("unreachable")


def _start(page):
    page.get_by_role("button", name="Start from SAM's mask").click()
    _settled(page)
    canvas = page.locator("canvas.upper-canvas").first  # fabric.js draws strokes on its upper canvas
    canvas.wait_for()
    canvas.scroll_into_view_if_needed()  # the mouse draws only where the window shows the canvas
    page.mouse.wheel(0, 200)
    page.wait_for_timeout(300)
    return canvas.bounding_box()


def test_a_brush_stroke_adds_exactly_its_pixels_to_the_kept_mask(page, server):
    page.goto(server + "/evaluate")
    page.get_by_role("button", name="Built-in shapes").click()
    _settled(page)
    page.get_by_role("tab", name="Brush and eraser").click()
    _start(page)
    untouched = _keep_and_export(page)  # SAM's mask as it starts (the start is the same each time)

    box = _start(page)
    y, x0, x1 = box["y"] + box["height"] * 0.25, box["x"] + box["width"] * 0.33, box["x"] + box["width"] * 0.66
    with rerun(page):
        page.mouse.move(x0, y)
        page.mouse.down()
        for t in np.linspace(0, 1, 12):
            page.mouse.move(x0 + (x1 - x0) * t, y)
        page.mouse.up()
    _settled(page)
    page.get_by_text("1 stroke(s)").first.wait_for()
    painted = _keep_and_export(page)

    h, w = painted.shape
    scale = w / box["width"]  # image pixels per canvas pixel
    half = 12 / 2 * scale  # the default stroke is 12 canvas pixels wide
    row, left, right = 0.25 * h, 0.33 * w, 0.66 * w
    assert not (untouched & ~painted).any(), "adding erased pixels"
    gained = np.argwhere(painted & ~untouched)
    assert len(gained), "the stroke added nothing"
    slack = 2 * scale + 2  # fabric.js smooths and caps the path; the mask is resampled to the image
    assert (np.abs(gained[:, 0] - row) <= half + slack).all(), "pixels gained away from the stroke (rows)"
    assert ((gained[:, 1] >= left - half - slack) & (gained[:, 1] <= right + half + slack)).all(), "…(columns)"
    core = painted[int(row - half / 2) : int(row + half / 2) + 1, int(left + half) : int(right - half)]
    assert core.all(), "the middle of the stroke is not all in the kept mask"
    assert page.locator("[data-testid=stException]").count() == 0
