"""Server-wide engine and per-session working set."""

from __future__ import annotations

import streamlit as st

from core.analysis.projection import start_umap_warmup
from core.data import ImageSet, load_samples
from core.engine import Engine

_WORKING_SET = "working_set"


@st.cache_resource(show_spinner=False)
def get_engine() -> Engine:
    """One engine per server process, shared by all sessions (it is thread-safe). Starting it also starts UMAP's
    background compile, so the first UMAP a user asks for does not wait for numba."""
    start_umap_warmup()
    return Engine.from_config()


@st.cache_resource(show_spinner=False)
def _default_set() -> ImageSet:
    return load_samples()


def get_working_set() -> ImageSet:
    """This session's images; the built-in sample photos until the user loads something else."""
    if _WORKING_SET not in st.session_state:
        default = _default_set()
        st.session_state[_WORKING_SET] = ImageSet(list(default.items), [])
    return st.session_state[_WORKING_SET]


def set_working_set(images: ImageSet) -> None:
    st.session_state[_WORKING_SET] = images
