"""Text masks in Chromium (tiny random models): type a phrase, and each chosen route's panel shows its picture (the
image with masks and boxes) and its instance count; a box dragged on the image becomes SAM 3's exemplar box."""

from __future__ import annotations

import re

import pytest

from core.text_routes import ROUTES
from tests.browser.conftest import screenshot
from tests.browser.drive import open_page, rerun, settled_pixels

pytestmark = pytest.mark.browser

CHOSEN = ("grounded_sam", "maskclip_sam", "sam3")
PANEL_CAPTION = re.compile(r"^\d+ instances? · \d+\.\d\d s")


def _no_exception(page) -> None:
    boxes = page.locator("[data-testid=stException]")
    assert boxes.count() == 0, boxes.first.inner_text()[:500]


def _panel(page, route: str):
    """The column of `route`'s panel: its bold title, picture and caption."""
    return page.locator("[data-testid=stColumn]").filter(has=page.get_by_text(ROUTES[route].title, exact=True)).first


def _panel_caption(page, route: str) -> str:
    caption = _panel(page, route).locator("[data-testid=stCaptionContainer]").filter(has_text=PANEL_CAPTION).first
    caption.wait_for()
    return caption.inner_text()


def _shows_its_picture(page, route: str) -> None:
    picture = _panel(page, route).locator("[data-testid=stImage] img").first
    picture.wait_for()
    settled_pixels(picture)  # decoded and drawn
    width = picture.evaluate("i => i.complete ? i.naturalWidth : 0")
    assert width > 0, f"{route}: the panel's picture did not load"


def test_a_phrase_shows_each_routes_masks_and_an_exemplar_box_reaches_sam3(page):
    open_page(page, "Text masks")
    routes = page.locator("[data-testid=stMultiSelect]").first
    with rerun(page):
        routes.locator("input").first.click()
        page.get_by_role("option", name=ROUTES["sam3"].title).click()
        page.keyboard.press("Escape")
    box = page.get_by_label("What to find").first  # the label the walk (test_walk.py) fills too
    with rerun(page):
        box.fill("a dog. a cat.")
        box.press("Enter")
    _no_exception(page)
    for route in CHOSEN:
        assert PANEL_CAPTION.match(_panel_caption(page, route)), route
        _shows_its_picture(page, route)

    canvas = page.locator(".vfm-prompt-canvas").first  # SAM 3's exemplar box: a drag on the image
    canvas.evaluate("e => e.scrollIntoView({block: 'center'})")
    settled_pixels(canvas)
    frame = canvas.bounding_box()
    with rerun(page):
        page.mouse.move(frame["x"] + 0.2 * frame["width"], frame["y"] + 0.2 * frame["height"])
        page.mouse.down()
        page.mouse.move(frame["x"] + 0.7 * frame["width"], frame["y"] + 0.8 * frame["height"], steps=8)
        page.mouse.up()
    markers = canvas.locator("svg g.prompts > *").evaluate_all("els => els.map(e => e.getAttribute('class'))")
    assert markers == ["box drawn"], markers
    page.get_by_text("Prompted with the exemplar box and the phrase.").first.wait_for()
    assert page.get_by_role("button", name="Clear the box").is_enabled()
    _shows_its_picture(page, "sam3")
    _no_exception(page)
    screenshot(page, "text_masks", focus=canvas)
