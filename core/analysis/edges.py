"""Zero-shot edges (the SAM paper, §7.2): mask probability maps → Sobel → edge non-maximum suppression → a thin
edge map; the Sobel and Canny baselines on the same image; boundary precision, recall and F against ground truth.

Maps are (H, W) float arrays; masks (H, W) bool. Edge maps are float in [0, 1], thin (one pixel across).

Probability maps: the SAM paper Sobel-filters each mask's unthresholded probability map (its upsampled logits
through a sigmoid). The engine's automatic mask generator returns thresholded masks, so `compute_mask_edges`
turns each binary mask into a soft map with a Gaussian of σ = max(H, W) / 256 pixels, the footprint of one cell of
SAM's 256 × 256 low-resolution logits (what bilinear upsampling of the logits spreads an edge over).

Boundary matching (`boundary_counts`): a predicted edge pixel is correct if a ground-truth boundary pixel lies
within `tolerance` pixels (Euclidean), and a ground-truth boundary pixel is recalled if a predicted edge pixel lies
within `tolerance`. This is the distance-transform approximation of the BSDS benchmark (which matches pixels one to
one, with a tolerance of 0.75 % of the image diagonal): without the one-to-one matching it is slightly more lenient.
Default tolerance: 2 pixels.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

DEFAULT_TOLERANCE = 2.0
THRESHOLDS = np.linspace(0.01, 0.99, 50)


# ---- edges --------------------------------------------------------------------------------------
def sobel(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) float → (gy, gx): Sobel derivatives along rows and columns (edges reflected)."""
    values = np.asarray(values, np.float64)
    return ndimage.sobel(values, axis=0, mode="nearest"), ndimage.sobel(values, axis=1, mode="nearest")


def edge_nms(magnitude: np.ndarray, gy: np.ndarray, gx: np.ndarray) -> np.ndarray:
    """Non-maximum suppression across the edge: a pixel stays if its magnitude is ≥ its neighbour against the
    gradient and > its neighbour along it (directions in 8 steps of 45°). The asymmetric test keeps exactly one of
    two equal pixels across an edge — the one on the rising side's top (inside a mask, for its probability map).
    Returns the thinned magnitude (suppressed pixels 0)."""
    angle = np.arctan2(gy, gx)  # gradient direction: towards higher values
    step = np.round(angle / (np.pi / 4)).astype(int) % 8
    dx = np.array([1, 1, 0, -1, -1, -1, 0, 1])[step]
    dy = np.array([0, 1, 1, 1, 0, -1, -1, -1])[step]
    h, w = magnitude.shape
    rows, cols = np.mgrid[:h, :w]
    padded = np.pad(magnitude, 1)
    along = padded[rows + dy + 1, cols + dx + 1]
    against = padded[rows - dy + 1, cols - dx + 1]
    keep = (magnitude >= against) & (magnitude > along) & (magnitude > 0)
    return np.where(keep, magnitude, 0.0)


def _normalized(values: np.ndarray) -> np.ndarray:
    top = float(values.max()) if values.size else 0.0
    return values / top if top > 0 else np.zeros_like(values)


def default_sigma(size: tuple[int, int]) -> float:
    """σ in pixels of the soft map of a binary mask on an image of (H, W): one cell of SAM's 256² logits."""
    return max(size) / 256


def _soft_maps(masks: np.ndarray, sigma: float) -> Iterator[tuple[tuple[slice, slice], np.ndarray]]:
    """Each binary mask as a probability map, computed only in its box grown by the blur's reach:
    ((rows, cols) slices, float map there)."""
    h, w = masks.shape[1:]
    reach = int(np.ceil(4 * sigma)) + 2
    for mask in masks:
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if not rows.size:
            continue
        box = (
            slice(max(rows[0] - reach, 0), min(rows[-1] + reach + 1, h)),
            slice(max(cols[0] - reach, 0), min(cols[-1] + reach + 1, w)),
        )
        crop = mask[box].astype(np.float64)
        yield box, ndimage.gaussian_filter(crop, sigma, mode="nearest") if sigma > 0 else crop


