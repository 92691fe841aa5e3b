"""Click-to-segment with SAM, SAM 2 or EdgeTAM: prompts on the image, candidate masks, kept objects, automatic masks, export.

The widgets only: the click path's state is a `SegmentSession` (core/segment_session.py, no Streamlit),
one per model and image hash in this browser session (`st.session_state`). A click reruns only the segmentation
fragment: the image embedding is computed once, each click runs SAM's light decoder.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from dataclasses import replace
from pathlib import PurePath

import numpy as np
import streamlit as st

from components.downloads import download_json, download_png
from components.errors import user_errors
from components.progress import progress_bar
from components.prompt_canvas import CanvasFrame, mask_layer, prompt_canvas
from components.state import (
    Slot,
    decoded_uploads,
    display_images,
    get_engine,
    last_sam_embedding,
    mask_name,
    segment_images,
)
from core.analysis.imaging import data_url, palette, resize_map, to_jpeg, to_png
from core.analysis.masks import coco_annotations, cutout, overlay_masks
from core.data import ImageError, ImageSet, image_hash, load_image
from core.models import Can, can
from core.models.sam import PREVIEW_SIDE, AutoMaskParams, AutoMasks, SamEmbedding, auto_mask_defaults
from core.registry import list_models, parse
from core.segment_session import SegmentSession, Step
from core.text import count

MASK_COLOR = "#1e90ff"
MODES = ("Positive point", "Negative point")  # what a left click adds; a right click always adds a negative one
THUMB_WIDTH = 160  # pixels of a candidate preview (shown 120 wide: sharp on high-density screens)
# Seconds for one image embedding until one is measured on this server: ViT-B measured at ~35 s on a 2-core CPU,
# ViT-L and ViT-H scaled from it by parameter count. SAM 2.1 and EdgeTAM: 35 s times their encode time over ViT-B's,
# measured in one run on CPU_EMBED_DATE (bench/bench_sam_families.py, 2250 × 1500 photo, full-size random weights,
# a busy 2-core CPU: ViT-B 55.8 s, Hiera-T 30.6 s, Hiera-B+ 66.7 s, EdgeTAM 20.0 s); Hiera-S and Hiera-L scaled
# by parameter count. On a GPU ViT-H took 0.2 s (H100, fp32), the others less.
_CPU_EMBED_S = {
    "sam_vit_b": 35.0,
    "sam_vit_l": 120.0,
    "sam_vit_h": 240.0,
    "sam2_hiera_tiny": 19.0,
    "sam2_hiera_small": 23.0,
    "sam2_hiera_base_plus": 42.0,
    "sam2_hiera_large": 124.0,
    "edgetam": 12.0,
}
CPU_EMBED_DATE = "2026-12-04"
_GPU_EMBED_S = 0.2
_KEEP_IMAGES = 8  # per session: prompt state of the most recently segmented images


# ---- per-session, per-image state -------------------------------------------------------------
def image_state(key: str, model: str, image_key: str) -> SegmentSession:
    """This session's state for one image and model (a small LRU: older images are forgotten)."""
    states: OrderedDict = segment_images(key).setdefault(OrderedDict())
    name = f"{model}|{image_key}"
    if name not in states:
        states[name] = SegmentSession()
        while len(states) > _KEEP_IMAGES:
            states.popitem(last=False)
    states.move_to_end(name)
    return states[name]


def decode_received(state: SegmentSession, embedding: SamEmbedding, model: str) -> None:
    """Decode the prompts `state` received, with the engine's SAM on this image's embedding."""
    engine = get_engine()
    state.decode(lambda prompt: engine.sam_predict(embedding, model, prompt))


# ---- embedding ----------------------------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def _measured_s() -> dict[str, float]:
    """Server-wide: the last measured seconds of one image embedding, per model and device."""
    return {}


def embedding_seconds(model: str) -> float:
    """Expected seconds for one SAM image embedding of `model` on the engine's device."""
    device = get_engine().device.type
    spec = parse(model).spec
    measured = _measured_s().get(f"{spec.name}|{device}")
    if measured is not None:
        return measured
    if spec.tiny:
        return 0.1
    return _CPU_EMBED_S.get(spec.name, 60.0) if device == "cpu" else _GPU_EMBED_S


