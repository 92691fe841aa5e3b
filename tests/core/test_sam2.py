"""SAM 2 and EdgeTAM (core/models/sam2.py, edgetam.py) against transformers' own path on the same random weights:
`Sam2Processor` (image, points, boxes) → `Sam2Model`/`EdgeTamModel` forward on the pixels → `post_process_masks`.
Ours encodes once and decodes every prompt from the cached embedding (three levels packed in one cached array)."""

from __future__ import annotations

import json
import tempfile

import numpy as np
import pytest
import torch
from transformers import (
    EdgeTamVideoConfig,
    EdgeTamVideoModel,
    Sam2ImageProcessor,
    Sam2Processor,
    Sam2VideoConfig,
    Sam2VideoModel,
)

from core.cache import EmbeddingCache
from core.engine import Engine
from core.models import edgetam, sam2
from core.models.sam import AutoMaskParams, ProgressMaskGenerator, SamEmbedding, SamPrompt, pack_levels, unpack_levels
from core.registry import get

MODELS = ["sam2_tiny", "edgetam_tiny"]
OPEN = AutoMaskParams(points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0)
POINTS, LABELS = np.array([[40.0, 30.0], [70.5, 45.0]]), np.array([1, 0])
BOX = np.array([10.0, 8.0, 80.0, 55.0])


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """A 60 × 90 image: not square, so the resize to the encoder's square scales X and Y differently."""
    return np.random.default_rng(0).integers(0, 256, (60, 90, 3), dtype=np.uint8)


def upstream(module, image: np.ndarray, prompt: SamPrompt, multimask: bool):
    """transformers' documented path: the processor, the model on the pixels, `post_process_masks`.
    Returns (masks (K, H, W) bool, scores (K,), low-resolution logits (K, h, w))."""
    size = module.config.prompt_encoder_config.image_size
    processor = Sam2Processor(Sam2ImageProcessor(size={"height": size, "width": size}))
    prompts = {}
    if prompt.points is not None:
        prompts |= {"input_points": [[prompt.points.tolist()]], "input_labels": [[prompt.labels.tolist()]]}
    if prompt.box is not None:
        prompts["input_boxes"] = [[prompt.box.tolist()]]
    inputs = processor(images=image, **prompts, return_tensors="pt")
    masks = None if prompt.mask_input is None else torch.as_tensor(prompt.mask_input)[None]
    with torch.inference_mode():
        out = module(
            pixel_values=inputs["pixel_values"],
            **{k: inputs[k] for k in ("input_points", "input_labels", "input_boxes") if k in inputs},
            input_masks=masks,
            multimask_output=multimask,
        )
    (masks,) = processor.post_process_masks(out.pred_masks, inputs["original_sizes"])
    return masks[0].numpy(), out.iou_scores[0, 0].numpy(), out.pred_masks[0, 0].numpy()


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def assert_logits_match(ours: np.ndarray, theirs: np.ndarray) -> None:
    """(K, h, w) logits equal to 1e-4 of their scale (transformers' random init gives logits of ~1e-4), and
    correlated ≥ 0.999 per candidate."""
    np.testing.assert_allclose(ours, theirs, atol=1e-4 * np.abs(theirs).max())
    assert min(correlation(o, t) for o, t in zip(ours, theirs, strict=True)) >= 0.999


PROMPTS = {
    "one point": SamPrompt(POINTS[:1], LABELS[:1]),
    "two points": SamPrompt(POINTS, LABELS),
    "box": SamPrompt(box=BOX),
    "points and box": SamPrompt(POINTS, LABELS, BOX),
}


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("kind", list(PROMPTS))
def test_predictions_equal_transformers_forward_on_the_pixels(engine, image, name, kind):
    prompt = PROMPTS[kind]
    embedding = engine.sam_embedding(image, name)
    ours = engine.sam_predict(embedding, name, prompt)
    masks, scores, logits = upstream(engine.model(name).adapter.module, image, prompt, prompt.multimask)
    assert ours.masks.shape == masks.shape == ({"one point": 3}.get(kind, 1), *image.shape[:2])
    assert ours.masks.dtype == bool and ours.scores.dtype == ours.logits.dtype == np.float32
    np.testing.assert_array_equal(ours.masks, masks)
    np.testing.assert_allclose(ours.scores, scores, atol=1e-5)
    assert_logits_match(ours.logits, logits)
    assert 0.0 < ours.masks.mean() < 1.0  # a part of the image: the comparison says something


