"""Stored-dataset widgets: open a Lance dataset under the data roots (found ones offered), its density map (zoom
re-renders, a click picks the nearest stored image), nearest-neighbour, image and text search through its index,
the near-duplicate report, and several datasets aligned for a model comparison. Every widget key starts with the
`key` argument."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import streamlit as st

from components import big_map
from components.charts import MAX_POINTS, density_figure
from components.downloads import download_csv
from components.hover_images import TILE, hover_thumbnails
from components.progress import progress_bar
from components.sidebar import DENSE, TEXT, selected_model
from components.state import (
    asked,
    get_engine,
    get_working_set,
    picked_row,
    store_note,
    store_to_open,
)
from components.stored_data import (
    METHOD_TITLES,
    THUMB,
    aligned,
    forget_found,
    found_stores,
    labels_of,
    missing_tile,
    near_duplicates,
    paths_of,
    projection,
    store_name,
    stored_thumbnail,
    titles,
)
from components.stored_picker import pick_store  # noqa: F401 - pages open datasets through this view
from core import batch, config, registry, store, store_reports
from core.analysis.scale import SCALABLE_METHODS, View
from core.data import ImageSet
from core.models import Can, can
from core.text import count

HOVER_POINTS = 300  # a view holding at most this many rows shows each one's image on hover (read from disk)
SAMPLE = 20_000  # rows the projection is fitted on


# ---- opening --------------------------------------------------------------------------------
def offer_new_store(key: str) -> None:
    """Ways to a first stored dataset: this session's working set, embedded here with a progress bar into a folder
    under the first data root (then opened), or the terminal command for a large folder."""
    root = config.data_roots()[0].expanduser().resolve()
    found = found_stores()
    with st.expander("Make a stored dataset", expanded=not found, icon=":material/add:"):
        if not found:
            st.markdown(f"No stored dataset under `{root}` yet.")
        images = get_working_set()
        models = list(dict.fromkeys([selected_model(TEXT), selected_model(DENSE)]))
        model = st.selectbox(
            "Model", models, format_func=registry.display_name, key=f"{key}_new_model",
            help="The sidebar's CLIP and DINOv2 choices. A CLIP dataset can also be searched by text.",
        )  # fmt: skip
        n = len(images.items)
        label = f"Store the working set ({count(n, 'image')})"
        if st.button(label, key=f"{key}_new_go", disabled=not n, icon=":material/database:"):
            out, summary = store_working_set(images, model, root)
            forget_found()
            store_to_open(key).set(str(out))
            store_note(key).set(f"Working set stored in `{out}`: {summary.describe()}.")
            st.rerun()
        if not n:
            st.caption("The working set is empty: add images on the Upload page first.")
        name = registry.parse(model).spec.name
        st.caption(
            "A large folder (class subfolders give labels): embed it from a terminal in the app's folder. The run is "
            "resumable and shows images/s; the dataset appears here when it is done."
        )
        command = f"python -m core.batch embed {root / 'photos'} {root / 'photos.lance'} --model {name}"
        st.code(command, language="bash", wrap_lines=True)


def store_working_set(images: ImageSet, model: str, root: Path) -> tuple[Path, batch.RunSummary]:
    """The working set as PNGs and a manifest under `root`, embedded in this process by `model` into a stored
    dataset beside them, with a progress bar for each step. Returns (the dataset's folder, the run's summary)."""
    folder = batch.image_set_folder(root, images.images, images.names, images.labels)
    n = count(len(images.items), "image")
    update, close = progress_bar(f"Writing {n} to {folder}")
    try:
        manifest = batch.write_image_folder(folder, images.images, images.names, images.labels, update)
    finally:
        close()
    out = folder / f"{registry.parse(model).spec.name}.lance"
    update, close = progress_bar(f"Embedding {n} with {registry.display_name(model)}")
    try:
        summary = batch.embed_in_process(manifest, out, model, get_engine(), progress=update)
    finally:
        close()
    return out, summary


def show_summary(stored: store.StoredDataset) -> None:
    labels = labels_of(str(stored.path))
    classes = len({v for v in labels if v is not None})
    cols = st.columns(4)
    cols[0].metric("Images", f"{stored.rows:,}")
    cols[1].metric("Classes", classes or "—")
    cols[2].metric("Skipped files", stored.skipped.count_rows() if stored.skipped is not None else 0)
    cols[3].metric("Index", stored.index_name)
    st.caption(f"Model **{registry.display_name(stored.ref)}**, {stored.dim}-D vectors.")


# ---- projection and density -------------------------------------------------------------------
def project(stored: store.StoredDataset, key: str) -> np.ndarray | None:
    """(N, 2) coordinates of every row, after the button; cached per dataset, method and sample size."""
    with st.form(f"{key}_projection"):
        left, right = st.columns(2)
        method = left.selectbox("Projection", SCALABLE_METHODS, format_func=METHOD_TITLES.get, key=f"{key}_method")
        least = min(10, stored.rows)  # a small dataset (a stored working set) is fitted on all its rows
        sample = right.number_input(
            "Fit on a sample of", least, 1_000_000, min(SAMPLE, stored.rows), key=f"{key}_sample"
        )
        if st.form_submit_button("Project every row", key=f"{key}_go"):
            asked(key, "projected").set(True)
    if not asked(key, "projected").get():
        return None
    coords, notes = projection(str(stored.path), method, int(min(sample, stored.rows)))
    for note in notes:
        st.caption(note)
    return coords


def pick_view(coords: np.ndarray, key: str) -> View:
    """x and y range sliders over the full extent; narrowing them zooms (the density re-renders)."""
    full = View.of(coords)
    left, right = st.columns(2)
    x = left.slider("x range", full.x[0], full.x[1], full.x, key=f"{key}_x")
    y = right.slider("y range", full.y[0], full.y[1], full.y, key=f"{key}_y")
    return View(tuple(x), tuple(y))


def show_density(coords: np.ndarray, stored: store.StoredDataset, key: str) -> int | None:
    """The density map with zoom sliders (up to big_map.PLOTLY_MAX rows; beyond, every row on the big map); returns
    the clicked row (storage offset) or None."""
    if len(coords) > big_map.PLOTLY_MAX:
        return show_big(coords, stored, key)
    view = pick_view(coords, key)
    labels = labels_of(str(stored.path))
    fig, rows = density_figure(coords, labels, view)
    fig.update_layout(meta=key)  # the hover thumbnails find their chart by it
    n_in = int(view.contains(coords).sum())
    if n_in <= HOVER_POINTS:
        _hover_images(stored, rows, key)
    st.caption(
        f"{n_in:,} of {len(coords):,} rows in view. "
        + (
            "Every row is drawn: hover one to see its image, click it to pick it."
            if n_in <= HOVER_POINTS
            else f"Every row is drawn; click one (images on hover below {HOVER_POINTS:,} rows in view)."
            if n_in <= MAX_POINTS
            else f"Zoom in to below {MAX_POINTS:,} rows to see single points; a click picks the nearest stored image."
        )
    )
    event = st.plotly_chart(fig, key=f"{key}_chart", on_select="rerun", selection_mode=("points",))
    points = (event or {}).get("selection", {}).get("points", [])
    if points:
        index = points[0].get("point_index", points[0].get("point_number"))
        if index is not None and 0 <= index < len(rows):
            picked_row(key).set(int(rows[index]))
    return picked_row(key).get()


def show_big(coords: np.ndarray, stored: store.StoredDataset, key: str) -> int | None:
    """Every row on the big map: its image on hover, lassoed rows' images below it; a click on one row picks it
    (the page reruns so the search below follows). Returns the picked row (storage offset) or None."""
    path = str(stored.path)
    labels, paths = labels_of(path), paths_of(path)

    def caption(row: int) -> str:
        return f"{Path(paths[row].as_py()).name}" + (f" [{labels[row]}]" if labels[row] is not None else "")

    def selected(rows: np.ndarray) -> None:
        if rows.size == 1 and picked_row(key).get() != int(rows[0]):
            picked_row(key).set(int(rows[0]))
            st.rerun()  # the search below the map follows the picked row
        _show_selection(rows, paths, labels, key)

    big_map.show_big_map(
        coords, labels, key=key, image_of=lambda row: stored_thumbnail(paths[row].as_py(), big_map.TIP),
        caption_of=caption, show_selected=selected,
    )  # fmt: skip
    return picked_row(key).get()


def _show_selection(rows: np.ndarray, paths: pa.Array, labels: np.ndarray, key: str, per_page: int = 48) -> None:
    """How many rows are selected, per class, and their images a page at a time."""
    if not rows.size:
        return
    classes, counts = np.unique([str(v) for v in labels[rows]], return_counts=True)
    order = np.argsort(-counts, kind="stable")[:8]
    per_class = ", ".join(f"{counts[i]:,} × {classes[i]}" for i in order) + (", …" if len(classes) > 8 else "")
    st.markdown(f"**{rows.size:,} selected** ({per_class})")
    pages = (rows.size + per_page - 1) // per_page
    page = st.number_input("Page", 1, pages, 1, key=f"{key}_sel_page") if pages > 1 else 1
    chunk = rows[(page - 1) * per_page : page * per_page]
    show_images(paths.take(chunk).to_pylist(), [f"row {r}" for r in chunk], side=96)


def _hover_images(stored: store.StoredDataset, rows: np.ndarray, key: str) -> None:
    """The images of `rows` (storage offsets) beside the map's hover label; grey for files that moved."""
    paths = paths_of(str(stored.path)).take(rows).to_pylist()
    with st.spinner(f"Reading {len(rows):,} images for the hover thumbnails…"):
        thumbs = [stored_thumbnail(p, TILE) for p in paths]
    digest = hashlib.blake2b(f"{stored.path}|{stored.rows}".encode() + rows.tobytes(), digest_size=16).hexdigest()
    hover_thumbnails([key], rows, [missing_tile(TILE) if t is None else t for t in thumbs], digest, key=f"{key}_hover")


