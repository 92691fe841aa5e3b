"""Patch Matching (DINOv2, DINOv3): click a patch of image A, see where it lives in image B."""

import streamlit as st

from components.errors import user_errors
from components.images import quick_add
from components.matching_view import compute_pair, show_matching, show_pair_controls
from components.sidebar import DENSE, selected_model
from components.state import get_working_set
from core.registry import parse

model = selected_model(DENSE)
spec = parse(model).spec
patch = f"{spec.patch_size} × {spec.patch_size}"
st.title("Patch Matching")
st.caption(
    f"{spec.title} describes every {patch} px patch of an image with a token. Click a patch of image A to see "
    "how similar each patch of image B is to it; below, the pairs of patches that pick each other as best match."
)

with st.expander("How to read this page"):
    st.markdown(
        "- **Heat map:** cosine similarity between the clicked token of A and every token of B, from the "
        "lowest (dark) to the highest (yellow) value on this map. The boxes mark the best matches.\n"
        "- **Cosine Similarity** compares directions (1 = same); **Euclidean Distance** compares the raw tokens, "
        "so it also grows with their length.\n"
        "- **Correspondences** keep only pairs that choose each other: a patch of A whose best match in B has "
        "A's patch as its own best match. With trained weights they land on the same parts (eye ↔ eye); "
        "with random weights they reflect little more than colour.\n"
        f"- Every image is resized to a square first, so a patch covers a {patch} square of the model input, "
        "which is a rectangle of the original photo when it is not square."
    )

quick_add("match_quick")
images = get_working_set()
if not images.items:
    st.info("The working set is empty. Add images on the Upload page (or load the built-in samples) first.")
    st.stop()
if len(images.items) == 1:
    st.info("Only one image in the working set: it is matched against itself. Add another on the Upload page.")

inputs = show_pair_controls(images, model, key="match")
pair = None
if inputs is not None:
    with user_errors("Computing the patch tokens"):
        pair = compute_pair(images, inputs)
if pair is not None:
    show_matching(pair, key="match")
