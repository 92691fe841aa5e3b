"""Words to masks: routes from one phrase on one image to instance masks, compared side by side (issue #18).

A route asks the engine (`core/engine.py`) for everything it computes, so results are cached by image hash and
the weights actually loaded, under the engine's locks. Routes never import streamlit. `models` maps a role
("segment", "detector", "concept", "text", "vlm") to a ``name@weights`` model reference.

Conventions: images HWC uint8 RGB; masks (K, H, W) bool at the image's size; boxes (K, 4) float32 XYXY pixels.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
from PIL import Image, ImageDraw

from core.analysis.imaging import palette
from core.analysis.masks import mask_bbox, overlay_masks
from core.analysis.retrieval import class_embeddings, expand_prompts, patch_text_similarity, peak_points
from core.models import Can, can
from core.models.detection import clip_boxes, split_phrases
from core.models.sam import SamPrompt
from core.registry import display_name, parse
from core.text import count

StepNote = Callable[[str], None]  # progress("Detecting boxes with Grounding DINO…"): names the step starting now


@dataclass(frozen=True)
class Instances:
    """What one route found for one phrase on one image."""

    masks: np.ndarray  # (K, H, W) bool at the image's size
    boxes: np.ndarray  # (K, 4) float32 XYXY pixels (a mask's bounding box when the route has no box)
    scores: np.ndarray  # (K,) float32, the route's own confidence
    labels: list[str]  # (K,) the phrase (or sub-phrase) each instance answers
    seconds: float  # wall time of the route on this image, model loading excluded
    note: str = ""  # one sentence the page shows under the route (e.g. "segment tokens not decodable")
    # CLIP routes: per phrase, the (h, w) patch–text cosine map and the (n, 2) peak points (X, Y) given to SAM
    heat: tuple[np.ndarray, ...] = ()
    peaks: tuple[np.ndarray, ...] = ()

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class RouteOptions:
    box_threshold: float = 0.35  # Grounding DINO: a box's best token logit (sigmoid) must exceed this
    text_threshold: float = 0.25  # Grounding DINO: tokens above this make the box's label
    score_threshold: float = 0.5  # SAM 3 / OWLv2: an instance's score must exceed this
    n_points: int = 1  # CLIP routes: the most similar patches given to SAM as positive points
    max_instances: int = 20  # best-scoring instances kept per route
    exemplar_box: tuple[float, float, float, float] | None = None  # SAM 3: a box (XYXY pixels) around one example


@dataclass(frozen=True)
class Route:
    name: str  # "grounded_sam", "owlv2_sam", "sam3", "maskclip_sam", "clip_final_sam", "paligemma"
    title: str  # shown on the page
    needs: tuple[Can, ...]  # capabilities of the models it uses (core.models.Can)
    # run(engine, image, phrase, models: dict[str, str], options: RouteOptions, progress: StepNote | None)
    run: Callable[..., Instances]


ROUTES: dict[str, Route] = {}


# ---- the routes -------------------------------------------------------------------------------
def _note(progress: StepNote | None, text: str) -> None:
    if progress is not None:
        progress(text)


def _title(model: str) -> str:
    return parse(model).spec.title


def _load(engine, *models: str) -> float:
    """Load the models first (their loading is not the route's time); the start of the route's clock."""
    for model in models:
        engine.model(model)
    return time.perf_counter()


def _empty(size: tuple[int, int], seconds: float, note: str) -> Instances:
    return Instances(
        np.zeros((0, *size), bool), np.zeros((0, 4), np.float32), np.zeros(0, np.float32), [], seconds, note
    )


def boxes_to_masks(
    engine, image: np.ndarray, boxes: np.ndarray, segmenter: str, progress: StepNote | None = None
) -> np.ndarray:
    """(K, H, W) bool: one mask per (K, 4) XYXY pixel box, each box one prompt on the image's embedding (computed
    once, cached by the engine)."""
    _note(progress, f"Embedding the image with {_title(segmenter)} (once per image; slow on a CPU)…")
    embedding = engine.sam_embedding(image, segmenter)
    masks = []
    for i, box in enumerate(boxes, 1):
        _note(progress, f"Prompting {_title(segmenter)} with box {i} of {len(boxes)}…")
        masks.append(engine.sam_predict(embedding, segmenter, SamPrompt(box=box)).masks[0])
    return np.array(masks, bool).reshape(-1, *image.shape[:2])


def run_detector_sam(
    engine,
    image: np.ndarray,
    phrase: str,
    models: dict[str, str],
    options: RouteOptions,
    progress: StepNote | None = None,
    threshold: str = "box_threshold",
) -> Instances:
    """A detector's boxes for the phrase (`models["detector"]`), each box one prompt to the segmenter
    (`models["segment"]`); `threshold` names the option that gates the boxes."""
    detector, segmenter = models["detector"], models["segment"]
    start = _load(engine, detector, segmenter)
    _note(progress, f"Detecting “{phrase}” with {_title(detector)}…")
    cut = getattr(options, threshold)
    found = engine.detect(image, phrase, detector, cut, options.text_threshold)
    order = np.argsort(-found.scores, kind="stable")[: options.max_instances]
    if not len(order):
        note = f"No instance above the threshold {cut:.2f}; the best score was {found.best_score:.2f}."
        return _empty(image.shape[:2], time.perf_counter() - start, note)
    boxes = clip_boxes(found.boxes[order], image.shape[:2])
    masks = boxes_to_masks(engine, image, boxes, segmenter, progress)
    labels = [found.labels[i] or phrase for i in order]
    note = f"{len(found)} boxes above {cut:.2f}; the best {len(order)} kept. " if len(found) > len(order) else ""
    source = getattr(engine.model(detector).adapter, "tokenizer_source", "")
    if "stand-in" in source:
        note += f"The phrase was read with {source}."
    return Instances(masks, boxes, found.scores[order], labels, time.perf_counter() - start, note.strip())


def run_clip_sam(
    engine,
    image: np.ndarray,
    phrase: str,
    models: dict[str, str],
    options: RouteOptions,
    progress: StepNote | None = None,
    kind: str = "maskclip",
) -> Instances:
    """Per phrase: CLIP patch–text cosine (`kind` "maskclip" or "final", see `CLIPAdapter.patch_embeddings`), its
    `n_points` peaks as positive points to the segmenter, the mask SAM scores best. Score: the peak cosine."""
    clip, segmenter = models["text"], models["segment"]
    phrases = split_phrases(phrase)
    start = _load(engine, clip, segmenter)
    _note(progress, f"Scoring patches with {_title(clip)} against “{phrase}”…")
    texts = class_embeddings(engine.embed_text(expand_prompts(phrases), clip), len(phrases))
    patches = engine.clip_patch_embeddings(image, clip, route=kind)
    _note(progress, f"Embedding the image with {_title(segmenter)} (once per image; slow on a CPU)…")
    embedding = engine.sam_embedding(image, segmenter)
    masks, scores, heat, peaks = [], [], [], []
    for text in texts:
        similarity = patch_text_similarity(patches, text)
        points = peak_points(similarity, image.shape[:2], options.n_points)
        heat.append(similarity)
        peaks.append(points)
        _note(progress, f"Prompting {_title(segmenter)} with {count(len(points), 'point')}…")
        prediction = engine.sam_predict(embedding, segmenter, SamPrompt(points, np.ones(len(points), int)))
        masks.append(prediction.masks[int(prediction.scores.argmax())])
        scores.append(float(similarity.max()))
    boxes = np.array([_xyxy(mask_bbox(m)) for m in masks], np.float32).reshape(-1, 4)
    grid = "×".join(map(str, patches.shape[:2]))
    note = f"One mask per phrase from the {grid} patch grid's {count(options.n_points, 'peak')}: no threshold."
    seconds = time.perf_counter() - start
    found = np.array(masks, bool)
    return Instances(found, boxes, np.array(scores, np.float32), phrases, seconds, note, tuple(heat), tuple(peaks))


def _xyxy(xywh: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    x, y, w, h = xywh
    return x, y, x + w, y + h


ROUTES.update(
    {
        "grounded_sam": Route(
            "grounded_sam", "Grounded-SAM: Grounding DINO boxes → SAM", (Can.DETECT, Can.PROMPTS), run_detector_sam
        ),
        "owlv2_sam": Route(
            "owlv2_sam",
            "OWLv2 boxes → SAM",
            (Can.DETECT, Can.PROMPTS),
            partial(run_detector_sam, threshold="score_threshold"),
        ),
        "maskclip_sam": Route(
            "maskclip_sam",
            "MaskCLIP peaks → SAM points",
            (Can.DENSE_TEXT, Can.PROMPTS),
            partial(run_clip_sam, kind="maskclip"),
        ),
        "clip_final_sam": Route(
            "clip_final_sam",
            "Raw CLIP final-layer peaks → SAM points",
            (Can.DENSE_TEXT, Can.PROMPTS),
            partial(run_clip_sam, kind="final"),
        ),
    }
)
# the model family a route's own role takes, beyond the sidebar's "segment" and "text" models: role → family
ROUTE_FAMILIES: dict[str, dict[str, str]] = {
    "grounded_sam": {"detector": "grounding_dino"},
    "owlv2_sam": {"detector": "owlv2"},
    "sam3": {"concept": "sam3"},
    "paligemma_sam": {"vlm": "paligemma"},
}
DEFAULT_ROUTES = ("grounded_sam", "maskclip_sam")


def _concept_routes() -> None:
    """SAM 3 and PaliGemma 2 → SAM (`core/concept_routes.py`) join the routes, after the ones defined here."""
    from core.concept_routes import ROUTES_EXTRA

    ROUTES.update(ROUTES_EXTRA)


_concept_routes()


def missing_models(route: Route, models: dict[str, str]) -> str:
    """ "" when `models` hold a model for each capability the route needs; otherwise one sentence saying what's
    missing (the page shows it instead of running the route)."""
    for need in route.needs:
        if not any(_can(model, need) for model in models.values()):
            chosen = ", ".join(_display(model) for model in dict.fromkeys(models.values()))
            return f"{route.title} needs {need}, which none of the chosen models ({chosen}) gives."
    return ""


def _display(model: str) -> str:
    try:
        return display_name(model)
    except (KeyError, ValueError):
        return model


def _can(model: str, need: Can) -> bool:
    try:
        return can(parse(model).spec, need)
    except KeyError:  # a family this installation does not have
        return False


# ---- results: table, picture, COCO ------------------------------------------------------------
def instance_rows(route: str, instances: Instances) -> list[dict]:
    """One row per instance: route, label, score, box (XYXY pixels), mask area (pixels)."""
    return [
        {
            "route": route,
            "label": label,
            "score": float(score),
            "x0": float(box[0]),
            "y0": float(box[1]),
            "x1": float(box[2]),
            "y1": float(box[3]),
            "area": int(mask.sum()),
        }
        for label, score, box, mask in zip(
            instances.labels, instances.scores, instances.boxes, instances.masks, strict=True
        )
    ]


def draw_instances(image: np.ndarray, instances: Instances, alpha: float = 0.45) -> np.ndarray:
    """HWC uint8: the image with each mask filled in its colour, its box outlined and labelled "label score"."""
    colors = palette(len(instances))
    out = overlay_masks(image, list(instances.masks), colors, alpha, contour=1)
    texts = [f"{label[:40]} {score:.2f}" for label, score in zip(instances.labels, instances.scores, strict=True)]
    return draw_boxes(out, instances.boxes, texts, colors)


def draw_boxes(image: np.ndarray, boxes: np.ndarray, texts: list[str], colors: np.ndarray | None = None) -> np.ndarray:
    """HWC uint8: the image with each (K, 4) XYXY pixel box outlined in its colour (`palette(K)` by default) and
    its text written above it on that colour."""
    colors = palette(len(boxes)) if colors is None else colors
    picture = Image.fromarray(image)
    draw = ImageDraw.Draw(picture)
    width = max(1, round(max(image.shape[:2]) / 300))
    for color, box, text in zip(colors, boxes, texts, strict=True):
        fill = tuple(int(c) for c in color)
        draw.rectangle([float(v) for v in box], outline=fill, width=width)
        x, y = float(box[0]), max(0.0, float(box[1]) - 12)
        draw.rectangle(draw.textbbox((x, y), text), fill=fill)
        draw.text((x, y), text, fill=(255, 255, 255))
    return np.asarray(picture)


def grid_picture(panels: list[tuple[str, np.ndarray]], strip: int = 18) -> np.ndarray:
    """HWC uint8: the (title, picture) panels side by side at the height of the tallest, each titled above."""
    height = max(p.shape[0] for _, p in panels)
    tiles = []
    for title, picture in panels:
        width = round(picture.shape[1] * height / picture.shape[0])
        tile = Image.new("RGB", (width + 4, height + strip), (255, 255, 255))
        tile.paste(Image.fromarray(picture).resize((width, height)), (2, strip))
        ImageDraw.Draw(tile).text((4, 3), title, fill=(0, 0, 0))
        tiles.append(np.asarray(tile))
    return np.concatenate(tiles, axis=1)


def coco_dataset(images: list[tuple[str, Instances]], sizes: list[tuple[int, int]], phrase: str) -> dict:
    """A COCO instance-segmentation dict: one image entry per (file name, Instances) with its (H, W), one category
    (the phrase), masks as compressed RLE (pycocotools), bbox XYWH from the instance's box, its score and label."""
    from pycocotools import mask as coco_mask

    annotations = []
    for image_id, ((_, found), _size) in enumerate(zip(images, sizes, strict=True), 1):
        for mask, box, score, label in zip(found.masks, found.boxes, found.scores, found.labels, strict=True):
            rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
            x0, y0, x1, y1 = (float(v) for v in box)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": 1,
                    "segmentation": {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")},
                    "area": int(coco_mask.area(rle)),
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "iscrowd": 0,
                    "score": float(score),
                    "label": label,
                }
            )
    return {
        "images": [
            {"id": i, "file_name": name, "height": int(h), "width": int(w)}
            for i, ((name, _), (h, w)) in enumerate(zip(images, sizes, strict=True), 1)
        ],
        "annotations": annotations,
        "categories": [{"id": 1, "name": phrase.strip(), "supercategory": "phrase"}],
    }


def segment_set(
    engine,
    images: list[np.ndarray],
    route: Route,
    phrase: str,
    models: dict[str, str],
    options: RouteOptions,
    progress: Callable[[int, int], None] | None = None,
) -> list[Instances]:
    """Instance segmentation of a whole set: the route on every image (the engine's caches make a rerun cheap);
    `progress(done, total)` after each image."""
    split_phrases(phrase)  # a bad phrase fails before the first image
    found = []
    for i, image in enumerate(images):
        found.append(route.run(engine, image, phrase, models, options, None))
        if progress is not None:
            progress(i + 1, len(images))
    return found
