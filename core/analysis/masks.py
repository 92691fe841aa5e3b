"""Masks: SAM prompts, overlays and cut-outs, COCO run-length encoding, SAM's automatic mask generator.

Masks are (H, W) bool arrays at the original image size. Points are (X, Y) in image pixels, boxes XYXY.
COCO RLE follows pycocotools: runs over the mask in column-major (Fortran) order, starting with a run
of zeros (possibly empty); "compressed" RLE writes those counts as the LEB128-like ASCII string of
pycocotools' `rleToString`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import torch
from segment_anything import SamAutomaticMaskGenerator, SamPredictor
from segment_anything.modeling import Sam
from segment_anything.utils.amg import generate_crop_boxes

from core.analysis.imaging import blend
from core.models.sam import SamEmbedding


# ---- prompts ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Prompt:
    """One click: a point (X, Y) with a label (positive / negative), or a box (X0, Y0, X1, Y1), in pixels."""

    kind: Literal["point", "box"]
    xy: tuple[float, ...]
    positive: bool = True


@dataclass(frozen=True)
class PromptArrays:
    """Prompts as `Engine.sam_predict` takes them: points (N, 2) float32, labels (N,) int, box (4,) float32."""

    points: np.ndarray | None
    labels: np.ndarray | None
    box: np.ndarray | None


def prompt_arrays(prompts: Sequence[Prompt]) -> PromptArrays:
    """All points in order, and the last box (SAM takes one box per prediction)."""
    points = [p for p in prompts if p.kind == "point"]
    boxes = [p for p in prompts if p.kind == "box"]
    return PromptArrays(
        np.array([p.xy for p in points], np.float32) if points else None,
        np.array([int(p.positive) for p in points], np.int64) if points else None,
        np.array(boxes[-1].xy, np.float32) if boxes else None,
    )


# ---- drawing ----------------------------------------------------------------------------------
def mask_contour(mask: np.ndarray, width: int = 1) -> np.ndarray:
    """(H, W) bool → the mask's pixels within `width` pixels of its edge (4-neighbourhood erosion)."""
    inner = mask.copy()
    for _ in range(width):
        shrunk = inner.copy()
        shrunk[1:] &= inner[:-1]
        shrunk[:-1] &= inner[1:]
        shrunk[:, 1:] &= inner[:, :-1]
        shrunk[:, :-1] &= inner[:, 1:]
        inner = shrunk
    return mask & ~inner


def overlay_masks(
    image: np.ndarray,
    masks: Sequence[np.ndarray],
    colors: np.ndarray,
    alpha: float = 0.5,
    contour: int = 0,
) -> np.ndarray:
    """HWC uint8 image with each (H, W) bool mask filled in its (3,) uint8 colour at opacity `alpha`,
    later masks on top; `contour` > 0 draws each edge opaque, that many pixels wide."""
    out = image
    for mask, color in zip(masks, colors, strict=True):
        fill = np.asarray(color, np.uint8)  # (3,): broadcast in the blend, never materialised at image size
        out = blend(out, fill, alpha, where=mask)
        if contour:
            out = np.where(mask_contour(mask, contour)[..., None], fill, out)  # opaque: the colour itself
    return out


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(X, Y, W, H) of the smallest box holding the mask, in pixels (COCO's bbox); zeros when empty."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not rows.size:
        return 0, 0, 0, 0
    return int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)


