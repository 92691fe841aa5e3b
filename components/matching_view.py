"""Patch matching views: pick an image pair, click a patch of A to see it in B, mutual-NN correspondences.

Figures use view pixels: both images are shown `VIEW_HEIGHT` px tall, with plotly pixel (i, j) covering
[i, i + 1) × [j, j + 1), so `patch_box`/`pixel_to_patch` apply to the view size unchanged. Exports (PNG, CSV)
use the original image pixels. The similarity matrix is computed once per pair (`compute_pair`, cached by
image hashes, loaded weights, layer and size); a click reruns only the click fragment, which reads one row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from components.downloads import download_csv, download_png
from components.errors import user_errors
from components.images import pick_image
from components.progress import patch_tokens
from components.state import get_engine, image_a_chart, patch_click
from core import registry
from core.analysis.imaging import data_url, palette, resize_map, to_jpeg, to_png
from core.analysis.matching import (
    Match,
    PatchSimilarity,
    compute_mutual_matches,
    compute_similarity,
    matches_csv,
    matches_table,
    outline_patches,
    overlay_similarity,
    patch_box,
    patch_center,
    patch_crops,
    pixel_to_patch,
    similarity_map,
    top_matches,
)
from core.analysis.pca import compute_foreground
from core.data import ImageSet
from core.engine import image_hash

VIEW_HEIGHT = 384  # px, both images in the figures
FIGURE_HEIGHT = 420  # px on screen
SIZES = [14 * n for n in range(4, 65)]  # model input sizes: 56 … 896 px
MAX_CROPS = 4  # numbered patch pairs shown, as in the seed slides
BEST, OTHERS = "#ff2b2b", "#ffffff"  # box colours: best match, the other top-k
CROP_HEIGHT = 96  # px, enlarged patch crops


@dataclass(frozen=True)
class PairInputs:
    index_a: int
    index_b: int
    model: str  # name@weights as chosen in the sidebar
    layer: int | None  # None: last layer after the final LayerNorm
    size: int  # square model input, a multiple of 14


@dataclass(frozen=True)
class MatchPair:
    """Everything a click needs, computed once per pair. Arrays are read-only and shared across sessions."""

    names: tuple[str, str]
    images: tuple[np.ndarray, np.ndarray]  # HWC uint8 originals
    views: tuple[np.ndarray, np.ndarray]  # HWC uint8, VIEW_HEIGHT tall, aspect kept
    uris: tuple[str, str]  # JPEG data URIs of the views
    sim: PatchSimilarity
    foreground: np.ndarray | None  # (2, h, w) bool PC1 masks of A and B; None when PC1 has no split
    same: bool  # A and B are the same image


@dataclass(frozen=True)
class ClickView:
    row: int
    col: int
    index: int  # flat patch index in A
    heat: np.ndarray  # (h2, w2) float32 cosine of the clicked patch to every patch of B
    matches: list[Match]  # top-k in B, best first


# ---- controls and the cached pair ---------------------------------------------------------------
def show_pair_controls(images: ImageSet, model: str, key: str) -> PairInputs | None:
    """Image A, image B, layer and input size; None when the model cannot be loaded (the error is shown)."""
    spec = registry.parse(model).spec
    left, right = st.columns(2)
    with left:
        index_a = pick_image(images, "Image A — click a patch here", f"{key}_a", 0)
    with right:
        index_b = pick_image(images, "Image B — where does it live here?", f"{key}_b", 1)
    layers = None
    with user_errors(f"Loading {spec.title}"), st.spinner(f"Loading {spec.title}…"):
        layers = get_engine().num_layers(model)
    if layers is None:
        return None
    left, right = st.columns(2)
    layer = left.selectbox(
        "Layer",
        [0, *range(layers, 0, -1)],
        format_func=lambda n: "Last layer (normalised)" if n == 0 else f"Block {n} (raw)",
        key=f"{key}_layer",
        help="Deeper layers match by meaning (eye ↔ eye); early blocks match by colour and texture.",
    )
    size = right.select_slider(
        "Input size (px)",
        SIZES,
        value=max(spec.input_size, 224),
        key=f"{key}_size",
        help="Both images are resized to this square; each 14 px square becomes one patch.",
    )
    grid = size // spec.patch_size
    st.caption(
        f"{spec.title} (change it in the sidebar) · {size} px → {grid} × {grid} patches"
        + (" · larger sizes give finer patches but take longer on CPU" if size > 448 else "")
    )
    return PairInputs(index_a, index_b, model, layer or None, size)


def compute_pair(images: ImageSet, inputs: PairInputs) -> MatchPair:
    """Patch tokens (engine cache) and the cosine matrix (server cache, keyed by image hashes)."""
    engine = get_engine()
    a, b = images.items[inputs.index_a], images.items[inputs.index_b]
    same = inputs.index_a == inputs.index_b
    loaded = engine.model(inputs.model)
    label = f"{loaded.adapter.spec.title} patch tokens at {inputs.size} px"
    (tokens,) = patch_tokens(
        [a.image] if same else [a.image, b.image], inputs.size, [(inputs.model, inputs.layer)], label
    )
    cache_key = (image_hash(a.image), image_hash(b.image), loaded.key, inputs.layer, inputs.size)
    return _match_pair(cache_key, (a.name, b.name), _images=(a.image, b.image), _tokens=(tokens[0], tokens[-1]))


@st.cache_resource(max_entries=4, show_spinner="Comparing every patch of A with every patch of B…")
def _match_pair(
    cache_key: tuple, names: tuple[str, str], _images: tuple[np.ndarray, np.ndarray], _tokens: tuple
) -> MatchPair:
    return build_pair(names, _images, _tokens)


def build_pair(
    names: tuple[str, str], images: tuple[np.ndarray, np.ndarray], tokens: tuple[np.ndarray, np.ndarray]
) -> MatchPair:
    """Views, data URIs, the cosine matrix and the joint PC1 foreground of A and B's (h, w, D) tokens."""
    views = tuple(_frozen(_view(image)) for image in images)
    foreground = None
    if tokens[0].shape == tokens[1].shape:  # one joint PC1 needs one grid (always so on the page)
        try:
            foreground = _frozen(compute_foreground(np.stack(tokens)).mask)
        except ValueError:  # constant PC1 scores: no foreground split
            pass
    return MatchPair(
        names,
        tuple(_frozen(np.array(image)) for image in images),
        views,
        tuple(data_url(to_jpeg(view)) for view in views),
        compute_similarity(*tokens),
        foreground,
        same=images[0].shape == images[1].shape and np.array_equal(images[0], images[1]),
    )