def faster_model_hint(model: str) -> str | None:
    """On a CPU, one line naming the promptable model that encodes an image fastest, when it is at least twice as
    fast as `model` (seconds measured on this server where there are some, else the measured table above)."""
    spec = parse(model).spec
    if get_engine().device.type != "cpu" or spec.tiny:
        return None
    promptable = [s for s in list_models(include_tiny=False) if can(s, Can.PROMPTS)]
    fastest = min(promptable, key=lambda s: embedding_seconds(s.name))
    best, mine = embedding_seconds(fastest.name), embedding_seconds(model)
    if 2 * best > mine:
        return None
    measured = all(f"{n}|cpu" in _measured_s() for n in (fastest.name, spec.name))
    where = "measured on this server" if measured else f"measured on a 2-core CPU, {CPU_EMBED_DATE}"
    return (
        f"On this CPU, {fastest.title} encodes an image in {_duration(best)}, {spec.title} in {_duration(mine)} "
        f"({where}): pick {fastest.title} as the Segmenter in the sidebar for a quicker first mask."
    )


def _duration(seconds: float) -> str:
    """A duration for people: under a second, about 35 s, about 4 min."""
    if seconds < 1:
        return "under a second"
    return f"about {seconds:.0f} s" if seconds < 90 else f"about {seconds / 60:.0f} min"


def compute_embedding(image: np.ndarray, model: str) -> SamEmbedding | None:
    """The SAM image embedding (cached by image hash in the engine), with a spinner that says how long it takes.
    A rerun on the same image object (the working set's, the decoded upload's) takes the session's last embedding
    without hashing the image again."""
    last = last_sam_embedding.setdefault({})  # model → (image, its embedding)
    if model in last and last[model][0] is image:
        return last[model][1]
    embedding = _compute_embedding(image, model)
    if embedding is not None:
        last[model] = (image, embedding)
    return embedding


def _compute_embedding(image: np.ndarray, model: str) -> SamEmbedding | None:
    engine, spec = get_engine(), parse(model).spec
    device = engine.device.type
    text = (
        f"Encoding the image with {spec.title}: {_duration(embedding_seconds(model))} on {device.upper()}, "
        "once per image. Clicks after that take well under a second."
    )
    with user_errors("Computing the SAM image embedding"):
        with st.spinner(f"Loading {spec.title}…", show_time=True):
            engine.model(model)
        start = time.perf_counter()
        with st.spinner(text, show_time=True):
            embedding = engine.sam_embedding(image, model)
        elapsed = time.perf_counter() - start
        if elapsed > 1.0:  # a real computation, not a cache hit
            _measured_s()[f"{spec.name}|{device}"] = elapsed
        return embedding
    return None


# ---- image source -------------------------------------------------------------------------------
def pick_upload(key: str) -> tuple[str, np.ndarray] | None:
    """One uploaded image, decoded once per file: (name, HWC uint8 RGB), or None."""
    upload = st.file_uploader("Image", type=None, key=f"{key}_file")
    if upload is None:
        return None
    decoded = decoded_uploads(key).setdefault({})
    if upload.file_id not in decoded:
        try:
            decoded.clear()
            decoded[upload.file_id] = (upload.name, load_image(upload.getvalue(), upload.name)[0])
        except ImageError as exc:
            st.warning(f"{upload.name}: {exc}")
            return None
    return decoded[upload.file_id]


# ---- the segmenter --------------------------------------------------------------------------------
def show_segmenter(image: np.ndarray, embedding: SamEmbedding, model: str, name: str, key: str) -> None:
    """Click-to-segment on one image: canvas, candidates, kept objects, exports."""
    _segmenter(image, embedding, model, name, embedding.key or image_hash(image), key)


@st.fragment
def _segmenter(image: np.ndarray, embedding: SamEmbedding, model: str, name: str, image_key: str, key: str) -> None:
    state = image_state(key, model, image_key)
    frame = CanvasFrame.fit(image.shape[:2])
    if state.received:
        with user_errors("Segmenting"), st.spinner(f"Prompting SAM with {_prompt_words(state)}…"):
            decode_received(state, embedding, model)

    tools = st.columns([5, 1, 1, 2], vertical_alignment="bottom")
    mode = tools[0].segmented_control("Left click adds", MODES, default=MODES[0], required=True, key=f"{key}_mode")
    tools[1].button("Undo", key=f"{key}_undo", on_click=state.undo, disabled=not state.steps)
    tools[2].button("Clear", key=f"{key}_clear", on_click=state.clear, disabled=not state.steps)
    with tools[3].popover("Overlay", icon=":material/palette:"):
        color = st.color_picker("Colour", MASK_COLOR, key=f"{key}_color")
        alpha = st.slider("Opacity", 0.0, 1.0, 0.5, 0.05, key=f"{key}_alpha")
        contour = st.toggle("Contour", True, key=f"{key}_contour")

    layers = state.layers(_hex_rgb(color))
    st.caption("Click to add a point, right-click for a negative one, drag to draw a box; points and a box combine.")
    prompt_canvas(
        _display_url(image, image_key, frame, key),
        frame,
        state.prompts,
        negative=mode == MODES[1],
        seq=state.seq,
        key=f"{key}_prompts_{image_key[:12]}",
        on_prompt=state.receive,
        layer_url=mask_layer(
            [k.mask for k in layers], [k.color for k in layers], alpha, 2 * contour, (frame.height, frame.width)
        ),
        image_id=f"{image_key}@{frame.width}x{frame.height}",  # the image at this size: sent until the widget has it
    )
    if state.steps:
        st.caption(f"Last click: SAM's mask decoder took {state.decode_ms:.0f} ms on this server.")
    left, right = st.columns([3, 2])
    with left:
        _show_candidates(state, _display_image(image, image_key, frame, key, THUMB_WIDTH), _hex_rgb(color), key)
    with right:
        _show_kept(state, key)
        _show_exports(state, image, name, key)


