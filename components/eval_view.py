"""Measure segmentation: ground truth in, outlines and objects, the click protocol, automatic masks against ground
truth, zero-shot edges. Widgets only; the numbers come from core (ground_truth, analysis.click_eval, auto_eval,
edges). Results stay in this session's state, so a rerun (or a stopped run) loses nothing already computed."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import streamlit as st

from components.downloads import download_csv
from components.errors import user_errors
from components.eval_charts import miou_figure, object_table, summary_table
from components.images import show_skipped
from components.progress import progress_bar
from components.sidebar import SEGMENT, model_label, offered_models, random_note, selected_model
from components.state import Keys, get_engine
from core import config, registry
from core.analysis.auto_eval import match_masks
from core.analysis.click_eval import ModelRun, Target, evaluate_model
from core.analysis.edges import (
    compute_canny_edges,
    compute_mask_edges,
    compute_sobel_edges,
    edge_scores,
    gt_boundaries,
)
from core.analysis.imaging import palette
from core.analysis.masks import mask_bbox, overlay_masks
from core.data import ImageSet, prepare_roots
from core.ground_truth import (
    GroundTruth,
    demo_ground_truth,
    load_ground_truth_folder,
    load_ground_truth_zip,
)
from core.models.sam import AutoMasks, auto_mask_defaults
from core.text import count

ground_truth: Keys[GroundTruth] = Keys("{}_gt")  # the loaded ground truth
click_runs: Keys[dict] = Keys("{}_runs")  # (settings) → [ModelRun per model], the latest settings only
zip_seen: Keys[str] = Keys("{}_zip_id")  # the file id of the zip upload last read (read once per upload)
auto_results: Keys[dict] = Keys("{}_auto")  # (model, image name, grid side) → AutoMasks
EDGE_SIDE = 16  # the SAM paper's 16 × 16 grid of point prompts for edges


# ---- ground truth ------------------------------------------------------------------------------------
def load_ground_truth(key: str) -> GroundTruth | None:
    """Ground truth from a zip upload, a server folder or the built-in shapes; the last one loaded stays."""
    slot = ground_truth(key)
    upload_col, folder_col, demo_col = st.columns([3, 3, 2], vertical_alignment="bottom")
    upload = upload_col.file_uploader("Zip with images/ + masks/, or images + COCO JSON", ["zip"], key=f"{key}_zip")
    if upload is not None and zip_seen(key).get() != upload.file_id:
        with user_errors("Reading the zip"), st.spinner("Reading the ground truth…"):
            slot.set(load_ground_truth_zip(upload.getvalue(), upload.name))
            zip_seen(key).set(upload.file_id)
    folder = folder_col.text_input("…or a folder on the server", key=f"{key}_folder", placeholder="data/my_set")
    if folder_col.button("Load folder", key=f"{key}_load", disabled=not folder):
        with user_errors("Reading the folder"), st.spinner("Reading the ground truth…"):
            slot.set(load_ground_truth_folder(folder, prepare_roots(config.data_roots())))
    if demo_col.button("Built-in shapes", key=f"{key}_demo", help="Three synthetic images with known objects"):
        slot.set(demo_ground_truth())
    gt = slot.get()
    if gt is None:
        return None
    if gt.skipped:
        show_skipped(ImageSet(skipped=gt.skipped))
    if not gt.items:
        st.warning("Nothing could be paired: see the reasons above.")
        return None
    st.caption(f"{count(len(gt.items), 'image')}, {count(gt.objects, 'object')} loaded.")
    return gt


def show_objects(gt: GroundTruth, key: str) -> int:
    """The chosen image with every object's outline, and the object list; returns the image's index."""
    names = [item.name for item in gt.items]
    index = st.selectbox("Image", range(len(names)), format_func=lambda i: names[i], key=f"{key}_image")
    item = gt.items[index]
    left, right = st.columns([3, 2])
    colors = palette(len(item.masks))
    left.image(overlay_masks(item.image, list(item.masks), colors, 0.25, 2), output_format="PNG",
               caption=item.note or item.name)  # fmt: skip
    boxes = [mask_bbox(m) for m in item.masks]
    right.dataframe(
        pd.DataFrame({
            "object": np.arange(1, len(item.masks) + 1),
            "label": item.labels,
            "area px": item.masks.sum(axis=(1, 2)),
            "box (x, y, w, h)": [str(b) for b in boxes],
        }),
        hide_index=True,
        height=300,
    )  # fmt: skip
    return index


# ---- the click protocol ------------------------------------------------------------------------------
def _model_ref(name: str) -> str:
    """`name@weights`: the sidebar's weights for its chosen model, the default weights for the others."""
    chosen = selected_model(SEGMENT)
    return chosen if registry.parse(chosen).spec.name == name else f"{name}@{registry.get(name).default_weights}"


