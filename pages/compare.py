"""Compare models on a labeled set: 1-NN, k-NN, few-shot and retrieval mAP, in one table."""

import hashlib

import streamlit as st

from components import retrieval_view as view
from components.errors import user_errors
from components.state import get_working_set
from core.analysis.retrieval import SHOTS, compute_scores, scores_table

st.title("Compare models")
st.caption(
    "How well each model's image embeddings separate the classes, scored on the set itself with cosine "
    "similarity: leave-one-out 1-NN and k-NN accuracy; few-shot accuracy over random episodes (features centred "
    "by the support mean, L2-normalised, nearest class mean); retrieval mAP with every image a query against "
    "the rest. The timm models are ImageNet-supervised baselines."
)

images = get_working_set()
labeled = [item for item in images.items if item.label is not None]
counts = images.class_counts()
if len(counts) < 2 or len(labeled) < 3:
    st.info(
        "Compare needs a labeled set with at least two classes. On Upload, load the labeled digits or a zip with "
        "one folder per class."
    )
    st.stop()
if len(labeled) < len(images.items):
    st.caption(f"{len(images.items) - len(labeled)} unlabeled images are left out.")

models = view.pick_models(key="compare")
left, right = st.columns(2)
k = left.slider("k for k-NN", 2, 20, 5, key="compare_k")
episodes = right.slider("Few-shot episodes", 10, 500, 100, step=10, key="compare_episodes")
labels = [item.label for item in labeled]
signature = hashlib.blake2b(repr((images.names, images.labels, models, k, episodes)).encode()).hexdigest()

if st.button("Compare", type="primary", disabled=not models, key="compare_run"):
    with user_errors("Comparing models"):
        scores = {}
        for model in models:
            features = view.embed_images([item.image for item in labeled], model)
            scores[view.model_title(model)] = compute_scores(features, labels, k, SHOTS, episodes)
        st.session_state["compare_result"] = (signature, scores_table(scores))

result = st.session_state.get("compare_result")
if not models:
    st.info("Pick at least one model.")
elif result is None or result[0] != signature:
    st.info(f"Press Compare to embed {len(labeled):,} images in {len(counts)} classes with each model and score them.")
else:
    view.show_scores(
        result[1],
        f"{len(labeled):,} images, {len(counts)} classes. Few-shot: mean accuracy over {episodes} episodes and the "
        "half-width of its 95 % interval; empty where a class has too few images for that many shots.",
        key="compare",
    )
