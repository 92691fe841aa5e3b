"""Presenter mode, for a projector: one switch hides the controls (the sidebar, the header and the "Add images here"
boxes), makes text bigger and figures full width, and keeps the last result on screen at full strength while the
next one computes (Streamlit otherwise fades it). `?present=1` in the address starts a session in it."""

from __future__ import annotations

import streamlit as st

from components.state import presenter_on

PRESENTER_CSS = """<style>
html { font-size: 21px; }
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stHeader"],
[class*="st-key-"][class$="_quick_add"], [class*="_quick_add "] { display: none !important; }
[data-testid="stMainBlockContainer"] { max-width: 100% !important; padding: 1rem 2.5rem 2rem !important; }
[data-stale="true"], [data-stale="true"] * { opacity: 1 !important; transition: none !important; }
</style>"""


def _leave() -> None:
    presenter_on.set(False)
    st.query_params.pop("present", None)


def presenter_switch() -> None:
    """The switch, in the sidebar; the address's `?present=1` sets it on the session's first run."""
    if not presenter_on.present:
        presenter_on.set(st.query_params.get("present") == "1")
    st.toggle(
        "Presenter mode",
        key=presenter_on.key,
        help="For a projector: hides the controls, enlarges text and figures, and keeps the last result fully "
        "visible while the next one computes. Leave with the button at the top of the page.",
    )


def apply_presenter() -> None:
    """In presenter mode: the larger, control-free layout and a button that leaves it."""
    if presenter_on.get(False):
        st.html(PRESENTER_CSS)
        st.button("Leave presenter mode", icon=":material/close_fullscreen:", on_click=_leave, key="presenter_leave")