# ---- images and search ------------------------------------------------------------------------
def show_images(paths: list[str], captions: list[str], side: int = THUMB) -> None:
    """Thumbnails of stored paths; files outside the data roots or gone are named instead."""
    thumbs = [stored_thumbnail(p, side) for p in paths]
    shown = [(t, c) for t, c in zip(thumbs, captions, strict=True) if t is not None]
    if shown:
        st.image([t for t, _ in shown], caption=[c for _, c in shown], width=side)
    missing = [p for p, t in zip(paths, thumbs, strict=True) if t is None]
    if missing:
        st.caption(f"{len(missing)} image(s) not shown (moved, or outside the data roots): {', '.join(missing[:3])}")


def show_results(found, key: str) -> None:
    captions = [
        f"{s:.3f} · {lab or ''}".rstrip(" ·") for s, lab in zip(found["similarity"], found["label"], strict=True)
    ]
    show_images(list(found["path"]), captions)
    st.dataframe(found, hide_index=True, key=f"{key}_table")
    download_csv(found, "stored_search_results.csv", f"{key}_csv")


def _query_model(stored: store.StoredDataset) -> str:
    """The dataset's own model (``name@weights``) for embedding queries; ValueError when those weights cannot be
    loaded here, since a query embedded with random weights would rank the stored images meaninglessly."""
    status = get_engine().weights_status(stored.ref)
    if status.is_random and stored.weights != "random":
        name = registry.display_name(stored.ref)
        raise ValueError(
            f"this dataset was embedded with {name}, whose weights are not on this machine and cannot be downloaded "
            "now, so a query cannot be embedded like the stored images. Put them in $VFM_LENS_WEIGHTS or the cache "
            "(`make weights` on a connected machine)."
        )
    return stored.ref