def _prompt_words(state: SegmentSession) -> str:
    """What the next decode sends to SAM, for the spinner: "2 points and a box"."""
    prompts = state.next_prompts
    points = sum(p.kind == "point" for p in prompts)
    words = [count(points, "point")] if points else []
    return " and ".join(words + ["a box"] * any(p.kind == "box" for p in prompts))


def _display_image(image: np.ndarray, image_key: str, frame: CanvasFrame, key: str, width: int = 0) -> np.ndarray:
    """The image at canvas size, or `width` pixels wide, resized once per image (one kept per session)."""
    cache = display_images(key).setdefault({})
    if (image_key, frame) not in cache:
        cache.clear()
        cache[image_key, frame] = resize_map(image, (frame.height, frame.width)).round().clip(0, 255).astype(np.uint8)
    if width and (image_key, frame, width) not in cache:
        size = (round(frame.height * width / frame.width), width)
        cache[image_key, frame, width] = resize_map(cache[image_key, frame], size).round().astype(np.uint8)
    return cache[image_key, frame, width] if width else cache[image_key, frame]


def _display_url(image: np.ndarray, image_key: str, frame: CanvasFrame, key: str) -> str:
    """The image at canvas size as a JPEG data URL, encoded once per image (the masks go in a layer over it)."""
    cache = display_images(key).setdefault({})
    _display_image(image, image_key, frame, key)  # resets the cache for a new image
    if (image_key, frame, "url") not in cache:
        cache[image_key, frame, "url"] = data_url(to_jpeg(cache[image_key, frame]))
    return cache[image_key, frame, "url"]


def _hex_rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def _keep(state: SegmentSession, key: str) -> None:
    state.keep(mask_name(key).get(""))


def _pick(step: Step, widget: str) -> None:
    """Bound to its own step: a stale radio of an undone step can fire later and must not change another."""
    step.pick(Slot(widget).get())


def _candidate_thumbnails(small: np.ndarray, masks: np.ndarray, color: tuple[int, int, int]) -> list[np.ndarray]:
    """(N, H, W) bool masks at image size → N HWC uint8 previews: each mask over the small image `small`."""
    size = small.shape[:2]
    return [overlay_masks(small, [resize_map(m, size, nearest=True) > 0.5], np.array([color]), 0.6) for m in masks]


def _show_candidates(state: SegmentSession, small: np.ndarray, color: tuple[int, int, int], key: str) -> None:
    """SAM's candidates for the last prompts (previews `small` wide), the pick, and Keep."""
    if not state.steps:
        st.info("Click on the object to segment (green: include, red: exclude), or drag a box around it.")
        return
    step = state.steps[-1]
    if color not in step.thumbs:
        step.thumbs = {color: _candidate_thumbnails(small, step.prediction.masks, color)}
    st.image(
        step.thumbs[color],
        caption=_candidate_captions(step.prediction.scores),
        width=120,
    )
    if len(step.prediction.scores) > 1:  # three candidates for a single click; one for several prompts
        _show_picker(step, key)
    name_col, keep_col = st.columns([2, 1], vertical_alignment="bottom")
    name_col.text_input("Name", placeholder=f"object {len(state.kept) + 1}", key=mask_name(key).key)
    keep_col.button("Keep", key=f"{key}_keep", on_click=_keep, args=(state, key), help="Keep as a named object")


def _candidate_captions(scores: np.ndarray) -> list[str]:
    if len(scores) == 1:
        return [f"SAM's one mask for several prompts · predicted IoU {scores[0]:.2f}"]
    return [f"{i + 1} · predicted IoU {s:.2f}" for i, s in enumerate(scores)]


