"""Embedding Scatter widgets: settings, dataset, embeddings, projections, accuracy, scatter with selection,
confusion matrix, clusters and exports. Every widget key starts with the `key` argument."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from components import big_map
from components.charts import HELD_OUT, confusion_figure, scatter_figure, selected_indices
from components.downloads import download_csv, download_npz, npz_bytes
from components.errors import user_errors
from components.hover_images import MAX_IMAGES as MAX_HOVER_THUMBNAILS
from components.hover_images import hover_thumbnails
from components.images import show_thumbnails
from components.progress import progress_bar
from components.sidebar import ROLES, TEXT, selected_model
from components.state import accuracy_runs, get_engine, started
from core import registry
from core.analysis.clusters import CLUSTER_METHODS, cluster_purity, compute_clusters
from core.analysis.projection import ProjectionResult, compute_projection, downsample, list_methods
from core.config import scale_extras_installed
from core.data import ImageItem, ImageSet, image_hash
from core.datasets import (
    DATASETS,
    check_labeled,
    describe_subset,
    is_cached,
    load_seed_dataset,
    pick_per_class,
    take_per_class,
)
from core.text import count

MAX_PLOT_POINTS = 100_000  # beyond this the scatter shows a stated, stratified sample
MAX_STORED_SAMPLE = 20_000  # rows of a stored dataset read into the page; its whole map is on Stored datasets
STORED_THUMB = 96  # px of the stored images kept in memory (selections, clusters, hover)
SELECT_HINT = (
    "Click a point to see its image here (shift-click adds more), or pick the box or lasso tool in the chart's "
    "toolbar and drag around points."
)
SELECT_HINT_3D = "Points are picked on 2-D charts: set Dimensions to 2-D to click points and see their images."
WORKING = "working"
STORED = "stored"
METHOD_TITLES = {"lda": "LDA", "pca": "PCA", "umap": "UMAP", "tsne": "t-SNE"}
CLUSTER_TITLES = {"kmeans": "k-means", "agglomerative": "Agglomerative (Ward)"}
SOURCES = {WORKING: "Working set (from Upload)"} | {name: info.title for name, info in DATASETS.items()}
if scale_extras_installed():
    SOURCES[STORED] = "Stored dataset (embedded with core.batch)"


@dataclass(frozen=True)
class ScatterSettings:
    dataset: str  # WORKING or a key of core.datasets.DATASETS
    per_class: int
    models: tuple[str, ...]  # ``name@weights``
    method: str
    n_components: int
    standardize: bool

    @property
    def projection(self) -> str:
        return f"{METHOD_TITLES[self.method]} {self.n_components}-D" + (", standardised" if self.standardize else "")


model_title = registry.display_name


def _role_title(role: str) -> str:
    return f"{ROLES[role][0]}: {model_title(selected_model(role))}"


# ---- settings and data ------------------------------------------------------------------------
def pick_settings(working: ImageSet, key: str) -> ScatterSettings | None:
    """The controls, in one form. None (with a hint) until the button was pressed once, or with no model."""
    with st.form(f"{key}_form"):
        roles = st.multiselect(  # a row of its own: every chosen model's chip stays in view
            "Models",
            list(ROLES),
            default=[TEXT],
            format_func=_role_title,
            key=f"{key}_families",
            help="Which model of each role is set in the sidebar. Two models are shown side by side. "
            "A stored dataset brings its own model's embeddings.",
        )
        data_col, proj_col = st.columns(2)
        dataset = data_col.radio(
            "Dataset",
            list(SOURCES),
            index=0 if working.class_counts() else 1,
            format_func=_source_title,
            key=f"{key}_dataset",
        )
        per_class = data_col.number_input(
            "Images per class",
            2,
            5000,
            30,
            key=f"{key}_per_class",
            help="Larger classes are sampled at random (seed 0).",
        )
        method = proj_col.selectbox("Projection", list_methods(), format_func=METHOD_TITLES.get, key=f"{key}_method")
        dims = proj_col.radio("Dimensions", (2, 3), format_func=lambda d: f"{d}-D", horizontal=True, key=f"{key}_dims")
        standardize = proj_col.toggle(
            "Standardise features", key=f"{key}_standardize", help="Fitted on the train split."
        )
        if st.form_submit_button("Embed and project", type="primary", key=f"{key}_go"):
            started(key).set(True)
    if not started(key).get():
        st.caption("Choose a dataset and models, then press **Embed and project**.")
        return None
    if not roles and dataset != STORED:
        st.info("Choose at least one model under **Models**, then press **Embed and project**.")
        return None
    models = tuple(selected_model(role) for role in roles)
    return ScatterSettings(dataset, int(per_class), models, method, int(dims), bool(standardize))


def _source_title(source: str) -> str:
    """The dataset's title, saying when choosing it needs a download first."""
    needs_network = source in DATASETS and not is_cached(source)
    return SOURCES[source] + (" (needs the network once)" if needs_network else "")


