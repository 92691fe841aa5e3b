"""Text masks: the routes to compare, their models and thresholds, each route's panel, the exports, and the
instance-segmentation run over the working set. Routes and their results come from `core.text_routes`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple
from pathlib import PurePath

import numpy as np
import pandas as pd
import streamlit as st
from skimage.draw import disk

from components.downloads import download_csv, download_json, download_png
from components.errors import user_errors
from components.progress import progress_bar
from components.prompt_canvas import CanvasFrame, prompt_canvas
from components.sidebar import (
    SEGMENT,
    TEXT,
    default_model,
    model_label,
    offered_models,
    random_note,
    selected_model,
)
from components.state import Keys, get_engine
from core import registry
from core.analysis.imaging import data_url, resize_map, to_jpeg
from core.analysis.matching import overlay_similarity
from core.concept_routes import paligemma_route, vlm_prompt
from core.data import image_hash
from core.models import family, family_names
from core.models.paligemma import Answer, parse_detections
from core.segment_session import Prompt
from core.text import count
from core.text_routes import (
    DEFAULT_ROUTES,
    ROUTE_FAMILIES,
    ROUTES,
    Instances,
    RouteOptions,
    coco_dataset,
    draw_boxes,
    draw_instances,
    grid_picture,
    instance_rows,
    missing_models,
    segment_set,
)

POINT_RGB = np.array([255, 40, 40], np.uint8)


def mark_points(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """`image` with a red dot at each (X, Y) point."""
    out = image.copy()
    radius = max(3, round(max(image.shape[:2]) / 80))
    for x, y in points:
        out[disk((y, x), radius, shape=image.shape[:2])] = POINT_RGB
    return out


# (phrase, image name, {route: Instances}) of the latest side-by-side run: shown again when the next input is bad
last_compare: Keys[tuple[str, str, dict[str, Instances]]] = Keys("{}_last")
# (settings' signature, image names, image sizes, [Instances per image]) of the latest run over the working set
set_result: Keys[tuple[tuple, list[str], list[tuple[int, int]], list[Instances]]] = Keys("{}_set")
# (image hash, XYXY pixel box) of SAM 3's exemplar box, and how many gestures its widget has sent
exemplar: Keys[tuple[str, tuple[float, float, float, float]]] = Keys("{}_exemplar")
exemplar_gestures: Keys[int] = Keys("{}_exemplar_seq")
# (model, image hash, prompt, answer, whether it was computed then rather than taken from the engine's cache)
vlm_answer: Keys[tuple[str, str, str, Answer, bool]] = Keys("{}_answer")

TASKS = {"caption": "Caption", "detect": "Detect", "segment": "Segment"}
SEG_TOKENS_NOTE = (
    "The answer's <seg> tokens encode masks for big_vision's VQ-VAE decoder, which transformers does not ship, so "
    "its boxes go to SAM instead."
)


def pick_routes(key: str) -> list[str]:
    """The routes to compare (default: Grounded-SAM and MaskCLIP → SAM)."""
    return st.multiselect(
        "Routes",
        list(ROUTES),
        default=[r for r in DEFAULT_ROUTES if r in ROUTES],
        format_func=lambda name: ROUTES[name].title,
        key=f"{key}_routes",
    )


def pick_options(key: str) -> RouteOptions:
    """Thresholds and limits, in an expander; the defaults are Grounding DINO's and SAM 3's."""
    d = RouteOptions()
    with st.expander("Thresholds and limits"):
        left, right = st.columns(2)
        box = left.slider("Box threshold (Grounding DINO)", 0.0, 1.0, d.box_threshold, 0.01, key=f"{key}_box")
        text = right.slider("Text threshold (Grounding DINO)", 0.0, 1.0, d.text_threshold, 0.01, key=f"{key}_text")
        score = left.slider("Score threshold (OWLv2, SAM 3)", 0.0, 1.0, d.score_threshold, 0.01, key=f"{key}_score")
        points = right.slider("Points for SAM (CLIP routes)", 1, 5, d.n_points, key=f"{key}_points")
        most = left.slider("Most instances per route", 1, 50, d.max_instances, key=f"{key}_max")
    return RouteOptions(box, text, score, points, most)


def draw_exemplar(image: np.ndarray, key: str) -> tuple[float, float, float, float] | None:
    """SAM 3's exemplar box on `image`: a drag on the image draws it (a click does nothing), a new drag replaces it,
    Clear removes it. Returns the box (XYXY image pixels) drawn on this image, or None."""
    digest = image_hash(image)
    slot, gestures = exemplar(key), exemplar_gestures(key)

    def received(prompt: Prompt) -> None:
        gestures.set(gestures.get(0) + 1)
        if prompt.kind == "box":
            slot.set((digest, prompt.xy))

    kept = slot.get()
    box = kept[1] if kept and kept[0] == digest else None
    st.markdown("**Exemplar box for SAM 3**")
    st.caption(
        "Drag on the image to draw a box around one example: SAM 3 then finds every instance of that concept, with "
        "the phrase or on its own (the other routes use the phrase alone)."
    )
    frame = CanvasFrame.fit(image.shape[:2], max_width=480, max_height=420, min_width=320)
    shown = resize_map(image, (frame.height, frame.width)).round().clip(0, 255).astype(np.uint8)
    drawn = [Prompt("box", box)] if box else []
    prompt_canvas(
        data_url(to_jpeg(shown)),
        frame,
        drawn,
        negative=False,
        seq=gestures.get(0),
        key=f"{key}_exemplar_{digest[:12]}",
        on_prompt=received,
    )
    st.button("Clear the box", key=f"{key}_exemplar_clear", on_click=slot.pop, disabled=box is None)
    return box


def _refs(family: str) -> list[str]:
    return [f"{s.name}@{w}" for s in offered_models(family) for w in s.weight_options]


def _pick_model(fam: str, label: str, key: str, where=st) -> str:
    """A ``name@weights`` of the family `fam`, its default first chosen."""
    options = _refs(fam)
    first = str(registry.parse(default_model(fam)))
    index = options.index(first) if first in options else 0
    return where.selectbox(label, options, index=index, format_func=model_label, key=key)


def route_models(routes: Sequence[str], key: str) -> dict[str, dict[str, str]]:
    """Each route's models: the sidebar's segmenter and image–text model, plus its own (a detector), picked here."""
    shared = {"segment": selected_model(SEGMENT), "text": selected_model(TEXT)}
    own = {(role, fam) for r in routes for role, fam in ROUTE_FAMILIES.get(r, {}).items() if fam in family_names()}
    picked: dict[str, str] = {}
    if own:
        columns = st.columns(len(own))
        for column, (role, fam) in zip(columns, sorted(own), strict=True):
            picked[fam] = _pick_model(fam, f"{family(fam).title} model ({role})", f"{key}_{fam}", column)
    return {
        r: shared | {role: picked[fam] for role, fam in ROUTE_FAMILIES.get(r, {}).items() if fam in picked}
        for r in routes
    }


def run_routes(
    image: np.ndarray, phrase: str, routes: Sequence[str], models: dict[str, dict[str, str]], options: RouteOptions
) -> dict[str, Instances | str]:
    """Each route's instances on the image, or the one sentence that says why it could not run."""
    out: dict[str, Instances | str] = {}
    for name in routes:
        route = ROUTES[name]
        if why := missing_models(route, models[name]):
            out[name] = why
            continue
        step = st.empty()
        try:
            with st.spinner(f"{route.title}…", show_time=True):
                out[name] = route.run(get_engine(), image, phrase, models[name], options, step.caption)
        except (ValueError, OSError, KeyError, MemoryError) as exc:
            out[name] = f"{route.title} could not run: {exc}"
        finally:
            step.empty()
    return out


