"""Stored datasets: explore embeddings written by `python -m core.batch embed` — density map, search, near-duplicates."""

import streamlit as st

from core.config import scale_extras_installed

KEY = "stored"

st.title("Stored datasets")
st.caption(
    "Millions of images embedded offline with Ray Data and stored in Lance: a density map of a projection fitted "
    "on a sample, nearest-neighbour and text search through the vector index, and a near-duplicate report."
)
if not scale_extras_installed():
    st.info(
        "Stored datasets need the scale extras (LanceDB, datashader, Ray Data): run `make setup-scale`, then reload."
    )
    st.stop()

from components import stored_view as view  # noqa: E402 - needs the scale extras checked above
from components.errors import user_errors  # noqa: E402

stored = None
with user_errors("Opening the stored dataset"):
    stored = view.pick_store(key=KEY)
if stored is None:
    with user_errors("Storing the working set"):
        view.offer_new_store(key=KEY)
    st.stop()
view.show_summary(stored)

st.subheader("Map")
coords = row = None
with user_errors("Projecting"):
    coords = view.project(stored, key=f"{KEY}_map")
    if coords is not None:
        row = view.show_density(coords, stored, key=f"{KEY}_map")

st.subheader("Search")
k = st.slider("Results", 1, 48, 8, key=f"{KEY}_k")
image_tab, text_tab = st.tabs(["Picked image → nearest stored images", "Text → image (CLIP)"])
with image_tab, user_errors("Image search"):
    if row is None:
        st.caption("Click a point on the map to pick a stored image.")
    else:
        view.show_row_neighbours(stored, row, k, key=f"{KEY}_nn")
with text_tab, user_errors("Text search"):
    view.show_text_search(stored, k, key=f"{KEY}_text")

st.subheader("Near-duplicates")
with user_errors("Near-duplicate report"):
    view.show_duplicates(stored, key=f"{KEY}_dup")
