"""Search: rank the working set by a text description (CLIP, SigLIP 2) or by an image (any model), with scores; or
search a stored dataset through its index (text with an image–text dataset, a working-set image embedded with the
dataset's model)."""

import streamlit as st

from components import retrieval_view as view
from components.errors import user_errors
from components.images import pick_image, quick_add
from components.sidebar import TEXT, random_note, selected_model
from components.state import get_engine, get_working_set
from core.analysis.retrieval import rank

st.title("Search")
st.caption(
    "Every image of the working set, ranked by cosine similarity of its embedding to the query: a text embedding "
    "from the sidebar's image–text model, or the embedding of one of the images (itself left out) with any model. "
    "A stored dataset is searched through its vector index instead, with its own model."
)

if view.pick_source("Search in", "Stored dataset", key="search"):
    from components import stored_view  # needs the scale extras, checked by pick_source

    stored = None
    with user_errors("Opening the stored dataset"):
        stored = stored_view.pick_store(key="search_store")
    if stored is None:
        st.stop()
    k = st.slider("Results", 1, 48, 8, key="search_stored_k")
    text_tab, image_tab = st.tabs(["Text → image (CLIP dataset)", "Image → image (the dataset's model)"])
    with text_tab, user_errors("Text search"):
        stored_view.show_text_search(stored, k, key="search_stored_text")
    with image_tab:
        quick_add(key="search_stored_add")
        images = get_working_set()
        if not images.items:
            st.info("Add a query image above (or on the Upload page).")
            st.stop()
        index = pick_image(images, "Query image (from the working set)", key="search_stored_query")
        with user_errors("Image search"):
            st.image(images.items[index].image, caption=f"Query: {images.names[index]}", width=view.THUMB * 2)
            stored_view.show_image_search(stored, images.items[index].image, k, key="search_stored_image")
    st.stop()

images = get_working_set()
if len(images.items) < 2:
    st.info("Search needs at least two images in the working set. Add images on the Upload page.")
    st.stop()

n = len(images.items)
k = st.slider("Results", 1, min(48, n), min(8, n), key="search_k")
text_tab, image_tab = st.tabs(["Text → image (image–text model)", "Image → image (any model)"])

with text_tab:
    query = st.text_input("Describe what you are looking for", "a photo of a cat", key="search_text").strip()
    if not query:
        st.info("Type a description to search for.")
    else:
        with user_errors("Text search"):
            model = selected_model(TEXT)
            text = view.embed_text([query], model)[0]
            if note := get_engine().tokenizer_note(model):
                st.caption(f":material/casino: {note}")
            view.show_ranking(images, rank(text, view.embed_images(images.images, model), k), key="search_text")

with image_tab:
    left, right = st.columns(2)
    with left:
        model = view.pick_model("Model", key="search_image")
    with right:
        index = pick_image(images, "Query image", key="search_query")
    random_note([model])
    with user_errors("Image search"):
        features = view.embed_images(images.images, model)
        st.image(images.items[index].image, caption=f"Query: {images.names[index]}", width=view.THUMB * 2)
        view.show_ranking(images, rank(features[index], features, k, exclude=index), key="search_image")
