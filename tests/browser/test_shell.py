"""The app shell in a real browser: it serves, navigates, and shows the random-weights banner on every page."""

import pytest

from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser
PAGES = ["PCA Foreground", "Embedding Scatter", "Patch Matching", "Segment", "Models", "Upload"]


def test_every_page_is_reachable_and_carries_the_banner(page):
    page.get_by_text("Random weights").first.wait_for()
    page.get_by_text("Images", exact=True).first.wait_for()
    screenshot(page, "upload")
    for title in PAGES:
        page.get_by_role("link", name=title).first.click()
        page.get_by_role("heading", name=title).first.wait_for()
        page.get_by_text("Random weights").first.wait_for()
        assert page.get_by_text("Device:").count() >= 1
    assert page.locator("[data-testid='stException']").count() == 0
