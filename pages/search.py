"""Search: rank the working set by a text description (CLIP) or by an image (any model), with scores."""

import streamlit as st

from components import retrieval_view as view
from components.errors import user_errors
from components.images import pick_image
from components.sidebar import selected_model
from components.state import get_engine, get_working_set
from core.analysis.retrieval import rank

st.title("Search")
st.caption(
    "Every image of the working set, ranked by cosine similarity of its embedding to the query: a CLIP text "
    "embedding, or the embedding of one of the images (itself left out) with any model."
)

images = get_working_set()
if len(images.items) < 2:
    st.info("Search needs at least two images in the working set. Add images on the Upload page.")
    st.stop()

n = len(images.items)
k = st.slider("Results", 1, min(48, n), min(8, n), key="search_k")
text_tab, image_tab = st.tabs(["Text → image (CLIP)", "Image → image (any model)"])

with text_tab:
    query = st.text_input("Describe what you are looking for", "a photo of a cat", key="search_text").strip()
    if not query:
        st.info("Type a description to search for.")
    else:
        with user_errors("Text search"):
            model = selected_model("clip")
            text = get_engine().embed_text([query], model)[0]
            view.show_ranking(images, rank(text, view.embed_images(images.images, model), k), key="search_text")

with image_tab:
    left, right = st.columns(2)
    with left:
        model = view.pick_model("Model", key="search_image")
    with right:
        index = pick_image(images, "Query image", key="search_query")
    with user_errors("Image search"):
        features = view.embed_images(images.images, model)
        st.image(images.items[index].image, caption=f"Query: {images.names[index]}", width=view.THUMB * 2)
        view.show_ranking(images, rank(features[index], features, k, exclude=index), key="search_image")
