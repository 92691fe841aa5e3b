"""Masks: COCO RLE against pycocotools' known answers, overlays and cut-outs on synthetic masks (SAM's own
paths are in tests/core/test_sam.py)."""

from __future__ import annotations

import numpy as np
import pytest

from core.analysis.masks import (
    coco_annotations,
    compress_rle,
    cutout,
    decode_rle,
    encode_rle,
    mask_bbox,
    mask_contour,
    overlay_masks,
)

# pycocotools 2.0.11: mask.encode(np.asfortranarray(a)) for this 4 × 5 mask gave counts b"0181J03"
KNOWN = np.zeros((4, 5), bool)
KNOWN[0, 0] = True
KNOWN[1:3, 2:4] = True


def _random_masks() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    blobs = rng.random((37, 53)) < 0.5
    big = np.zeros((300, 200), bool)
    big[40:260, 30:170] = True  # long runs: counts past 2**5 and 2**10, negative deltas
    big[100:120] = False
    return [
        blobs,
        big,
        ~big,
        np.zeros((7, 3), bool),
        np.ones((3, 7), bool),
        rng.random((1, 64)) < 0.3,
        rng.random((64, 1)) < 0.7,
    ]


def test_rle_matches_pycocotools_known_answer():
    rle = encode_rle(KNOWN)
    assert rle == {"size": [4, 5], "counts": [0, 1, 8, 2, 2, 2, 5]}  # column-major, starting with zeros
    assert compress_rle(rle)["counts"] == "0181J03"
    np.testing.assert_array_equal(decode_rle({"size": [4, 5], "counts": b"0181J03"}), KNOWN)


@pytest.mark.parametrize("index", range(7))
def test_rle_round_trips_uncompressed_and_compressed(index):
    mask = _random_masks()[index]
    rle = encode_rle(mask)
    assert sum(rle["counts"]) == mask.size and rle["size"] == list(mask.shape)
    np.testing.assert_array_equal(decode_rle(rle), mask)
    compressed = compress_rle(rle)
    assert isinstance(compressed["counts"], str)
    np.testing.assert_array_equal(decode_rle(compressed), mask)


def test_rle_agrees_with_pycocotools_when_installed():
    coco = pytest.importorskip("pycocotools.mask")
    for mask in _random_masks():
        theirs = coco.encode(np.asfortranarray(mask.astype(np.uint8)))
        assert compress_rle(encode_rle(mask))["counts"] == theirs["counts"].decode()
        np.testing.assert_array_equal(decode_rle(theirs), mask)


def test_rle_with_wrong_counts_is_refused():
    with pytest.raises(ValueError, match="sum"):
        decode_rle({"size": [4, 5], "counts": [0, 3]})


def test_contour_is_the_ring_inside_the_edge():
    mask = np.zeros((10, 12), bool)
    mask[2:8, 3:10] = True
    ring = mask_contour(mask)
    inner = np.zeros_like(mask)
    inner[3:7, 4:9] = True
    np.testing.assert_array_equal(ring, mask & ~inner)
    assert mask_contour(mask, 3).sum() == mask.sum()  # 6 rows high: three rings eat it all


def test_overlay_colours_only_the_masks_later_on_top_and_contours_opaque():
    image = np.full((8, 8, 3), 100, np.uint8)
    a, b = np.zeros((8, 8), bool), np.zeros((8, 8), bool)
    a[1:5, 1:5], b[3:7, 3:7] = True, True
    colors = np.array([[200, 0, 0], [0, 0, 200]], np.uint8)
    out = overlay_masks(image, [a, b], colors, alpha=0.5)
    assert (out[~(a | b)] == 100).all()
    np.testing.assert_array_equal(out[1, 1], [150, 50, 50])
    np.testing.assert_array_equal(out[5, 5], [50, 50, 150])  # b over a
    np.testing.assert_array_equal(out[3, 3], [75, 25, 125])  # a then b, each at half opacity
    edged = overlay_masks(image, [a], colors[:1], alpha=0.5, contour=1)
    np.testing.assert_array_equal(edged[1, 3], [200, 0, 0])
    np.testing.assert_array_equal(edged[2, 2], [150, 50, 50])


def test_cutout_is_the_masked_box_with_alpha():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    mask = np.zeros((20, 30), bool)
    mask[5:9, 10:20] = True
    mask[12, 4] = True
    assert mask_bbox(mask) == (4, 5, 16, 8)
    rgba = cutout(image, mask)
    assert rgba.shape == (8, 16, 4) and rgba.dtype == np.uint8
    np.testing.assert_array_equal(rgba[..., 3] == 255, mask[5:13, 4:20])
    np.testing.assert_array_equal(rgba[..., :3], image[5:13, 4:20])
    assert cutout(image, np.zeros((20, 30), bool)).shape == (1, 1, 4)


def test_coco_annotations_decode_back_to_the_masks():
    masks = _random_masks()[:2]
    masks = [masks[0], np.pad(masks[0][:10, :10], ((0, 27), (0, 43)))]
    coco = coco_annotations(masks, ["cat", "cat"], "a.png", scores=[0.9, 0.5])
    assert coco["images"] == [{"id": 1, "file_name": "a.png", "height": 37, "width": 53}]
    assert coco["categories"] == [{"id": 1, "name": "cat"}]
    for ann, mask in zip(coco["annotations"], masks, strict=True):
        np.testing.assert_array_equal(decode_rle(ann["segmentation"]), mask)
        assert ann["area"] == mask.sum() and ann["bbox"] == list(mask_bbox(mask))
    assert coco["annotations"][1]["score"] == 0.5
