"""Masks: COCO RLE against pycocotools' known answers, overlays and cut-outs on synthetic masks, SAM's automatic
mask generator on the tiny random SAM, and the bf16 paths that must come back as float32 numpy."""

from __future__ import annotations

import inspect
import threading

import numpy as np
import pytest
import torch
from segment_anything import SamAutomaticMaskGenerator

from core.analysis.masks import (
    PREVIEW_SIDE,
    AutoMaskParams,
    ProgressMaskGenerator,
    Prompt,
    auto_mask_defaults,
    coco_annotations,
    compress_rle,
    compute_auto_masks,
    cutout,
    decode_rle,
    encode_rle,
    mask_bbox,
    mask_contour,
    overlay_masks,
    prompt_arrays,
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


def test_prompt_arrays_keep_point_order_and_the_last_box():
    prompts = [
        Prompt("point", (10.0, 20.0)),
        Prompt("box", (0, 0, 5, 5)),
        Prompt("point", (30.5, 40.0), positive=False),
        Prompt("box", (1, 2, 30, 40)),
    ]
    arrays = prompt_arrays(prompts)
    np.testing.assert_array_equal(arrays.points, [[10, 20], [30.5, 40]])
    np.testing.assert_array_equal(arrays.labels, [1, 0])
    np.testing.assert_array_equal(arrays.box, [1, 2, 30, 40])
    assert arrays.points.dtype == np.float32
    empty = prompt_arrays([])
    assert empty.points is None and empty.labels is None and empty.box is None


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


# ---- automatic masks on the tiny random SAM ----------------------------------------------------
OPEN = AutoMaskParams(points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0)


@pytest.fixture(scope="module")
def sam(engine):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (60, 90, 3), dtype=np.uint8)
    return engine.model("sam_tiny").adapter.module, image, engine.sam_embedding(image, "sam_tiny")


def test_auto_masks_are_sorted_by_area_and_reuse_the_cached_embedding(sam, monkeypatch):
    module, image, embedding = sam
    fresh = compute_auto_masks(module, image, OPEN)
    assert len(fresh.masks) > 0 and fresh.masks.shape[1:] == (60, 90) and fresh.masks.dtype == bool
    np.testing.assert_array_equal(fresh.areas, fresh.masks.sum(axis=(1, 2)))
    assert (np.diff(fresh.areas) <= 0).all()

    monkeypatch.setattr(module.image_encoder, "forward", lambda *_: pytest.fail("re-encoded the image"))
    cached = compute_auto_masks(module, image, OPEN, embedding)
    np.testing.assert_array_equal(cached.masks, fresh.masks)
    np.testing.assert_allclose(cached.scores, fresh.scores, atol=1e-5)


def test_auto_masks_thresholds_filter(sam):
    module, image, embedding = sam
    strict = compute_auto_masks(module, image, AutoMaskParams(4, 0.99, 0.99), embedding)
    loose = compute_auto_masks(module, image, OPEN, embedding)
    assert len(strict.masks) < len(loose.masks)


def test_auto_masks_hold_the_guard(sam, monkeypatch):
    module, image, embedding = sam
    lock, held = threading.Lock(), []
    real = module.mask_decoder.forward
    monkeypatch.setattr(module.mask_decoder, "forward", lambda *a, **k: held.append(lock.locked()) or real(*a, **k))
    compute_auto_masks(module, image, OPEN, embedding, guard=lock)
    assert held and all(held) and not lock.locked()


def test_progress_counts_every_point_batch_and_changes_no_mask(sam):
    module, image, embedding = sam
    params = AutoMaskParams(8, 0.0, 0.0, points_per_batch=16)  # 64 prompts: 4 batches
    calls: list[tuple[int, int]] = []
    ours = compute_auto_masks(module, image, params, embedding, progress=lambda *a: calls.append(a))
    assert calls == [(i, 4) for i in range(5)]  # from 0 to the total, one step per batch

    plain = SamAutomaticMaskGenerator(
        module, points_per_side=8, points_per_batch=16, pred_iou_thresh=0.0, stability_score_thresh=0.0
    )
    with torch.inference_mode():
        records = sorted(plain.generate(image), key=lambda r: -r["area"])
    assert len(ours.masks) == len(records) > 0
    np.testing.assert_array_equal(ours.masks, [r["segmentation"] for r in records])
    np.testing.assert_allclose(ours.scores, [r["predicted_iou"] for r in records], atol=1e-5)
    np.testing.assert_allclose(ours.stability, [r["stability_score"] for r in records], atol=1e-5)


def test_progress_total_covers_every_crop_layer(sam):
    module, image, _ = sam
    calls: list[tuple[int, int]] = []
    generator = ProgressMaskGenerator(
        module,
        lambda *a: calls.append(a),
        points_per_side=4,
        points_per_batch=10,
        crop_n_layers=1,
        pred_iou_thresh=0.0,
        stability_score_thresh=0.0,  # upstream fails on crops without any mask
    )
    assert generator.batches(image.shape[:2]) == 2 + 4 * 2  # 16 points in batches of 10, on 1 + 4 crops
    with torch.inference_mode():
        generator.generate(image)
    assert calls[0] == (0, 10) and calls[-1] == (10, 10) and len(calls) == 11


def test_random_weights_get_open_thresholds_and_trained_ones_sams_defaults():
    upstream = inspect.signature(SamAutomaticMaskGenerator).parameters
    trained = auto_mask_defaults(False)
    assert trained.pred_iou_thresh == upstream["pred_iou_thresh"].default == 0.88
    assert trained.stability_score_thresh == upstream["stability_score_thresh"].default == 0.95
    assert trained.points_per_side == upstream["points_per_side"].default
    random = auto_mask_defaults(True, 16)
    assert (random.pred_iou_thresh, random.stability_score_thresh, random.points_per_side) == (0.0, 0.0, 16)
    assert AutoMaskParams(PREVIEW_SIDE).points < AutoMaskParams(16).points


def test_sams_default_thresholds_pass_no_random_mask_and_the_adapted_ones_do(sam):
    module, image, embedding = sam
    side = 4
    assert not len(compute_auto_masks(module, image, auto_mask_defaults(False, side), embedding).masks)
    assert len(compute_auto_masks(module, image, auto_mask_defaults(True, side), embedding).masks) > 0


# ---- bf16: whatever runs inside, SAM results come back as float32 numpy ------------------------
def test_auto_masks_inside_bf16_autocast_return_float32(sam):
    module, image, embedding = sam
    with torch.autocast("cpu", dtype=torch.bfloat16):
        result = compute_auto_masks(module, image, OPEN, embedding)
    assert result.scores.dtype == np.float32 and len(result.masks) > 0


def test_sam_embedding_under_bf16_autocast_is_float32_and_close(engine, sam):
    _, image, embedding = sam
    adapter = engine.model("sam_tiny").adapter
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        low = adapter.image_embedding(image)
    assert low.features.dtype == np.float32 and isinstance(low.features, np.ndarray)
    assert np.abs(low.features - embedding.features).max() < 0.1  # bf16 keeps ~3 significant digits
    prediction = engine.sam_predict(low, "sam_tiny", np.array([[40.0, 30.0]]), np.array([1]))
    assert prediction.logits.dtype == np.float32 and prediction.scores.dtype == np.float32


def test_sam_predict_inside_bf16_autocast_returns_float32(engine, sam):
    _, _, embedding = sam
    with torch.autocast("cpu", dtype=torch.bfloat16):
        prediction = engine.sam_predict(embedding, "sam_tiny", np.array([[40.0, 30.0]]), np.array([1]))
    assert prediction.logits.dtype == np.float32
