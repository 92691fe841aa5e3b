"""Zero-shot edges: edge NMS known answers, the baselines' shapes, and ODS/OIS against hand-computed F."""

from __future__ import annotations

import numpy as np
import pytest

from core.analysis.edges import (
    compute_canny_edges,
    compute_mask_edges,
    compute_sobel_edges,
    edge_scores,
    f_measure,
    gt_boundaries,
)
from core.analysis.masks import mask_contour


def square(size=(24, 30), rows=(6, 17), cols=(5, 20)) -> np.ndarray:
    mask = np.zeros(size, bool)
    mask[rows[0] : rows[1], cols[0] : cols[1]] = True
    return mask


def test_edge_nms_on_a_filled_square_returns_its_one_pixel_outline():
    mask = square()
    edges = compute_mask_edges(mask[None].astype(float))
    np.testing.assert_array_equal(edges > 0, mask_contour(mask, 1))
    assert edges.max() == 1.0


def test_a_soft_square_still_gives_a_thin_outline_next_to_the_true_one():
    mask = square((64, 64), (16, 48), (12, 52))
    edges = compute_mask_edges(mask[None], sigma=1.5) > 0.2  # bool masks: each blurred to a soft map first
    band = mask_contour(mask, 1) | mask_contour(~mask, 1)  # the pixels on either side of the true edge
    assert not edges[~band].any()
    assert abs(int(edges.sum()) - int(mask_contour(mask, 1).sum())) <= 8  # one pixel across: the perimeter's length
    rows = edges[30]  # one row across the left and right sides: one pixel each
    assert rows.sum() == 2


def test_two_masks_give_both_outlines():
    a, b = square((40, 40), (5, 15), (5, 15)), square((40, 40), (20, 35), (22, 38))
    edges = compute_mask_edges(np.stack([a, b]).astype(float))
    np.testing.assert_array_equal(edges > 0, mask_contour(a) | mask_contour(b))
    binary = compute_mask_edges(np.stack([a, b]), sigma=0)  # bool masks kept binary, each in its own box
    np.testing.assert_array_equal(binary, edges)


def test_soft_masks_in_their_boxes_equal_the_full_image_blur():
    from scipy import ndimage

    a, b = square((60, 70), (5, 25), (8, 30)), square((60, 70), (30, 55), (35, 66))
    full = np.stack([ndimage.gaussian_filter(m.astype(float), 2.0, mode="nearest") for m in (a, b)])
    np.testing.assert_allclose(compute_mask_edges(np.stack([a, b]), sigma=2.0), compute_mask_edges(full), atol=1e-6)


def test_baselines_find_a_bright_square_on_a_dark_image():
    image = np.zeros((48, 48, 3), np.uint8)
    image[12:36, 12:36] = 200
    for edges in (compute_sobel_edges(image), compute_canny_edges(image)):
        assert edges.shape == (48, 48) and 0 <= edges.min() and edges.max() == 1.0
        assert edges[24, 10:14].max() > 0.5 and edges[24, 20:28].max() == 0 and edges[:4].max() == 0


def test_gt_boundaries_are_object_outlines_without_the_image_border():
    mask = square((20, 20), (0, 10), (3, 12))
    boundary = gt_boundaries(mask[None])
    assert not boundary[0, 4:11].any() and boundary[9, 3:12].all() and boundary[1:10, 3].all()


def test_f_measure_by_hand():
    p, r, f = f_measure(3, 4, 1, 2)
    assert (p, r) == (0.75, 0.5) and f == pytest.approx(0.6)
    assert f_measure(0, 0, 0, 5)[2] == 0


def test_ods_and_ois_on_a_toy_set_by_hand():
    # image 1: boundary along row 5; strong edge on its left half, weak on its right half, a spurious row 0
    b1 = np.zeros((10, 10), bool)
    b1[5] = True
    e1 = np.zeros((10, 10))
    e1[5, :5], e1[5, 5:], e1[0] = 0.8, 0.3, 0.5
    # image 2: boundary along column 3, found everywhere but weakly
    b2 = np.zeros((10, 10), bool)
    b2[:, 3] = True
    e2 = np.zeros((10, 10))
    e2[:, 3] = 0.4
    scores = edge_scores([e1, e2], [b1, b2], thresholds=np.array([0.25, 0.6]), tolerance=1.0)
    # t = 0.25: image 1 P 10/20, R 10/10; image 2 P 10/10, R 10/10 → set P 20/30, R 1 → F 0.8
    # t = 0.6: image 1 P 5/5, R 6/10 (column 5 is within 1 px of column 4), F 0.75; image 2 nothing → set F 0.4615
    assert scores.ods == pytest.approx(0.8) and scores.ods_threshold == 0.25
    np.testing.assert_allclose(scores.per_image, [0.75, 1.0])
    # OIS: image 1 at 0.6 (5/5, 6/10), image 2 at 0.25 (10/10, 10/10) → P 15/15, R 16/20 → F 1.6 / 1.8
    assert scores.ois == pytest.approx(1.6 / 1.8)
