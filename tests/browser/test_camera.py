"""A camera photo in Chromium (#21): with a fake camera, the Upload page's Camera tab takes a photo and it lands in
the working set."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import _chromium
from tests.browser.drive import fake_camera_args, write_y4m
from tests.browser.server import CHROMIUM_ARGS

pytestmark = pytest.mark.browser


def test_a_camera_photo_lands_in_the_working_set(server, tmp_path):
    from playwright.sync_api import sync_playwright

    clip = tmp_path / "camera.y4m"
    write_y4m(clip)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=_chromium(), headless=True, args=CHROMIUM_ARGS + fake_camera_args(clip)
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(90_000)
        page.goto(server)
        page.get_by_role("tab", name="Camera").click()
        page.get_by_text("Take a photo with the camera").click()
        shoot = page.get_by_role("button", name=re.compile("Take Photo", re.I))
        shoot.wait_for()
        page.wait_for_timeout(1500)  # the fake camera's first frames
        shoot.click()
        page.get_by_text("Added 1 image").wait_for()
        page.get_by_text(re.compile(r"camera-\d{6}\.jpg")).first.wait_for()
        assert page.locator("[data-testid=stException]").count() == 0
        browser.close()