def cutout(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """HWC uint8 RGB + (H, W) bool → RGBA uint8 cropped to the mask's box, transparent outside the mask."""
    x, y, w, h = mask_bbox(mask)
    if not w:
        return np.zeros((1, 1, 4), np.uint8)
    rgba = np.dstack([image, np.where(mask, 255, 0).astype(np.uint8)])
    return rgba[y : y + h, x : x + w]


# ---- COCO run-length encoding -----------------------------------------------------------------
def encode_rle(mask: np.ndarray) -> dict:
    """(H, W) bool → uncompressed COCO RLE {"size": [H, W], "counts": [int, ...]} (column-major runs)."""
    flat = np.asarray(mask, bool).ravel(order="F")
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts = np.diff(np.concatenate([[0], edges, [flat.size]]))
    if flat.size and flat[0]:
        counts = np.concatenate([[0], counts])
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": [int(c) for c in counts]}


def compress_rle(rle: dict) -> dict:
    """Uncompressed RLE → compressed RLE (counts as pycocotools' ASCII string)."""
    counts, chars = rle["counts"], []
    for i, count in enumerate(counts):
        x = int(count) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            chars.append(chr((c | 0x20 if more else c) + 48))
    return {"size": list(rle["size"]), "counts": "".join(chars)}


def _string_counts(text: str) -> list[int]:
    counts, p = [], 0
    while p < len(text):
        x, k, more = 0, 0, True
        while more:
            c = ord(text[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more, p, k = bool(c & 0x20), p + 1, k + 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        counts.append(x + (counts[-2] if len(counts) > 2 else 0))
    return counts


def decode_rle(rle: dict) -> np.ndarray:
    """Compressed or uncompressed COCO RLE → (H, W) bool."""
    h, w = rle["size"]
    counts = rle["counts"]
    if isinstance(counts, bytes):  # pycocotools keeps compressed counts as bytes
        counts = counts.decode()
    counts = _string_counts(counts) if isinstance(counts, str) else [int(c) for c in counts]
    if sum(counts) != h * w:
        raise ValueError(f"RLE counts sum to {sum(counts)}, not {h}×{w} = {h * w}")
    values = np.arange(len(counts)) % 2 == 1
    return np.repeat(values, counts).reshape((h, w), order="F")


def coco_annotations(
    masks: Sequence[np.ndarray], names: Sequence[str], file_name: str, scores: Sequence[float] | None = None
) -> dict:
    """A COCO dataset dict for one image: one category per distinct name, masks as compressed RLE."""
    h, w = masks[0].shape if masks else (0, 0)
    categories = list(dict.fromkeys(names))
    annotations = []
    for i, (mask, name) in enumerate(zip(masks, names, strict=True)):
        ann = {
            "id": i + 1,
            "image_id": 1,
            "category_id": categories.index(name) + 1,
            "segmentation": compress_rle(encode_rle(mask)),
            "area": int(mask.sum()),
            "bbox": list(mask_bbox(mask)),
            "iscrowd": 0,
        }
        if scores is not None:
            ann["score"] = float(scores[i])
        annotations.append(ann)
    return {
        "images": [{"id": 1, "file_name": file_name, "height": int(h), "width": int(w)}],
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": n} for i, n in enumerate(categories)],
    }


# ---- automatic masks --------------------------------------------------------------------------
@dataclass(frozen=True)
class AutoMaskParams:
    """SamAutomaticMaskGenerator's grid density, quality thresholds and batch size (its defaults)."""

    points_per_side: int = 32
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    box_nms_thresh: float = 0.7
    points_per_batch: int = 64  # point prompts decoded at once: changes memory and progress steps, not the masks

    @property
    def points(self) -> int:
        """Point prompts on the (single-crop) grid."""
        return self.points_per_side**2


PREVIEW_SIDE = 8  # a quick look first: an 8 × 8 grid is 64 prompts, 1/16 of SAM's default 32 × 32


def auto_mask_defaults(random_weights: bool, points_per_side: int = 32) -> AutoMaskParams:
    """SAM's default thresholds; with random weights both quality thresholds at 0 (SAM's defaults let no random
    mask through: its predicted IoU and stability are meaningless then)."""
    params = AutoMaskParams(points_per_side)
    return replace(params, pred_iou_thresh=0.0, stability_score_thresh=0.0) if random_weights else params


@dataclass(frozen=True)
class AutoMasks:
    """SAM's automatic masks, largest first: masks (K, H, W) bool, areas (K,) pixels, scores (K,) predicted IoU,
    stability (K,) stability scores."""

    masks: np.ndarray
    areas: np.ndarray
    scores: np.ndarray
    stability: np.ndarray


class _CachedPredictor(SamPredictor):
    """A SamPredictor that takes an already computed embedding for the whole image instead of re-encoding it."""

    def __init__(self, module: Sam, embedding: SamEmbedding | None):
        super().__init__(module)
        self.embedding = embedding

    def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
        emb = self.embedding
        if emb is None or tuple(image.shape[:2]) != tuple(emb.original_size):
            return super().set_image(image, image_format)
        self.reset_image()
        self.features = torch.from_numpy(emb.features)[None].to(self.device)
        self.original_size, self.input_size = emb.original_size, emb.input_size
        self.is_image_set = True


class ProgressMaskGenerator(SamAutomaticMaskGenerator):
    """SamAutomaticMaskGenerator that reports (done, total) point batches over all crops as it decodes them.

    Only counts: every batch goes through the upstream `_process_batch`, so the masks are the plain generator's.
    """

    def __init__(self, module: Sam, progress: Callable[[int, int], None] | None = None, **kwargs):
        super().__init__(module, **kwargs)
        self.progress = progress
        self.done = self.total = 0

    def batches(self, size: tuple[int, int]) -> int:
        """Point batches the generator decodes for an image of (H, W) pixels, over every crop layer."""
        _, layers = generate_crop_boxes(size, self.crop_n_layers, self.crop_overlap_ratio)
        return sum(math.ceil(len(self.point_grids[layer]) / self.points_per_batch) for layer in layers)

    def _generate_masks(self, image: np.ndarray):
        self.done, self.total = 0, self.batches(image.shape[:2])
        self._report()
        return super()._generate_masks(image)

    def _process_batch(self, *args, **kwargs):
        out = super()._process_batch(*args, **kwargs)
        self.done += 1
        self._report()
        return out

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(self.done, self.total)


def compute_auto_masks(
    module: Sam,
    image: np.ndarray,
    params: AutoMaskParams | None = None,
    embedding: SamEmbedding | None = None,
    guard: AbstractContextManager | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> AutoMasks:
    """Run segment_anything's SamAutomaticMaskGenerator on an HWC uint8 RGB image.

    `embedding` (of this image, from `Engine.sam_embedding`) skips the heavy encoder; `guard` is held around
    the model calls (pass the engine's per-model lock); `progress(done, total)` is called with 0 and after each
    batch of point prompts. Runs in fp32 with autocast off: the generator converts its tensors to numpy, which
    bf16 cannot do.
    """
    params = params or AutoMaskParams()
    generator = ProgressMaskGenerator(
        module,
        progress,
        points_per_side=params.points_per_side,
        points_per_batch=params.points_per_batch,
        pred_iou_thresh=params.pred_iou_thresh,
        stability_score_thresh=params.stability_score_thresh,
        box_nms_thresh=params.box_nms_thresh,
    )
    generator.predictor = _CachedPredictor(module, embedding)
    device = next(module.parameters()).device.type
    with guard or nullcontext(), torch.inference_mode(), torch.autocast(device, enabled=False):
        records = sorted(generator.generate(image), key=lambda r: -r["area"])
    h, w = image.shape[:2]
    return AutoMasks(
        np.array([r["segmentation"] for r in records], bool).reshape(-1, h, w),
        np.array([r["area"] for r in records], np.int64),
        np.array([r["predicted_iou"] for r in records], np.float32),
        np.array([r["stability_score"] for r in records], np.float32),
    )
