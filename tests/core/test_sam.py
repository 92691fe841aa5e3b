"""SAM in its one room (core/models/sam.py): the prompt object and its multimask rule, predictions against
SamPredictor, the automatic mask generator on a cached embedding, and the bf16 paths that must come back as
float32 numpy. All on the tiny random SAM."""

from __future__ import annotations

import ast
import inspect
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from segment_anything import SamAutomaticMaskGenerator, SamPredictor

from core.data import image_hash
from core.models.sam import (
    PREVIEW_SIDE,
    AutoMaskParams,
    ProgressMaskGenerator,
    SamPrompt,
    auto_mask_defaults,
)

ROOT = Path(__file__).resolve().parents[2]
ONE_POINT = SamPrompt(np.array([[40.0, 30.0]]), np.array([1]))


# ---- the prompt object and SAM's multimask rule ------------------------------------------------
def test_three_candidates_only_for_a_single_point_without_box_or_previous_mask():
    point, label = np.array([[10.0, 20.0]]), np.array([1])
    two, labels = np.array([[10.0, 20.0], [30.0, 5.0]]), np.array([1, 0])
    box, logits = np.array([1.0, 2.0, 50.0, 40.0]), np.zeros((1, 8, 8), np.float32)
    assert SamPrompt(point, label).multimask
    assert not SamPrompt(two, labels).multimask
    assert not SamPrompt(point, label, box).multimask
    assert not SamPrompt(box=box).multimask
    assert not SamPrompt(point, label, mask_input=logits).multimask


@pytest.mark.parametrize("n_points", [1, 2])
def test_predictions_equal_sampredictor_with_its_multimask_rule(engine, sam, n_points):
    """Two points: SAM's single-mask output, as SamPredictor.predict(multimask_output=False) gives it."""
    adapter, image, embedding = sam
    points, labels = np.array([[40.0, 30.0], [10.0, 50.0]])[:n_points], np.array([1, 0])[:n_points]
    predictor = SamPredictor(adapter.module)
    predictor.set_image(image)
    masks, scores, logits = predictor.predict(points, labels, multimask_output=n_points == 1)
    ours = engine.sam_predict(embedding, "sam_tiny", SamPrompt(points, labels))
    assert ours.masks.shape == masks.shape == ({1: 3, 2: 1}[n_points], *image.shape[:2])
    np.testing.assert_allclose(ours.logits, logits, atol=1e-4)
    np.testing.assert_allclose(ours.scores, scores, atol=1e-5)


def test_the_embedding_carries_its_images_hash_computed_or_cached(engine, sam):
    """The page keys its state by `embedding.key`: a click never hashes the image again (#24)."""
    _, image, embedding = sam  # computed
    again = engine.sam_embedding(image, "sam_tiny")  # a cache hit
    assert embedding.key == again.key == image_hash(image)
    np.testing.assert_array_equal(again.features, embedding.features)


def test_the_engine_reaches_sam_through_its_adapter_not_the_analyses():
    tree = ast.parse((ROOT / "core" / "engine.py").read_text())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not {m for m in modules if m.startswith("core.analysis")}, modules


def test_auto_masks_take_the_embedding_the_page_has(engine, sam, monkeypatch):
    """`Engine.sam_auto_masks` uses the embedding it is given: no encoder run, no cache look-up."""
    adapter, image, embedding = sam
    expected = adapter.auto_masks(image, embedding, OPEN)
    monkeypatch.setattr(engine, "sam_embedding", lambda *a: pytest.fail("looked the embedding up again"))
    monkeypatch.setattr(adapter.module.image_encoder, "forward", lambda *_: pytest.fail("re-encoded the image"))
    got = engine.sam_auto_masks(image, embedding, "sam_tiny", OPEN)
    np.testing.assert_array_equal(got.masks, expected.masks)


# ---- automatic masks on the tiny random SAM ----------------------------------------------------
OPEN = AutoMaskParams(points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0)


