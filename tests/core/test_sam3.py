"""SAM 3 concept prompts (core/models/sam3.py, Engine.concept_masks) on the tiny random SAM 3: the split path (vision
features once, cached; each prompt on them) equals Sam3Model's one-shot forward on Sam3Processor's inputs, through
the processor's own instance post-processing, for a phrase and for an exemplar box."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.models import Can, build_adapter, family
from core.models.sam3 import clip_bpe_tokenizer
from core.registry import get

THRESHOLD = 0.25  # random weights score every query near sigmoid(0)² = 0.25: some above, some below


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (90, 130, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def adapter():
    return build_adapter(get("sam3_tiny"), "random", None, torch.device("cpu"))


def _upstream(adapter, image, threshold, **prompt):
    """Sam3Processor → Sam3Model (pixels, one shot) → Sam3Processor.post_process_instance_segmentation."""
    processor = adapter.processor
    inputs = processor(images=image, return_tensors="pt", **prompt)
    with torch.inference_mode():
        out = adapter.module(**{k: v for k, v in inputs.items() if k != "original_sizes"})
    return processor.post_process_instance_segmentation(
        out, threshold=threshold, mask_threshold=0.5, target_sizes=inputs["original_sizes"].tolist()
    )[0]


def _same(ours, upstream):
    order = torch.argsort(upstream["scores"], descending=True)
    assert len(ours.scores) == len(order) > 0
    np.testing.assert_allclose(ours.scores, upstream["scores"][order].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.boxes, upstream["boxes"][order].numpy(), rtol=1e-5, atol=1e-4)
    assert np.array_equal(ours.masks, upstream["masks"][order].bool().numpy())
    assert np.all(np.diff(ours.scores) <= 0)


def test_a_phrase_gives_the_processor_s_own_instances(engine, adapter, image):
    upstream = _upstream(adapter, image, THRESHOLD, text="a cat")
    ours = engine.concept_masks(image, "a cat", "sam3_tiny", threshold=THRESHOLD)
    assert ours.masks.shape == (len(ours.scores), 90, 130) and ours.masks.dtype == bool
    assert ours.boxes.dtype == np.float32 and ours.scores.dtype == np.float32
    assert 0 < len(ours.scores) < 10  # the threshold splits the 10 queries
    _same(ours, upstream)


def test_an_exemplar_box_alone_gives_the_processor_s_own_instances(engine, adapter, image):
    box = [10.0, 20.0, 60.0, 70.0]
    upstream = _upstream(adapter, image, 0.2, input_boxes=[[box]])
    _same(engine.concept_masks(image, "", "sam3_tiny", exemplar_box=np.array(box), threshold=0.2), upstream)


def test_a_phrase_with_a_box_and_the_threshold(engine, adapter, image):
    box = [30.0, 5.0, 120.0, 80.0]
    upstream = _upstream(adapter, image, 0.2, text="red car", input_boxes=[[box]])
    _same(engine.concept_masks(image, "red car", "sam3_tiny", np.array(box), threshold=0.2), upstream)
    nothing = engine.concept_masks(image, "red car", "sam3_tiny", np.array(box), threshold=0.99)
    assert nothing.masks.shape == (0, 90, 130) and nothing.boxes.shape == (0, 4)
    assert 0.2 < nothing.best_score < 0.99


def test_the_vision_encoder_runs_once_per_image(engine, image, monkeypatch):
    loaded = engine.model("sam3_tiny")
    engine.concept_masks(image, "dog", "sam3_tiny", threshold=0.2)  # features now cached
    calls = []
    encode = loaded.adapter.vision_features
    monkeypatch.setattr(loaded.adapter, "vision_features", lambda im: calls.append(1) or encode(im))
    engine.concept_masks(image, "a bird", "sam3_tiny", threshold=0.2)
    engine.concept_masks(image, "", "sam3_tiny", np.array([0, 0, 50, 50]), threshold=0.2)
    assert calls == []
    engine.concept_masks(image[:, ::-1].copy(), "a bird", "sam3_tiny", threshold=0.2)
    assert calls == [1]


def test_bad_prompts_and_long_phrases(engine, image):
    with pytest.raises(ValueError, match="phrase or draw"):
        engine.concept_masks(image, "   ", "sam3_tiny")
    long = engine.concept_masks(image, "cat " * 500, "sam3_tiny", threshold=0.0)  # cut at 32 tokens, no crash
    assert long.masks.shape == (10, 90, 130)
    engine.concept_masks(image, "猫 ?!", "sam3_tiny", threshold=0.0)
    with pytest.raises(ValueError, match="masks from a phrase come from SAM 3"):
        engine.concept_masks(image, "cat", "sam_tiny")


def test_the_tokenizer_is_clip_s_bpe_vocabulary():
    """The same ids as open_clip's tokenizer (OpenAI CLIP's vocabulary, which SAM 3 uses), wrapped in <|startoftext|>
    … <|endoftext|> and padded with <|endoftext|> as transformers' CLIP tokenizer does."""
    from open_clip.tokenizer import SimpleTokenizer

    tokenizer = clip_bpe_tokenizer()
    for text in ("a red car", "Two dogs, playing!", "naïve café"):
        assert tokenizer(text)["input_ids"] == [49406, *SimpleTokenizer().encode(text), 49407]
    padded = tokenizer("cat", padding="max_length", max_length=32)
    assert padded["input_ids"][:3] == [49406, 2368, 49407] and sum(padded["attention_mask"]) == 3


def test_the_descriptor():
    described = family("sam3")
    assert described.can == {Can.CONCEPTS} and described.weights.gated
    assert get(described.default).arch == "facebook/sam3" and get(described.tiny).tiny