def _frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def _view(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    size = (max(1, round(width * VIEW_HEIGHT / height)), VIEW_HEIGHT)
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BICUBIC))


# ---- the click: pure parts (benchmarked in bench/bench_matching.py) -------------------------------
def compute_click(pair: MatchPair, click: tuple[float, float], k: int) -> ClickView:
    """`click` = (x, y) as fractions of A's width and height → the patch under it and its matches in B."""
    height, width = pair.views[0].shape[:2]
    row, col, index = pixel_to_patch(click[0] * width, click[1] * height, (height, width), pair.sim.grid_a)
    return ClickView(row, col, index, similarity_map(pair.sim, index), top_matches(pair.sim, index, k))


def click_figures(
    pair: MatchPair, click: tuple[float, float], k: int, alpha: float, show_grid: bool
) -> tuple[ClickView, go.Figure, go.Figure]:
    """Everything a click recomputes: the view, figure A (clickable) and figure B (heat map)."""
    view = compute_click(pair, click, k)
    return view, figure_a(pair, view, show_grid), figure_b(pair, view, alpha)


def figure_a(pair: MatchPair, view: ClickView, show_grid: bool) -> go.Figure:
    """Image A with a near-transparent marker on every patch centre (clickable) and the clicked patch boxed."""
    image, grid = pair.views[0], pair.sim.grid_a
    height, width = image.shape[:2]
    rows, cols = np.divmod(np.arange(grid[0] * grid[1]), grid[1])
    data = [_image_trace(pair.uris[0])]
    if show_grid:
        data.append(_grid_trace((height, width), grid))
    data.append(
        {
            "type": "scatter",
            "x": (cols + 0.5) * width / grid[1],
            "y": (rows + 0.5) * height / grid[0],
            "mode": "markers",
            "customdata": np.stack([rows, cols], axis=1),
            "marker": {"symbol": "square", "size": max(4.0, 0.8 * FIGURE_HEIGHT / grid[0]), "color": "white"},
            "opacity": 0.01,
            "selected": {"marker": {"opacity": 0.01}},
            "unselected": {"marker": {"opacity": 0.01}},
            "hovertemplate": "patch (row %{customdata[0]}, col %{customdata[1]})<extra></extra>",
        }
    )
    box = patch_box(view.row, view.col, (height, width), grid)
    return _figure(data, (height, width), [_rect(box, BEST, 3)])


