"""Attention maps view (PCA Foreground page): the CLS token's attention to the patches, and a clicked patch's,
per head and averaged, for several models side by side — the maps of the DINO papers, and the high-attention
artefacts that registers remove.

The models run once per image, block and size (`Engine.attention_maps`, cached); the opacity, the head sheets and
the clicks live in an `st.fragment` and only redraw from the maps already computed. Every widget key starts with
the `key` argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import PurePath

import numpy as np
import streamlit as st

from components.attention_charts import (
    VIEW_SIDE,
    AttentionRun,
    attention_figure,
    click_patch,
    heads_sheet,
    overlay_png,
)
from components.downloads import download_npz, download_png
from components.errors import user_errors
from components.sidebar import DENSE, model_label, offered_models
from components.state import get_engine, image_a_chart, patch_click
from core import registry
from core.analysis.imaging import data_url, fit, to_jpeg
from core.models import Can, can

SIZES = tuple(range(112, 519, 14))  # px; each model rounds to a multiple of its own patch. 518: DINOv2's own
SIZE = 448
MAX_ADDED = 2  # models added beside the sidebar's model and its register twin
OPACITY = 0.6
RANDOM_MEANING = (
    "With random weights these maps show the architecture at work, not what was learned: no object outlines, "
    "and none of the high-attention artefact patches that registers remove."
)


@dataclass(frozen=True)
class AttentionInputs:
    models: tuple[str, ...]  # name@weights, shown left to right
    layer: int  # block 1..; 0: each model's last block (a deeper choice than a model has: its last)
    size: int  # px, before each model rounds it to a multiple of its patch


# ---- controls and engine calls -----------------------------------------------------------------
def base_models(model: str) -> list[str]:
    """The sidebar's model and its register twin (without registers first) when it has one."""
    variants = list(registry.register_variants(model))
    return variants if model in variants else [model]


def show_controls(model: str, key: str) -> AttentionInputs | None:
    """Models (the sidebar's, its register twin, any added), block and input size; None when none can show
    attention (a message says why)."""
    fixed = [m for m in base_models(model) if can(registry.parse(m).spec, Can.ATTENTION)]
    others = [s for s in offered_models(DENSE) if can(s, Can.ATTENTION) and str(registry.parse(s.name)) not in fixed]
    added = st.multiselect(
        "Compare with",
        [str(registry.parse(s.name)) for s in others],
        format_func=model_label,
        max_selections=MAX_ADDED,
        key=f"{key}_models",
        help="Shown beside the sidebar's model"
        + (" and its twin with registers." if len(fixed) > 1 else ".")
        + " Any model with attention maps can be added.",
    )
    models = (*fixed, *added)
    if not models:
        st.info(f"{registry.display_name(model)} has no attention maps here; add a model above.")
        return None
    with st.spinner(f"Loading {', '.join(registry.display_name(m) for m in models)}…"):
        depths = [get_engine().num_layers(m) for m in models]
    left, right = st.columns(2)
    layer = left.selectbox(
        "Block",
        [0, *range(max(depths), 0, -1)],
        format_func=lambda k: "Last block" if k == 0 else f"Block {k}",
        key=f"{key}_layer",
        help="Whose attention to show. The DINO papers show the last block's; early blocks attend locally. A model "
        "with fewer blocks shows its last.",
    )
    size = right.select_slider(
        "Input size (pixels)",
        SIZES,
        value=SIZE,
        key=f"{key}_size",
        help="The image is resized to a square of about this side (a multiple of each model's patch). Larger gives "
        "finer maps; attention grows with the square of the number of patches.",
    )
    return AttentionInputs(models, layer, size)


def model_size(model: str, size: int) -> int:
    """`size` rounded to the nearest multiple of the model's patch side (at least one patch)."""
    patch = registry.parse(model).spec.patch_size
    return max(1, round(size / patch)) * patch


def compute_runs(image: np.ndarray, inputs: AttentionInputs) -> list[AttentionRun]:
    """Each model's attention of `image` (the engine's cache when there), a spinner naming each step."""
    engine, runs = get_engine(), []
    for model in inputs.models:
        depth = engine.num_layers(model)
        layer = min(inputs.layer, depth) or depth
        size = model_size(model, inputs.size)
        with st.spinner(f"{registry.display_name(model)}: attention of block {layer} at {size} px (eager pass)…"):
            maps = engine.attention_maps([image], model, layer, size)
        runs.append(AttentionRun(model, layer, depth, size, maps))
    return runs


