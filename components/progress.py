"""A Streamlit progress bar as an engine progress callback, and patch tokens computed under one."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import streamlit as st

from components.state import get_engine


def progress_bar(label: str) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """Returns (callback(done, total), close()). The bar shows `label` and the count."""
    bar = st.progress(0.0, text=label)

    def update(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"{label}: {done}/{total}")

    return update, bar.empty


def patch_tokens(
    images: list[np.ndarray], size: int, runs: Sequence[tuple[str, int | None]], label: str = "Computing patch tokens"
) -> list[np.ndarray]:
    """(N, h, w, D) tokens per (model, layer) run, from the engine's cache when there, with one progress bar."""
    update, close = progress_bar(label)
    try:
        out = []
        for i, (model, layer) in enumerate(runs):

            def step(done: int, total: int, i: int = i) -> None:
                update(i * total + done, len(runs) * total)

            out.append(get_engine().patch_tokens(images, model, layer=layer, size=size, progress=step))
        return out
    finally:
        close()
