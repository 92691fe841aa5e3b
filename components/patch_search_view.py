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
from components.patch_hits import HitCard, show_hits
from components.progress import patch_tokens
from components.state import asked, chart_picks, get_engine, picked_patches, query_chart
from core import config, registry, store
from core.analysis.imaging import data_url, to_jpeg
from core.analysis.matching import matches_csv
from core.data import ImageSet, browser_copy, confine
from core.patch_index import (
    PATCHES,
    Hit,
    PatchIndex,
    PatchSettings,
    build_patch_index,
    heats,
    hit_layout,
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
    # image position → (JPEG bytes for the browser, (height, width)); ValueError/OSError when it cannot be read
    jpeg: Callable[[int], tuple[bytes, tuple[int, int]]]


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
    return Searchable(built[key], lambda i: _working_jpeg(items[i].digest, items[i].image))


@st.cache_resource(show_spinner=False)
def _built_indexes() -> dict:
    """(images, settings) → PatchIndex, the most recent last; shared by the sessions of this server."""
    return {}


def _stored_index(folder: str) -> Searchable:
    path = confine(folder, config.data_roots())
    stamp = (path / f"{PATCHES}.json").stat().st_mtime if (path / f"{PATCHES}.json").exists() else 0.0
    index = _open(str(path), stamp)
    roots = config.data_roots()
    return Searchable(index, lambda i: store.stored_browser_image(index.paths[i], roots))


@st.cache_data(max_entries=512, show_spinner=False)
def _working_jpeg(digest: str, _image: np.ndarray) -> tuple[bytes, tuple[int, int]]:
    """A working-set image as a JPEG for the browser, made once per image (kept by the server)."""
    return browser_copy(_image)


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
    picked, on_chart = _read_picked(item.digest, grid, key)
    cells = query_cells(picked, grid, settings.pool)
    uri, size = _query_view(item.digest, item.image)
    selected = _chart_selection(key, item.digest, grid, cells, on_chart and cells == sorted(picked))
    figure = patch_grid_figure(uri, size, grid, [], False, selected=selected)
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


def _chart_selection(
    key: str, digest: str, grid: tuple[int, int], cells: list[tuple[int, int]], on_chart: bool
) -> list[int]:
    """The patches the query chart is sent as selected (outlined red). Plotly selects a clicked, boxed or lassoed
    patch itself, in the browser, at once; while the chart shows the searched patches so, the figure it was sent
    stays as it was: Streamlit then sends none of it again and the browser redraws nothing (a changed figure cost
    ~100 ms of the browser's time a click on two cores, bench/bench_patch_search.py --browser). A new image, picks
    the chart does not show (the centre patch before the first, picks kept from an earlier visit) and a pooled
    index's 2 × 2 windows are sent."""
    held = chart_picks(key).get()
    if on_chart and held is not None and held[0] == digest and held[1] == grid:
        return list(held[2])
    indices = tuple(r * grid[1] + c for r, c in cells)
    chart_picks(key).set((digest, grid, indices))
    return list(indices)


@st.cache_data(max_entries=32, show_spinner=False)
def _query_view(digest: str, _image: np.ndarray) -> tuple[str, tuple[int, int]]:
    """The query image as the chart shows it: (a JPEG data URL, its (height, width)); made once per image."""
    view = view_image(_image)
    return data_url(to_jpeg(view)), view.shape[:2]


def _read_picked(digest: str, grid: tuple[int, int], key: str) -> tuple[list[tuple[int, int]], bool]:
    """The patches picked on the chart (its selection read before it is drawn again), kept per image; the centre
    patch until the first pick. And whether the chart shows them as its selection now."""
    event = query_chart(key).get() or {}
    chosen = selected_indices(event, [np.zeros(0, int)] + [np.arange(grid[0] * grid[1])])
    if chosen.size:
        picked_patches(key).set((digest, grid, tuple((int(i) // grid[1], int(i) % grid[1]) for i in chosen)))
    held = picked_patches(key).get()
    if held is None or held[0] != digest or held[1] != grid:
        return [(grid[0] // 2, grid[1] // 2)], False
    return list(held[2]), bool(chosen.size)


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
    """The hits as crops (matched patch outlined) above heat maps of their images, best first, drawn by the browser
    (`components.patch_hits`); then the CSV."""
    index = found.index
    if not hits:
        st.info("No patches match: the class filter keeps no image of this index.")
        return
    st.markdown(
        f"**The {len(hits)} most similar patches**, best first: each crop (red: the matched patch) above its image "
        "coloured by the cosine of every patch to the query"
    )
    maps = heats(index, [hit.image for hit in hits], query)  # one read of a stored index, not one per hit
    jpegs: list[bytes] = []  # each result image once
    where: dict[int, tuple[int, tuple[int, int]] | Exception] = {}  # image → (its place in jpegs, its size) or why not
    cards = []
    for rank, (hit, heat_map) in enumerate(zip(hits, maps, strict=True), 1):
        if hit.image not in where:
            try:
                jpeg, size = found.jpeg(hit.image)
                where[hit.image] = (len(jpegs), size)
                jpegs.append(jpeg)
            except (ValueError, OSError) as exc:
                where[hit.image] = exc
        caption, held = _caption(index, rank, hit), where[hit.image]
        if isinstance(held, Exception):
            cards.append(HitCard(caption, error=str(held)))
            continue
        grid = tuple(int(v) for v in index.grids[hit.image])
        layout = hit_layout(held[1], grid, hit, index.settings.pool, HEAT_WIDTH, CROP_HEIGHT)
        cards.append(HitCard(caption, held[0], heat_map, layout))
    show_hits(cards, jpegs, key=key, columns=COLUMNS)
    rows = hits_table(index, hits)
    download_csv(matches_csv(rows), "patch_search.csv", f"{key}_csv", "CSV: image, row, col, cosine", on_click="ignore")


def _caption(index: PatchIndex, rank: int, hit: Hit) -> str:
    label = f" · {index.labels[hit.image]}" if index.labels[hit.image] is not None else ""
    return f"#{rank} · {index.names[hit.image]}{label} · row {hit.row}, col {hit.col} · cosine {hit.cosine:.2f}"
