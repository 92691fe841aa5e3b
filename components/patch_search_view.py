"""Patch search views: where to search (the working set, indexed here, or a stored patch index), the query image with
its clickable patch grid (a click picks a patch; a box or lasso picks several, searched with their mean), and the
results as crops and heat maps with a CSV export.

The index of the working set is built once per (images, model, size, pool, foreground) and kept by the server
(`st.cache_resource`); a stored index is opened once per folder and index file. The query's tokens come from the
engine's cache, computed with the index's own model at the index's own input size, so the two always match.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import streamlit as st

from components.charts import selected_indices
from components.downloads import download_csv
from components.errors import user_errors
from components.images import pick_image
from components.matching_charts import FIGURE_HEIGHT, patch_grid_figure, view_image
from components.progress import patch_tokens
from components.state import asked, get_engine, picked_patches, query_chart
from core import config, registry, store
from core.analysis.imaging import data_url, to_jpeg
from core.analysis.matching import matches_csv, patch_box
from core.data import ImageSet, confine
from core.patch_index import (
    PATCHES,
    Hit,
    PatchIndex,
    PatchSettings,
    build_patch_index,
    heats,
    hit_pictures,
    hits_table,
    open_patch_index,
    query_cells,
    search_patches,
)

WORKING_SET, STORED = "The working set (indexed here)", "A stored patch index"
COLUMNS = 4  # results a row
KEEP_INDEXES = 4  # working-set indexes kept by the server
CROP_HEIGHT = 120  # px, enlarged crops
HEAT_WIDTH = 400  # px at most, heat pictures (a quarter of the page: sharp on wide screens, and 4× less to draw)


@dataclass(frozen=True)
class Searchable:
    """A patch index and how to get the pixels of its images."""

    index: PatchIndex
    load: Callable[[int], np.ndarray]  # image position → HWC uint8 (ValueError/OSError when it cannot be read)


# ---- where to search ----------------------------------------------------------------------------
def show_index_source(images: ImageSet, model: str, key: str) -> Searchable | None:
    """The radio, its controls and the index (None until there is one; errors are shown)."""
    source = st.radio("Search in", [WORKING_SET, STORED], horizontal=True, key=f"{key}_source")
    found = None
    if source == WORKING_SET:
        settings = _working_set_controls(model, key)
        pressed = st.button("Build the patch index", type="primary", key=f"{key}_build")
        if pressed:
            asked(key, "indexed").set(True)
        if asked(key, "indexed").get() and settings is not None:
            with user_errors("Building the patch index"):
                found = _working_set_index(images, settings)
        elif settings is not None:
            st.caption("Every patch of every image of the working set is indexed when you press the button.")
    else:
        folder = st.text_input(
            "Patch index folder",
            key=f"{key}_folder",
            placeholder=str(config.data_roots()[0] / "patches.lance"),
            help="A folder written by `python -m core.batch patches SOURCE OUT --model dinov2_small`, inside "
            + ", ".join(map(str, config.data_roots()))
            + " (VFM_LENS_DATA_ROOTS).",
        ).strip()
        if folder:
            with user_errors("Opening the patch index"):
                found = _stored_index(folder)
    if found is not None:
        st.caption(f"**Index:** {found.index.describe()}")
    return found


def _working_set_controls(model: str, key: str) -> PatchSettings | None:
    spec = registry.parse(model).spec
    sizes = [spec.patch_size * n for n in range(4, 65)]
    left, middle, right = st.columns(3)
    size = left.select_slider(
        "Input size (px)", sizes, value=min(sizes, key=lambda s: abs(s - spec.input_size)), key=f"{key}_size"
    )
    pool = 2 if middle.toggle("Pool 2 × 2 patches", key=f"{key}_pool", help="A quarter of the vectors") else 1
    foreground = right.toggle(
        "Foreground patches only",
        key=f"{key}_fg",
        help="Keep each image's PC1-foreground patches, by the rule of the PCA Foreground page.",
    )
    with user_errors(f"Loading {spec.title}"), st.spinner(f"Loading {spec.title}…"):
        loaded = get_engine().model(model)
        grid = size // spec.patch_size
        st.caption(
            f"{spec.title} (change it in the sidebar) · {size} px → {grid} × {grid} patches of {spec.patch_size} px"
        )
        return PatchSettings(f"{spec.name}@{loaded.adapter.weights}", size, spec.patch_size, pool, foreground)
    return None


def _working_set_index(images: ImageSet, settings: PatchSettings) -> Searchable:
    """The index of these images (names and labels included) with these settings: built once, then kept by the server
    (a rerun — a click — neither recomputes nor looks up any token)."""
    items = list(images.items)
    key = (tuple((it.digest, it.name, it.label) for it in items), settings)
    built = _built_indexes()
    if key not in built:
        label = "Patch tokens of the working set"
        (tokens,) = patch_tokens(images.images, settings.size, [(settings.model, None)], label)
        with st.spinner("Indexing every patch…"):
            built[key] = build_patch_index(list(tokens), images.names, images.labels, settings)
        while len(built) > KEEP_INDEXES:
            built.pop(next(iter(built)))
    return Searchable(built[key], lambda i: items[i].image)


@st.cache_resource(show_spinner=False)
def _built_indexes() -> dict:
    """(images, settings) → PatchIndex, the most recent last; shared by the sessions of this server."""
    return {}


def _stored_index(folder: str) -> Searchable:
    path = confine(folder, config.data_roots())
    stamp = (path / f"{PATCHES}.json").stat().st_mtime if (path / f"{PATCHES}.json").exists() else 0.0
    index = _open(str(path), stamp)
    roots = config.data_roots()
    return Searchable(index, lambda i: store.load_stored_image(index.paths[i], roots))


@st.cache_resource(max_entries=2, show_spinner="Opening the patch index…")
def _open(folder: str, stamp: float) -> PatchIndex:
    return open_patch_index(folder)


# ---- the query and the results (a click reruns only this part) ----------------------------------
@st.fragment
def show_search(images: ImageSet, found: Searchable, key: str) -> None:
    """The query image and its picked patches, the search controls, the hits."""
    query = None
    with user_errors("Computing the query"):
        query = show_query(images, found.index, key)
    if query is None:
        return
    k, per_image, classes = show_search_controls(found.index, key)
    hits = search_patches(found.index, query[0], k, per_image, classes)
    show_results(found, hits, query[0], key)


def show_query(images: ImageSet, index: PatchIndex, key: str) -> tuple[np.ndarray, list[tuple[int, int]]] | None:
    """Pick a query image, click patches on it → (the query vector: mean of the picked tokens, the picked patches)."""
    choice = pick_image(images, "Query image", f"{key}_query", 0)
    item = images.items[choice]
    settings = index.settings
    loaded = get_engine().model(settings.model)
    if f"{loaded.adapter.spec.name}@{loaded.adapter.weights}" != settings.model:
        raise ValueError(
            f"The index holds {settings.model} tokens but {loaded.adapter.spec.name}@{loaded.adapter.weights} is "
            "what loads here: a query must come from the same weights. Get those weights, or index with these."
        )
    (tokens,) = patch_tokens([item.image], settings.size, [(settings.model, None)], "Patch tokens of the query")
    tokens = tokens[0]
    grid = tokens.shape[:2]
    picked = _read_picked(item.digest, grid, key)
    cells = query_cells(picked, grid, settings.pool)
    view = view_image(item.image)
    size = view.shape[:2]
    boxes = [patch_box(r, c, size, grid) for r, c in cells]
    figure = patch_grid_figure(data_url(to_jpeg(view)), size, grid, boxes, False)
    st.caption(
        "Click a patch; for several, pick Box Select or Lasso Select in the chart's toolbar (top right) and draw "
        "over them: they are searched with the mean of their tokens. "
        f"Picked: {len(picked)} patch{'es' if len(picked) != 1 else ''}"
        + (
            f", searched as the {len(cells)} patches of their 2 × 2 windows (the index is pooled)."
            if settings.pool > 1
            else "."
        )
    )
    st.plotly_chart(
        figure,
        key=query_chart(key).key,
        on_select="rerun",
        selection_mode=("points", "box", "lasso"),
        height=FIGURE_HEIGHT,
    )
    rows, cols = zip(*cells, strict=True)
    return tokens[list(rows), list(cols)].mean(axis=0), cells


def _read_picked(digest: str, grid: tuple[int, int], key: str) -> list[tuple[int, int]]:
    """The patches picked on the chart (its selection read before it is drawn again), kept per image; the centre
    patch until the first pick."""
    event = query_chart(key).get() or {}
    chosen = selected_indices(event, [np.zeros(0, int)] + [np.arange(grid[0] * grid[1])])
    if chosen.size:
        picked_patches(key).set((digest, grid, tuple((int(i) // grid[1], int(i) % grid[1]) for i in chosen)))
    held = picked_patches(key).get()
    if held is None or held[0] != digest or held[1] != grid:
        return [(grid[0] // 2, grid[1] // 2)]
    return list(held[2])


# ---- results ------------------------------------------------------------------------------------
def show_search_controls(index: PatchIndex, key: str) -> tuple[int, bool, list[str] | None]:
    """(k, one result per image, classes to keep or None for all)."""
    left, middle, right = st.columns(3)
    k = left.slider("Results", 1, 50, 12, key=f"{key}_k")
    per_image = middle.toggle("One result per image", value=True, key=f"{key}_per_image")
    classes = index.classes
    chosen = right.multiselect(
        "Only these classes", classes, key=f"{key}_classes", disabled=not classes, placeholder="All classes"
    )
    return k, per_image, chosen or None


def show_results(found: Searchable, hits: list[Hit], query: np.ndarray, key: str) -> None:
    """The hits as crops (matched patch outlined) over heat maps of their images, best first; then the CSV."""
    index = found.index
    if not hits:
        st.info("No patches match: the class filter keeps no image of this index.")
        return
    st.markdown(
        f"**The {len(hits)} most similar patches**, best first: each crop (red: the matched patch) above its image "
        "coloured by the cosine of every patch to the query"
    )
    maps = heats(index, [hit.image for hit in hits], query)  # one read of a stored index, not one per hit
    pictures = [_hit_pictures(found, hit, heat_map) for hit, heat_map in zip(hits, maps, strict=True)]
    for start in range(0, len(hits), COLUMNS):
        for column, (rank, hit) in zip(
            st.columns(COLUMNS), enumerate(hits[start : start + COLUMNS], start + 1), strict=False
        ):
            _show_hit(column, found.index, rank, hit, pictures[rank - 1])
    rows = hits_table(index, hits)
    download_csv(matches_csv(rows), "patch_search.csv", f"{key}_csv", "CSV: image, row, col, cosine", on_click="ignore")


def _hit_pictures(found: Searchable, hit: Hit, heat_map: np.ndarray) -> np.ndarray | Exception:
    """One hit's picture (its enlarged crop above its image's heat map), or why its image cannot be read."""
    try:
        image = found.load(hit.image)
    except (ValueError, OSError) as exc:
        return exc
    grid = tuple(int(v) for v in found.index.grids[hit.image])
    crop, heat_image = hit_pictures(image, grid, hit, found.index.settings.pool, heat_map, heat_width=HEAT_WIDTH)
    return _card(_enlarge(crop), heat_image)


def _card(crop: np.ndarray, heat_image: np.ndarray, gap: int = 8) -> np.ndarray:
    """The crop centred above the heat picture on white: one picture a hit (one image message, not two)."""
    width = max(crop.shape[1], heat_image.shape[1])
    card = np.full((crop.shape[0] + gap + heat_image.shape[0], width, 3), 255, np.uint8)
    for top, picture in ((0, crop), (crop.shape[0] + gap, heat_image)):
        left = (width - picture.shape[1]) // 2
        card[top : top + picture.shape[0], left : left + picture.shape[1]] = picture
    return card


def _show_hit(where, index: PatchIndex, rank: int, hit: Hit, pictures: np.ndarray | Exception):
    name = index.names[hit.image]
    if isinstance(pictures, Exception):
        where.warning(f"#{rank} · {name}: the image cannot be read ({pictures}).")
        return
    label = f" · {index.labels[hit.image]}" if index.labels[hit.image] is not None else ""
    caption = f"#{rank} · {name}{label} · row {hit.row}, col {hit.col} · cosine {hit.cosine:.2f}"
    where.image(pictures, caption=caption, width="stretch")


def _enlarge(crop: np.ndarray) -> np.ndarray:
    """The crop CROP_HEIGHT px tall, nearest neighbour (the pixels of `resize_map(nearest=True)`, by indexing: torch
    took ~7 ms a call on a busy CPU)."""
    height, width = crop.shape[:2]
    wide = max(1, round(width * CROP_HEIGHT / height))
    rows = np.minimum((np.arange(CROP_HEIGHT) * (height / CROP_HEIGHT)).astype(np.int64), height - 1)
    cols = np.minimum((np.arange(wide) * (width / wide)).astype(np.int64), width - 1)
    return crop[rows[:, None], cols[None, :]]