def compute_mask_edges(maps: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """(K, H, W) mask maps → (H, W) thin edge map in [0, 1]: per map the Sobel magnitude, the maximum over maps,
    edge NMS across the strongest map's gradient at each pixel, scaled to a maximum of 1.

    Float maps are taken as probability maps as they are. Bool masks are first made soft with a Gaussian of σ
    pixels (default `default_sigma`; 0 keeps them binary), each in its own box (memory and time scale with the
    masks' sizes, not K × H × W)."""
    maps = np.asarray(maps)
    size = maps.shape[-2:]
    best, gy_best, gx_best = np.zeros(size), np.zeros(size), np.zeros(size)
    if maps.dtype == bool:
        pieces = _soft_maps(maps, default_sigma(size) if sigma is None else sigma)
    else:
        pieces = (((slice(None), slice(None)), m.astype(np.float64)) for m in maps)
    for box, soft in pieces:
        gy, gx = sobel(soft)
        magnitude = np.hypot(gy, gx)
        stronger = magnitude > best[box]
        best[box] = np.where(stronger, magnitude, best[box])
        gy_best[box] = np.where(stronger, gy, gy_best[box])
        gx_best[box] = np.where(stronger, gx, gx_best[box])
    return _normalized(edge_nms(best, gy_best, gx_best))


def _gray(image: np.ndarray) -> np.ndarray:
    """HWC uint8 RGB (or HW) → (H, W) float in [0, 1]."""
    image = np.asarray(image, np.float64) / 255.0
    return image @ [0.299, 0.587, 0.114] if image.ndim == 3 else image


def compute_sobel_edges(image: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """The Sobel baseline: Sobel magnitude of the (Gaussian-smoothed) grey image, thinned by the same edge NMS."""
    gy, gx = sobel(ndimage.gaussian_filter(_gray(image), sigma))
    return _normalized(edge_nms(np.hypot(gy, gx), gy, gx))


def compute_canny_edges(image: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """The Canny baseline (scikit-image, its default hysteresis thresholds): a binary edge map as 0.0 / 1.0."""
    from skimage.feature import canny

    return canny(_gray(image), sigma=sigma).astype(np.float64)


# ---- ground-truth boundaries and F-measure ----------------------------------------------------------------
def gt_boundaries(masks: np.ndarray) -> np.ndarray:
    """(K, H, W) bool object masks → (H, W) bool boundary: each object's pixels with a 4-neighbour outside it
    (inside the image)."""
    out = np.zeros(np.shape(masks)[1:], bool)
    for mask in masks:
        out |= mask & ~ndimage.binary_erosion(mask, border_value=1)
    return out


@dataclass(frozen=True)
class BoundaryCounts:
    """Per threshold (T,): matched and total predicted edge pixels, recalled and total boundary pixels."""

    matched_pred: np.ndarray
    pred: np.ndarray
    matched_gt: np.ndarray
    gt: np.ndarray


def boundary_counts(
    edges: np.ndarray, boundary: np.ndarray, thresholds: np.ndarray = THRESHOLDS, tolerance: float = DEFAULT_TOLERANCE
) -> BoundaryCounts:
    """Counts of `edges` ≥ each threshold against the bool `boundary` (matching within `tolerance` pixels)."""
    near_gt = ndimage.distance_transform_edt(~boundary) <= tolerance if boundary.any() else np.zeros_like(boundary)
    matched_pred, pred, matched_gt = [], [], []
    for t in thresholds:
        predicted = edges >= t
        near_pred = ndimage.distance_transform_edt(~predicted) <= tolerance if predicted.any() else predicted
        matched_pred.append(np.count_nonzero(predicted & near_gt))
        pred.append(np.count_nonzero(predicted))
        matched_gt.append(np.count_nonzero(boundary & near_pred))
    n = np.full(len(thresholds), np.count_nonzero(boundary))
    return BoundaryCounts(np.array(matched_pred), np.array(pred), np.array(matched_gt), n)


def f_measure(matched_pred, pred, matched_gt, gt) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, F) from counts (arrays or scalars); 0 where undefined."""
    matched_pred, pred, matched_gt, gt = (np.asarray(a, np.float64) for a in (matched_pred, pred, matched_gt, gt))
    precision = np.divide(matched_pred, pred, out=np.zeros_like(matched_pred), where=pred > 0)
    recall = np.divide(matched_gt, gt, out=np.zeros_like(matched_gt), where=gt > 0)
    total = precision + recall
    f = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
    return precision, recall, f


@dataclass(frozen=True)
class EdgeScores:
    """ODS: F at the one threshold best over the set (and that threshold); OIS: F from each image's own best
    threshold (counts summed over images, as the BSDS benchmark); per_image: each image's best F."""

    ods: float
    ods_threshold: float
    ois: float
    per_image: np.ndarray


def edge_scores(
    edge_maps: Sequence[np.ndarray],
    boundaries: Sequence[np.ndarray],
    thresholds: np.ndarray = THRESHOLDS,
    tolerance: float = DEFAULT_TOLERANCE,
) -> EdgeScores:
    counts = [boundary_counts(e, b, thresholds, tolerance) for e, b in zip(edge_maps, boundaries, strict=True)]
    total = [sum(getattr(c, name) for c in counts) for name in ("matched_pred", "pred", "matched_gt", "gt")]
    _, _, f_set = f_measure(*total)
    best = int(np.argmax(f_set))
    per_image, picked = [], []
    for c in counts:
        _, _, f = f_measure(c.matched_pred, c.pred, c.matched_gt, c.gt)
        i = int(np.argmax(f))
        per_image.append(float(f[i]))
        picked.append([c.matched_pred[i], c.pred[i], c.matched_gt[i], c.gt[i]])
    _, _, ois = f_measure(*np.sum(picked, axis=0))
    return EdgeScores(float(f_set[best]), float(thresholds[best]), float(ois), np.array(per_image))