def show_row_neighbours(stored: store.StoredDataset, row: int, k: int, key: str) -> None:
    """The picked stored image and its `k` nearest stored neighbours (itself excluded) through the index."""
    data = store.read_rows(stored.table, [row])
    path, label = data["path"][0].as_py(), data["label"][0].as_py()
    st.markdown(f"**Picked:** `{path}`" + (f" — {label}" if label else ""))
    show_images([path], ["picked"], side=THUMB * 2)
    found = store.search(stored.table, store.vectors_of(data)[0], k + 1)
    show_results(found[found["path"] != path].head(k), key)


def show_text_search(stored: store.StoredDataset, k: int, key: str) -> None:
    """Text → stored images, for image–text datasets (CLIP, SigLIP 2: the text goes through the same model's
    text tower)."""
    if not can(registry.parse(stored.ref).spec, Can.TEXT):
        st.info(
            "Text search needs a dataset embedded by an image–text model (CLIP, SigLIP 2); "
            f"this one holds {registry.display_name(stored.ref)} embeddings."
        )
        return
    query = st.text_input("Describe what you are looking for", "a photo of a cat", key=f"{key}_text").strip()
    if query:
        text = get_engine().embed_text([query], _query_model(stored))[0]
        show_results(store.search(stored.table, text, k), f"{key}_results")


