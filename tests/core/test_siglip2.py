"""SigLIP 2: image and text embeddings equal to transformers' own path on the same random weights, the per-class
sigmoid zero-shot rule against a hand computation and against the model's own logits, the real-weights loading
path (a `save_pretrained` folder), the registry's published sizes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoProcessor, SiglipImageProcessor, SiglipModel, SiglipProcessor

from core import registry, weights
from core.analysis.retrieval import ZeroShotRule, normalize
from core.engine import Engine
from core.models import Can, build_adapter, can, count_parameters
from core.models.siglip2 import STAND_IN_NOTE, _config, stand_in_tokenizer

TEXTS = ["a photo of a cat.", "A DRAWING of a dog", "naïve café ☕", ""]
# the image processor as the fixed-resolution checkpoints' preprocessor_config.json describes it, at the tiny size
HUB_PREPROCESSOR = {
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": True,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
    "image_processor_type": "SiglipImageProcessor",
    "resample": 2,
    "rescale_factor": 1 / 255,
    "size": {"height": 64, "width": 64},
}


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(normalize(a) * normalize(b), axis=1)


@pytest.fixture(scope="module")
def upstream(engine) -> tuple[SiglipModel, SiglipProcessor]:
    """transformers' model with the engine's random weights, and a processor built the way the hub's files build it."""
    model = SiglipModel(_config(registry.get("siglip2_tiny")))
    model.load_state_dict(engine.model("siglip2_tiny").adapter.module.state_dict())
    processor = SiglipProcessor(SiglipImageProcessor.from_dict(HUB_PREPROCESSOR), stand_in_tokenizer())
    return model.eval(), processor


def _upstream_text(model, processor, texts) -> torch.Tensor:
    tokens = processor(text=texts, padding="max_length", truncation=True, max_length=64, return_tensors="pt")
    with torch.no_grad():
        return model.get_text_features(**tokens).pooler_output


def test_image_embeddings_equal_transformers_get_image_features(engine, upstream, images):
    model, processor = upstream
    ours = engine.embed(images, "siglip2_tiny")
    pixels = processor(images=[Image.fromarray(im) for im in images], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        theirs = model.get_image_features(pixel_values=pixels).pooler_output.numpy()
    assert ours.shape == (3, 32) and ours.dtype == np.float32
    assert _cosines(ours, theirs).min() >= 0.9999
    np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_text_embeddings_equal_transformers_get_text_features(engine, upstream):
    model, processor = upstream
    ours = engine.embed_text(TEXTS, "siglip2_tiny")
    theirs = _upstream_text(model, processor, TEXTS).numpy()
    assert ours.shape == (4, 32) and ours.dtype == np.float32
    assert _cosines(ours, theirs).min() >= 0.9999
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    # the tokenizer lowercases (SigLIP 2's training default), so case does not change the embedding
    np.testing.assert_allclose(engine.embed_text(["a drawing of a dog"], "siglip2_tiny")[0], ours[1], atol=1e-6)


def test_stand_in_tokenizer_encodes_every_text_as_its_bytes_within_the_vocabulary():
    tokenizer = stand_in_tokenizer()
    ids = tokenizer("Café ☕")["input_ids"]
    assert ids == [5 + b for b in "café▁☕".encode()]  # lowercased, the space as Gemma's ▁, then UTF-8 bytes
    assert max(ids) < registry.get("siglip2_tiny").config["text_config"]["vocab_size"]
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.bos_token_id) == (0, 1, 2)  # Gemma's ids


def _hand_sigmoid(image: np.ndarray, classes: np.ndarray, scale: float, bias: float) -> np.ndarray:
    out = np.zeros((len(image), len(classes)))
    for i, x in enumerate(image):
        for j, c in enumerate(classes):
            cosine = float(np.dot(x, c) / (np.linalg.norm(x) * np.linalg.norm(c)))
            out[i, j] = 1.0 / (1.0 + math.exp(-(scale * cosine + bias)))
    return out


def test_sigmoid_zero_shot_probabilities_match_a_hand_computation():
    rng = np.random.default_rng(3)
    image, classes = rng.normal(size=(5, 16)), rng.normal(size=(4, 16))
    rule = ZeroShotRule(sigmoid=True, scale=math.exp(2.3), bias=-3.0, model="SigLIP 2")
    probs = rule.probabilities(image, classes)
    assert probs.shape == (5, 4) and probs.dtype == np.float32
    np.testing.assert_allclose(probs, _hand_sigmoid(image, classes, math.exp(2.3), -3.0), atol=1e-6)
    assert not np.allclose(probs.sum(axis=1), 1.0)  # each class on its own
    assert "need not sum to 1" in rule.describe() and "sigmoid" in rule.describe()
    softmax = ZeroShotRule(sigmoid=False, scale=100.0).probabilities(image, classes)
    np.testing.assert_allclose(softmax.sum(axis=1), 1.0, atol=1e-5)


def test_siglip2_rule_uses_the_models_learned_scale_and_bias_like_its_own_logits(upstream):
    """The rule, on our embeddings, equals sigmoid(logits_per_image) of transformers' forward (one prompt a class)."""
    spec = registry.get("siglip2_tiny")
    adapter = build_adapter(spec, "random", None, torch.device("cpu"))  # a private copy: its scale is changed here
    with torch.no_grad():
        adapter.module.logit_scale.fill_(math.log(10.0))
        adapter.module.logit_bias.fill_(-2.5)
    rule = adapter.zero_shot_rule()
    assert rule.sigmoid and rule.scale == pytest.approx(10.0) and rule.bias == pytest.approx(-2.5)
    rng = np.random.default_rng(4)
    images = [rng.integers(0, 256, size=(70, 90, 3), dtype=np.uint8) for _ in range(3)]
    with torch.no_grad():
        image, text = adapter.embed(images).numpy(), adapter.embed_text(TEXTS[:3]).numpy()
    probs = rule.probabilities(image, text)
    np.testing.assert_allclose(probs, _hand_sigmoid(image, text, 10.0, -2.5), atol=1e-5)

    _, processor = upstream
    inputs = processor(
        text=TEXTS[:3],
        images=[Image.fromarray(im) for im in images],
        padding="max_length",
        truncation=True,
        max_length=64,
        return_tensors="pt",
    )
    with torch.no_grad():
        logits = adapter.module(**inputs).logits_per_image
    np.testing.assert_allclose(probs, torch.sigmoid(logits).numpy(), atol=1e-5)