@pytest.fixture(scope="module")
def sam(engine):
    """(adapter, a 60 × 90 image, its embedding) of the tiny SAM."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (60, 90, 3), dtype=np.uint8)
    return engine.model("sam_tiny").adapter, image, engine.sam_embedding(image, "sam_tiny")


def test_auto_masks_are_sorted_by_area_and_reuse_the_cached_embedding(sam, monkeypatch):
    adapter, image, embedding = sam
    fresh = adapter.auto_masks(image, None, OPEN)
    assert len(fresh.masks) > 0 and fresh.masks.shape[1:] == (60, 90) and fresh.masks.dtype == bool
    np.testing.assert_array_equal(fresh.areas, fresh.masks.sum(axis=(1, 2)))
    assert (np.diff(fresh.areas) <= 0).all()

    monkeypatch.setattr(adapter.module.image_encoder, "forward", lambda *_: pytest.fail("re-encoded the image"))
    cached = adapter.auto_masks(image, embedding, OPEN)
    np.testing.assert_array_equal(cached.masks, fresh.masks)
    np.testing.assert_allclose(cached.scores, fresh.scores, atol=1e-5)


def test_auto_masks_thresholds_filter(sam):
    adapter, image, embedding = sam
    strict = adapter.auto_masks(image, embedding, AutoMaskParams(4, 0.99, 0.99))
    loose = adapter.auto_masks(image, embedding, OPEN)
    assert len(strict.masks) < len(loose.masks)


def test_auto_masks_hold_the_guard(sam, monkeypatch):
    adapter, image, embedding = sam
    lock, held = threading.Lock(), []
    real = adapter.module.mask_decoder.forward
    monkeypatch.setattr(
        adapter.module.mask_decoder, "forward", lambda *a, **k: held.append(lock.locked()) or real(*a, **k)
    )
    adapter.auto_masks(image, embedding, OPEN, guard=lock)
    assert held and all(held) and not lock.locked()


def test_progress_counts_every_point_batch_and_changes_no_mask(sam):
    adapter, image, embedding = sam
    params = AutoMaskParams(8, 0.0, 0.0, points_per_batch=16)  # 64 prompts: 4 batches
    calls: list[tuple[int, int]] = []
    ours = adapter.auto_masks(image, embedding, params, progress=lambda *a: calls.append(a))
    assert calls == [(i, 4) for i in range(5)]  # from 0 to the total, one step per batch

    plain = SamAutomaticMaskGenerator(
        adapter.module, points_per_side=8, points_per_batch=16, pred_iou_thresh=0.0, stability_score_thresh=0.0
    )
    with torch.inference_mode():
        records = sorted(plain.generate(image), key=lambda r: -r["area"])
    assert len(ours.masks) == len(records) > 0
    np.testing.assert_array_equal(ours.masks, [r["segmentation"] for r in records])
    np.testing.assert_allclose(ours.scores, [r["predicted_iou"] for r in records], atol=1e-5)
    np.testing.assert_allclose(ours.stability, [r["stability_score"] for r in records], atol=1e-5)


def test_progress_total_covers_every_crop_layer(sam):
    adapter, image, _ = sam
    calls: list[tuple[int, int]] = []
    generator = ProgressMaskGenerator(
        adapter.module,
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
    adapter, image, embedding = sam
    side = 4
    assert not len(adapter.auto_masks(image, embedding, auto_mask_defaults(False, side)).masks)
    assert len(adapter.auto_masks(image, embedding, auto_mask_defaults(True, side)).masks) > 0


# ---- bf16: whatever runs inside, SAM results come back as float32 numpy ------------------------
def test_auto_masks_inside_bf16_autocast_return_float32(sam):
    adapter, image, embedding = sam
    with torch.autocast("cpu", dtype=torch.bfloat16):
        result = adapter.auto_masks(image, embedding, OPEN)
    assert result.scores.dtype == np.float32 and len(result.masks) > 0


def test_sam_embedding_under_bf16_autocast_is_float32_and_close(engine, sam):
    adapter, image, embedding = sam
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        low = adapter.image_embedding(image)
    assert low.features.dtype == np.float32 and isinstance(low.features, np.ndarray)
    assert np.abs(low.features - embedding.features).max() < 0.1  # bf16 keeps ~3 significant digits
    prediction = engine.sam_predict(low, "sam_tiny", ONE_POINT)
    assert prediction.logits.dtype == np.float32 and prediction.scores.dtype == np.float32


def test_sam_predict_inside_bf16_autocast_returns_float32(engine, sam):
    _, _, embedding = sam
    with torch.autocast("cpu", dtype=torch.bfloat16):
        prediction = engine.sam_predict(embedding, "sam_tiny", ONE_POINT)
    assert prediction.logits.dtype == np.float32


def test_a_click_does_not_wait_for_another_images_encoding(engine):
    """The model's forward lock held (another session's image being encoded): a click still gets its masks."""
    image = np.random.default_rng(5).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    embedding = engine.sam_embedding(image, "sam_tiny")
    loaded = engine.model("sam_tiny")
    done = threading.Event()
    with loaded.lock:  # as Engine._forward holds it during an encode
        worker = threading.Thread(
            target=lambda: (
                engine.sam_predict(embedding, "sam_tiny", SamPrompt(np.array([[10.0, 20.0]]), np.array([1]))),
                done.set(),
            ),
            daemon=True,
        )
        worker.start()
        assert done.wait(timeout=20), "the click waited for the encoder's lock"
