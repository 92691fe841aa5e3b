"""Embedding Scatter in Chromium: a click on a point selects it and shows its image (no box or lasso needed)."""

import re

import pytest

from tests.browser.drive import open_digits_scatter, point_position, rerun, settled_pixels

pytestmark = pytest.mark.browser


def test_a_click_on_a_point_selects_it_and_shows_its_image(page):
    chart = open_digits_scatter(page)
    settled_pixels(chart)
    x, y = point_position(chart, 2, 0)  # the first point of trace 2: its file name is its hover text
    label, name = chart.locator(".js-plotly-plot").first.evaluate(
        "gd => [gd._fullData[2].name, gd._fullData[2].hovertext[0]]"
    )
    with rerun(page):
        page.mouse.click(x, y)
    page.get_by_text(re.compile(r"^1 selected")).first.wait_for()
    picked = page.locator("[data-testid=stImage]").filter(has_text=f"{name} [{label}]")
    picked.first.wait_for()
    widths = picked.locator("img").evaluate_all("imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
    assert widths and min(widths) > 0, widths
    assert page.locator("[data-testid=stException]").count() == 0
