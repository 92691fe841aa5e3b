"""The SAM paper's simulated-click protocol (Kirillov et al. 2023, §7.1 and appendix D.1; RITM's NoC metric).

Per ground-truth object (an (H, W) bool mask):
1. The first click is positive, at the interior point farthest from the object's boundary: the argmax of the
   Euclidean distance transform of the mask padded with a ring of zeros (so the image border counts as boundary).
2. Each next click goes into the largest error region (the largest 4-connected component of missed foreground
   `gt & ~pred` or of false foreground `pred & ~gt`; a tie goes to missed foreground), at the point of that region
   farthest from its boundary (same padded distance transform); positive for missed foreground, negative for false
   foreground. Every click so far is sent, with the previous prediction's low-resolution logits as `mask_input`.
3. Up to `n_clicks` clicks; a prediction equal to the object ends the loop early and its IoU (1.0) stands for the
   remaining clicks.

The first click gives SAM's three candidates: the loop goes on with the top-score one (what a user sees without
ground truth); the "oracle" IoU of the first click is the best of the three against the ground truth.

Metrics: mIoU@k is the mean over objects of the IoU after k clicks. NoC@t is the number of clicks an object needs to
reach IoU ≥ t; an object that never reaches it counts as `n_clicks` (RITM's convention; the number of such objects
is reported beside it, as "failures").

Clicks are (X, Y) = (column, row) pixel indices, as SAM takes points (its prompt encoder adds the half pixel).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

Cancel = Callable[[], bool]  # returns True to stop
Progress = Callable[[int, int], None]  # (done, total)
# (points (N, 2) XY, labels (N,) 1/0, mask_input (1, h, w) or None) → an object with masks, scores, logits
Decoder = Callable[[np.ndarray, np.ndarray, np.ndarray | None], Any]


@dataclass(frozen=True)
class Click:
    """One simulated click: (x, y) = (column, row) in image pixels; positive (missed foreground) or negative."""

    x: int
    y: int
    positive: bool


def _deepest(region: np.ndarray) -> tuple[int, int]:
    """(row, col) of the pixel of `region` farthest from its boundary (the image border counts as boundary).
    Ties go to the first such pixel in row-major order."""
    distance = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    row, col = np.unravel_index(int(np.argmax(distance)), distance.shape)
    return int(row), int(col)


def first_click(gt: np.ndarray) -> Click:
    """The first click on an object: positive, at its interior point farthest from its boundary."""
    if not gt.any():
        raise ValueError("the object's mask is empty")
    row, col = _deepest(gt)
    return Click(col, row, True)


def _largest_component(region: np.ndarray) -> tuple[np.ndarray, int]:
    """(the largest 4-connected component of `region` as a bool mask, its area); (empty, 0) when none."""
    labels, n = ndimage.label(region)
    if n == 0:
        return region, 0
    areas = np.bincount(labels.ravel())[1:]
    best = int(np.argmax(areas))
    return labels == best + 1, int(areas[best])


def next_click(gt: np.ndarray, pred: np.ndarray) -> Click | None:
    """The next click after prediction `pred` of object `gt` (both (H, W) bool), or None when they are equal."""
    missed, missed_area = _largest_component(gt & ~pred)
    false, false_area = _largest_component(pred & ~gt)
    if missed_area == 0 and false_area == 0:
        return None
    positive = missed_area >= false_area
    row, col = _deepest(missed if positive else false)
    return Click(col, row, positive)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (H, W) bool masks; 1.0 when both are empty."""
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


@dataclass
class ObjectRun:
    """One object's clicks and the IoU after each (`ious[k - 1]` after k clicks); `oracle_iou`: best of the first
    click's candidates; `masks`: the prediction after each click (kept only when asked)."""

    clicks: list[Click] = field(default_factory=list)
    ious: list[float] = field(default_factory=list)
    oracle_iou: float = float("nan")
    decode_s: float = 0.0
    masks: list[np.ndarray] = field(default_factory=list)