def figure_b(pair: MatchPair, view: ClickView, alpha: float) -> go.Figure:
    """Image B under the cosine heat map of the clicked patch (opacity `alpha`), top-k boxed and numbered."""
    image, grid = pair.views[1], pair.sim.grid_b
    height, width = image.shape[:2]
    dx, dy = width / grid[1], height / grid[0]
    heat = {
        "type": "heatmap",
        "z": view.heat,
        "x0": dx / 2,
        "dx": dx,
        "y0": dy / 2,
        "dy": dy,
        "zsmooth": "best",
        "opacity": alpha,
        "colorscale": "Viridis",
        "colorbar": {"title": {"text": "cosine"}, "thickness": 12},
        "hovertemplate": "cosine %{z:.2f}<extra></extra>",
    }
    shapes, notes = [], []
    for rank, m in reversed(list(enumerate(view.matches, start=1))):  # best drawn last, on top
        x0, y0, x1, y1 = patch_box(m.row_b, m.col_b, (height, width), grid)
        shapes.append(_rect((x0, y0, x1, y1), BEST if rank == 1 else OTHERS, 3 if rank == 1 else 1.5))
        notes.append({"x": x0, "y": y0, "text": str(rank), "showarrow": False, "xanchor": "left", "yanchor": "bottom",
                      "font": {"color": BEST if rank == 1 else OTHERS, "size": 12}})  # fmt: skip
    return _figure([_image_trace(pair.uris[1]), heat], (height, width), shapes, notes)


def figure_pairs(pair: MatchPair, matches: list[Match], gap: int = 16) -> go.Figure:
    """A and B side by side with one coloured line per match; the first MAX_CROPS are numbered at A's end."""
    (ha, wa), (hb, wb) = pair.views[0].shape[:2], pair.views[1].shape[:2]
    offset = wa + gap
    colors = [f"rgb({r},{g},{b})" for r, g, b in palette(len(matches))]
    data = [_image_trace(pair.uris[0]), _image_trace(pair.uris[1], x0=offset)]
    for rank, (m, color) in enumerate(zip(matches, colors, strict=True), start=1):
        xa, ya = patch_center(m.row_a, m.col_a, (ha, wa), pair.sim.grid_a)
        xb, yb = patch_center(m.row_b, m.col_b, (hb, wb), pair.sim.grid_b)
        label = f"#{rank}: cosine {m.cosine:.2f}, L2 {m.euclidean:.2f}"
        data.append(
            {
                "type": "scatter",
                "x": [xa, xb + offset],
                "y": [ya, yb],
                "mode": "lines+markers+text" if rank <= MAX_CROPS else "lines+markers",
                "text": [str(rank), ""] if rank <= MAX_CROPS else None,
                "textposition": "top left",
                "textfont": {"color": "white", "size": 14},
                "line": {"color": color, "width": 2},
                "marker": {"color": color, "size": 7},
                "hovertemplate": label + "<extra></extra>",
            }
        )
    return _figure(data, (max(ha, hb), offset + wb), [])


def _image_trace(uri: str, x0: float = 0.0) -> dict:
    return {"type": "image", "source": uri, "x0": x0 + 0.5, "y0": 0.5, "hoverinfo": "skip"}


def _grid_trace(size: tuple[int, int], grid: tuple[int, int]) -> dict:
    (height, width), (h, w) = size, grid
    xs = [v for c in range(1, w) for v in (c * width / w, c * width / w, None)]
    ys = [v for _ in range(1, w) for v in (0, height, None)]
    xs += [v for _ in range(1, h) for v in (0, width, None)]
    ys += [v for r in range(1, h) for v in (r * height / h, r * height / h, None)]
    line = {"color": "rgba(255,255,255,0.45)", "width": 1}
    return {"type": "scatter", "x": xs, "y": ys, "mode": "lines", "line": line, "hoverinfo": "skip"}


def _rect(box: tuple[float, float, float, float], color: str, width: float) -> dict:
    x0, y0, x1, y1 = box
    return {"type": "rect", "x0": x0, "y0": y0, "x1": x1, "y1": y1, "line": {"color": color, "width": width}}