# ---- rendering ----------------------------------------------------------------------------------
def show_attention(image: np.ndarray, name: str, runs: list[AttentionRun], key: str) -> None:
    """The models side by side: CLS map and clicked-patch map (heads averaged), optional per-head sheets."""
    st.caption(
        "Each head's attention from one token sums to 1 over all tokens; these maps show the part that goes to "
        "the patches (the rest goes to the CLS token itself and to the registers). Without registers, trained "
        "large models park global information in a few background patches, which then draw a lot of attention "
        "and show up as bright specks (Darcet et al., *Vision Transformers Need Registers*, 2024)."
    )
    view = fit(image, VIEW_SIDE)
    _attention_fragment(image, view, data_url(to_jpeg(view)), PurePath(name).stem, runs, key)


def read_click(view_size: tuple[int, int], charts: int, key: str) -> tuple[float, float]:
    """The last clicked point as (x, y) fractions of the image; the centre until the first click.

    A click on any of the `charts` counts (their points are in view pixels, `view_size` = (H, W)). Charts are read
    before they are drawn: the clicked box moves in every chart, which gives them a new identity and clears their
    selections; a chart still holding an older selection (a click on the same patch) loses to one that moved."""
    current = patch_click(key).get((0.5, 0.5))
    clicks = []
    for i in range(charts):
        points = (image_a_chart(f"{key}_{i}").get() or {}).get("selection", {}).get("points", [])
        if points and "x" in points[0] and "y" in points[0]:
            clicks.append((float(points[0]["x"]) / view_size[1], float(points[0]["y"]) / view_size[0]))
    moved = [c for c in clicks if c != current]
    if moved:
        patch_click(key).set(moved[0])
    return patch_click(key).get((0.5, 0.5))


@st.fragment
def _attention_fragment(
    image: np.ndarray, view: np.ndarray, uri: str, stem: str, runs: list[AttentionRun], key: str
) -> None:
    with user_errors("The attention maps"):
        left, right = st.columns(2, vertical_alignment="bottom")
        alpha = left.slider("Heat-map opacity", 0.0, 1.0, OPACITY, 0.05, key=f"{key}_alpha")
        heads = right.toggle("Every head", key=f"{key}_heads", help="One small map per head under the mean.")
        click = read_click(view.shape[:2], len(runs), key)
        arrays: dict[str, object] = {"click_xy": np.array(click)}
        for i, (column, run) in enumerate(zip(st.columns(len(runs)), runs, strict=True)):
            with column:
                arrays |= _show_run(image, view, uri, stem, run, click, alpha, heads, f"{key}_{i}")
        download_npz(arrays, f"attention_{stem}.npz", f"{key}_npz")


def _show_run(
    image: np.ndarray,
    view: np.ndarray,
    uri: str,
    stem: str,
    run: AttentionRun,
    click: tuple[float, float],
    alpha: float,
    heads: bool,
    key: str,
) -> dict[str, np.ndarray]:
    """One model's column; returns its arrays for the NPZ export."""
    grid = run.maps.grid
    row, col, index = click_patch(click, grid)
    from_patch = run.from_patch(index)
    st.markdown(f"**{run.title}**")
    st.caption(f"Block {run.layer} of {run.depth} · {run.size} px → {grid[0]}×{grid[1]} patches")
    st.plotly_chart(
        attention_figure(view, uri, run.cls_mean, alpha, (row, col)),
        key=image_a_chart(key).key,
        on_select="rerun",
        selection_mode="points",
    )
    st.caption(run.summary() + " Click a patch to see its own attention below.")
    if heads:
        _heads(view, run.maps.cls[0], alpha, "CLS → patches, head by head")
    st.plotly_chart(attention_figure(view, uri, from_patch.mean(0), alpha, (row, col)), key=f"{key}_patch_chart")
    st.caption(f"Patch (row {row}, col {col}) → patches, mean of {run.maps.heads} heads.")
    if heads:
        _heads(view, from_patch, alpha, f"Patch (row {row}, col {col}) → patches, head by head")
    name = run.model.replace("@", "_")
    left, right = st.columns(2)
    download_png(partial(overlay_png, image, run.cls_mean, alpha), f"{stem}_{name}_cls.png", f"{key}_cls_png",
                 "PNG: CLS", left, on_click="ignore")  # fmt: skip
    download_png(partial(overlay_png, image, from_patch.mean(0), alpha), f"{stem}_{name}_r{row}c{col}.png",
                 f"{key}_patch_png", "PNG: patch", right, on_click="ignore")  # fmt: skip
    return {
        f"{name}_cls": run.maps.cls[0],
        f"{name}_cls_prefix": run.maps.cls_prefix[0],
        f"{name}_patch_r{row}c{col}": from_patch,
        f"{name}_patches": run.maps.patches[0].astype(np.float16),
        f"{name}_layer_size": np.array([run.layer, run.size]),
    }


def _heads(view: np.ndarray, heats: np.ndarray, alpha: float, caption: str) -> None:
    sheet, columns = heads_sheet(view, heats, alpha)
    st.image(sheet, caption=f"{caption} (heads 1–{len(heats)}, {columns} a row, each on its own scale)",
             width="stretch", output_format="PNG")  # fmt: skip
