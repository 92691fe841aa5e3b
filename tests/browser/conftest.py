"""A real `streamlit run` on 127.0.0.1 with tiny models, driven by Debian's chromium through Playwright."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.browser.server import CHROMIUM_ARGS, ROOT, serve

ARTIFACTS = ROOT / "test-artifacts"


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
def browser():
    executable = _chromium()
    if executable is None:
        pytest.skip("chromium is not installed (make test installs it: make browser-deps)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=executable,
            headless=True,
            args=CHROMIUM_ARGS,
        )
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    pg.goto(server)
    yield pg
    context.close()


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