@pytest.mark.parametrize("name", MODELS)
def test_fed_back_logits_decode_as_transformers_input_masks(engine, image, name):
    embedding = engine.sam_embedding(image, name)
    first = engine.sam_predict(embedding, name, PROMPTS["one point"])
    prompt = SamPrompt(POINTS, LABELS, mask_input=first.logits[[0]])
    ours = engine.sam_predict(embedding, name, prompt)
    masks, scores, logits = upstream(engine.model(name).adapter.module, image, prompt, False)
    np.testing.assert_array_equal(ours.masks, masks)
    assert_logits_match(ours.logits, logits)
    plain = engine.sam_predict(embedding, name, PROMPTS["two points"])
    assert correlation(plain.logits, ours.logits) < 0.99  # the fed-back mask changed the answer


@pytest.mark.parametrize("name", MODELS)
def test_two_points_give_one_mask_the_single_mask_output(engine, image, name):
    """SAM's rule for SAM 2 too: several prompts are not ambiguous, one mask = `multimask_output=False`; a single
    point gives the three candidates of `multimask_output=True`."""
    embedding = engine.sam_embedding(image, name)
    module = engine.model(name).adapter.module
    two = engine.sam_predict(embedding, name, PROMPTS["two points"])
    single, _, _ = upstream(module, image, PROMPTS["two points"], multimask=False)
    multi, _, _ = upstream(module, image, PROMPTS["two points"], multimask=True)
    assert two.masks.shape[0] == 1 and multi.shape[0] == 3
    np.testing.assert_array_equal(two.masks, single)
    one = engine.sam_predict(embedding, name, PROMPTS["one point"])
    np.testing.assert_array_equal(one.masks, upstream(module, image, PROMPTS["one point"], multimask=True)[0])


@pytest.mark.parametrize("name", MODELS)
def test_a_cached_embedding_predicts_exactly_as_a_fresh_one(image, name, tmp_path):
    """The engine caches one array per image (the three levels packed); from memory or from disk in a new engine,
    the rebuilt embedding gives the very same masks and scores."""
    cache = EmbeddingCache(tmp_path)
    first = Engine(device="cpu", cache=cache)
    fresh = first.sam_embedding(image, name)
    assert len(fresh.levels) == 2 and fresh.cached.shape[1:] == fresh.features.shape[1:]
    later = Engine(device="cpu", cache=EmbeddingCache(tmp_path))
    later.model(name).adapter.image_embedding = lambda *a: pytest.fail("encoded the image again")
    for cached in (first.sam_embedding(image, name), later.sam_embedding(image, name)):
        assert cached.key == fresh.key and cached.original_size == fresh.original_size
        for got, want in zip((cached.features, *cached.levels), (fresh.features, *fresh.levels), strict=True):
            np.testing.assert_array_equal(got, want)
        for prompt in PROMPTS.values():
            a, b = first.sam_predict(fresh, name, prompt), later.sam_predict(cached, name, prompt)
            np.testing.assert_array_equal(a.masks, b.masks)
            np.testing.assert_array_equal(a.scores, b.scores)


def test_embed_is_the_spatial_mean_of_the_main_embedding(engine, image):
    """`Engine.embed` of a promptable model: the mean of the (C, h, w) embedding the decoder attends to."""
    row = engine.embed([image], "sam2_tiny")
    embedding = engine.sam_embedding(image, "sam2_tiny")
    assert row.shape == (1, get("sam2_tiny").embed_dim)
    np.testing.assert_allclose(row[0], embedding.features.mean(axis=(1, 2)), atol=1e-6)


def test_levels_pack_into_one_array_and_back_exactly():
    rng = np.random.default_rng(1)
    features = rng.standard_normal((8, 3, 5)).astype(np.float32)
    levels = (rng.standard_normal((2, 12, 20)).astype(np.float32), rng.standard_normal((4, 6, 10)).astype(np.float32))
    packed = pack_levels(features, levels)
    assert packed.shape == (8 + 2 * 16 + 4 * 4, 3, 5)
    np.testing.assert_array_equal(packed[8 + 5, 1, 2], levels[0][0, 4 * 1 + 1, 4 * 2 + 1])  # a block pixel, by hand
    main, back = unpack_levels(packed, ((2, 4), (4, 2)))
    np.testing.assert_array_equal(main, features)
    for got, want in zip(back, levels, strict=True):
        np.testing.assert_array_equal(got, want)
    sam1 = SamEmbedding(features, (30, 50), (30, 50))
    assert sam1.cached is features  # SAM 1 caches its features unchanged


