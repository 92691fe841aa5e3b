"""Server-wide engine and per-session state: the working set, and one typed accessor per value a view or page
keeps in `st.session_state`, so that each key is spelled in one place.

An accessor (`Keys`) takes the `owner` (the widget-key prefix of the view or page, e.g. "upload") and returns a
`Slot`; a widget given `slot.key` keeps its value in that slot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

import streamlit as st

from core import config
from core.analysis.projection import start_umap_warmup
from core.data import ImageSet, Merged, load_folder, load_samples
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


@dataclass(frozen=True)
class Keys(Generic[T]):
    """A family of slots: `pattern` filled with the owner (and any further parts) gives the key."""

    pattern: str

    def __call__(self, *parts: str) -> Slot[T]:
        return Slot(self.pattern.format(*parts))


@st.cache_resource(show_spinner=False)
def get_engine() -> Engine:
    """One engine per server process, shared by all sessions (it is thread-safe). Starting it also starts UMAP's
    background compile, so the first UMAP a user asks for does not wait for numba."""
    start_umap_warmup()
    return Engine.from_config()


@st.cache_resource(show_spinner=False)
def _default_set() -> ImageSet:
    """The built-in sample photos, or the images of the lecture pack the server was started with."""
    folder = config.start_images()
    return load_folder(folder, [folder]) if folder is not None else load_samples()


# ---- the working set and loading into it ---------------------------------------------------------
_WORKING_SET: Slot[ImageSet] = Slot("working_set")


def get_working_set() -> ImageSet:
    """This session's images; the built-in sample photos until the user loads something else."""
    if not _WORKING_SET.present:
        _WORKING_SET.set(ImageSet(list(_default_set().items), []))
    return _WORKING_SET.get()


def set_working_set(images: ImageSet) -> None:
    _WORKING_SET.set(images)


# (what the owner's latest load read, how it merged; None when it replaced the working set)
last_load: Keys[tuple[ImageSet, Merged | None]] = Keys("{}_last")
# how often the uploader keyed this was cleared (each clearing gives the widget a new key)
uploader_generation: Keys[int] = Keys("{}_generation")


# ---- sidebar ------------------------------------------------------------------------------------
# the sidebar's model name and weights tag for a role (its selectboxes' keys)
chosen_model: Keys[str] = Keys("sidebar_{}_model")
chosen_weights: Keys[str] = Keys("sidebar_{}_weights")

# presenter mode: on for this session (the sidebar switch's key)
presenter_on: Slot[bool] = Slot("presenter")

# ---- stored datasets ----------------------------------------------------------------------------
store_choice: Keys[str | None] = Keys("{}_found")  # the found dataset chosen in the owner's picker (its key)
store_folder: Keys[str] = Keys("{}_path")  # the folder typed in the owner's picker (its key)
store_to_open: Keys[str] = Keys("{}_open")  # a dataset just written here, for the picker to choose next run
store_note: Keys[str] = Keys("{}_note")  # what the owner's last store run did, shown once on the next run
asked: Keys[bool] = Keys("{}_{}")  # (owner, what): True once that button was pressed; its result stays shown
picked_row: Keys[int] = Keys("{}_row")  # the stored row last clicked on the owner's map

# ---- results kept across reruns -----------------------------------------------------------------
comparison_result: Keys[tuple[str, list[dict]]] = Keys("{}_result")  # (settings' signature, score rows)
image_a_chart: Keys[dict] = Keys("{}_chart_a")  # the selection event of the clickable chart of image A (its key)
patch_click: Keys[tuple[float, float]] = Keys("{}_click")  # the last click on image A, (x, y) as fractions
input_size: Keys[int] = Keys("{}_size")  # the owner's square input-size slider (its key), a multiple of the patch
pca_threshold: Keys[float] = Keys("{}_threshold_{}")  # (owner, tokens' tag): PC1 threshold (the slider's key)
rgb_memo: Keys[tuple] = Keys("{}_rgb_memo")
started: Keys[bool] = Keys("{}_started")  # the owner's form was submitted once: its results stay on later runs
accuracy_runs: Keys[dict] = Keys(
    "{}_accuracy"
)  # (projection, model, dataset) → (projection acc., k-NN acc.)  # (digest of scores and mask, colour PCA, error) of the last fit


def option_start(slot: Slot, options: list, default) -> dict:
    """Keyword arguments for a select slider keyed `slot.key`: `value=` the option nearest `default` when it is new;
    nothing when the slot holds its value, moved to the nearest option when it is no longer one (input sizes kept
    from a model with another patch)."""
    kept = slot.get()
    if kept is None:
        return {"value": min(options, key=lambda option: abs(option - default))}
    if kept not in options:
        slot.set(min(options, key=lambda option: abs(option - kept)))
    return {}


# ---- Segment ------------------------------------------------------------------------------------
segment_images: Keys[dict] = Keys("{}_images")  # "model|image key" → SegmentSession, the most recent few images
last_sam_embedding: Slot[dict] = Slot("sam_last_embedding")  # model → (image array, its SamEmbedding)
decoded_uploads: Keys[dict] = Keys("{}_decoded")  # upload file id → (name, HWC uint8 image), the latest only
display_images: Keys[dict] = Keys("{}_display")  # (image key, canvas frame[, width]) → the resized display image
mask_name: Keys[str] = Keys("{}_name")  # the name typed for the next kept mask (its text input's key)

# ---- live camera ----------------------------------------------------------------------------------
live_analysis: Keys[object] = Keys("{}_analysis")  # the owner's core.live.LiveAnalysis (its camera stream calls it)

# ---- video tracking -------------------------------------------------------------------------------
video_clip: Keys[tuple] = Keys("{}_clip")  # (upload file id, name, core.video.Clip) of the latest decoded upload
video_tracker: Keys[tuple] = Keys("{}_tracker")  # (model, upload file id, core.video.VideoTracker), the latest one
video_pending: Keys[tuple] = Keys("{}_pending")  # (frame, object id, Prompt) from the canvas, not yet run
video_progress: Keys[tuple] = Keys("{}_progress")  # (done, planned) of a propagation while it runs
video_last_run: Keys[object] = Keys("{}_last_run")  # the latest finished core.video.Propagation
video_corrected: Keys[bool] = Keys("{}_corrected")  # a click came after a finished run: track again
video_seq: Keys[int] = Keys("{}_seq")  # gestures the canvas sent so far (its `seq`)

# ---- Patch Search -------------------------------------------------------------------------------
query_chart: Keys[dict] = Keys("{}_query_chart")  # the selection event of the clickable query image (its key)
picked_patches: Keys[tuple] = Keys("{}_patches")  # (query image digest, grid, ((row, col), ...)) last picked
chart_picks: Keys[tuple] = Keys("{}_chart_picks")  # (query image digest, grid, (patch index, ...)) the chart was sent
