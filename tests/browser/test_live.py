"""The Live camera page in Chromium with a fake camera (a generated clip of a disc moving over a texture): the
stream comes back from the server with the analysis on top, and the page counts frames shown per second."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import launch
from tests.browser.drive import fake_camera_args, write_y4m

pytestmark = pytest.mark.browser


def test_the_camera_stream_comes_back_analysed_with_a_frame_rate(server, tmp_path, playwright_driver):
    clip = tmp_path / "camera.y4m"
    write_y4m(clip)
    browser = launch(playwright_driver, fake_camera_args(clip))
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(90_000)
        page.goto(server + "/live")
        widget = page.frame_locator("iframe[title*='streamlit_webrtc']").first
        widget.get_by_role("button", name="Start the camera").click()
        video = widget.locator("video").first
        video.wait_for()
        video.evaluate(
            "v => new Promise(done => { const ok = () => v.videoWidth > 0 && v.currentTime > 0.3;"
            " const poll = () => ok() ? done() : setTimeout(poll, 100); poll(); })"
        )
        assert video.evaluate("v => v.videoWidth") > 0
        shown = page.locator("[data-testid=stMetric]").filter(has_text="Frames shown per second")
        shown.get_by_text(re.compile(r"^(?!0\.0$)\d+\.\d$")).wait_for()  # more than zero frames per second
        assert page.locator("[data-testid=stException]").count() == 0
    finally:
        browser.close()