def test_engine_gives_each_family_its_rule_and_tokenizer_note(engine):
    siglip, clip = engine.zero_shot_rule("siglip2_tiny"), engine.zero_shot_rule("clip_tiny")
    assert siglip.sigmoid and (siglip.scale, siglip.bias) == (1.0, 0.0)  # transformers' init: exp(0), 0
    assert not clip.sigmoid and clip.scale == 100.0
    assert engine.tokenizer_note("siglip2_tiny") == STAND_IN_NOTE and engine.tokenizer_note("clip_tiny") == ""
    with pytest.raises(ValueError, match="CLIP, SigLIP 2"):
        engine.zero_shot_rule("dinov2_tiny")


def test_a_saved_checkpoint_folder_loads_with_its_own_processor(engine, upstream, tmp_path, images):
    """The real-weights path, offline: a `save_pretrained` folder of model + processor, as the hub snapshot holds."""
    model, processor = upstream
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    assert isinstance(AutoProcessor.from_pretrained(tmp_path), SiglipProcessor)
    adapter = build_adapter(registry.get("siglip2_tiny"), "hf", str(tmp_path), torch.device("cpu"))
    assert adapter.tokenizer_note == ""  # its own tokenizer, not the stand-in
    with torch.no_grad():
        np.testing.assert_allclose(adapter.embed(images).numpy(), engine.embed(images, "siglip2_tiny"), atol=1e-5)
        np.testing.assert_allclose(
            adapter.embed_text(TEXTS).numpy(), _upstream_text(model, processor, TEXTS).numpy(), atol=1e-5
        )


def test_a_weights_folder_without_its_tokenizer_is_refused_in_one_sentence(upstream, tmp_path):
    upstream[0].save_pretrained(tmp_path)  # weights only
    with pytest.raises(ValueError, match="no processor or tokenizer files"):
        build_adapter(registry.get("siglip2_tiny"), "hf", str(tmp_path), torch.device("cpu"))


def test_text_masks_capability_is_clips_only(engine, images):
    assert can(registry.get("clip_tiny"), Can.DENSE_TEXT) and not can(registry.get("siglip2_tiny"), Can.DENSE_TEXT)
    assert can(registry.get("siglip2_tiny"), Can.TEXT) and can(registry.get("siglip2_base"), Can.EMBED)
    with pytest.raises(ValueError, match="CLIP"):
        engine.clip_patch_embeddings(images[0], "siglip2_tiny")


def test_registry_entries_have_the_published_sizes():
    for name, arch, size, patch, dim, millions in (
        ("siglip2_base", "google/siglip2-base-patch16-224", 224, 16, 768, 375),
        ("siglip2_large", "google/siglip2-large-patch16-256", 256, 16, 1024, 882),
        ("siglip2_so400m", "google/siglip2-so400m-patch14-384", 384, 14, 1152, 1136),
    ):
        spec = registry.get(name)
        assert (spec.family, spec.arch, spec.input_size, spec.patch_size, spec.embed_dim) == (
            "siglip2",
            arch,
            size,
            patch,
            dim,
        )
        assert abs(count_parameters(spec) / 1e6 - millions) < 1, name
    assert str(registry.parse("siglip2_base")) == "siglip2_base@hf"


def test_the_hub_snapshot_counts_as_cached_only_with_its_tokenizer_and_processor(monkeypatch):
    """Real weights never meet the stand-in tokenizer: the cache holds the model only with its text/image files."""
    asked, present = [], {"config.json", "model.safetensors"}

    def hub_file(repo: str, filename: str) -> str | None:
        asked.append((repo, filename))
        return f"/hub/{repo}/{filename}" if filename in present else None

    monkeypatch.setattr(weights, "_hub_file", hub_file)
    monkeypatch.setenv("VFM_LENS_OFFLINE", "1")
    status = weights.locate("siglip2_base")
    assert status.is_random and "make weights MODELS=siglip2_base" in status.message
    assert {f for repo, f in asked if repo == "google/siglip2-base-patch16-224"} >= {
        "tokenizer.json",
        "tokenizer_config.json",
        "preprocessor_config.json",
    }
    present |= {"tokenizer.json", "tokenizer_config.json", "preprocessor_config.json"}
    status = weights.locate("siglip2_base")
    assert status.source == "cache" and status.path == "/hub/google/siglip2-base-patch16-224"
    assert Engine(device="cpu").weights_status("siglip2_tiny").message.endswith("(tiny test model).")


def test_fast_paths_run_sdpa_and_leave_the_embeddings_unchanged(engine, images):
    from core.models.fast import apply_fast_paths

    adapter = build_adapter(registry.get("siglip2_tiny"), "random", None, torch.device("cpu"))
    before = engine.embed(images, "siglip2_tiny")
    fast = apply_fast_paths(adapter, "cpu")
    assert fast.attention.startswith("sdpa") and adapter.module.config._attn_implementation == "sdpa"
    with torch.no_grad():
        np.testing.assert_allclose(adapter.embed(images).numpy(), before, atol=1e-5)
