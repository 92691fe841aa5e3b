"""Automatic masks against ground truth: for each ground-truth object the automatic mask that overlaps it best
(highest IoU), and recall at IoU thresholds (the share of objects whose best mask reaches the threshold).

Masks are (K, H, W) / (M, H, W) bool at the image's size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.analysis.masks import mask_bbox


@dataclass(frozen=True)
class Matches:
    """Per ground-truth object (K,): the index of its best automatic mask (-1 when none overlaps) and their IoU."""

    index: np.ndarray
    iou: np.ndarray

    def recall(self, threshold: float) -> float:
        """Share of objects whose best automatic mask has IoU ≥ `threshold` (0 when there are no objects)."""
        return float(np.mean(self.iou >= threshold)) if len(self.iou) else 0.0


def match_masks(gt: np.ndarray, auto: np.ndarray) -> Matches:
    """The best automatic mask of each ground-truth object by IoU; intersections are counted inside each object's
    box only (fast on large images with many masks)."""
    gt, auto = np.asarray(gt, bool), np.asarray(auto, bool)
    index, best = np.full(len(gt), -1), np.zeros(len(gt))
    if not len(auto):
        return Matches(index, best)
    areas = auto.reshape(len(auto), -1).sum(axis=1)
    for k, mask in enumerate(gt):
        x, y, w, h = mask_bbox(mask)
        inside = auto[:, y : y + h, x : x + w] & mask[y : y + h, x : x + w]
        inter = inside.reshape(len(auto), -1).sum(axis=1)
        ious = inter / np.maximum(areas + mask.sum() - inter, 1)
        if inter.max() > 0:
            index[k] = int(np.argmax(ious))
            best[k] = float(ious[index[k]])
    return Matches(index, best)