def _show_picker(step: Step, key: str) -> None:
    """A radio over SAM's candidates, named after its step."""
    widget = f"{key}_pick_{step.serial}"
    st.radio(
        "Mask",
        range(len(step.prediction.scores)),
        index=step.choice,
        format_func=lambda i: f"{i + 1} (predicted IoU {step.prediction.scores[i]:.2f})",
        help="SAM's own estimate of each candidate's IoU with the object: a guess, not a measurement.",
        horizontal=True,
        key=widget,
        on_change=_pick,
        args=(step, widget),
    )


def _show_kept(state: SegmentSession, key: str) -> None:
    for i, kept in enumerate(state.kept):
        swatch, text, remove = st.columns([1, 6, 2], vertical_alignment="center")
        swatch.image(np.full((16, 16, 3), kept.color, np.uint8))
        text.text(f"{kept.name} — {int(kept.mask.sum()):,} px ({100 * kept.mask.mean():.1f} %)")
        remove.button(
            "",
            icon=":material/close:",
            help="Remove",
            key=f"{key}_remove_{i}_{len(state.kept)}",
            on_click=state.remove,
            args=(i,),
        )


def _show_exports(state: SegmentSession, image: np.ndarray, name: str, key: str) -> None:
    layers = state.layers((0, 0, 0))
    if not layers:
        return
    names, masks = [layer.name for layer in layers], [layer.mask for layer in layers]
    stem = PurePath(name).stem
    index = st.selectbox(
        "Export", range(len(masks)), len(masks) - 1, lambda i: names[i], key=f"{key}_export_{len(masks)}"
    )
    mask, label = masks[index], re.sub(r"[^\w-]+", "_", names[index])
    style = {"width": "stretch", "icon": None}  # stacked, full width: the column is narrow
    png = {"on_click": "ignore", **style}
    download_png(lambda: to_png(mask), f"{stem}_{label}_mask.png", f"{key}_dl_0", "Binary mask PNG", **png)
    cut = lambda: to_png(cutout(image, mask))  # noqa: E731 - encoded on click
    download_png(cut, f"{stem}_{label}_cutout.png", f"{key}_dl_1", "Cut-out PNG with alpha", **png)
    coco = lambda: coco_annotations(masks, names, name)  # noqa: E731
    download_json(coco, f"{stem}_coco.json", f"{key}_dl_2", "All masks · COCO RLE JSON", **style)


# ---- automatic masks --------------------------------------------------------------------------------
def show_auto_masks(image: np.ndarray, embedding: SamEmbedding, model: str, name: str, key: str) -> None:
    """SAM's automatic mask generator on one image, with its grid density and quality thresholds."""
    _auto_masks(image, embedding, model, name, embedding.key or image_hash(image), key)


@st.fragment
def _auto_masks(image: np.ndarray, embedding: SamEmbedding, model: str, name: str, image_key: str, key: str) -> None:
    state = image_state(key, model, image_key)
    params, random = _auto_mask_controls(model, key)
    preview = replace(params, points_per_side=PREVIEW_SIDE)
    offer_preview = params.points_per_side > PREVIEW_SIDE
    left, right = st.columns(2)
    grid = f"{params.points_per_side}×{params.points_per_side} = {count(params.points, 'point')}"
    if offer_preview and left.button(
        f"Quick preview · {PREVIEW_SIDE}×{PREVIEW_SIDE} = {count(preview.points, 'point')}",
        key=f"{key}_preview",
        type="primary",
        help="A coarse grid of point prompts first: masks in a fraction of the time of the full grid.",
    ):
        _generate_auto_masks(state, image, embedding, model, preview)
    if right.button(f"Full grid · {grid}", key=f"{key}_run", type="secondary" if offer_preview else "primary"):
        _generate_auto_masks(state, image, embedding, model, params)
    result, shown = state.auto.get(params), params
    if result is None and offer_preview:
        result, shown = state.auto.get(preview), preview
    if result is None:
        start = "start with the quick preview, or decode the full grid" if offer_preview else "decode the grid"
        st.info(f"Set the grid and thresholds, then {start}.")
        return
    if shown is preview:
        st.caption(f"Quick preview from {count(preview.points, 'point prompt')}; the full grid decodes {grid}.")
    if not len(result.masks):
        st.info(_no_mask_message(shown, random))
        return
    _show_auto_result(result, image, name, key)


