"""The Live camera page in Chromium with a fake camera (a generated clip of a disc moving over a texture): the
stream comes back from the server with the analysis on top, and the page counts frames shown per second."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests.browser.conftest import _chromium
from tests.browser.server import CHROMIUM_ARGS

pytestmark = pytest.mark.browser


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


def test_the_camera_stream_comes_back_analysed_with_a_frame_rate(server, tmp_path):
    from playwright.sync_api import sync_playwright

    clip = tmp_path / "camera.y4m"
    write_y4m(clip)
    fake_camera = [
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={clip}",
    ]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), headless=True, args=CHROMIUM_ARGS + fake_camera)
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
        browser.close()