def show_panels(image: np.ndarray, results: dict[str, Instances | str], name: str, key: str) -> None:
    """One panel per route, two per row: the image with masks and labelled boxes, instances and seconds, a PNG."""
    stem = PurePath(name).stem
    names = list(results)
    for row in range(0, len(names), 2):
        for column, route in zip(st.columns(2), names[row : row + 2], strict=False):
            with column:
                found = results[route]
                st.markdown(f"**{ROUTES[route].title}**")
                if isinstance(found, str):
                    st.info(found)
                    continue
                picture = draw_instances(image, found)
                st.image(picture, width="stretch")
                st.caption(
                    f"{count(len(found), 'instance')} · {found.seconds:.2f} s"
                    + (f" · {found.note}" if found.note else "")
                )
                download_png(picture, f"{stem}_{route}.png", f"{key}_{route}_png", "PNG")
                for label, similarity, points in zip(found.labels, found.heat, found.peaks, strict=False):
                    heat = mark_points(overlay_similarity(image, similarity, 0.6), points)
                    st.image(heat, width="stretch")
                    st.caption(
                        f"Patch–text cosine for “{label}”, {similarity.min():.3f} to {similarity.max():.3f} "
                        "(the peaks SAM was given in red)."
                    )


def show_exports(image: np.ndarray, results: dict[str, Instances | str], phrase: str, name: str, key: str) -> None:
    """CSV of every route's instances, PNG of the grid, COCO JSON of one route's masks (the phrase as category)."""
    done = {route: found for route, found in results.items() if isinstance(found, Instances)}
    if not done:
        return
    stem = PurePath(name).stem
    rows = [row for route, found in done.items() for row in instance_rows(route, found)]
    left, middle, right = st.columns(3)
    columns = ["route", "label", "score", "x0", "y0", "x1", "y1", "area"]
    download_csv(pd.DataFrame(rows, columns=columns), f"{stem}_instances.csv", f"{key}_csv", "Instances (CSV)", left)
    panels = [(ROUTES[route].title, draw_instances(image, found)) for route, found in done.items()]
    download_png(lambda: _png(grid_picture(panels)), f"{stem}_routes.png", f"{key}_grid", "Grid (PNG)", middle)
    chosen = right.selectbox("COCO JSON of", list(done), format_func=lambda r: ROUTES[r].title, key=f"{key}_coco")
    coco = lambda: coco_dataset([(name, done[chosen])], [image.shape[:2]], phrase)  # noqa: E731 - built on click
    download_json(coco, f"{stem}_{chosen}_coco.json", f"{key}_coco_json", "Masks (COCO JSON)", right)