@st.cache_resource(show_spinner="Loading the dataset…", max_entries=4)
def _seed_dataset(name: str, per_class: int) -> ImageSet:
    return load_seed_dataset(name, per_class)


def load_dataset(settings: ScatterSettings, working: ImageSet) -> ImageSet | None:
    """The labeled images to project, the subsample stated; None, with what to do, when they cannot be used."""
    if settings.dataset == WORKING:
        images, total = take_per_class(working, settings.per_class), sum(working.class_counts().values())
        if 0 < total < len(working.items):
            st.caption(
                f"{count(len(working.items) - total, 'unlabelled image')} of the working set left out (no class)."
            )
    else:
        images, total = _seed_dataset(settings.dataset, settings.per_class), DATASETS[settings.dataset].n_images
    if (problem := check_labeled(images)) is not None:
        st.info(f"**{SOURCES[settings.dataset]}**: {problem}")
        return None
    st.caption(f"**{SOURCES[settings.dataset]}** — {describe_subset(images, total, settings.per_class)}")
    return images


def load_stored(settings: ScatterSettings, key: str) -> tuple[ImageSet, dict[str, np.ndarray], str] | None:
    """A per-class sample of a stored dataset (picked on the page): its images as thumbnails, its own model's
    embeddings ``{name@weights: (N, D)}`` and its title. None, with what to do, until a usable dataset is chosen."""
    from components.stored_picker import pick_store  # needs the scale extras

    stored = pick_store(key=f"{key}_store")
    if stored is None:
        return None
    images, vectors, total = _stored_sample(str(stored.path), stored.rows, settings.per_class)
    if (problem := check_labeled(images)) is not None:
        st.info(f"**{stored.path.name}**: {problem} Embed a folder in class-subfolder layout to get labels.")
        return None
    unread = sum(item.note is not None for item in images.items)
    st.caption(
        f"**{stored.path.name}** ({registry.display_name(stored.ref)}, stored) — "
        f"{describe_subset(images, total, settings.per_class)}"
        + (
            f" At most {MAX_STORED_SAMPLE:,} rows are read here; the Stored datasets page maps them all."
            if len(images.items) >= MAX_STORED_SAMPLE
            else ""
        )
        + (
            f" {count(unread, 'image file')} could not be read (moved?): grey tiles stand in for them."
            if unread
            else ""
        )
    )
    return images, {stored.ref: vectors}, f"{stored.path.name} (stored)"


@st.cache_resource(show_spinner=False, max_entries=4)
def _stored_sample(path: str, rows: int, per_class: int) -> tuple[ImageSet, np.ndarray, int]:
    """(thumbnails with labels, their vectors, labeled rows in the dataset): `per_class` random rows of each
    class (seed 0), at most MAX_STORED_SAMPLE in all. `rows` keys the cache (a dataset that grew is read again)."""
    from components.stored_data import labels_of, missing_tile, opened, stored_thumbnail  # needs the scale extras
    from core import store

    labels = labels_of(path)
    labeled = np.flatnonzero([label is not None for label in labels])
    picks = labeled[pick_per_class(labels[labeled].astype(str), per_class)] if labeled.size else labeled
    if picks.size > MAX_STORED_SAMPLE:
        picks = np.sort(np.random.default_rng(0).choice(picks, MAX_STORED_SAMPLE, replace=False))
    table = store.read_rows(opened(path).table, picks, columns=("path", "label", "vector"))
    items = []
    update, close = progress_bar(f"Reading {len(picks):,} stored images")
    for i, (file, label) in enumerate(zip(table["path"].to_pylist(), table["label"].to_pylist(), strict=True)):
        image = stored_thumbnail(file, STORED_THUMB)
        note = None if image is not None else "could not be read (moved, or outside the data roots)"
        name = f"{Path(file).parent.name}/{Path(file).name}"
        items.append(ImageItem(name, missing_tile(STORED_THUMB) if image is None else image, str(label), note))
        update(i + 1, len(picks))
    close()
    return ImageSet(items), store.vectors_of(table), int(labeled.size)


