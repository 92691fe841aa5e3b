"""Patch matching views: pick an image pair, click a patch of A to see it in B, mutual-NN correspondences.

The figures and the pair itself are built in `components.matching_charts` (no widgets). The similarity matrix is
computed once per pair (`compute_pair`, cached by image hashes, loaded weights, layer and size); a click reruns
only the click fragment, which reads one row. Exports (PNG, CSV) use the original image pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath

import numpy as np
import streamlit as st

from components.downloads import download_csv, download_png
from components.errors import user_errors
from components.images import pick_image
from components.matching_charts import (
    MAX_CROPS,
    ClickView,
    MatchPair,
    build_pair,
    click_figures,
    figure_pairs,
    heat_png,
)
from components.progress import patch_tokens
from components.state import get_engine, image_a_chart, input_size, option_start, patch_click
from core import registry
from core.analysis.imaging import resize_map
from core.analysis.matching import (
    Match,
    compute_mutual_matches,
    matches_csv,
    matches_table,
    patch_crops,
    small_image_note,
)
from core.data import ImageSet, image_hash

MIN_PATCHES, MAX_SIZE = 4, 896  # input sizes offered: 4 patches a side up to 896 px, multiples of the patch
CROP_HEIGHT = 96  # px, enlarged patch crops


@dataclass(frozen=True)
class PairInputs:
    index_a: int
    index_b: int
    model: str  # name@weights as chosen in the sidebar
    layer: int | None  # None: last layer after the final LayerNorm
    size: int  # square model input, a multiple of the model's patch


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
    patch, sizes = spec.patch_size, input_sizes(spec.patch_size)
    size = right.select_slider(
        "Input size (px)",
        sizes,
        key=input_size(key).key,
        help=f"Both images are resized to this square; each {patch} × {patch} px square becomes one patch.",
        **option_start(input_size(key), sizes, max(spec.input_size, 224)),
    )
    grid = size // spec.patch_size
    st.caption(
        f"{spec.title} (change it in the sidebar) · {size} px → {grid} × {grid} patches"
        + (" · larger sizes give finer patches but take longer on CPU" if size > 448 else "")
    )
    if note := small_image_note([images.items[i].image.shape[:2] for i in (index_a, index_b)], grid):
        st.info(note)
    return PairInputs(index_a, index_b, model, layer or None, size)


def input_sizes(patch: int) -> list[int]:
    """Square input sides for a model with `patch`-pixel patches: MIN_PATCHES patches a side up to MAX_SIZE px."""
    return [patch * n for n in range(MIN_PATCHES, MAX_SIZE // patch + 1)]


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
