"""A camera photo in Chromium (#21): with a fake camera, the Upload page's Camera tab takes a photo and it lands in
the working set."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import launch
from tests.browser.drive import fake_camera_args, write_y4m

pytestmark = pytest.mark.browser


def test_a_camera_photo_lands_in_the_working_set(server, tmp_path, playwright_driver):
    clip = tmp_path / "camera.y4m"
    write_y4m(clip)
    browser = launch(playwright_driver, fake_camera_args(clip))
    try:
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
    finally:
        browser.close()
