"""Compare models on a labeled set: 1-NN, k-NN, few-shot and retrieval mAP, in one table.

The set is the working set (embedded here with each model) or the images that stored datasets share (one model each).
"""

import streamlit as st

from components import retrieval_view as view
from components.errors import user_errors
from components.sidebar import random_note
from components.state import get_working_set
from core.text import count

st.title("Compare models")
st.caption(
    "How well each model's image embeddings separate the classes, scored on the set itself with cosine "
    "similarity: leave-one-out 1-NN and k-NN accuracy; few-shot accuracy over random episodes (features centred "
    "by the support mean, L2-normalised, nearest class mean); retrieval mAP with every image a query against "
    "the rest. The timm models are ImageNet-supervised baselines."
)

if view.pick_source("Compare on", "Stored datasets", key="compare"):
    from components import stored_view  # needs the scale extras, checked by pick_source

    picked = None
    with user_errors("Reading the stored datasets"):
        picked = stored_view.pick_aligned(key="compare_stored")
    if picked is None:
        st.stop()
    vectors, rows = picked
    key, labels, settings, about = "compare_stored", list(rows.labels), (rows.sources, rows.per_class), rows.describe()
    ready = True
    features = lambda: vectors  # noqa: E731 - the stored vectors, read already
    waiting = f"Press Compare to score the {len(labels):,} images with each dataset's stored vectors."
else:
    images = get_working_set()
    labeled = [item for item in images.items if item.label is not None]
    counts = images.class_counts()
    if len(counts) < 2 or len(labeled) < 3:
        have = f"{count(len(labeled), 'labeled image')} in {count(len(counts), 'class', 'classes')}"
        st.info(
            f"Compare needs a labeled set with at least two classes and three images; you have {have}"
            + (f" ({next(iter(counts))})" if len(counts) == 1 else "")
            + ". On Upload, load the labeled digits or a zip with one folder per class."
        )
        st.stop()
    if len(labeled) < len(images.items):
        st.caption(f"{len(images.items) - len(labeled)} unlabeled images are left out.")
    models = view.pick_models(key="compare")
    random_note(models, "Their scores are those of random features: they rank architectures, not what models learned.")
    key, labels, settings = "compare", [item.label for item in labeled], (images.names, images.labels, models)
    about, ready = f"{len(labeled):,} images, {len(counts)} classes.", bool(models)
    features = lambda: {view.model_title(m): view.embed_images([it.image for it in labeled], m) for m in models}  # noqa: E731
    waiting = (
        f"Press Compare to embed {len(labeled):,} images in {len(counts)} classes with each model and score them."
        if ready
        else "Pick at least one model."
    )

left, right = st.columns(2)
k = left.slider("k for k-NN", 2, 20, 5, key="compare_k")
episodes = right.slider("Few-shot episodes", 10, 500, 100, step=10, key="compare_episodes")
result = None
with user_errors("Comparing models"):
    result = view.run_comparison(features, labels, k, episodes, settings, key, disabled=not ready)
if result is None:
    st.info(waiting)
else:
    view.show_scores(
        result,
        f"{about} Few-shot: mean accuracy over {episodes} episodes and the half-width of its 95 % interval; empty "
        "where a class has too few images for that many shots.",
        key="compare",
    )