# ---- embeddings and projections ---------------------------------------------------------------
def embed_models(images: ImageSet, models: tuple[str, ...]) -> dict[str, np.ndarray]:
    """model → (N, D) float32 embeddings, a progress bar each (instant when the engine has them cached)."""
    embeddings = {}
    for model in models:
        update, close = progress_bar(f"Embedding {count(len(images.items), 'image')} with {model_title(model)}")
        embeddings[model] = get_engine().embed(images.images, model, update, [it.digest for it in images.items])
        close()
    return embeddings


@st.cache_data(show_spinner=False, max_entries=32)
def _projection(digest: str, method: str, n_components: int, standardize: bool, _X, _y) -> ProjectionResult:
    bar = st.progress(0.0, text=f"{METHOD_TITLES[method]} on {len(_X):,} points")
    result = compute_projection(_X, _y, method, n_components, standardize, progress=lambda f, m: bar.progress(f, m))
    bar.empty()
    return result


def project_models(
    images: ImageSet, embeddings: dict[str, np.ndarray], settings: ScatterSettings
) -> dict[str, ProjectionResult]:
    """model → projection and scores; cached on the embedding and label content plus the settings."""
    y = np.asarray(images.labels)
    args = (settings.method, settings.n_components, settings.standardize)
    return {m: _projection(image_hash(X) + image_hash(y), *args, X, y) for m, X in embeddings.items()}


# ---- accuracy and confusion -------------------------------------------------------------------
def show_accuracy_table(
    settings: ScatterSettings, images: ImageSet, results: dict[str, ProjectionResult], key: str, source: str = ""
) -> None:
    """Model × dataset (`source`, else the source's title), in the seed slides' format; columns accumulate over
    this session's runs."""
    store = accuracy_runs(key).setdefault({})
    dataset = f"{source or SOURCES[settings.dataset]} (n={len(images.items):,})"
    for model, result in results.items():
        store[(settings.projection, model_title(model), dataset)] = (result.projection_accuracy, result.knn_accuracy)
    method = METHOD_TITLES[settings.method]
    rows: dict[str, dict[str, float]] = {}
    for (projection, model, data), (proj_acc, knn_acc) in store.items():
        if projection == settings.projection:
            if proj_acc is not None:  # t-SNE has none: no column rather than a column of blanks
                rows.setdefault(model, {})[f"{data} · {method}"] = proj_acc
            rows.setdefault(model, {})[f"{data} · k-NN"] = knn_acc
    table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("model")
    formats = {column: st.column_config.NumberColumn(format="%.2f") for column in table.columns}
    st.dataframe(table, column_config=formats, placeholder="")  # a model not run on a dataset: a blank cell
    scored = (
        f"{method}: logistic regression on the {settings.projection} projection, fitted on the train split and scored "
        "on a stratified 25 % held-out split (seed 0)."
        if settings.method != "tsne"
        else "t-SNE cannot place held-out images, so it has no projection accuracy column; choose LDA, PCA or UMAP."
    )
    not_run = (
        " A blank cell: that model was not run on that dataset in this session." if table.isna().any(axis=None) else ""
    )
    st.caption(
        f"{scored} k-NN: k=5, cosine, on the full embeddings.{not_run} "
        "Seed slides (LDA): CLIP 0.85 / 0.83, SAM 0.71 / 0.62 on CIFAR-10 / Caltech-101."
    )


def show_confusion(results: dict[str, ProjectionResult], key: str) -> None:
    models = list(results)
    left, right = st.columns(2)
    model = (
        left.selectbox("Model", models, format_func=model_title, key=f"{key}_cm_model")
        if len(models) > 1
        else models[0]
    )
    result = results[model]
    kinds = (["projection"] if result.confusion is not None else []) + ["knn"]
    names = {"projection": f"{METHOD_TITLES[result.method]} + logistic regression", "knn": "k-NN on full embeddings"}
    kind = (right if len(models) > 1 else left).radio(
        "Classifier", kinds, format_func=names.get, horizontal=True, key=f"{key}_cm_kind"
    )
    matrix = result.confusion if kind == "projection" else result.knn_confusion
    st.plotly_chart(confusion_figure(matrix, result.labels), key=f"{key}_confusion")
    st.caption(f"{count(int(matrix.sum()), 'held-out image')}; rows are the true class.")