def _targets(gt: GroundTruth) -> list[Target]:
    return [
        Target(i, item.name, k, label, mask)
        for i, item in enumerate(gt.items)
        for k, (label, mask) in enumerate(zip(item.labels, item.masks, strict=True))
    ]


def show_click_eval(gt: GroundTruth, key: str) -> None:
    """Models and clicks, the run with a progress bar, the results table, the mIoU chart and the CSVs."""
    names = [s.name for s in offered_models(SEGMENT)]
    default = registry.parse(selected_model(SEGMENT)).spec.name
    cols = st.columns([4, 2], vertical_alignment="bottom")
    chosen = cols[0].multiselect(
        "Models", names, [default], format_func=lambda n: registry.get(n).title, key=f"{key}_models"
    )
    n_clicks = cols[1].slider("Clicks per object", 1, 20, 10, key=f"{key}_clicks")
    models = [_model_ref(n) for n in chosen]
    targets = _targets(gt)
    st.caption(
        f"{count(len(targets), 'object')} × up to {count(n_clicks, 'click')} per model. Each image is encoded once per "
        "model; each click runs only the mask decoder. Stop the run with Streamlit's Stop button: the objects done "
        "so far are kept."
    )
    settings = (tuple(models), n_clicks, tuple(t.image_name for t in targets), len(targets))
    store = click_runs(key).setdefault({})
    if st.button("Run the click protocol", key=f"{key}_run", type="primary", disabled=not models):
        store.clear()
        store[settings] = runs = [ModelRun(m) for m in models]
        _run(gt, targets, runs, n_clicks)
    runs = store.get(settings)
    if not runs:
        st.info("Choose the models and the number of clicks, then run the protocol.")
        return
    _show_results(runs, len(targets), key)


def _run(gt: GroundTruth, targets: list[Target], runs: list[ModelRun], n_clicks: int) -> None:
    update, close = progress_bar("Simulating clicks")
    total = len(targets) * len(runs)
    images = [item.image for item in gt.items]
    with user_errors("The click protocol"):
        for i, run in enumerate(runs):

            def step(done: int, _: int, i: int = i) -> None:
                update(i * len(targets) + done, total)

            with st.spinner(f"Loading {model_label(run.model)}…"):
                get_engine().model(run.model)
            evaluate_model(get_engine(), run.model, images, targets, n_clicks, step, result=run)
    close()


def _show_results(runs: list[ModelRun], total: int, key: str) -> None:
    labels = {run.model: model_label(run.model) for run in runs}
    random_note([run.model for run in runs], "Their masks, and so these numbers, show the protocol at work, not SAM.")
    unfinished = [labels[r.model] for r in runs if len(r.runs) < total]
    if unfinished:
        st.warning(f"Stopped before the end: {', '.join(unfinished)} — the table holds the objects done.")
    table = summary_table(runs, labels)
    st.dataframe(table, hide_index=True)
    st.caption(
        "mIoU@k: mean IoU after k clicks (top-score candidate at the first click). Oracle: the best of SAM's three "
        "first-click candidates. NoC@85/90: clicks to reach that IoU; an object that never does counts as the "
        "maximum (fail: how many)."
    )
    st.plotly_chart(miou_figure(runs, labels), key=f"{key}_chart")
    left, right = st.columns(2)
    download_csv(table, "click_protocol_summary.csv", f"{key}_dl_summary", "Summary CSV", where=left)
    download_csv(object_table(runs, labels), "click_protocol_objects.csv", f"{key}_dl_objects", "Per-object CSV",
                 where=right)  # fmt: skip


# ---- automatic masks ---------------------------------------------------------------------------------------
def _auto_masks(gt: GroundTruth, index: int, model: str, side: int, key: str, where: str) -> AutoMasks | None:
    """SAM's automatic masks of one image (computed on demand, kept per model, image and grid)."""
    store = auto_results(key).setdefault({})
    item = gt.items[index]
    name = (model, item.name, side)
    if name in store:
        return store[name]
    if not st.button(f"Generate automatic masks ({side}×{side} grid)", key=f"{key}_{where}_run", type="primary"):
        return None
    engine = get_engine()
    params = replace(auto_mask_defaults(engine.weights_status(model).is_random, side), points_per_batch=64)
    with user_errors("Automatic masks"):
        with st.spinner(f"Encoding the image with {model_label(model)}…"):
            embedding = engine.sam_embedding(item.image, model)
        update, close = progress_bar(f"Prompting SAM with a {side}×{side} grid, batches")
        store[name] = engine.sam_auto_masks(item.image, embedding, model, params, update)
        close()
        return store[name]
    return None


