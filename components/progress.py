"""A Streamlit progress bar as an engine progress callback."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st


def progress_bar(label: str) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """Returns (callback(done, total), close()). The bar shows `label` and the count."""
    bar = st.progress(0.0, text=label)

    def update(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"{label}: {done}/{total}")

    return update, bar.empty