# ---- scatter with selection -------------------------------------------------------------------
def show_scatters(images: ImageSet, results: dict[str, ProjectionResult], key: str) -> None:
    """One scatter per model, two side by side; hovering a point shows its thumbnail (up to
    MAX_HOVER_THUMBNAILS points), selected points show their images below each. Beyond big_map.PLOTLY_MAX points
    a 2-D projection is drawn whole on the big map instead of plotly."""
    labels, n = np.asarray(images.labels), len(images.items)
    if n > big_map.PLOTLY_MAX and all(r.coords.shape[1] == 2 for r in results.values()):
        _big_scatters(images, results, key)
        return
    shown = downsample(n, MAX_PLOT_POINTS, labels)
    if shown.size < n:
        st.caption(f"Showing {shown.size:,} of {n:,} points (stratified random sample); the scores use all points.")
    thumbnails = [images.items[i].image for i in shown] if shown.size <= MAX_HOVER_THUMBNAILS else []
    panels = {model: f"{key}_{registry.parse(model).spec.name}" for model in results}
    digest = _images_digest(thumbnails, images.names)
    if not hover_thumbnails(list(panels.values()), shown, thumbnails, digest, key=f"{key}_hover"):
        st.caption(f"Thumbnails on hover up to {MAX_HOVER_THUMBNAILS:,} points; click or lasso for images.")
    columns = st.columns(min(len(results), 2))
    for i, (model, result) in enumerate(results.items()):
        with columns[i % len(columns)]:
            st.markdown(f"**{model_title(model)}**")
            _scatter_panel(images, result, shown, panels[model])


def _images_digest(images: list[np.ndarray], names: list[str]) -> str:
    """A cheap content signature: names, shapes and every 8th pixel of each image."""
    digest = hashlib.blake2b(repr(names).encode(), digest_size=16)
    for image in images:
        digest.update(repr(image.shape).encode())
        digest.update(np.ascontiguousarray(image[::8, ::8]).data)
    return digest.hexdigest()


def _big_scatters(images: ImageSet, results: dict[str, ProjectionResult], key: str) -> None:
    """Every point on the big map, one per model (one below the other: each needs the page's width)."""
    st.caption(f"All {len(images.items):,} points drawn (beyond {big_map.PLOTLY_MAX:,} the chart is the big map).")
    for model, result in results.items():
        panel = f"{key}_{registry.parse(model).spec.name}"
        st.markdown(f"**{model_title(model)}**")
        big_map.show_big_map(
            result.coords,
            np.asarray(images.labels, dtype=object),
            key=panel,
            image_of=lambda i: images.items[i].image,
            caption_of=lambda i: f"{images.items[i].name} [{images.items[i].label}]",
            show_selected=lambda rows, panel=panel: _show_selected(images, rows, panel),
        )
        for note in result.notes:
            st.caption(note)


@st.fragment
def _scatter_panel(images: ImageSet, result: ProjectionResult, shown: np.ndarray, key: str) -> None:
    labels = np.asarray(images.labels)
    fig, trace_index = scatter_figure(result.coords, labels, np.asarray(images.names), result.is_test, shown)
    fig.update_layout(meta=key)  # the hover thumbnails find their chart by it
    event = st.plotly_chart(fig, key=f"{key}_chart", on_select="rerun", selection_mode=("points", "box", "lasso"))
    for note in result.notes:
        st.caption(note)
    picked = selected_indices(event, trace_index)
    if not picked.size:
        st.caption(SELECT_HINT if result.coords.shape[1] < 3 else SELECT_HINT_3D)
        return
    _show_selected(images, picked, key)


def _show_selected(images: ImageSet, picked: np.ndarray, key: str) -> None:
    """The images of the rows `picked`, counted per class, in a paged grid."""
    if not picked.size:
        return
    chosen = ImageSet([images.items[i] for i in picked])
    counts = ", ".join(f"{c} × {label}" for label, c in chosen.class_counts().items())
    st.markdown(f"**{picked.size:,} selected** ({counts})")
    show_thumbnails(chosen, key=f"{key}_picked", side=96)