def _figure(data: list[dict], size: tuple[int, int], shapes: list[dict], notes: list[dict] | None = None) -> go.Figure:
    """Built from plain dicts with numpy arrays: ~10× faster to validate than trace objects."""
    height, width = size
    layout = {
        "xaxis": {"visible": False, "range": [0, width], "constrain": "domain"},
        "yaxis": {"visible": False, "range": [height, 0], "scaleanchor": "x", "constrain": "domain"},
        "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
        "height": FIGURE_HEIGHT,
        "dragmode": False,
        "hovermode": "closest",
        "hoverdistance": -1,
        "showlegend": False,
        "shapes": shapes,
        "annotations": notes or [],
    }
    return go.Figure(data=data, layout=layout)


# ---- rendering ----------------------------------------------------------------------------------
def show_matching(pair: MatchPair, key: str) -> None:
    """The click section and the correspondences section, each a fragment (a click reruns only its part)."""
    _show_click(pair, key)
    st.divider()
    _show_correspondences(pair, key)


def read_click(pair: MatchPair, key: str) -> tuple[float, float]:
    """The last clicked point of A as (x, y) fractions of its size; the centre until the first click.

    The chart's selection is read before the chart is drawn (the box moves with it, which gives the chart a
    new identity and clears its selection), so the click is kept in its own session_state key.
    """
    event = image_a_chart(key).get() or {}
    points = event.get("selection", {}).get("points", [])
    if points and "x" in points[0] and "y" in points[0]:
        height, width = pair.views[0].shape[:2]
        patch_click(key).set((float(points[0]["x"]) / width, float(points[0]["y"]) / height))
    return patch_click(key).get((0.5, 0.5))


@st.fragment
def _show_click(pair: MatchPair, key: str) -> None:
    st.subheader("Click a patch of A")
    controls = st.columns(3)
    k = controls[0].slider("Best matches to mark", 1, 10, 5, key=f"{key}_k")
    alpha = controls[1].slider("Heat-map opacity", 0.0, 1.0, 0.6, 0.05, key=f"{key}_alpha")
    show_grid = controls[2].toggle("Show the patch grid", value=False, key=f"{key}_grid")
    view, fig_a, fig_b = click_figures(pair, read_click(pair, key), k, alpha, show_grid)
    left, right = st.columns(2)
    with left:
        st.caption(f"**A:** {pair.names[0]} — click any patch; the red box is the one compared.")
        st.plotly_chart(fig_a, key=image_a_chart(key).key, on_select="rerun", selection_mode="points")
    with right:
        st.caption(
            f"**B:** {pair.names[1]} — cosine similarity to that patch, {view.heat.min():.2f} (dark) to "
            f"{view.heat.max():.2f} (yellow); boxes: the {len(view.matches)} best, 1 = best (red)."
        )
        st.plotly_chart(fig_b, key=f"{key}_chart_b")
    _show_readout(pair, view, alpha, key)
    if pair.same:
        st.caption("A and B are the same image: the clicked patch is its own best match (cosine 1.00).")


def _show_readout(pair: MatchPair, view: ClickView, alpha: float, key: str) -> None:
    best = view.matches[0]
    st.markdown(
        f"Patch **(row {view.row}, col {view.col})** of A → best match **(row {best.row_b}, col {best.col_b})** "
        f"of B — Cosine Similarity: {best.cosine:.2f}, Euclidean Distance: {best.euclidean:.2f}"
    )
    st.caption(
        "Cosine: how closely the two tokens point the same way (1 = same direction). Euclidean: distance between the raw tokens."
    )
    rows = matches_table(view.matches, *_sizes(pair), pair.sim.grid_a, pair.sim.grid_b)
    stem = f"match_{_stem(pair.names[0])}_r{view.row}c{view.col}_{_stem(pair.names[1])}"
    left, right = st.columns(2)
    download_png(
        lambda: heat_png(pair, view, alpha), f"{stem}.png", f"{key}_png", "PNG: heat map over B", left,
        on_click="ignore", icon=":material/image:",
    )  # fmt: skip
    with right:
        _csv_button("CSV: these matches", rows, f"{stem}.csv", f"{key}_csv")


def _csv_button(label: str, rows: list[dict], file_name: str, key: str) -> None:
    """Download `matches_table` rows (original-image pixel coordinates, scores) as CSV, without a rerun."""
    download_csv(matches_csv(rows), file_name, key, label, on_click="ignore", icon=":material/table:")


