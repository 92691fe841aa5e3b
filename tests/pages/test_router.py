"""The router's first run on a fresh server: it leaves Streamlit's legacy pages mode and starts the run again,
without raising inside an import (many sessions open a fresh server at once: a package whose import raises is
dropped from sys.modules under the other sessions' threads)."""

from __future__ import annotations

from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest


def _script() -> None:
    import streamlit as st
    from streamlit.runtime.pages_manager import PagesManager

    from components.router import ensure_router

    log = st.session_state.setdefault("log", [])
    PagesManager.uses_pages_directory = not log  # the first run only: a fresh server, still in legacy mode
    log.append("start")
    ensure_router()
    log.append("returned")  # reached in that first run only if ensure_router did not raise there
    st.write("drawn")  # the next Streamlit call: the rerun starts here


def test_the_first_run_returns_then_reruns():
    try:
        at = AppTest.from_function(_script).run()
    finally:
        PagesManager.uses_pages_directory = False
    assert not at.exception
    assert at.session_state["log"] == ["start", "returned", "start", "returned"]
    assert [m.value for m in at.markdown] == ["drawn"]

