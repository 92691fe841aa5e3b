"""Brush and eraser on a mask (SA-1B's "assisted manual" stage): free-drawn strokes from the drawing canvas
(streamlit-drawable-canvas, Fabric.js JSON) painted into or erased from an (H, W) bool mask.

A stroke is a Fabric "path" object: commands [["M", x, y], ["Q", cx, cy, x, y], ..., ["L", x, y]] in canvas
pixels, its `strokeWidth` the brush diameter, its `stroke` colour telling add from erase (the page draws with
`ADD_COLOR` or `ERASE_COLOR`). A stroke moved or scaled in the canvas's edit mode is placed where it is drawn (its
`left`/`top`/origin and scale; rotation is not applied). Strokes are painted in drawing order with round caps and
joins; canvas pixels map to image pixels by the ratio of their sizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ADD_COLOR = "rgba(0, 200, 83, 0.7)"
ERASE_COLOR = "rgba(255, 23, 68, 0.7)"
_ORIGIN = {"left": 0.0, "center": 0.5, "right": 1.0, "top": 0.0, "bottom": 1.0}


@dataclass(frozen=True)
class Stroke:
    """One brush stroke in image pixels: points (N, 2) as (X, Y), width (diameter), add (True) or erase."""

    points: np.ndarray
    width: float
    add: bool


def _path_points(path: Sequence) -> np.ndarray:
    """Fabric path commands → (N, 2) points along it (quadratic and cubic curves sampled in 8 steps)."""
    points: list[tuple[float, float]] = []
    t = np.linspace(0, 1, 9)[1:, None]
    for command in path:
        op, *values = command
        values = [float(v) for v in values]
        if op in ("M", "L") and len(values) >= 2:
            points.append((values[0], values[1]))
        elif op == "Q" and len(values) >= 4 and points:
            p0, c, p1 = np.array(points[-1]), np.array(values[:2]), np.array(values[2:4])
            points += [tuple(p) for p in (1 - t) ** 2 * p0 + 2 * (1 - t) * t * c + t**2 * p1]
        elif op == "C" and len(values) >= 6 and points:
            p0, c1, c2, p1 = np.array(points[-1]), *(np.array(values[i : i + 2]) for i in (0, 2, 4))
            points += [
                tuple(p) for p in (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * c1 + 3 * (1 - t) * t**2 * c2 + t**3 * p1
            ]
    return np.array(points, np.float64).reshape(-1, 2)


def _placed(obj: dict, points: np.ndarray) -> np.ndarray:
    """Path points → canvas points where Fabric draws them (moved or scaled in edit mode; unmoved: unchanged)."""
    if not {"left", "top", "width", "height"} <= obj.keys() or not len(points):
        return points
    scale = np.array([float(obj.get("scaleX", 1)), float(obj.get("scaleY", 1))])
    stroke = float(obj.get("strokeWidth", 0))
    size = (np.array([float(obj["width"]), float(obj["height"])]) + stroke) * scale
    origin = np.array([_ORIGIN.get(obj.get("originX", "left"), 0.0), _ORIGIN.get(obj.get("originY", "top"), 0.0)])
    centre = np.array([float(obj["left"]), float(obj["top"])]) + (0.5 - origin) * size
    offset = (points.min(axis=0) + points.max(axis=0)) / 2  # Fabric's pathOffset: the path's box centre
    placed = centre + (points - offset) * scale
    return points if np.abs(placed - points).max() < 1.0 else placed  # within a pixel: our sampled box vs Fabric's


def strokes_from_canvas(
    json_data: dict | None, canvas_size: tuple[int, int], image_size: tuple[int, int]
) -> list[Stroke]:
    """The canvas's path objects (canvas (H, W) pixels) → strokes in image (H, W) pixels, in drawing order."""
    if not json_data:
        return []
    sy, sx = image_size[0] / canvas_size[0], image_size[1] / canvas_size[1]
    strokes = []
    for obj in json_data.get("objects", []):
        if obj.get("type", "").lower() != "path" or not obj.get("path"):
            continue
        points = _placed(obj, _path_points(obj["path"]))
        if not len(points):
            continue
        width = float(obj.get("strokeWidth", 1)) * (sx + sy) / 2 * float(obj.get("scaleX", 1))
        strokes.append(Stroke(points * [sx, sy], width, obj.get("stroke") != ERASE_COLOR))
    return strokes


def stroke_mask(stroke: Stroke, size: tuple[int, int]) -> np.ndarray:
    """The (H, W) bool pixels a stroke covers: those whose centre lies within `width / 2` of its polyline (round
    caps and joins). Points are continuous coordinates, as the canvas's: pixel (row i, column j) spans
    [j, j + 1) × [i, i + 1), its centre (j + 0.5, i + 0.5)."""
    h, w = size
    out = np.zeros(size, bool)
    r = stroke.width / 2
    points = stroke.points
    segments = zip(points, points[1:], strict=False) if len(points) > 1 else [(points[0], points[0])]
    for a, b in segments:
        x0, x1 = max(int(np.floor(min(a[0], b[0]) - r)), 0), min(int(np.ceil(max(a[0], b[0]) + r)), w)
        y0, y1 = max(int(np.floor(min(a[1], b[1]) - r)), 0), min(int(np.ceil(max(a[1], b[1]) + r)), h)
        if x0 >= x1 or y0 >= y1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1] + 0.5
        d = b - a
        t = np.clip(((xx - a[0]) * d[0] + (yy - a[1]) * d[1]) / max(float(d @ d), 1e-12), 0, 1)
        out[y0:y1, x0:x1] |= (xx - a[0] - t * d[0]) ** 2 + (yy - a[1] - t * d[1]) ** 2 <= r * r
    return out


def paint(mask: np.ndarray, strokes: Sequence[Stroke]) -> np.ndarray:
    """`mask` with each stroke added or erased, in order (a new array)."""
    out = np.array(mask, bool)
    for stroke in strokes:
        covered = stroke_mask(stroke, out.shape)
        out = out | covered if stroke.add else out & ~covered
    return out
