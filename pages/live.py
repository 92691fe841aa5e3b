"""Live camera: PCA Foreground colours or a patch's similarity map on the camera stream, as it comes."""

import streamlit as st

from components.live_view import show_live, show_stats
from components.sidebar import DENSE, random_note, selected_model
from core.live import LiveSettings
from core.registry import parse

st.title("Live camera")
st.caption(
    "Point the camera at something: each frame goes through the sidebar's dense-features model and comes back "
    "coloured. When the model is slower than the camera, frames are dropped (never queued), so what you see is "
    "always the newest frame; the counters below say how fast it goes."
)

model = selected_model(DENSE)
spec = parse(model).spec
random_note([model])
left, right = st.columns(2)
mode = left.radio(
    "Show",
    ["pca", "similarity"],
    format_func={"pca": "PCA colours (foreground parts)", "similarity": "Similarity to one patch"}.get,
    horizontal=True,
    key="live_mode",
)
sizes = [spec.patch_size * n for n in range(4, 33)]
size = left.select_slider(
    "Model input (px, square)",
    sizes,
    value=min(sizes, key=lambda s: abs(s - 224)),
    key="live_size",
    help=f"A multiple of the model's {spec.patch_size}-px patch; smaller is faster.",
)
alpha = right.slider("Overlay strength", 0.0, 1.0, 0.6, 0.05, key="live_alpha")
patch = (0.5, 0.5)
if mode == "similarity":
    x = right.slider("Reference patch: across (%)", 0, 100, 50, key="live_x")
    y = right.slider("Reference patch: down (%)", 0, 100, 50, key="live_y")
    patch = (x / 100, y / 100)

live = show_live(LiveSettings(model, size, mode, alpha, patch), key="live")
if st.button(
    "Refit on the next frame",
    key="live_refit",
    help="PCA colours (and the reference patch) are fitted once, on one frame, so they do not flicker; "
    "refit when the scene changed.",
):
    live.refit()
show_stats(live, key="live")