def show_image_search(stored: store.StoredDataset, image: np.ndarray, k: int, key: str) -> None:
    """`image` (HWC uint8 RGB) embedded with the dataset's own model, then its `k` nearest stored images."""
    vector = get_engine().embed([image], _query_model(stored))[0]
    show_results(store.search(stored.table, vector, k), key)


# ---- several datasets -------------------------------------------------------------------------
def pick_aligned(key: str) -> tuple[dict[str, np.ndarray], store_reports.AlignedRows] | None:
    """Stored datasets to compare (one model each) and a per-class sample of the labeled images they all hold.

    Returns ({model title: (N, D) vectors}, the aligned rows), or None until one is chosen; errors raise for
    `user_errors`. The sample is stated under the controls."""
    found = found_stores()
    left, right = st.columns([3, 1])
    paths = left.multiselect(
        "Stored datasets (one model each)", found, format_func=store_name, key=f"{key}_stores",
        placeholder=f"{len(found)} found under the data roots" if found else "None found under the data roots",
    )  # fmt: skip
    per_class = right.number_input(
        "Images per class", 2, 1_000_000, 100, key=f"{key}_per_class",
        help="At most this many of each class, chosen at random (seed 0) among the images every dataset holds.",
    )  # fmt: skip
    if not paths:
        st.info(
            "Choose stored datasets embedded with `python -m core.batch embed` from the same images with different "
            "models; they are compared on the labeled images they share (matched by path)."
        )
        return None
    rows = aligned(tuple(paths), int(per_class))
    st.caption(rows.describe())
    return dict(zip(titles(paths), rows.vectors, strict=True)), rows


# ---- near duplicates --------------------------------------------------------------------------
def show_duplicates(stored: store.StoredDataset, key: str, pairs_shown: int = 12) -> None:
    """Pairs and groups above a cosine threshold, side by side, with a CSV of every pair."""
    with st.form(f"{key}_form"):
        left, right = st.columns(2)
        threshold = left.slider("Cosine similarity at least", 0.80, 1.0, 0.95, 0.005, key=f"{key}_threshold")
        max_rows = right.number_input(
            "Rows compared (random sample above this)", 100, 2_000_000, 1_000_000, key=f"{key}_rows"
        )
        go_clicked = st.form_submit_button("Find near-duplicates", key=f"{key}_go")
    if go_clicked:
        asked(key, "run").set(True)
    if not asked(key, "run").get():
        return
    groups, table, examined, method = near_duplicates(str(stored.path), float(threshold), int(max_rows))
    scope = "all rows" if examined == stored.rows else f"a random sample of {examined:,} of {stored.rows:,} rows"
    st.markdown(f"**{len(table):,} pairs in {groups:,} groups** at cosine ≥ {threshold:.3f} among {scope}.")
    st.caption(f"Search: {method}. Every pair listed has its exact cosine.")
    if table.empty:
        return
    download_csv(table, "near_duplicates.csv", f"{key}_csv", label="Near-duplicate pairs (CSV)", icon=None)
    for row in table.head(pairs_shown).itertuples():
        st.caption(f"group {row.group} · cosine {row.similarity:.4f}")
        show_images([row.path_a, row.path_b], [row.id_a[:10], row.id_b[:10]])
    st.dataframe(table, hide_index=True, key=f"{key}_table")
