"""Patch Search: click a patch of one image, find the most similar patches across a whole set of images."""

import streamlit as st

from components.images import quick_add
from components.patch_search_view import show_index_source, show_search
from components.sidebar import DENSE, selected_model
from components.state import get_working_set

st.title("Patch Search")
st.caption(
    "Find the same part everywhere: click a patch of a query image (or draw a box or lasso over several) and see "
    "the most similar patches across the working set, or across a stored patch index of a whole dataset."
)

with st.expander("How to read this page"):
    st.markdown(
        "- **Index:** every patch token of every image (or only each image's foreground patches, as on the PCA "
        "Foreground page; or 2 × 2 patches averaged into one), searched by cosine similarity.\n"
        "- **Query:** the clicked patch's token, or the mean of the tokens of a box or lasso of patches. It is "
        "computed with the index's own model and input size.\n"
        "- **Results:** each crop shows the matched patch (red) with one patch of context; below it, the cosine of "
        "the query to every patch of that image, from the lowest (dark) to the highest (yellow) on that image.\n"
        "- **One result per image** keeps each image's best patch only. With random weights the matches follow "
        "little more than colour."
    )

quick_add("psearch_quick")
images = get_working_set()
if not images.items:
    st.info("The working set is empty. Add images on the Upload page (or load the built-in samples) first.")
    st.stop()

found = show_index_source(images, selected_model(DENSE), key="psearch")
if found is not None:
    show_search(images, found, key="psearch")
