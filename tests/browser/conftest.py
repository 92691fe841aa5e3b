"""A real `streamlit run` on 127.0.0.1 with tiny models, driven by Debian's chromium through Playwright."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from tests.browser.drive import new_page
from tests.browser.server import CHROMIUM_ARGS, ROOT, serve

ARTIFACTS = ROOT / "test-artifacts"
DOCS_IMG = ROOT / "docs" / "img"


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def server():
    try:
        with serve() as url:
            yield url
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def playwright_driver():
    """One Playwright for the whole run: a second `sync_playwright()` inside the first one's event loop fails."""
    if _chromium() is None:
        pytest.skip("chromium is not installed (make test installs it: make browser-deps)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_driver):
    b = playwright_driver.chromium.launch(executable_path=_chromium(), headless=True, args=CHROMIUM_ARGS)
    yield b
    b.close()


def launch(playwright_driver, extra_args: list[str]):
    """Another Chromium of the same Playwright, with `extra_args` (e.g. a fake camera)."""
    return playwright_driver.chromium.launch(
        executable_path=_chromium(), headless=True, args=CHROMIUM_ARGS + extra_args
    )


@pytest.fixture
def page(browser, server):
    pg = new_page(browser, server)  # its reruns counted (tests.browser.drive.rerun)
    yield pg
    pg.context.close()


def screenshot(page, name: str, focus=None, docs: bool = False) -> Path:
    """test-artifacts/<name>.png; `focus` (a locator) is scrolled to the middle of the view first, and with
    `docs` the picture is also copied to docs/img/<name>.png for the README."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    if focus is not None:
        focus.evaluate("e => e.scrollIntoView({block: 'center'})")
        page.mouse.move(1, 1)  # no hover tooltips or toolbars in the picture
    page.screenshot(path=str(path), full_page=True, animations="disabled")
    if docs and os.environ.get("VFM_LENS_UPDATE_SCREENSHOTS") == "1":  # opt in: keeps the tree clean after make test
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        picture = Image.open(path).convert("RGB").quantize(256, Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
        picture.save(DOCS_IMG / f"{name}.png", optimize=True)  # 256 colours: a third of the bytes
    return path
