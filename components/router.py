"""The shell's first steps, before the slow imports: every URL runs through app.py's router (also the first one a
freshly started server sees), and a run in progress is always visible."""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager


def ensure_router() -> None:
    """Leave Streamlit's legacy `pages/` mode before anything is drawn.

    Streamlit decides once per process, when the first browser session opens, that an app with a `pages/`
    folder beside its main script is a legacy multipage app, and keeps that mode until some script calls
    `st.navigation`. In that mode a page URL (a bookmark such as /segment) runs pages/segment.py alone —
    no sidebar pickers, no banner, narrow layout, an automatic lower-case page list — and every other URL
    first paints that list (.streamlit/config.toml hides it until now). Switching the mode off, showing the
    app's own navigation and starting the run again sends it through app.py.
    """
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.set_option("client.showSidebarNavigation", True)
        st.rerun()


# Streamlit's own running indicator is hidden with toolbarMode "minimal". Its app root carries the run state, and
# every element left from the previous run carries data-stale="true" (Streamlit fades it) until it is redrawn.
# A run still going after half a second shows "Working…" at the top right; faded pictures, charts and tables say
# that they are being updated, so an old result is never taken for the current one.
SIGNS_OF_WORK = """<style>
@keyframes vfm-appear { to { opacity: 1; } }
[data-testid="stApp"][data-test-script-state="running"]::after {
  content: "Working…"; position: fixed; top: 0.65rem; right: 4rem; z-index: 999990; pointer-events: none;
  padding: 0.2rem 0.75rem; border-radius: 1rem; font-size: 0.85rem; font-weight: 600;
  background: #fff4d6; color: #6b4a00; border: 1px solid #e8c66a;
  opacity: 0; animation: vfm-appear 0s linear 0.5s forwards;
}
[data-testid="stElementContainer"][data-stale="true"]:has([data-testid="stImage"], [data-testid="stPlotlyChart"],
  [data-testid="stDataFrame"], [data-testid="stMetric"]) { position: relative; }
[data-testid="stElementContainer"][data-stale="true"]:has([data-testid="stImage"], [data-testid="stPlotlyChart"],
  [data-testid="stDataFrame"], [data-testid="stMetric"])::before {
  content: "updating…"; position: absolute; top: 0.25rem; left: 0.25rem; z-index: 5; pointer-events: none;
  padding: 0 0.4rem; border-radius: 0.3rem; font-size: 0.75rem; background: #6b4a00; color: #fff;
}
</style>"""


def show_signs_of_work() -> None:
    """A "Working…" badge for every run over half a second, and "updating…" on faded (stale) results."""
    st.html(SIGNS_OF_WORK)
