"""Brush and eraser: canvas strokes (Fabric JSON) to image pixels, painted in order; auto-mask matching."""

from __future__ import annotations

import numpy as np
import pytest

from core.analysis.auto_eval import match_masks
from core.analysis.brush import ADD_COLOR, ERASE_COLOR, Stroke, paint, stroke_mask, strokes_from_canvas


def path(points, width=4, color=ADD_COLOR, **extra) -> dict:
    (x0, y0), *rest = points
    return {
        "type": "path",
        "stroke": color,
        "strokeWidth": width,
        "path": [["M", x0, y0], *[["L", x, y] for x, y in rest]],
        **extra,
    }


def test_a_horizontal_stroke_covers_its_band_scaled_to_the_image():
    drawing = {"objects": [path([(5, 10), (25, 10)], width=4)]}
    (stroke,) = strokes_from_canvas(drawing, (40, 40), (80, 80))  # the image is twice the canvas
    assert stroke.add and stroke.width == 8
    np.testing.assert_allclose(stroke.points, [[10, 20], [50, 20]])
    covered = stroke_mask(stroke, (80, 80))
    rows = np.flatnonzero(covered[:, 30])
    assert rows.tolist() == list(range(16, 24))  # y 20 ± 4: pixel rows 16..23
    cols = np.flatnonzero(covered[20])
    assert cols[0] == 6 and cols[-1] == 53  # round caps: centres 6.5 .. 53.5 within 4 of x 10 .. 50
    assert not covered[:14].any() and not covered[26:].any()


def test_strokes_add_then_erase_in_drawing_order():
    mask = np.zeros((30, 30), bool)
    mask[10:20, 10:20] = True
    add = Stroke(np.array([[2.0, 5.0], [28.0, 5.0]]), 3, True)
    erase = Stroke(np.array([[15.0, 0.0], [15.0, 30.0]]), 4, False)
    out = paint(mask, [add, erase])
    expected = (mask | stroke_mask(add, mask.shape)) & ~stroke_mask(erase, mask.shape)
    np.testing.assert_array_equal(out, expected)
    assert out[5, 5] and not out[5, 15] and not out[15, 15] and out[15, 11]
    assert not mask[5, 5]  # the input is not changed
    np.testing.assert_array_equal(paint(mask, [erase, add])[5], expected[5] | stroke_mask(add, mask.shape)[5])


def test_the_erase_colour_makes_an_eraser_and_other_objects_are_ignored():
    drawing = {"objects": [path([(1, 1), (5, 5)], color=ERASE_COLOR), {"type": "rect", "left": 1}, {"type": "path"}]}
    (stroke,) = strokes_from_canvas(drawing, (10, 10), (10, 10))
    assert not stroke.add
    assert strokes_from_canvas(None, (10, 10), (10, 10)) == []


def test_a_stroke_moved_in_edit_mode_is_painted_where_it_is_shown():
    points = [(10, 10), (30, 10)]
    unmoved = path(points, width=4, left=8, top=8, width_=0)
    unmoved.update({"width": 20, "height": 0, "originX": "left", "originY": "top"})
    (same,) = strokes_from_canvas({"objects": [unmoved]}, (50, 50), (50, 50))
    np.testing.assert_allclose(same.points, points)
    moved = {**unmoved, "left": 18, "top": 28}  # dragged 10 right, 20 down
    (shifted,) = strokes_from_canvas({"objects": [moved]}, (50, 50), (50, 50))
    np.testing.assert_allclose(shifted.points, np.array(points) + [10, 20])


def test_a_curved_stroke_follows_its_quadratic_segments():
    drawing = {"objects": [{"type": "path", "stroke": ADD_COLOR, "strokeWidth": 2,
                            "path": [["M", 0, 0], ["Q", 10, 20, 20, 0], ["L", 20, 0]]}]}  # fmt: skip
    (stroke,) = strokes_from_canvas(drawing, (30, 30), (30, 30))
    assert stroke.points[:, 1].max() == pytest.approx(10.0)  # the curve's apex: half the control point's height


# ---- automatic masks against ground truth -----------------------------------------------------------
def test_each_object_gets_its_best_automatic_mask_and_recall_counts_them():
    gt = np.zeros((3, 20, 20), bool)
    gt[0, :10, :10], gt[1, 10:, 10:], gt[2, 0:2, 18:20] = True, True, True
    auto = np.zeros((2, 20, 20), bool)
    auto[0, 10:, 10:] = True  # exactly object 1
    auto[1, :10, :5] = True  # half of object 0
    matches = match_masks(gt, auto)
    assert matches.index.tolist() == [1, 0, -1]
    np.testing.assert_allclose(matches.iou, [0.5, 1.0, 0.0])
    assert matches.recall(0.5) == pytest.approx(2 / 3) and matches.recall(0.75) == pytest.approx(1 / 3)
    assert match_masks(gt, np.zeros((0, 20, 20), bool)).index.tolist() == [-1, -1, -1]
