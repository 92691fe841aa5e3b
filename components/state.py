"""Server-wide engine and per-session state: the working set, and one typed accessor per value a view or page
keeps in `st.session_state`, so that each key is spelled in one place.

An accessor takes the `owner` (the widget-key prefix of the view or page, e.g. "upload") and returns a `Slot`;
a widget given `slot.key` keeps its value in that slot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

import streamlit as st

from core.analysis.projection import start_umap_warmup
from core.data import ImageSet, Merged, load_samples
from core.engine import Engine

T = TypeVar("T")


@dataclass(frozen=True)
class Slot(Generic[T]):
    """One value of this session's state under one key."""

    key: str

    def get(self, default: T | None = None) -> T | None:
        return st.session_state.get(self.key, default)

    def set(self, value: T) -> None:
        st.session_state[self.key] = value

    def pop(self) -> T | None:
        return st.session_state.pop(self.key, None)

    def setdefault(self, value: T) -> T:
        return st.session_state.setdefault(self.key, value)

    @property
    def present(self) -> bool:
        return self.key in st.session_state


@st.cache_resource(show_spinner=False)
def get_engine() -> Engine:
    """One engine per server process, shared by all sessions (it is thread-safe). Starting it also starts UMAP's
    background compile, so the first UMAP a user asks for does not wait for numba."""
    start_umap_warmup()
    return Engine.from_config()


@st.cache_resource(show_spinner=False)
def _default_set() -> ImageSet:
    return load_samples()


# ---- the working set and loading into it ---------------------------------------------------------
_WORKING_SET: Slot[ImageSet] = Slot("working_set")


def get_working_set() -> ImageSet:
    """This session's images; the built-in sample photos until the user loads something else."""
    if not _WORKING_SET.present:
        _WORKING_SET.set(ImageSet(list(_default_set().items), []))
    return _WORKING_SET.get()


def set_working_set(images: ImageSet) -> None:
    _WORKING_SET.set(images)


def last_load(owner: str) -> Slot[tuple[ImageSet, Merged | None]]:
    """(what the owner's latest load read, how it merged; None when it replaced the working set)."""
    return Slot(f"{owner}_last")


def uploader_generation(uploader: str) -> Slot[int]:
    """How often the uploader keyed `uploader` was cleared (each clearing gives it a new widget key)."""
    return Slot(f"{uploader}_generation")


# ---- sidebar ------------------------------------------------------------------------------------
def chosen_model(family: str) -> Slot[str]:
    """The sidebar's model name for `family` (its selectbox's key)."""
    return Slot(f"sidebar_{family}_model")


def chosen_weights(family: str) -> Slot[str]:
    """The sidebar's weights tag for `family` (its selectbox's key)."""
    return Slot(f"sidebar_{family}_weights")


# ---- stored datasets ----------------------------------------------------------------------------
def store_choice(owner: str) -> Slot[str | None]:
    """The found dataset chosen in the owner's picker (its selectbox's key)."""
    return Slot(f"{owner}_found")


def store_folder(owner: str) -> Slot[str]:
    """The dataset folder typed in the owner's picker (its text input's key)."""
    return Slot(f"{owner}_path")


def store_to_open(owner: str) -> Slot[str]:
    """A dataset just written here, for the owner's picker to choose on the next run."""
    return Slot(f"{owner}_open")


def store_note(owner: str) -> Slot[str]:
    """What the owner's last store run did, shown once on the next run."""
    return Slot(f"{owner}_note")


def asked(owner: str, what: str) -> Slot[bool]:
    """True once the owner's button for `what` (a projection, a duplicate search) was pressed: its result stays."""
    return Slot(f"{owner}_{what}")


def picked_row(owner: str) -> Slot[int]:
    """The stored row last clicked on the owner's map."""
    return Slot(f"{owner}_row")


# ---- results kept across reruns -----------------------------------------------------------------
def comparison_result(owner: str) -> Slot[tuple[str, list[dict]]]:
    """(the settings' signature, the score rows) of the owner's last Compare click."""
    return Slot(f"{owner}_result")


def image_a_chart(owner: str) -> Slot[dict]:
    """The selection event of the owner's clickable chart of image A (the chart's key)."""
    return Slot(f"{owner}_chart_a")


def patch_click(owner: str) -> Slot[tuple[float, float]]:
    """The owner's last click on image A as (x, y) fractions of its size."""
    return Slot(f"{owner}_click")


def pca_threshold(owner: str, tag: str) -> Slot[float]:
    """The owner's PC1 threshold for the tokens tagged `tag` (its slider's key; new tokens start afresh)."""
    return Slot(f"{owner}_threshold_{tag}")


def rgb_memo(owner: str) -> Slot[tuple]:
    """(digest of scores and mask, colour PCA, error) of the owner's last colour PCA fit."""
    return Slot(f"{owner}_rgb_memo")