def heat_png(pair: MatchPair, view: ClickView, alpha: float) -> bytes:
    """PNG of image B (original size) under the heat map, top-k boxed (best in red, drawn last)."""
    image = overlay_similarity(pair.images[1], view.heat, alpha)
    indices = [m.index_b for m in reversed(view.matches)]
    colors = np.array([[255, 255, 255]] * (len(indices) - 1) + [[255, 43, 43]], dtype=np.uint8)
    thickness = max(2, min(image.shape[:2]) // 150)
    return to_png(outline_patches(image, pair.sim.grid_b, indices, colors, thickness))


@st.fragment
def _show_correspondences(pair: MatchPair, key: str) -> None:
    st.subheader("Correspondences")
    st.caption(
        "Mutual nearest neighbours: patch i of A and patch j of B each pick the other as their best match. "
        "Lines join the strongest pairs; hover a line for its scores."
    )
    left, right = st.columns(2)
    top_n = left.slider("Pairs to draw (best by cosine)", 1, 100, 20, key=f"{key}_top_n")
    only_fg = right.toggle(
        "Foreground only (PC1 mask)",
        value=False,
        disabled=pair.foreground is None,
        key=f"{key}_fg",
        help="Keep patches on the foreground side of the first principal component, as on the PCA Foreground page.",
    )
    masks = (pair.foreground[0], pair.foreground[1]) if only_fg and pair.foreground is not None else (None, None)
    if pair.foreground is None:
        right.caption("No foreground split: the first principal component is constant on these tokens.")
    elif only_fg:
        right.caption(f"Foreground: {masks[0].mean():.0%} of A's patches, {masks[1].mean():.0%} of B's.")
    matches = compute_mutual_matches(pair.sim, top_n, *masks)
    if pair.same:
        st.info("A and B are the same image, so every patch is its own mutual match. Pick another image B.")
    if not matches:
        st.info("No mutual nearest neighbours here. Try switching off the foreground filter or another pair.")
        return
    st.plotly_chart(figure_pairs(pair, matches), key=f"{key}_pairs_chart")
    _show_crops(pair, matches[:MAX_CROPS])
    rows = matches_table(matches, *_sizes(pair), pair.sim.grid_a, pair.sim.grid_b)
    with st.expander(f"All {len(rows)} pairs as a table"):
        st.dataframe(rows, hide_index=True)
    stem = f"correspondences_{_stem(pair.names[0])}_{_stem(pair.names[1])}"
    _csv_button("CSV: correspondences", rows, f"{stem}.csv", f"{key}_pairs_csv")


def _show_crops(pair: MatchPair, matches: list[Match]) -> None:
    st.markdown("**Matched patches** (A left, B right; numbers as on the lines above)")
    crops_a = patch_crops(pair.images[0], pair.sim.grid_a, [m.index_a for m in matches])
    crops_b = patch_crops(pair.images[1], pair.sim.grid_b, [m.index_b for m in matches])
    columns = st.columns(MAX_CROPS)[: len(matches)]
    for rank, (column, m, crop_a, crop_b) in enumerate(zip(columns, matches, crops_a, crops_b, strict=True), start=1):
        column.image(_tile(crop_a, crop_b), caption=f"Patch {rank} · cosine {m.cosine:.2f} · L2 {m.euclidean:.2f}")


def _tile(crop_a: np.ndarray, crop_b: np.ndarray, gap: int = 4) -> np.ndarray:
    """Two crops enlarged (nearest) to CROP_HEIGHT px, side by side with a white gap."""
    scaled = [_enlarge(crop) for crop in (crop_a, crop_b)]
    return np.hstack([scaled[0], np.full((CROP_HEIGHT, gap, 3), 255, np.uint8), scaled[1]])


def _enlarge(crop: np.ndarray) -> np.ndarray:
    width = max(1, round(crop.shape[1] * CROP_HEIGHT / crop.shape[0]))
    return resize_map(crop, (CROP_HEIGHT, width), nearest=True).round().astype(np.uint8)


def _sizes(pair: MatchPair) -> tuple[tuple[int, int], tuple[int, int]]:
    return pair.images[0].shape[:2], pair.images[1].shape[:2]


def _stem(name: str) -> str:
    return PurePath(name).stem.replace(" ", "_")
