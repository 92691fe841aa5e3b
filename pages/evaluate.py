"""Measure segmentation: ground truth in; simulated clicks, automatic masks and zero-shot edges against it; a brush
and an eraser to correct a mask."""

import streamlit as st

from components.brush_view import show_brush
from components.eval_view import load_ground_truth, show_auto_eval, show_click_eval, show_edges, show_objects
from components.sidebar import SEGMENT, selected_model

st.title("Measure segmentation")
st.caption(
    "How good is a promptable segmenter on your images? Load images with ground-truth masks (images/ + masks/ "
    "paired by file stem, or a COCO JSON), then measure SAM's masks the way the SAM paper does."
)

gt = load_ground_truth("eval")
if gt is None:
    st.info("Load ground truth: a zip, a folder on the server, or the built-in shapes.")
    st.stop()
index = show_objects(gt, "eval")
model = selected_model(SEGMENT)

clicks, automatic, edges, brush = st.tabs(["Click protocol", "Automatic masks", "Edges", "Brush and eraser"])
with clicks:
    show_click_eval(gt, "eval_clicks")
with automatic:
    st.caption("The sidebar's segmenter, on the image chosen above.")
    show_auto_eval(gt, index, model, "eval_auto")
with edges:
    show_edges(gt, index, model, "eval_auto")  # shares the automatic masks of its 16 × 16 grid
with brush:
    show_brush(gt, index, model, "eval_brush")