def run_object(decode: Decoder, gt: np.ndarray, n_clicks: int = 10, keep_masks: bool = False) -> ObjectRun:
    """The click protocol on one object with `decode` (SAM's decoder on this image's cached embedding)."""
    run = ObjectRun()
    click: Click | None = first_click(gt)
    logits = None
    while click is not None and len(run.clicks) < n_clicks:
        run.clicks.append(click)
        points = np.array([[c.x, c.y] for c in run.clicks], np.float32)
        labels = np.array([int(c.positive) for c in run.clicks], np.int32)
        start = time.perf_counter()
        out = decode(points, labels, logits)
        run.decode_s += time.perf_counter() - start
        best = int(np.argmax(out.scores))
        if len(run.clicks) == 1:
            run.oracle_iou = max(iou(m, gt) for m in out.masks)
        pred, logits = out.masks[best], out.logits[[best]]
        run.ious.append(iou(pred, gt))
        if keep_masks:
            run.masks.append(pred)
        click = next_click(gt, pred)
    run.ious += [run.ious[-1]] * (n_clicks - len(run.ious))  # a perfect mask stays perfect
    return run


# ---- metrics ------------------------------------------------------------------------------------
def miou_curve(ious: np.ndarray) -> np.ndarray:
    """(O, N) IoU per object after each click → (N,) mIoU after 1..N clicks."""
    return np.asarray(ious, np.float64).reshape(-1, np.shape(ious)[-1]).mean(axis=0)


def noc(ious: np.ndarray, threshold: float) -> tuple[float, int]:
    """(mean number of clicks to reach IoU ≥ `threshold`, objects that never do); never → N clicks (RITM)."""
    ious = np.asarray(ious, np.float64)
    reached = ious >= threshold
    clicks = np.where(reached.any(axis=1), reached.argmax(axis=1) + 1, ious.shape[1])
    return float(clicks.mean()), int((~reached.any(axis=1)).sum())


@dataclass(frozen=True)
class Summary:
    """One model's numbers over every object evaluated."""

    objects: int
    miou: np.ndarray  # (N,) mIoU after 1..N clicks
    oracle_miou1: float  # first click, best of the three candidates
    noc85: float
    noc90: float
    fail85: int
    fail90: int


def summarize(runs: Sequence[ObjectRun]) -> Summary:
    ious = np.array([r.ious for r in runs], np.float64)
    (noc85, fail85), (noc90, fail90) = noc(ious, 0.85), noc(ious, 0.90)
    return Summary(
        len(runs), miou_curve(ious), float(np.mean([r.oracle_iou for r in runs])), noc85, noc90, fail85, fail90
    )


# ---- through the engine -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """One ground-truth object to click on: its image's index and name, its index and label there, its mask."""

    image: int
    image_name: str
    index: int
    label: str
    mask: np.ndarray


@dataclass
class ModelRun:
    """The protocol's results for one model: one `ObjectRun` per target evaluated (in order), embedding seconds."""

    model: str
    runs: list[tuple[Target, ObjectRun]] = field(default_factory=list)
    embed_s: float = 0.0
    cancelled: bool = False


def evaluate_model(
    engine,
    model: str,
    images: Sequence[np.ndarray],
    targets: Sequence[Target],
    n_clicks: int = 10,
    progress: Progress | None = None,
    cancel: Cancel | None = None,
    result: ModelRun | None = None,
    keep_masks: bool = False,
) -> ModelRun:
    """The click protocol for every target with one promptable model (any family with `Can.PROMPTS`).

    Each image is encoded once (`engine.sam_embedding`, cached by the engine); every click runs only the decoder
    (`engine.sam_predict`). `progress(done, total)` counts objects; `cancel()` is asked before each object: True
    stops the run, and what was evaluated so far is returned, with `cancelled` set. Pass `result` to own the object
    that is filled as objects finish (a page keeps it, so a run stopped from outside keeps what it did);
    `keep_masks` keeps each click's predicted mask."""
    from core.models.sam import SamPrompt  # the engine's prompt type; imported here so the geometry needs no torch

    result = result if result is not None else ModelRun(model)
    embeddings: dict[int, Any] = {}
    for done, target in enumerate(targets):
        if progress is not None:
            progress(done, len(targets))
        if cancel is not None and cancel():
            result.cancelled = True
            return result
        if target.image not in embeddings:
            start = time.perf_counter()
            embeddings = {target.image: engine.sam_embedding(images[target.image], model)}  # one image at a time
            result.embed_s += time.perf_counter() - start
        embedding = embeddings[target.image]

        def decode(points, labels, mask_input, embedding=embedding):
            return engine.sam_predict(embedding, model, SamPrompt(points, labels, None, mask_input))

        result.runs.append((target, run_object(decode, target.mask, n_clicks, keep_masks)))
    if progress is not None:
        progress(len(targets), len(targets))
    return result
