"""Zero-shot, search, model comparison and text-prompted mask widgets.

Functions take numpy arrays, an ImageSet or core results; every widget key starts with the `key` argument.
Tables come with a CSV download, pictures with a PNG download (plotly figures: the camera icon).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import streamlit as st

from components.charts import confusion_figure
from components.downloads import download_csv
from components.images import thumbnail
from components.progress import progress_bar
from components.sidebar import DENSE, ROLES, TEXT, default_model, model_label, offered_models, selected_model
from components.state import comparison_result, get_engine
from core import registry
from core.analysis.retrieval import DEFAULT_TEMPLATES, SHOTS, Classification, Ranking, compute_scores, scores_table
from core.config import scale_extras_installed
from core.data import ImageSet
from core.text import count

THUMB = 128  # thumbnail side, pixels
MAX_GRID = 24  # thumbnails shown under a table


# ---- what to search or compare ----------------------------------------------------------------
def pick_source(label: str, stored_label: str, key: str) -> bool:
    """The working set or stored dataset(s): True for stored. Those need the scale extras (LanceDB); when they are
    missing this says how to install them and stops the page."""
    stored = st.radio(label, ["Working set", stored_label], horizontal=True, key=f"{key}_source") == stored_label
    if stored and not scale_extras_installed():
        st.info("Stored datasets need the scale extras (LanceDB, datashader): run `make setup-scale`, then reload.")
        st.stop()
    return stored


# ---- models -----------------------------------------------------------------------------------
model_title = model_label  # missing weights say "not found: random weights"


def candidate_models() -> list[str]:
    """``name@weights``: the sidebar's CLIP, DINOv2 and SAM choices, then every timm ImageNet baseline."""
    timm = [str(registry.parse(spec.name)) for spec in offered_models("timm")]
    return list(dict.fromkeys([selected_model(role) for role in ROLES] + timm))


def pick_model(label: str, key: str) -> str:
    options = candidate_models()
    return st.selectbox(label, options, index=1, format_func=model_title, key=f"{key}_model")


def pick_models(key: str) -> list[str]:
    """Several models for the comparison; the default is the sidebar's CLIP and DINOv2 plus one timm baseline."""
    default = [selected_model(TEXT), selected_model(DENSE), str(registry.parse(default_model("timm")))]
    return st.multiselect(
        "Models",
        candidate_models(),
        default=default,
        format_func=model_title,
        key=f"{key}_models",
        help="Change CLIP / DINOv2 / SAM in the sidebar. SAM embeds each image at 1024 px: slow on a CPU.",
    )


def embed_images(images: Sequence[np.ndarray], model: str) -> np.ndarray:
    """(N, D) float32 `Engine.embed`, with a progress bar (instant when the engine has them cached)."""
    update, close = progress_bar(f"Embedding {len(images):,} images with {model_title(model)}")
    features = get_engine().embed(list(images), model, update)
    close()
    return features


def embed_text(texts: Sequence[str], model: str) -> np.ndarray:
    """(T, D) CLIP text embeddings, under a spinner that names the work (a first use loads the model)."""
    with st.spinner(f"Embedding {count(len(texts), 'text prompt')} with {model_title(model)}…"):
        return get_engine().embed_text(list(texts), model)


# ---- prompts ----------------------------------------------------------------------------------
def edit_prompts(default_classes: Sequence[str], key: str) -> tuple[list[str], list[str]]:
    """Two text areas, one entry a line: class names and templates with `{}`. Returns both, blank lines dropped."""
    digest = hashlib.blake2b("\n".join(default_classes).encode(), digest_size=6).hexdigest()  # new set, new defaults
    left, right = st.columns(2)
    classes = left.text_area("Classes, one per line", "\n".join(default_classes), height=200, key=f"{key}_{digest}")
    templates = right.text_area(
        "Prompt templates, one per line ({} is the class)",
        "\n".join(DEFAULT_TEMPLATES),
        height=200,
        key=f"{key}_templates",
        help="Each class is the average of its prompts' normalised CLIP text embeddings.",
    )
    return _lines(classes), _lines(templates)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


