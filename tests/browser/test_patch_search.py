"""Patch Search in Chromium, as a user takes it: add a labelled zip on the page, build the index of the working set
(tiny DINOv2, 56 px: a 4 × 4 grid), then a click on a patch of the query image picks that patch (the query image is
in the index, so its own patch is found first, cosine 1.00); the chart's Box Select, dragged over four patches,
searches with their mean."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image

from tests import corpus
from tests.browser.drive import open_page, rerun, settled_pixels

pytestmark = pytest.mark.browser
GRID = 4  # patches a side
PATCHES = 1  # the query chart's trace of patch markers (0 is the image)
QUERY = "cats/cat0.png"


def _labelled_zip() -> bytes:
    entries = {f"cats/cat{i}.png": corpus.encode(corpus.rgb(56, 56, seed=i)) for i in range(3)}
    entries |= {f"dogs/dog{i}.png": corpus.encode(corpus.rgb(56, 70, seed=10 + i)) for i in range(3)}
    return corpus.zip_of(entries)


def _first_result(page) -> str:
    """The caption of the best hit ("#1 · name · class · row r, col c · cosine x")."""
    caption = page.get_by_text(re.compile(r"^#1 · ")).first
    caption.wait_for()
    return caption.inner_text()


def _wait_first(page, pattern: str) -> str:
    page.get_by_text(re.compile(r"^#1 · " + pattern)).first.wait_for()
    return _first_result(page)


# `drive.point_position` takes the plot area's left edge for the x axis's: with the image's aspect kept
# (`constrain: "domain"`) the axes sit inside it, at their own offsets
_CENTRE = """(gd, [trace, i]) => {
  const layout = gd._fullLayout, data = gd._fullData[trace], box = gd.getBoundingClientRect();
  return [box.left + layout.xaxis._offset + layout.xaxis.d2p(data.x[i]),
          box.top + layout.yaxis._offset + layout.yaxis.d2p(data.y[i])];
}"""


def _patch(chart, row: int, col: int) -> tuple[float, float]:
    """Page coordinates of the centre of patch (row, col) of the query chart."""
    return tuple(chart.locator(".js-plotly-plot").first.evaluate(_CENTRE, [PATCHES, row * GRID + col]))


@pytest.fixture
def search_page(page):
    """Patch Search with six labelled images added on the page (beside the sample photos), the working set indexed
    and cats/cat0.png the query image; (page, query chart)."""
    open_page(page, "Patch Search")
    page.get_by_text("Add images here").first.click()
    files = [{"name": "pets.zip", "mimeType": "application/zip", "buffer": _labelled_zip()}]
    with rerun(page):
        page.locator("[data-testid=stFileUploaderDropzoneInput]").first.set_input_files(files)
    with rerun(page):
        page.get_by_role("button", name="Add to the working set").click()
    with rerun(page):
        page.get_by_role("button", name="Build the patch index").click()
    page.get_by_text(re.compile(r"\d+ images, \d+ patch vectors")).first.wait_for()
    _wait_first(page, r"\S+ · row 2, col 2 · cosine 1\.00")  # the first image's centre patch until a pick
    page.get_by_role("combobox", name="Query image").click()
    page.keyboard.type(QUERY)  # the list shows only its first options until one types
    page.get_by_role("option", name=QUERY, exact=True).wait_for()
    with rerun(page):
        page.keyboard.press("Enter")
    _wait_first(page, re.escape(QUERY) + r" · cats · row 2, col 2 · cosine 1\.00")
    chart = page.locator("[data-testid=stPlotlyChart]").first
    chart.evaluate("e => e.scrollIntoView({block: 'center'})")
    settled_pixels(chart)
    return page, chart


def test_a_click_on_a_patch_picks_it_and_finds_it_first(search_page):
    page, chart = search_page
    x, y = _patch(chart, 1, 1)
    with rerun(page):
        page.mouse.click(x, y)
    page.get_by_text("Picked: 1 patch.").first.wait_for()
    assert _wait_first(page, re.escape(QUERY) + r" · cats · row 1, col 1 · cosine 1\.00")
    x, y = _patch(chart, 3, 0)  # a second click moves the pick
    with rerun(page):
        page.mouse.click(x, y)
    assert _wait_first(page, re.escape(QUERY) + r" · cats · row 3, col 0 · cosine 1\.00")
    _crops_drawn(page)
    assert _selected(chart) == [3 * GRID + 0]  # the chart outlines the pick (plotly's own selection, red)
    assert page.locator("[data-testid=stException]").count() == 0


def _crops_drawn(page) -> None:
    """Every hit of the results widget has its crop and heat picture drawn, and the crop of the best one shows the
    query's own patch outlined in red."""
    page.wait_for_function("Object.values(window.__vfmPatchHits ?? {}).some(h => h.count > 0)")
    hits = page.locator(".vfm-patch-hit")
    assert hits.count() == page.locator(".vfm-patch-hit canvas.crop").count() == page.locator("canvas.heat").count()
    crop = hits.first.locator("canvas.crop")
    pixels = np.asarray(Image.open(io.BytesIO(crop.screenshot())))[..., :3].astype(int)
    assert (np.abs(pixels - (255, 43, 43)).max(axis=-1) <= 8).mean() > 0.02  # the outline


def _selected(chart) -> list[int]:
    return chart.locator(".js-plotly-plot").first.evaluate("gd => gd._fullData[1].selectedpoints ?? null")


def test_the_box_select_of_the_mode_bar_picks_the_patches_under_the_box(search_page):
    page, chart = search_page
    chart.hover()
    chart.locator(".modebar-btn[data-title='Box Select']").click()
    (x0, y0), (x1, y1) = _patch(chart, 0, 2), _patch(chart, 1, 3)
    with rerun(page):
        page.mouse.move(x0 - 5, y0 - 5)
        page.mouse.down()
        page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=5)
        page.mouse.move(x1 + 5, y1 + 5, steps=5)
        page.mouse.up()
    page.get_by_text("Picked: 4 patches.").first.wait_for()
    first = _first_result(page)
    match = re.match(r"#1 · (\S+) · \w+ · row (\d), col (\d)", first)
    assert match and match[1] == QUERY and (int(match[2]), int(match[3])) in {(0, 2), (0, 3), (1, 2), (1, 3)}
    assert page.locator("[data-testid=stException]").count() == 0