def _png(picture: np.ndarray) -> bytes:
    from core.analysis.imaging import to_png

    return to_png(picture)


def show_set_mode(
    images: list[np.ndarray],
    names: list[str],
    phrase: str,
    routes: Sequence[str],
    models: dict[str, dict[str, str]],
    options: RouteOptions,
    key: str,
) -> None:
    """Instance segmentation of the working set: one route on every image, with a progress bar, to one COCO JSON."""
    runnable = [r for r in routes if not missing_models(ROUTES[r], models[r])]
    if not runnable:
        st.info("Choose a route whose models can run (above) to segment the whole set.")
        return
    route = st.selectbox("Route", runnable, format_func=lambda r: ROUTES[r].title, key=f"{key}_route")
    signature = (phrase, route, tuple(sorted(models[route].items())), astuple(options), tuple(names))
    slot = set_result(key)
    if st.button(f"Segment {count(len(images), 'image')}", key=f"{key}_go", type="primary"):
        update, close = progress_bar(f"{ROUTES[route].title} on the working set")
        with user_errors("Segmenting the working set"):
            try:
                found = segment_set(get_engine(), images, ROUTES[route], phrase, models[route], options, update)
                slot.set((signature, list(names), [im.shape[:2] for im in images], found))
            finally:
                close()
    kept = slot.get()
    if kept is None:
        st.info(f"Press Segment to run {ROUTES[route].title} on every image; the engine caches what it computes.")
        return
    if kept[0] != signature:
        st.caption("These results are from earlier settings; press Segment to run the current ones.")
    _, kept_names, sizes, found = kept
    table = pd.DataFrame(
        {"image": kept_names, "instances": [len(f) for f in found], "seconds": [round(f.seconds, 3) for f in found]}
    )
    st.dataframe(table, hide_index=True)
    total = sum(len(f) for f in found)
    st.caption(f"{count(total, 'instance')} in {count(len(found), 'image')}, {sum(f.seconds for f in found):.1f} s.")
    coco = lambda: coco_dataset(list(zip(kept_names, found, strict=True)), sizes, kept[0][0])  # noqa: E731
    download_json(coco, "working_set_coco.json", f"{key}_set_json", "Working set (COCO JSON)")