# ---- tables ----------------------------------------------------------------------------------
def show_probabilities(images: ImageSet, classes: list[str], probs: np.ndarray, key: str) -> None:
    """One row per image: its label, the top class and its probability, then every class's probability."""
    top = probs.argmax(axis=1)
    table = pd.DataFrame({"image": images.names, "label": images.labels})
    table["predicted"] = [classes[i] for i in top]
    table["probability"] = probs[np.arange(len(top)), top]
    table = pd.concat([table, pd.DataFrame(probs, columns=[f"p({c})" for c in classes])], axis=1)
    st.dataframe(table, hide_index=True, key=f"{key}_table", column_config=_fractions(table.columns[3:]))
    download_csv(table, "zero_shot_probabilities.csv", f"{key}_csv")
    captions = [f"{c} · {p:.2f}" for c, p in zip(table["predicted"], table["probability"], strict=True)]
    show_grid(images.images[:MAX_GRID], captions[:MAX_GRID])


def show_confusion(result: Classification, n_left_out: int, key: str) -> None:
    st.metric("Zero-shot accuracy", f"{result.accuracy:.1%}")
    if n_left_out:
        st.caption(f"{n_left_out} unlabeled images are left out of the accuracy.")
    labels = result.classes
    st.plotly_chart(confusion_figure(result.confusion, labels), key=f"{key}_confusion")
    st.caption("Rows are the true class. The camera icon on the figure saves it as PNG.")
    table = pd.DataFrame(result.confusion, index=labels, columns=labels).rename_axis("true \\ predicted").reset_index()
    download_csv(table, "zero_shot_confusion.csv", f"{key}_confusion_csv")


def show_ranking(images: ImageSet, ranking: Ranking, key: str) -> None:
    """The ranked images with their cosine scores, best first, and the table as CSV."""
    idx = ranking.indices
    table = pd.DataFrame(
        {
            "rank": np.arange(1, len(idx) + 1),
            "image": [images.names[i] for i in idx],
            "label": [images.labels[i] for i in idx],
            "cosine": ranking.scores,
        }
    )
    captions = [
        f"#{r} {images.names[i]} · {s:.3f}" for r, (i, s) in enumerate(zip(idx, ranking.scores, strict=True), 1)
    ]
    show_grid([images.images[i] for i in idx], captions)
    st.dataframe(table, hide_index=True, key=f"{key}_table")
    download_csv(table, "search_results.csv", f"{key}_csv")


def run_comparison(
    features: Callable[[], dict[str, np.ndarray]],
    labels: Sequence[str],
    k: int,
    episodes: int,
    settings: object,
    key: str,
    disabled: bool = False,
) -> list[dict] | None:
    """A Compare button; a click scores every model of `features()` ({title: (N, D)}, called only then) on `labels`
    (N,). Returns the score rows of the last click made with these `settings`, k and episodes, else None."""
    signature = hashlib.blake2b(repr((settings, k, episodes)).encode()).hexdigest()
    if st.button("Compare", type="primary", disabled=disabled, key=f"{key}_run"):
        scores = {}
        for title, f in features().items():
            with st.spinner(f"Scoring {title}: 1-NN, {k}-NN, {episodes} few-shot episodes, retrieval mAP…"):
                scores[title] = compute_scores(f, labels, k, SHOTS, episodes)
        comparison_result(key).set((signature, scores_table(scores)))
    result = comparison_result(key).get()
    return result[1] if result is not None and result[0] == signature else None


def show_scores(rows: list[dict], caption: str, key: str) -> None:
    table = pd.DataFrame(rows)
    st.dataframe(table, hide_index=True, key=f"{key}_table", column_config=_fractions(table.columns[1:]))
    st.caption(caption)
    download_csv(table, "model_comparison.csv", f"{key}_csv")


def _fractions(columns: Sequence[str]) -> dict:
    return {c: st.column_config.NumberColumn(format="%.3f") for c in columns}


def show_grid(images: Sequence[np.ndarray], captions: Sequence[str]) -> None:
    if images:
        st.image([thumbnail(im, THUMB) for im in images], caption=list(captions), width=THUMB)
