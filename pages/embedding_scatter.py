"""Embedding Scatter: a labeled dataset's embeddings projected (LDA, PCA, UMAP, t-SNE), scored and compared."""

import streamlit as st

from components.errors import user_errors
from components.scatter_view import (
    STORED,
    embed_models,
    load_dataset,
    load_stored,
    pick_settings,
    project_models,
    show_accuracy_table,
    show_clusters,
    show_confusion,
    show_exports,
    show_scatters,
)
from components.state import get_working_set
from core.analysis.projection import start_umap_warmup

KEY = "scatter"

st.title("Embedding Scatter")
st.caption(
    "How well do a model's image embeddings separate the classes? Each projection is fitted on a training split; "
    "accuracy is measured only on held-out images."
)

start_umap_warmup()  # UMAP's numba code compiles in the background while the settings are chosen
working = get_working_set()
settings = pick_settings(working, key=KEY)
if settings is None:
    st.stop()

images = embeddings = results = None
source = ""  # the dataset's title in the accuracy table, when not the source's own
with user_errors("Loading the dataset"):
    if settings.dataset == STORED:  # embeddings written by core.batch: read, not computed
        images, embeddings, source = load_stored(settings, key=KEY) or (None, None, "")
    else:
        images = load_dataset(settings, working)
if images is None:
    st.stop()
with user_errors("Embedding and projecting"):
    embeddings = embeddings or embed_models(images, settings.models)
    results = project_models(images, embeddings, settings)
if not results:
    st.stop()

st.subheader("Accuracy")
show_accuracy_table(settings, images, results, key=KEY, source=source)

st.subheader("Scatter")
show_scatters(images, results, key=KEY)

st.subheader("Confusion matrix")
show_confusion(results, key=KEY)

st.subheader("Clusters")
show_clusters(images, embeddings, key=KEY)

st.subheader("Export")
show_exports(images, embeddings, results, key=KEY)
