"""Every URL runs through app.py's router, also the first one a freshly started server sees."""

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
