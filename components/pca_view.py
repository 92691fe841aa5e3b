"""PCA foreground views: the DINOv2 recipe's panels, joint PCA, registers side by side, token norms per block.

Functions take numpy arrays (images HWC uint8 RGB, tokens (N, h, w, D) float32) or core results; every
widget key starts with the `key` argument. Sliders live in `st.fragment`s: moving one redraws its panels
from the tokens already computed and never runs the model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import partial

import numpy as np
import streamlit as st

from components.charts import norm_profile, threshold_histogram
from components.downloads import download_npz, download_png
from components.errors import user_errors
from components.state import Slot, input_size, option_start, pca_threshold, rgb_memo
from core import registry
from core.analysis.imaging import blend, colorize, fit, resize_map, to_png
from core.analysis.pca import (
    Foreground,
    PC1Result,
    RGBProjection,
    compute_foreground,
    compute_pc1,
    compute_rgb_pca,
    compute_token_norms,
    flag_high_norm,
    split_foreground,
)
from core.text import count

SINGLE, JOINT, REGISTERS, NORMS = "Single image", "Joint PCA", "Registers", "Token norms"
ATTENTION = "Attention maps"  # drawn by components/attention_view.py
MODES = (SINGLE, JOINT, REGISTERS, NORMS, ATTENTION)
MIN_SIZE, MAX_SIZE = 224, 896  # square input sides offered, pixels
SINGLE_SIZE = JOINT_SIZE = 448  # default input sides (a multiple of 14 and of 16); joint PCA keeps its own
MAX_JOINT = 8
DISPLAY_SIDE = 448  # longest side of a shown panel, pixels
OPACITY = 0.6
OUTLIER_RGB = np.array([255, 40, 40], dtype=np.uint8)
NORM_COLUMNS = 4
PANELS = {  # panel id → title shown under it
    "original": "Original",
    "pc1": "① PC1 score of every patch",
    "mask": "② Foreground mask",
    "rgb": "③ Foreground PCA as RGB",
    "overlay": "④ Overlay on the image",
    "norms": "Token norms, last block (outliers red)",
}
PANEL_HELP = {
    "original": "The image, resized to a square for the model (the maps are stretched back).",
    "pc1": "A 1-component PCA over all patch tokens. Its strongest direction usually separates object from background.",
    "mask": "Patches on the foreground side of the threshold (white). The side is chosen automatically: the "
    "minority side that touches the border less.",
    "rgb": "A 3-component PCA fitted on foreground tokens only, each component scaled to one colour channel.",
    "overlay": "The colours upsampled and laid over the foreground. Similar colours mean similar tokens.",
}


# ---- controls and engine calls -----------------------------------------------------------------
def show_mode(key: str) -> str:
    return st.radio(
        "View",
        MODES,
        horizontal=True,
        key=f"{key}_mode",
        help="Single image: the recipe step by step. Joint PCA: one PCA over several images, so the same part "
        "gets the same colour. Registers: the same image through a model with and without registers. "
        "Token norms: the size of every patch token, block by block. Attention maps: where the CLS token and a "
        "clicked patch look, per head, with and without registers.",
    )


def layer_name(layer: int | None) -> str:
    return "last layer (normed)" if not layer else f"block {layer} (raw)"


def input_sizes(patch: int) -> tuple[int, ...]:
    """Square input sides offered for a model with `patch`-pixel patches: its multiples from MIN_SIZE to MAX_SIZE."""
    return tuple(range(-(-MIN_SIZE // patch) * patch, MAX_SIZE + 1, patch))


def show_token_controls(
    num_layers: int, key: str, patch: int, choose_layer: bool = True, n_images: int = 1, joint: bool = False
) -> tuple[int | None, int]:
    """Layer (None: last, after the final LayerNorm; k: raw output of block k) and square input size, a multiple
    of the model's `patch`.

    `joint` views keep their own size (default JOINT_SIZE), so a large single-image size is not multiplied by
    several images; under the slider a caption says what `n_images` at the chosen size cost. A size kept from a
    model with another patch moves to the nearest multiple of this one.
    """
    left, right = st.columns(2)
    layer = None
    if choose_layer:
        layer = (
            left.selectbox(
                "Layer",
                [0, *range(num_layers, 0, -1)],  # 0 stands for None: a None option would look clearable
                format_func=layer_name,
                key=f"{key}_layer",
                help="The published pictures use the last layer after the final LayerNorm.",
            )
            or None
        )
    sizes, size_slot = input_sizes(patch), input_size(f"{key}_joint" if joint else key)
    size = right.select_slider(
        "Input size (pixels)",
        sizes,
        key=size_slot.key,
        help=f"The image is resized to a square of this side; the token grid is size / {patch} patches a side "
        f"(this model's patches are {patch} × {patch} px). Larger gives finer maps and takes longer.",
        **option_start(size_slot, sizes, JOINT_SIZE if joint else SINGLE_SIZE),
    )
    right.caption(size_cost(n_images, size, patch))
    return layer, size


def size_cost(n_images: int, size: int, patch: int) -> str:
    """What the model processes at this size, and roughly how long that takes next to one image at SINGLE_SIZE."""
    grid = size // patch
    ratio = n_images * (size / SINGLE_SIZE) ** 2
    return (
        f"{count(n_images, 'image')} × {grid}×{grid} patches = {count(n_images * grid * grid, 'token')}: about "
        f"{ratio:.1f}× the time of one image at {SINGLE_SIZE} px (more at large sizes: attention grows with the "
        "square of the tokens). Cached afterwards."
    )


def pick_images(names: Sequence[str], key: str, default: int = 4) -> list[int]:
    """Indices of 2..MAX_JOINT images of the working set (the first `default` to start with)."""
    return st.multiselect(
        f"Images (2–{MAX_JOINT})",
        range(len(names)),
        default=list(range(min(default, len(names)))),
        format_func=lambda i: names[i],
        max_selections=MAX_JOINT,
        key=f"{key}_images",
    )


# ---- single image and joint PCA ----------------------------------------------------------------
def show_foreground_pca(images: list[np.ndarray], names: list[str], tokens: np.ndarray, source: str, key: str) -> None:
    """The recipe on (N, h, w, D) tokens of N images, fitted jointly; one row of panels per image.

    One image gets explanations and a PNG download under every panel; `source` (model, layer, size) is
    stored in the NPZ export.
    """
    pc1 = compute_pc1(tokens)
    _foreground_fragment([fit(im, DISPLAY_SIDE) for im in images], names, tokens, pc1, source, key)


@st.fragment
def _foreground_fragment(
    images: list[np.ndarray], names: list[str], tokens: np.ndarray, pc1: PC1Result, source: str, key: str
) -> None:
    with user_errors("The foreground PCA"):
        fg, alpha = _threshold_controls(pc1, key)
        rgb = _rgb_or_warning(tokens, fg, memo=rgb_memo(key))
        score_range = (float(fg.scores.min()), float(fg.scores.max()))
        single = len(images) == 1
        for i, (image, name) in enumerate(zip(images, names, strict=True)):
            rgb_i = None if rgb is None else rgb.rgb[i]
            panels = _recipe_panels(image, fg.scores[i], fg.mask[i], rgb_i, alpha, score_range)
            if not single:
                st.markdown(f"**{name}** — {fg.mask[i].mean():.0%} foreground")
            _show_panels(panels, name, f"{key}_{i}", explain=single)
        arrays = {"tokens": tokens, "pc1_component": pc1.component, "pc1_mean": pc1.mean}
        arrays |= {"pc1_scores": fg.scores, "threshold": fg.threshold, "sign": fg.sign, "mask": fg.mask}
        if rgb is not None:
            arrays |= {"rgb": rgb.rgb, "rgb_components": rgb.components, "rgb_mean": rgb.mean}
        download_npz(arrays | {"names": np.array(names), "source": source}, "pca_foreground.npz", f"{key}_npz")


def _threshold_controls(pc1: PC1Result, key: str) -> tuple[Foreground, float]:
    """Threshold (Otsu to start), side flip and opacity; draws the histogram and the numbers."""
    scores = pc1.scores
    auto = split_foreground(scores)
    tag = hashlib.blake2b(scores.tobytes(), digest_size=6).hexdigest()  # new tokens: widgets start afresh
    step = max(float(scores.max() - scores.min()) / 200, 1e-6)
    low, high = float(scores.min()) - step, float(scores.max())  # both ends reach "all" and "none" either side
    slider = pca_threshold(key, tag)
    slider.setdefault(float(auto.threshold))  # the key holds the value: no value= as well
    left, middle, right = st.columns([3, 1, 2], vertical_alignment="bottom")
    threshold = left.slider(
        "Threshold on PC1",
        low,
        high,
        step=step,
        format="%.3f",
        key=slider.key,
        help="Patches on the foreground side of this score are foreground. It starts at Otsu's threshold, "
        "the split that best separates the two humps of the histogram.",
    )
    middle.button("Reset to Otsu", key=f"{key}_reset", on_click=slider.set, args=(float(auto.threshold),))
    flip = middle.toggle("Flip side", key=f"{key}_flip_{tag}", help="Swap foreground and background.")
    alpha = right.slider("Overlay opacity", 0.0, 1.0, OPACITY, 0.05, key=f"{key}_opacity")
    fg = split_foreground(scores, threshold, flip)

    chart, numbers = st.columns([3, 1])
    chart.plotly_chart(threshold_histogram(fg, float(auto.threshold)), key=f"{key}_histogram")
    numbers.metric("Foreground patches", f"{fg.mask.mean():.1%}")
    numbers.metric(
        "Foreground side",
        ("high" if fg.sign > 0 else "low") + " PC1",
        help="Which end of PC1 counts as foreground: chosen automatically (the minority side that touches the "
        "border less)" + (", then swapped by **Flip side**." if flip else ". **Flip side** swaps it."),
    )
    numbers.metric("PC1 explains", f"{pc1.explained_variance_ratio:.1%}", help="Share of the token variance.")
    return fg, alpha


def _rgb_or_warning(tokens: np.ndarray, fg: Foreground, memo: Slot | None = None) -> RGBProjection | None:
    """The foreground colour PCA, or None with a warning when the mask is unusable.

    With `memo` (a session-state slot) the last fit is reused while scores and mask are unchanged, so moving
    the opacity slider does not refit the PCA.
    """
    share = float(fg.mask.mean())
    if share == 0.0:
        st.warning("No patch is foreground at this threshold, so there is nothing to colour. Move it back or flip.")
        return None
    if share == 1.0:
        st.warning(
            "Every patch is foreground at this threshold, so the colour PCA mixes object and background. "
            "Move the threshold or flip the side."
        )
    digest = hashlib.blake2b(fg.scores.tobytes() + np.packbits(fg.mask).tobytes(), digest_size=16).digest()
    cached = memo.get() if memo else None
    if cached is not None and cached[0] == digest:
        rgb, error = cached[1:]
    else:
        try:
            rgb, error = compute_rgb_pca(tokens, fg.mask), None
        except ValueError as exc:
            rgb, error = None, str(exc)
        if memo:
            memo.set((digest, rgb, error))
    if error:
        st.warning(f"No colour PCA: {error}")
    return rgb


# ---- registers ----------------------------------------------------------------------------------
def show_register_comparison(
    image: np.ndarray, models: Sequence[str], tokens: Sequence[np.ndarray], last_block: Sequence[np.ndarray], key: str
) -> None:
    """One row per model: PC1, mask, overlay (Otsu, automatic side) and last-block token norms.

    `tokens` and `last_block` are (1, h, w, D) per model: the chosen layer, and the raw last block.
    """
    st.caption(
        "Without registers, large DINOv2 models reuse a few background patches as scratch space: those "
        "tokens get very large norms and show up as specks in the maps (Darcet et al., *Vision Transformers "
        "Need Registers*, 2024). Register tokens give the model that space, and the specks go away. Threshold "
        "and side are automatic here; tune them in the single-image view."
    )
    shown = fit(image, DISPLAY_SIDE)
    for i, (model, layer_tokens, raw) in enumerate(zip(models, tokens, last_block, strict=True)):
        fg = compute_foreground(layer_tokens)
        rgb = _rgb_or_warning(layer_tokens, fg)
        norms = compute_token_norms(raw)[0]
        flags = flag_high_norm(norms[None])[0]
        score_range = (float(fg.scores.min()), float(fg.scores.max()))
        panels = _recipe_panels(
            shown, fg.scores[0], fg.mask[0], None if rgb is None else rgb.rgb[0], OPACITY, score_range
        )
        panels = {name: panel for name, panel in panels.items() if name in ("pc1", "mask", "overlay")}
        panels["norms"] = _norm_panel(norms, flags, shown.shape[:2])
        ratio = float(norms.max() / max(np.median(norms), 1e-12))
        st.markdown(
            f"**{registry.parse(model).spec.title}** — {count(int(flags.sum()), 'high-norm token')}; "
            f"largest norm {ratio:.1f}× the median"
        )
        _show_panels(panels, model.replace("@", "_"), f"{key}_{i}", explain=False)


# ---- token norms --------------------------------------------------------------------------------
def show_token_norms(image: np.ndarray, norms: np.ndarray, key: str) -> None:
    """A grid of (L, h, w) per-block token-norm maps with high-norm outliers in red."""
    st.caption(
        "The L2 norm of every patch token after each transformer block (before the final LayerNorm). "
        "High-norm outliers, flagged red, are the artefact tokens that registers remove."
    )
    _norms_fragment(fit(image, DISPLAY_SIDE // 2), norms, key)


@st.fragment
def _norms_fragment(image: np.ndarray, norms: np.ndarray, key: str) -> None:
    with user_errors("The token-norm grid"):
        left, right = st.columns(2, vertical_alignment="bottom")
        k = left.slider(
            "Outlier cut-off k (robust z-score)",
            2.0,
            10.0,
            5.0,
            0.5,
            key=f"{key}_k",
            help="A token is flagged when its norm is more than k robust standard deviations "
            "(1.4826 × median absolute deviation) above its block's median.",
        )
        shared = right.toggle(
            "One colour scale for all blocks",
            key=f"{key}_shared",
            help="Off: each block has its own range (outliers within a block stand out). "
            "On: norm growth with depth is visible.",
        )
        flags = flag_high_norm(norms, k)
        st.plotly_chart(norm_profile(norms, flags), key=f"{key}_profile")
        vmin, vmax = (float(norms.min()), float(norms.max())) if shared else (None, None)
        cells = [(image, "Original")]
        for layer, (norm, flag) in enumerate(zip(norms, flags, strict=True), start=1):
            caption = f"Block {layer}: median {np.median(norm):.1f}, max {norm.max():.1f}, {count(int(flag.sum()), 'outlier')}"
            cells.append((_norm_panel(norm, flag, image.shape[:2], vmin, vmax), caption))
        columns = st.columns(NORM_COLUMNS)
        for i, (cell, caption) in enumerate(cells):
            columns[i % NORM_COLUMNS].image(cell, caption=caption, width="stretch", output_format="PNG")
        download_npz({"norms": norms, "high_norm": flags, "k": k}, "token_norms.npz", f"{key}_npz")


# ---- panels and downloads -----------------------------------------------------------------------
def _recipe_panels(
    image: np.ndarray,
    scores: np.ndarray,
    mask: np.ndarray,
    rgb: np.ndarray | None,
    alpha: float,
    score_range: tuple[float, float],
) -> dict[str, np.ndarray]:
    """HWC uint8 panels at the image's size from (h, w) scores and mask and (h, w, 3) [0, 1] colours.

    Patch maps are upsampled nearest (one block per patch); the colours bilinearly.
    """
    size = image.shape[:2]
    mask_up = resize_map(mask.astype(np.float32), size, nearest=True) > 0.5
    panels = {
        "original": image,
        "pc1": colorize(resize_map(scores, size, nearest=True), "Viridis", *score_range),
        "mask": np.repeat(mask_up[..., None], 3, axis=-1).astype(np.uint8) * 255,
    }
    if rgb is not None:
        colour = (resize_map(rgb, size) * 255).round().astype(np.uint8)
        panels["rgb"] = colour
        panels["overlay"] = blend(image, colour, alpha, where=mask_up)
    return panels


def _norm_panel(
    norms: np.ndarray, flags: np.ndarray, size: tuple[int, int], vmin: float | None = None, vmax: float | None = None
) -> np.ndarray:
    """(h, w) norms as an HWC uint8 heat map at `size`, with the (h, w) flagged patches painted red."""
    heat = colorize(resize_map(norms, size, nearest=True), "Viridis", vmin, vmax)
    flagged = resize_map(flags.astype(np.float32), size, nearest=True) > 0.5
    return blend(heat, np.broadcast_to(OUTLIER_RGB, heat.shape), 0.9, where=flagged)


def _show_panels(panels: dict[str, np.ndarray], name: str, key: str, explain: bool) -> None:
    """Panels side by side, a PNG download under each; with `explain`, a step explanation too."""
    stem = name.rsplit(".", 1)[0]
    for column, (panel_id, panel) in zip(st.columns(len(panels)), panels.items(), strict=True):
        column.image(panel, caption=PANELS[panel_id], width="stretch", output_format="PNG")
        if explain:
            column.caption(PANEL_HELP[panel_id])
        download_png(
            partial(to_png, panel), f"{stem}_{panel_id}.png", f"{key}_{panel_id}_png", "PNG", column, on_click="ignore"
        )
