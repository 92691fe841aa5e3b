"""The app shell in a real browser: it serves, navigates, and shows the random-weights banner on every page.

A page's own URL opened first in a fresh browser — also the very first request a freshly started server
sees — runs the app's router: sidebar pickers, banner, wide layout and the app's navigation, never
Streamlit's automatic list of pages/ files. No request leaves 127.0.0.1 while a page loads.
"""

from urllib.parse import urlparse

import pytest

from tests.browser.conftest import screenshot
from tests.browser.drive import WATCH_RUNS, rerun, wait_idle
from tests.browser.server import ROOT, serve

pytestmark = pytest.mark.browser
PAGES = ["PCA Foreground", "Embedding Scatter", "Patch Matching", "Segment", "Models", "Upload"]
# Streamlit's automatic page list names the main script "app" and each pages/*.py file by its lower-case stem.
LEGACY_NAMES = {"app", "pca foreground", "embedding scatter", "segment", "models", "zero shot", "stored"}
# Every change of the sidebar navigation's link labels (icons left out), from the first paint on.
RECORD_NAV = """
(() => {
  const seen = window.__vfmNav = [];
  new MutationObserver(() => {
    const nav = document.querySelector('[data-testid=stSidebarNav]');
    if (!nav) return;
    const labels = [...nav.querySelectorAll('a')].map(a => {
      const copy = a.cloneNode(true);
      copy.querySelectorAll('[data-testid=stIconMaterial]').forEach(i => i.remove());
      return copy.innerText.trim();
    }).join('|');
    if (seen[seen.length - 1] !== labels) seen.push(labels);
  }).observe(document, {subtree: true, childList: true, characterData: true});
})();
"""

# What the signs of work look like while runs go: the "Working…" badge (stApp's ::after) sampled every 100 ms of a
# run, and the label of every element at the moment Streamlit marks it stale (faded).
RECORD_WORK = """
(() => {
  const seen = window.__vfmWork = {working: [], stale: []};
  setInterval(() => {
    const app = document.querySelector('[data-testid=stApp]');
    if (app && app.getAttribute('data-test-script-state') === 'running') {
      const badge = getComputedStyle(app, '::after');
      seen.working.push(badge.opacity === '1' ? badge.content : 'none');
    }
  }, 100);
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.target.getAttribute('data-stale') === 'true' && r.target.querySelector('[data-testid=stImage]'))
        seen.stale.push(getComputedStyle(r.target, '::before').content);
    }
  }).observe(document, {subtree: true, attributes: true, attributeFilter: ['data-stale']});
})();
"""


def test_every_page_is_reachable_and_carries_the_banner(page):
    page.get_by_text("Random weights").first.wait_for()
    page.get_by_text("Images", exact=True).first.wait_for()
    screenshot(page, "upload")
    for title in PAGES:
        page.get_by_role("link", name=title, exact=True).click()  # "Models" is not "Compare models"
        page.get_by_role("heading", name=title, exact=True).first.wait_for()
        page.get_by_text("Random weights").first.wait_for()
        assert page.get_by_text("Device:").count() >= 1
    assert page.locator("[data-testid='stException']").count() == 0


@pytest.fixture(scope="module")
def fresh_server():
    """A server no browser has talked to yet: its first session is the one Streamlit's legacy mode affects."""
    with serve() as url:
        yield url


@pytest.mark.parametrize(
    ("path", "title"), [("/segment", "Segment"), ("/pca_foreground", "PCA Foreground"), ("/", "Upload")]
)
def test_a_page_url_opened_in_a_fresh_browser_runs_the_router_and_paints_only_its_navigation(
    browser, fresh_server, path, title
):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(WATCH_RUNS)
    context.add_init_script(RECORD_NAV)
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(fresh_server + path)
        wait_idle(page)
        page.get_by_role("heading", name=title, exact=True).first.wait_for()
        sidebar = page.locator("[data-testid=stSidebar]")
        sidebar.get_by_text("Device:").wait_for()
        assert sidebar.locator("[data-testid=stSelectbox]").count() >= 3  # the CLIP, DINOv2 and SAM pickers
        page.get_by_text("Random weights:").first.wait_for()
        main_width = page.locator("[data-testid=stMainBlockContainer]").bounding_box()["width"]
        assert main_width > 1000, f"narrow layout ({main_width:.0f} px): set_page_config(layout='wide') did not run"
        navs = [labels.split("|") for labels in page.evaluate("window.__vfmNav")]
        assert navs and {"Segment", "PCA Foreground", "Stored datasets"} <= set(navs[-1]), navs
        legacy = [label for labels in navs for label in labels if label in LEGACY_NAMES]
        assert not legacy, f"Streamlit's automatic page list was painted: {navs}"
        away = sorted(
            {u for u in requests if urlparse(u).scheme not in ("data", "blob") and urlparse(u).hostname != "127.0.0.1"}
        )
        assert not away, f"requests left 127.0.0.1 during the load: {away}"
        assert page.locator("[data-testid=stException]").count() == 0
    finally:
        context.close()


def test_a_run_over_half_a_second_shows_working_and_faded_pictures_say_updating(browser):
    with serve() as url:  # a fresh server: its first run imports the models' code, seconds on any machine
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.add_init_script(WATCH_RUNS)
        context.add_init_script(RECORD_WORK)
        page = context.new_page()
        page.set_default_timeout(60_000)
        try:
            page.goto(url)
            wait_idle(page)
            working = page.evaluate("window.__vfmWork.working")
            assert '"Working…"' in working, f"no visible badge during a {len(working) / 10:.1f} s run: {working}"
            app = page.locator("[data-testid=stApp]")
            assert app.evaluate("a => getComputedStyle(a, '::after').content") == "none"  # idle: no badge
            page.get_by_role("tab", name="Built-in samples").click()
            with rerun(page):  # the sample thumbnails stay, faded, while the digits load
                page.get_by_role("button", name="Digits, labeled").click()
            stale = page.evaluate("window.__vfmWork.stale")
            assert stale and set(stale) == {'"updating…"'}, stale
        finally:
            context.close()


def test_every_page_is_in_view_in_the_sidebar(page):
    """Sixteen pages in four groups, none behind a "View more" link (Streamlit folds lists longer than ten)."""
    import re

    wait_idle(page)
    nav = page.locator("[data-testid=stSidebarNav]")
    titles = [t.strip() for t in nav.locator("a span").all_inner_texts() if t.strip()]
    pages = re.findall(r'st.Page\([^)]*title="([^"]+)"', (ROOT / "app.py").read_text())
    assert set(pages) <= set(titles), set(pages) - set(titles)
    assert nav.get_by_text(re.compile(r"^View \d+ more$")).count() == 0