def show_auto_eval(gt: GroundTruth, index: int, model: str, key: str) -> None:
    """Expected (ground truth) and generated (SAM's automatic masks) side by side; best match per object."""
    cuda = get_engine().device.type == "cuda"
    side = st.slider("Points per side", 4, 64, 32 if cuda else 16, key=f"{key}_auto_side")
    result = _auto_masks(gt, index, model, side, key, "auto")
    if result is None:
        st.info("Generate SAM's automatic masks for this image, then each object is matched to its best mask.")
        return
    item = gt.items[index]
    matches = match_masks(item.masks, result.masks)
    colors = palette(len(item.masks))
    left, right = st.columns(2)
    left.image(overlay_masks(item.image, list(item.masks), colors, 0.5, 1), caption="Expected (ground truth)",
               output_format="PNG")  # fmt: skip
    found = [(result.masks[m], colors[k]) for k, m in enumerate(matches.index) if m >= 0]
    right.image(
        overlay_masks(item.image, [m for m, _ in found], np.array([c for _, c in found]).reshape(-1, 3), 0.5, 1),
        caption=f"Generated: each object's best automatic mask, in its colour ({count(len(result.masks), 'mask')})",
        output_format="PNG",
    )
    a, b = st.columns(2)
    a.metric("Recall at IoU 0.5", f"{matches.recall(0.5):.2f}")
    b.metric("Recall at IoU 0.75", f"{matches.recall(0.75):.2f}")
    table = pd.DataFrame({
        "object": np.arange(1, len(item.masks) + 1),
        "label": item.labels,
        "best mask": [int(m) + 1 if m >= 0 else None for m in matches.index],
        "IoU": np.round(matches.iou, 4),
    })  # fmt: skip
    st.dataframe(table, hide_index=True)
    download_csv(table, "automatic_masks_vs_ground_truth.csv", f"{key}_auto_dl")


# ---- edges ---------------------------------------------------------------------------------------------------
def show_edges(gt: GroundTruth, index: int, model: str, key: str) -> None:
    """SAM's zero-shot edges (16 × 16 grid → mask maps → Sobel → edge NMS) beside Sobel and Canny, with boundary F."""
    st.caption(
        "SAM's automatic masks from a 16×16 point grid; each mask, smoothed to a probability map (σ = longest side / "
        "256 px: the engine returns thresholded masks, not SAM's logits), is Sobel-filtered; the strongest response "
        "per pixel is thinned by edge non-maximum suppression. F-measure: edge pixels within 2 px of a ground-truth "
        "boundary, at the best threshold (ODS over the images computed, OIS per image)."
    )
    result = _auto_masks(gt, index, model, EDGE_SIDE, key, "edges")
    if result is None:
        return
    store = auto_results(key).setdefault({})
    methods = ("SAM (zero-shot)", "Sobel", "Canny")
    with st.spinner("Edge maps…"):
        maps = {name: _edge_map(store, name, gt.items[index], model) for name in methods}
    for col, (name, edges) in zip(st.columns(3), maps.items(), strict=True):
        col.image((255 * (1 - edges)).astype(np.uint8), caption=name, output_format="PNG")
    done = [i for i, it in enumerate(gt.items) if (model, it.name, EDGE_SIDE) in store]
    rows = []
    for name in methods:
        edge_maps = [_edge_map(store, name, gt.items[i], model) for i in done]
        scores = edge_scores(edge_maps, [gt_boundaries(gt.items[i].masks) for i in done])
        rows.append({"method": name, "ODS": round(scores.ods, 4), "OIS": round(scores.ois, 4),
                     "this image (best F)": round(float(scores.per_image[done.index(index)]), 4)})  # fmt: skip
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    st.caption(f"Over {count(len(done), 'image')} with edges computed.")


def _edge_map(store: dict, name: str, item, model: str) -> np.ndarray:
    """One method's edge map of one image, computed once (kept beside the automatic masks it comes from)."""
    cache_key = ("edges", name, item.name, model if name.startswith("SAM") else "")
    if cache_key not in store:
        if name == "Sobel":
            store[cache_key] = compute_sobel_edges(item.image)
        elif name == "Canny":
            store[cache_key] = compute_canny_edges(item.image)
        else:
            store[cache_key] = compute_mask_edges(store[(model, item.name, EDGE_SIDE)].masks)
    return store[cache_key]
