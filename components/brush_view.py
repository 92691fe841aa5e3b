"""Brush and eraser (SA-1B's "assisted manual" stage): start from SAM's mask of a ground-truth object after k
simulated clicks, paint to add or erase on the drawing canvas, see the corrected mask at once, keep it with the
number of strokes it took, export PNG and COCO RLE.

streamlit-drawable-canvas is imported inside `_canvas` only: importing it outside a running Streamlit script
raises (STACK_NOTES)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from components.downloads import download_json, download_png
from components.errors import user_errors
from components.sidebar import model_label
from components.state import Keys, get_engine
from core.analysis.brush import ADD_COLOR, ERASE_COLOR, paint, strokes_from_canvas
from core.analysis.click_eval import Target, evaluate_model, iou
from core.analysis.imaging import resize_map, to_png
from core.analysis.masks import coco_annotations, overlay_masks
from core.ground_truth import GroundTruth

CANVAS_WIDTH = 560  # pixels: the canvas's floating toolbar covers its top edge, so not smaller
MODES = ("Add", "Erase")
FILL = np.array([[30, 144, 255]], np.uint8)


@dataclass(frozen=True)
class Start:
    """The mask the brush starts from: its image, object, mask (H, W) bool and where it came from."""

    image: str
    index: int
    mask: np.ndarray
    source: str


@dataclass(frozen=True)
class Kept:
    name: str
    image: str
    mask: np.ndarray
    strokes: int
    iou_before: float
    iou_after: float


brush_start: Keys[Start] = Keys("{}_start")
kept_masks: Keys[list] = Keys("{}_kept")  # [Kept]
canvas_generation: Keys[int] = Keys("{}_generation")  # a new canvas (empty drawing) after each Keep
export_choice: Keys[int] = Keys("{}_export")  # the kept mask the export shows (its selectbox's key)


def _canvas_size(image: np.ndarray) -> tuple[int, int]:
    h, w = image.shape[:2]
    width = min(CANVAS_WIDTH, w) if w >= 200 else 200
    return max(1, round(h * width / w)), width


def show_brush(gt: GroundTruth, index: int, model: str, key: str) -> None:
    item = gt.items[index]
    cols = st.columns([3, 2, 2], vertical_alignment="bottom")
    obj = cols[0].selectbox(
        "Object", range(len(item.labels)), format_func=lambda k: f"{k + 1} · {item.labels[k]}", key=f"{key}_object"
    )
    clicks = cols[1].slider("SAM after simulated clicks", 1, 10, 1, key=f"{key}_clicks")
    if cols[2].button("Start from SAM's mask", key=f"{key}_begin", type="primary"):
        _begin(gt, index, obj, clicks, model, key)
    start = brush_start(key).get()
    if start is None or start.image != item.name:
        st.info("Start from SAM's mask of an object; then paint to add or erase, and keep the corrected mask.")
        _show_kept(item.name, key)
        return
    _edit(item, start, key)
    _show_kept(item.name, key)


def _begin(gt: GroundTruth, index: int, obj: int, clicks: int, model: str, key: str) -> None:
    item = gt.items[index]
    target = Target(index, item.name, obj, item.labels[obj], item.masks[obj])
    with user_errors("Segmenting"), st.spinner(f"SAM ({model_label(model)}): {clicks} simulated click(s)…"):
        run = evaluate_model(get_engine(), model, [it.image for it in gt.items], [target], clicks, keep_masks=True)
        ((_, done),) = run.runs
        source = f"{model_label(model)} after {len(done.clicks)} simulated click(s), IoU {done.ious[-1]:.3f}"
        brush_start(key).set(Start(item.name, obj, done.masks[-1], source))
        generation = canvas_generation(key)
        generation.set(generation.get(0) + 1)


def _edit(item, start: Start, key: str) -> None:
    tools = st.columns([2, 3], vertical_alignment="bottom")
    mode = tools[0].segmented_control("Brush", MODES, default=MODES[0], required=True, key=f"{key}_mode")
    width = tools[1].slider("Stroke width (canvas pixels)", 1, 60, 12, key=f"{key}_width")
    size = _canvas_size(item.image)
    display = resize_map(item.image, size).round().clip(0, 255).astype(np.uint8)
    small = resize_map(start.mask, size, nearest=True) > 0.5
    background = to_png(overlay_masks(display, [small], FILL, 0.4, 1))
    left, right = st.columns(2)
    with left:
        st.caption(f"Start: {start.source}. Draw green to add, red to erase.")
        drawing = _canvas(background, size, width, ADD_COLOR if mode == MODES[0] else ERASE_COLOR, key)
    strokes = strokes_from_canvas(drawing, size, item.image.shape[:2])
    corrected = paint(start.mask, strokes)
    gt = item.masks[start.index]
    before, after = iou(start.mask, gt), iou(corrected, gt)
    with right:
        st.image(overlay_masks(item.image, [corrected], FILL, 0.5, 1), output_format="PNG",
                 caption=f"Corrected: {len(strokes)} stroke(s); IoU with ground truth {before:.3f} → {after:.3f}")  # fmt: skip
        name_col, keep_col = st.columns([2, 1], vertical_alignment="bottom")
        name = name_col.text_input("Name", placeholder=item.labels[start.index], key=f"{key}_name")
        if keep_col.button("Keep", key=f"{key}_keep"):
            kept = kept_masks(key).setdefault([])
            label = name or item.labels[start.index]
            kept.append(Kept(label, item.name, corrected, len(strokes), before, after))
            brush_start(key).pop()
            export_choice(key).pop()  # the export shows the mask just kept
            st.rerun()


def _canvas(background: bytes, size: tuple[int, int], width: int, color: str, key: str) -> dict | None:
    from streamlit_drawable_canvas import st_canvas

    generation = canvas_generation(key).get(0)
    result = st_canvas(
        stroke_width=width,
        stroke_color=color,
        background_image=background,
        height=size[0],
        width=size[1],
        drawing_mode="freedraw",
        key=f"{key}_canvas_{generation}",
    )
    return result.json_data


def _show_kept(image_name: str, key: str) -> None:
    kept = [k for k in kept_masks(key).get([]) if k.image == image_name]
    if not kept:
        return
    st.dataframe(
        pd.DataFrame({
            "name": [k.name for k in kept],
            "area px": [int(k.mask.sum()) for k in kept],
            "strokes": [k.strokes for k in kept],
            "IoU before": [round(k.iou_before, 4) for k in kept],
            "IoU after": [round(k.iou_after, 4) for k in kept],
        }),
        hide_index=True,
    )  # fmt: skip
    index = st.selectbox("Export", range(len(kept)), len(kept) - 1, lambda i: kept[i].name, key=export_choice(key).key)
    label = re.sub(r"[^\w-]+", "_", kept[index].name)
    left, right = st.columns(2)
    download_png(lambda: to_png(kept[index].mask), f"{label}_mask.png", f"{key}_dl_png", "Mask PNG", where=left,
                 on_click="ignore")  # fmt: skip
    coco = lambda: coco_annotations([k.mask for k in kept], [k.name for k in kept], image_name)  # noqa: E731
    download_json(coco, "kept_masks_coco.json", f"{key}_dl_coco", "All kept · COCO RLE JSON", where=right)