# ---- clusters ---------------------------------------------------------------------------------
@st.cache_data(show_spinner="Clustering…", max_entries=32)
def _clusters(digest: str, n_clusters: int, method: str, _X: np.ndarray) -> np.ndarray:
    return compute_clusters(_X, n_clusters, method)


def show_clusters(images: ImageSet, embeddings: dict[str, np.ndarray], key: str, examples: int = 8) -> None:
    """Cluster one model's embeddings; purity against the labels and example images per cluster."""
    n, n_classes = len(images.items), len(images.class_counts())
    model_col, method_col, k_col = st.columns(3)
    model = model_col.selectbox("Embeddings", list(embeddings), format_func=model_title, key=f"{key}_cl_model")
    method = method_col.radio("Method", CLUSTER_METHODS, format_func=CLUSTER_TITLES.get, key=f"{key}_cl_method")
    k = k_col.number_input("Clusters", 2, min(100, n), min(n_classes, 100), key=f"{key}_cl_k")
    with user_errors("Clustering"):
        X = embeddings[model]
        ids = _clusters(image_hash(X), int(k), method, X)
        purity = cluster_purity(ids, np.asarray(images.labels))
        left, right = st.columns(2)
        left.metric("Purity", f"{purity.purity:.2f}", help="Share of images in their cluster's majority class.")
        right.metric("Adjusted Rand index", f"{purity.adjusted_rand:.2f}", help="0 for chance, 1 for the classes.")
        order = np.argsort(-purity.sizes, kind="stable")
        st.dataframe(
            {
                "cluster": order,
                "images": purity.sizes[order],
                "majority class": purity.majority[order],
                "purity": np.round(purity.cluster_purity[order], 3),
            },
            hide_index=True,
            key=f"{key}_cl_table",
        )
        picks = pick_per_class(ids, examples)
        with st.expander(f"Example images of the {min(len(order), 20)} largest clusters"):
            for c in order[:20]:
                rows = picks[ids[picks] == c]
                st.caption(
                    f"Cluster {c}: {count(int(purity.sizes[c]), 'image')}, majority class {str(purity.majority[c])!r}"
                )
                st.image([images.items[i].image for i in rows], caption=[images.items[i].label for i in rows], width=72)


# ---- export -----------------------------------------------------------------------------------
def export_table(images: ImageSet, results: dict[str, ProjectionResult]) -> pd.DataFrame:
    """One row per image: file, label, split, and per model its coordinates and held-out predictions."""
    is_test = next(iter(results.values())).is_test
    table = {"file": images.names, "label": images.labels, "split": np.where(is_test, HELD_OUT, "train")}
    for model, result in results.items():
        name = registry.parse(model).spec.name
        for axis, column in zip("xyz", result.coords.T, strict=False):
            table[f"{name}_{axis}"] = column
        for column, predictions in (("predicted", result.predictions), ("knn_predicted", result.knn_predictions)):
            if predictions is not None:
                table[f"{name}_{column}"] = pd.Series(predictions, index=np.flatnonzero(result.is_test)).reindex(
                    range(len(is_test))
                )
    return pd.DataFrame(table)


def export_arrays(images: ImageSet, embeddings: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One (N, D) float32 array per ``name@weights``, plus `names` and `labels` (N,): what the NPZ holds."""
    return {"names": np.asarray(images.names), "labels": np.asarray(images.labels), **embeddings}


def embeddings_npz(images: ImageSet, embeddings: dict[str, np.ndarray]) -> bytes:
    """NPZ bytes of `export_arrays`."""
    return npz_bytes(export_arrays(images, embeddings))


def show_exports(
    images: ImageSet, embeddings: dict[str, np.ndarray], results: dict[str, ProjectionResult], key: str
) -> None:
    left, right = st.columns(2)
    table = export_table(images, results)
    download_csv(table, "embedding_scatter.csv", f"{key}_csv", "Coordinates, labels and predictions (CSV)", left)
    download_npz(export_arrays(images, embeddings), "embeddings.npz", f"{key}_npz", right)
    st.caption("Predictions are given for the held-out rows only; the train rows fitted the classifiers.")