# ---- Ask PaliGemma 2 ------------------------------------------------------------------------------
def show_ask_vlm(image: np.ndarray, phrase: str, options: RouteOptions, key: str) -> None:
    """PaliGemma 2's answer about `image`: a caption, or "detect"/"segment" the phrase (its boxes drawn, optionally
    given to the sidebar's SAM). A progress bar per token; the measured seconds shown with the answer."""
    model = _pick_model("paligemma", "PaliGemma 2 model", f"{key}_model")
    random_note([model], "A random PaliGemma answers noise: the page shows what it parses from it, not a reading.")
    task = st.segmented_control(
        "Ask", list(TASKS), format_func=TASKS.get, default="caption", required=True, key=f"{key}_task"
    )
    try:
        prompt, budget = vlm_prompt(task, phrase)
    except ValueError as exc:
        st.info(f"{exc} (“{TASKS[task]}” asks about the phrase above.)")
        return
    digest = image_hash(image)
    slot = vlm_answer(key)
    if st.button(f"Ask “{prompt}”", key=f"{key}_go", type="primary"):
        _ask(image, digest, prompt, model, budget, slot)
    kept = slot.get()
    if kept is None or kept[:3] != (model, digest, prompt):
        st.info(f"Press Ask: PaliGemma 2 writes at most {budget} tokens, one at a time (slow on a CPU).")
        return
    answer, computed = kept[3], kept[4]
    st.code(answer.text or "(an empty answer)", language=None, wrap_lines=True)
    per_token = answer.seconds / max(len(answer.tokens), 1)
    st.caption(
        f"{count(len(answer.tokens), 'token')} in {answer.seconds:.2f} s ({per_token:.3f} s per token)"
        + ("" if computed else ", measured when it was first asked (the engine kept the answer)")
        + "."
    )
    if task != "caption":
        _show_boxes(image, answer, phrase, model, options, task, key)


def _ask(image: np.ndarray, digest: str, prompt: str, model: str, budget: int, slot) -> None:
    update, close = progress_bar(f"PaliGemma 2 answering “{prompt}”, token by token")
    computed = []

    def step(done: int, total: int) -> None:
        computed.append(done)
        update(done, total)

    with user_errors("Asking PaliGemma 2"):
        try:
            answer = get_engine().generate(image, prompt, model, budget, step)
            slot.set((model, digest, prompt, answer, bool(computed)))
        finally:
            close()


def _show_boxes(
    image: np.ndarray, answer: Answer, phrase: str, model: str, options: RouteOptions, task: str, key: str
) -> None:
    """The boxes of a "detect"/"segment" answer drawn on the image; on request, SAM's mask for each box."""
    found = parse_detections(answer.text, image.shape[:2])
    if task == "segment":
        st.caption(SEG_TOKENS_NOTE)
    if not len(found.boxes):
        st.info(found.note)
        return
    st.image(draw_boxes(image, found.boxes, [label or "?" for label in found.labels]), width="stretch")
    st.caption(f"{count(len(found.boxes), 'box', 'boxes')} parsed from the answer's <loc> tokens.")
    if not st.toggle("Give the boxes to SAM", key=f"{key}_sam"):
        return
    models = {"vlm": model, "segment": selected_model(SEGMENT)}
    step, masks = st.empty(), None
    with user_errors("Prompting SAM with PaliGemma's boxes"), st.spinner("SAM: one mask per box…", show_time=True):
        masks = paligemma_route(get_engine(), image, phrase, models, options, step.caption, task=task)
    step.empty()
    if masks is not None:
        st.image(draw_instances(image, masks), width="stretch")
        st.caption(f"{count(len(masks), 'mask')} from {model_label(models['segment'])} (scores: SAM's predicted IoU).")