def _auto_mask_controls(model: str, key: str) -> tuple[AutoMaskParams, bool]:
    """Grid density and thresholds; with random weights the thresholds start at 0, and the page says why.
    Returns the chosen params and whether the weights are random."""
    engine = get_engine()
    random = engine.weights_status(model).is_random
    cuda = engine.device.type == "cuda"
    defaults = auto_mask_defaults(random, 32 if cuda else 16)
    if random:
        sam = auto_mask_defaults(False)
        st.info(
            f"Random weights: the quality thresholds start at 0 here, because SAM's defaults (predicted IoU ≥ "
            f"{sam.pred_iou_thresh}, stability ≥ {sam.stability_score_thresh}) let no mask of an untrained model "
            "through.",
            icon=":material/casino:",
        )
    variant = "random" if random else "trained"  # each keeps its own defaults when the model changes
    cols = st.columns(4)
    side = cols[0].slider("Points per side", 4, 64, defaults.points_per_side, key=f"{key}_side")
    iou = cols[1].slider("Predicted IoU ≥", 0.0, 1.0, defaults.pred_iou_thresh, 0.01, key=f"{key}_iou_{variant}")
    stability = cols[2].slider(
        "Stability ≥", 0.0, 1.0, defaults.stability_score_thresh, 0.01, key=f"{key}_stability_{variant}"
    )
    nms = cols[3].slider("Box NMS IoU", 0.1, 1.0, defaults.box_nms_thresh, 0.05, key=f"{key}_nms")
    batch = 64 if cuda else 16  # on a CPU, smaller batches: the progress bar moves every second or so
    return AutoMaskParams(side, iou, stability, nms, batch), random


def _generate_auto_masks(
    state: SegmentSession, image: np.ndarray, embedding: SamEmbedding, model: str, params: AutoMaskParams
) -> None:
    """Run the generator with a progress bar over its point batches; keep the result beside the last other one."""
    side = params.points_per_side
    update, close = progress_bar(f"Prompting SAM with {count(params.points, 'point')} ({side}×{side} grid), batches")
    try:
        with user_errors("Automatic masks"):
            result = get_engine().sam_auto_masks(image, embedding, model, params, update)
            state.auto = {**dict(list(state.auto.items())[-1:]), params: result}
    finally:
        close()


def _no_mask_message(params: AutoMaskParams, random: bool) -> str:
    """Why nothing came back, and which thresholds to lower."""
    text = (
        f"No mask passed the thresholds (predicted IoU ≥ {params.pred_iou_thresh:.2f}, stability ≥ "
        f"{params.stability_score_thresh:.2f}) from {count(params.points, 'point prompt')}. Lower the predicted "
        "IoU and stability thresholds"
    )
    if random:
        return text + ": with random weights, set both to 0."
    return text + ", or use more points per side."


def _show_auto_result(result: AutoMasks, image: np.ndarray, name: str, key: str) -> None:
    colors = palette(len(result.masks))
    st.metric("Masks", len(result.masks))
    overlay = overlay_masks(image, list(result.masks), colors, 0.55, 1)
    # PNG: JPEG's halved colour resolution would smear the 1-pixel contours into the fill
    st.image(overlay, caption="All masks, largest first", output_format="PNG")
    st.dataframe(
        {
            "mask": np.arange(1, len(result.masks) + 1),
            "area (px)": result.areas,
            "area (%)": np.round(100 * result.areas / result.masks[0].size, 2),
            "predicted IoU": result.scores,
            "stability": result.stability,
        },
        hide_index=True,
        height=240,
    )
    download_json(
        lambda: coco_annotations(list(result.masks), ["object"] * len(result.masks), name, result.scores),
        f"{PurePath(name).stem}_auto_coco.json", f"{key}_dl", "All masks · COCO RLE JSON", icon=None,
    )  # fmt: skip


# ---- dataset precompute -------------------------------------------------------------------------------
def show_precompute(images: ImageSet, model: str, key: str) -> None:
    """One button: SAM embeddings for the whole working set, so later clicks on any image are instant."""
    n = len(images.items)
    if not n:
        st.info("The working set is empty. Add images on the Upload page.")
        return
    st.caption(
        f"{count(n, 'image')}: {_duration(n * embedding_seconds(model))} if none is cached yet. "
        "Embeddings stay cached by image content across sessions and restarts."
    )
    if st.button(f"Compute SAM embeddings for the working set ({count(n, 'image')})", key=f"{key}_run"):
        update, close = progress_bar("Embedding the working set with SAM")
        with user_errors("Precomputing embeddings"):
            for i, item in enumerate(images.items):
                get_engine().sam_embedding(item.image, model)
                update(i + 1, n)
            close()
            st.success(f"Encoded {count(n, 'image')}: clicks on any image of the working set are instant now.")
