"""Every page driven by clicks in Chromium; results are checked in the pixels of screenshots, not in page text.

Each test gets a fresh browser context (a new Streamlit session) from the `page` fixture and leaves a
screenshot in test-artifacts/ (copied to docs/img/ for the README).
"""

import re

import pytest

from tests import corpus
from tests.browser.conftest import screenshot
from tests.browser.drive import (
    changed_share,
    open_digits_scatter,
    open_page,
    pixels,
    point_position,
    rerun,
    settled_pixels,
    share_toward,
    upload,
)

pytestmark = pytest.mark.browser

MASK_RGB = (0x1E, 0x90, 0xFF)  # components.segment_view.MASK_COLOR (not imported: it pulls in streamlit)


def _png(seed: int) -> bytes:
    return corpus.encode(corpus.rgb(64, 48, seed=seed))


def _no_exception(page) -> None:
    assert page.locator("[data-testid=stException]").count() == 0


def _table_cells(page) -> list[str]:
    """Texts of the dataframe cells (the grid is a canvas; its accessible cells carry the text)."""
    cells = page.locator("[data-testid=stDataFrame] [role=gridcell]")
    cells.first.wait_for(state="attached")
    return [t.strip() for t in cells.all_text_contents()]


# ---- Upload -------------------------------------------------------------------------------------
def test_upload_image_and_class_zip_shows_thumbnails_and_counts(page):
    open_page(page, "Upload")
    pets = corpus.zip_of({"cats/a.png": _png(1), "cats/b.png": _png(2), "dogs/c.png": _png(3)})
    upload(page, {"plain.png": corpus.GOOD["plain.png"](), "pets.zip": pets})
    with rerun(page):
        page.get_by_text("Replace the working set").click()
    with rerun(page):
        page.get_by_role("button", name="Add uploaded files").click()

    page.get_by_text("Added 4 images.").wait_for()
    metrics = [" ".join(t.split()) for t in page.locator("[data-testid=stMetric]").all_inner_texts()]
    assert metrics[:2] == ["Images 4", "Classes 2"]
    assert _table_cells(page) == ["cats", "2", "dogs", "1"]
    grid = page.locator("[data-testid=stImage]")
    for caption in ("plain.png", "cats/a.png [cats]", "cats/b.png [cats]", "dogs/c.png [dogs]"):
        grid.get_by_text(caption, exact=True).wait_for()
    thumbs = grid.locator("img").evaluate_all("imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
    assert len(thumbs) == 4 and min(thumbs) > 0, thumbs
    _no_exception(page)
    screenshot(page, "upload", focus=grid.first, docs=True)


def test_corrupt_upload_is_reported_and_the_app_keeps_working(page):
    open_page(page, "Upload")
    upload(page, {"broken.png": corpus.BAD["truncated.png"]()})
    with rerun(page):
        page.get_by_role("button", name="Add uploaded files").click()
    page.get_by_text("No image could be read: 1 file skipped.").wait_for()  # red, not a green success
    assert page.locator("[data-testid=stAlertContentError]").get_by_text("No image could be read").count() == 1
    page.get_by_text("1 file skipped:").wait_for()
    cells = _table_cells(page)
    assert cells[0] == "broken.png" and "truncated or corrupt" in cells[1], cells  # the file and why
    _no_exception(page)
    screenshot(page, "bad_input", focus=page.get_by_text("1 file skipped:").first)

    upload(page, {"fine.png": _png(4)})
    with rerun(page):
        page.get_by_role("button", name="Add uploaded files").click()
    page.get_by_text("Added 1 image.").wait_for()
    page.locator("[data-testid=stImage]").get_by_text("fine.png", exact=True).wait_for()
    _no_exception(page)


def _chips(page) -> list[str]:
    """Names of the files the uploader lists."""
    return page.locator("[data-testid=stFileChipName]").all_inner_texts()


def test_adding_empties_the_uploader_so_a_later_zip_adds_only_new_images_and_tiles_keep_one_size(page):
    open_page(page, "Upload")
    tall = corpus.encode(corpus.rgb(1, 2000, seed=5))  # under MAX_SIDE: kept at its size
    upload(page, {"plain.png": corpus.GOOD["plain.png"](), "tall.png": tall})
    with rerun(page):
        page.get_by_role("button", name="Add uploaded files").click()
    page.get_by_text("Added 2 images.").wait_for()
    assert _chips(page) == []  # the uploader is empty again: nothing of this upload can be added twice

    pets = corpus.zip_of({"cats/plain.png": corpus.GOOD["plain.png"](), "dogs/d.png": _png(6)})
    upload(page, {"pets.zip": pets})
    with rerun(page):
        page.get_by_role("button", name="Add uploaded files").click()
    page.get_by_text("Added 1 image, 1 already present, 1 of them took their class from this upload.").wait_for()
    metrics = [" ".join(t.split()) for t in page.locator("[data-testid=stMetric]").all_inner_texts()]
    assert metrics[:2] == ["Images 10", "Classes 2"]  # 7 samples + plain, tall + d: plain is not there twice
    assert _chips(page) == []

    tile = page.locator("[data-testid=stImageContainer]").filter(has_text="tall.png · 1×2000 px").locator("img")
    tile.wait_for()
    box = tile.bounding_box()
    assert box["width"] <= 120 and box["height"] <= 120, box  # a fixed box, not a 1×112 strip drawn 12,544 px tall
    _no_exception(page)


# ---- Segment ------------------------------------------------------------------------------------
def _canvas(page):
    """The prompt widget (components/prompt_canvas.py): the image with its masks, points and box over it."""
    canvas = page.locator(".vfm-prompt-canvas").first
    canvas.wait_for()
    return canvas


def _click_canvas(page, x: float, y: float, shown, button: str = "left"):
    """Click at fractions (x, y) of the widget showing `shown`; returns its pixels once they are redrawn."""
    canvas = _canvas(page)
    box = canvas.bounding_box()
    with rerun(page):
        page.mouse.click(box["x"] + x * box["width"], box["y"] + y * box["height"], button=button)
    return settled_pixels(canvas, differs_from=shown)


def _markers(page) -> list[str]:
    """Classes of the prompts drawn on the widget, in order."""
    return _canvas(page).locator("svg g.prompts > *").evaluate_all("els => els.map(e => e.getAttribute('class'))")


def test_segment_click_draws_a_mask_negative_point_changes_it_and_undo_restores_it(page):
    open_page(page, "Segment")
    page.get_by_text("Click to add a point").wait_for()
    canvas = _canvas(page)
    canvas.evaluate("e => e.scrollIntoView({block: 'center'})")
    plain = settled_pixels(canvas)

    positive = _click_canvas(page, 0.5, 0.6, plain)
    assert changed_share(plain, positive) > 0.02, "no mask overlay after a positive click"
    assert share_toward(plain, positive, MASK_RGB) > 0.02, "the change is not in the mask colour"
    assert _markers(page) == ["point positive drawn"]

    negative = _click_canvas(page, 0.25, 0.3, positive, button="right")  # right-click: a negative point
    assert changed_share(positive, negative) > 0.01, "the negative point left the mask as it was"
    assert _markers(page) == ["point positive drawn", "point negative drawn"]

    with rerun(page):
        page.get_by_role("button", name="Undo").click()
    undone = settled_pixels(_canvas(page), differs_from=negative)
    assert changed_share(negative, undone) > 0.01, "undo left the negative point's mask"
    assert changed_share(positive, undone) < 0.002, "undo did not restore the positive point's mask"
    assert _markers(page) == ["point positive drawn"]

    with rerun(page):  # the mode toggle makes a left click negative too
        page.get_by_role("radio", name="Negative point").click()
    _click_canvas(page, 0.8, 0.2, undone)
    assert _markers(page) == ["point positive drawn", "point negative drawn"]

    start, end = (0.1, 0.1), (0.9, 0.95)  # a drag draws a box, and SAM answers it with the points
    box = _canvas(page).bounding_box()
    with rerun(page):
        page.mouse.move(box["x"] + start[0] * box["width"], box["y"] + start[1] * box["height"])
        page.mouse.down()
        page.mouse.move(box["x"] + end[0] * box["width"], box["y"] + end[1] * box["height"], steps=8)
        page.mouse.up()
    settled_pixels(_canvas(page))
    assert _markers(page) == ["point positive drawn", "point negative drawn", "box drawn"]
    flat = box["y"] + 0.5 * box["height"]  # a sideways drag makes no box: nothing is sent or left drawn
    page.mouse.move(box["x"] + 0.2 * box["width"], flat)
    page.mouse.down()
    page.mouse.move(box["x"] + 0.6 * box["width"], flat, steps=5)
    page.mouse.up()
    assert _canvas(page).locator("svg g.pending > *").count() == 0
    _no_exception(page)
    screenshot(page, "segment", focus=_canvas(page), docs=True)


# ---- PCA Foreground -----------------------------------------------------------------------------
def _panel(page, caption: str):
    panel = page.locator("[data-testid=stImage]").filter(has_text=caption).locator("img").first
    panel.wait_for()
    return panel


def test_pca_overlay_renders_and_the_threshold_slider_changes_the_mask(page):
    open_page(page, "PCA Foreground")
    overlay = settled_pixels(_panel(page, "④ Overlay on the image"))
    original = settled_pixels(_panel(page, "Original"))
    assert overlay.std() > 10 and changed_share(original, overlay) > 0.05, "no RGB overlay on the image"
    mask = _panel(page, "② Foreground mask")
    before = settled_pixels(mask)

    thumb = page.get_by_role("slider", name="Threshold on PC1")
    thumb.focus()
    with rerun(page):
        for _ in range(25):
            thumb.press("ArrowRight")
    after = settled_pixels(_panel(page, "② Foreground mask"), differs_from=before)
    assert changed_share(before, after) > 0.01, "moving the threshold did not change the mask"
    _no_exception(page)
    screenshot(page, "pca_foreground", focus=mask, docs=True)


# ---- Patch Matching -----------------------------------------------------------------------------
def test_patch_matching_click_on_a_changes_the_heat_map_on_b(page):
    open_page(page, "Patch Matching")
    charts = page.locator("[data-testid=stPlotlyChart]")
    chart_a, chart_b = charts.nth(0), charts.nth(1)
    chart_b.wait_for()
    chart_a.evaluate("e => e.scrollIntoView({block: 'center'})")
    page.mouse.move(1, 1)
    before = settled_pixels(chart_b)

    plot = chart_a.locator(".nsewdrag").first  # plotly's plot area, where clicks pick points
    box = plot.bounding_box()
    with rerun(page):
        page.mouse.click(box["x"] + 0.15 * box["width"], box["y"] + 0.2 * box["height"])
    page.mouse.move(1, 1)
    after = settled_pixels(page.locator("[data-testid=stPlotlyChart]").nth(1), differs_from=before)
    assert changed_share(before, after) > 0.05, "the heat map on B did not change"
    _no_exception(page)
    screenshot(page, "patch_matching", focus=chart_a, docs=True)


# ---- Embedding Scatter --------------------------------------------------------------------------
def test_embedding_scatter_renders_digits_and_a_lasso_shows_the_selected_images(page):
    chart = open_digits_scatter(page)
    plot = chart.locator(".js-plotly-plot").first
    x, y = point_position(chart, 0, 0)
    rendered = settled_pixels(chart)
    assert rendered.std() > 10, "the scatter is blank"

    # hovering the point shows its own thumbnail (its row is its customdata)
    row = plot.evaluate("gd => String(gd._fullData[0].customdata[0])")
    tip = page.locator(".vfm-hover-thumb")
    page.mouse.move(x, y)
    tip.wait_for(state="visible", timeout=10_000)
    assert tip.get_attribute("data-row") == row
    # all 100 points are shown, so row r is tile r of a 10-column sprite, drawn at 2 × 64 px
    slot, size = int(row), 128
    expected = f"{-(slot % 10) * size}px {-(slot // 10) * size}px"
    assert tip.evaluate("e => e.style.backgroundPosition") == expected
    thumb = pixels(tip)
    assert thumb.std() > 10, "the hover thumbnail is blank"
    screenshot(page, "embedding_scatter_hover", docs=True)  # no focus: the mouse stays on the point
    page.mouse.move(x + 300, y + 300)
    tip.wait_for(state="hidden", timeout=10_000)

    images_before = page.locator("[data-testid=stImage] img").count()
    chart.locator(".modebar-btn[data-val=lasso]").click()  # the lasso tool: a plain drag pans, a click selects
    with rerun(page):  # a lasso around the first point of the first class
        page.mouse.move(x - 40, y - 40)
        page.mouse.down()
        for dx, dy in ((40, -40), (40, 40), (-40, 40), (-40, -40)):
            page.mouse.move(x + dx, y + dy, steps=5)
        page.mouse.up()
    page.get_by_text(re.compile(r"^\d+ selected")).first.wait_for()
    picked = page.locator("[data-testid=stImage] img")
    assert picked.count() > images_before
    widths = picked.evaluate_all("imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
    assert min(widths) > 0, widths
    _no_exception(page)
    screenshot(page, "embedding_scatter", focus=chart, docs=True)