# ---- automatic masks ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_auto_masks_come_from_the_click_decoder_and_reuse_the_embedding(engine, image, name, monkeypatch):
    adapter = engine.model(name).adapter
    embedding = engine.sam_embedding(image, name)
    fresh = adapter.auto_masks(image, None, OPEN)
    assert len(fresh.masks) > 0 and fresh.masks.shape[1:] == image.shape[:2] and fresh.masks.dtype == bool
    np.testing.assert_array_equal(fresh.areas, fresh.masks.sum(axis=(1, 2)))
    assert (np.diff(fresh.areas) <= 0).all()

    monkeypatch.setattr(adapter, "image_embedding", lambda *a: pytest.fail("re-encoded the image"))
    calls: list[tuple[int, int]] = []
    cached = adapter.auto_masks(image, embedding, OPEN, progress=lambda *a: calls.append(a))
    np.testing.assert_array_equal(cached.masks, fresh.masks)
    np.testing.assert_allclose(cached.scores, fresh.scores, atol=1e-6)
    assert calls == [(0, 1), (1, 1)]  # 16 points in one batch of 64

    strict = adapter.auto_masks(image, embedding, AutoMaskParams(4, 0.99, 0.99))
    assert len(strict.masks) < len(cached.masks)


@pytest.mark.parametrize("name", MODELS)
def test_each_automatic_mask_is_a_candidate_of_its_grid_point(engine, image, name):
    """The generator's decode is the click path's: every mask it keeps is one of the three candidates a click on
    its grid point gives (before box NMS, the generator keeps all of them with open thresholds)."""
    adapter = engine.model(name).adapter
    embedding = engine.sam_embedding(image, name)
    predictor = sam2._Sam2Predictor(adapter, embedding)
    generator = ProgressMaskGenerator(
        predictor.model, None, points_per_side=3, pred_iou_thresh=0, stability_score_thresh=0, box_nms_thresh=1
    )
    generator.predictor = predictor
    with torch.inference_mode():
        records = generator.generate(image)
    assert len(records) > 3
    for record in records:
        (point,) = record["point_coords"]
        click = engine.sam_predict(embedding, name, SamPrompt(np.array([point]), np.array([1])))
        same = [(m == record["segmentation"]).all() for m in click.masks]
        assert any(same)
        assert np.isclose(click.scores[same.index(True)], record["predicted_iou"], atol=1e-5)


# ---- architecture and weights ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("family", "video_config", "video_model"),
    [(sam2, Sam2VideoConfig, Sam2VideoModel), (edgetam, EdgeTamVideoConfig, EdgeTamVideoModel)],
)
def test_the_hubs_video_checkpoint_layout_loads_into_the_image_model(family, video_config, video_model):
    """The hub's SAM 2.1 and EdgeTAM folders are `save_pretrained` folders of the video models (config type
    sam2_video / edgetam_video): the image model loads its part, every weight as saved, offline."""
    spec = get(family.FAMILY.tiny)
    image_config = family.config(spec)
    torch.manual_seed(0)
    saved = video_model(
        video_config(
            vision_config=image_config.vision_config,
            prompt_encoder_config=image_config.prompt_encoder_config,
            mask_decoder_config=image_config.mask_decoder_config,
        )
    )
    with tempfile.TemporaryDirectory() as folder:
        saved.save_pretrained(folder)
        assert json.load(open(f"{folder}/config.json"))["model_type"].endswith("_video")
        loaded = family.build_module(spec, folder)
    want = saved.state_dict()
    got = loaded.state_dict()
    assert got.keys() <= want.keys()
    assert all(torch.equal(got[k], want[k]) for k in got)


def test_real_architectures_have_the_published_sizes():
    """Image-path parameters (the hub's totals also count the video memory modules: SAM 2.1 T/S/B+/L 38.9/46/80.8/
    224.4 M, about 7.5 M more each)."""
    from core.models import count_parameters

    millions = {
        name: count_parameters(get(name)) / 1e6
        for name in ("sam2_hiera_tiny", "sam2_hiera_small", "sam2_hiera_base_plus", "sam2_hiera_large", "edgetam")
    }
    expected = {
        "sam2_hiera_tiny": 31.4,
        "sam2_hiera_small": 38.5,
        "sam2_hiera_base_plus": 73.3,
        "sam2_hiera_large": 216.9,
        "edgetam": 9.1,
    }
    for name, value in expected.items():
        assert abs(millions[name] - value) < 0.1, (name, millions[name])
    assert get("sam2_hiera_base_plus").arch == "facebook/sam2.1-hiera-base-plus" and get("edgetam").input_size == 1024
