"""Segment (SAM, SAM 2, EdgeTAM): click to segment, automatic masks, dataset precompute, export."""

import streamlit as st

from components.images import pick_image
from components.segment_view import (
    compute_embedding,
    faster_model_hint,
    pick_upload,
    show_auto_masks,
    show_precompute,
    show_segmenter,
)
from components.sidebar import SEGMENT, selected_model
from components.state import get_working_set

st.title("Segment")
st.caption(
    "Segment Anything (SAM, SAM 2, EdgeTAM): the image is encoded once, then every click runs only the light mask "
    "decoder. The model is chosen in the sidebar."
)

model = selected_model(SEGMENT)
if hint := faster_model_hint(model):
    st.caption(hint)
images = get_working_set()
source = st.radio("Image from", ["Working set", "Upload"], horizontal=True, key="seg_source")
if source == "Upload":
    picked = pick_upload("seg_upload")
elif images.items:
    index = pick_image(images, "Image", key="seg_image")
    picked = images.names[index], images.items[index].image
else:
    picked = None
if picked is None:
    st.info("Pick an image: add images on the Upload page, or upload one here.")
    st.stop()
name, image = picked

clicks, automatic, dataset = st.tabs(["Click to segment", "Automatic masks", "Whole working set"])
with dataset:
    show_precompute(images, model, key="seg_all")
with clicks:
    embedding = compute_embedding(image, model)
if embedding is not None:
    with clicks:
        show_segmenter(image, embedding, model, name, key="seg")
    with automatic:
        show_auto_masks(image, embedding, model, name, key="seg_auto")
