import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image
from segment_anything import SamPredictor

from core import engine as engine_module
from core.engine import Engine, image_hash, run_batched
from core.models import sam as sam_module
from core.models.sam import SamPrompt
from tests.core.test_pixels import cosines, levels

ROOT = Path(__file__).resolve().parents[2]
TOL = 1e-5  # fp32 on CPU, same weights, same inputs: only summation order may differ


def test_embed_shapes_and_dtypes_for_every_family(engine, images):
    for model, dim in (("clip_tiny", 32), ("dinov2_tiny", 32), ("dinov2_tiny_reg", 32), ("sam_tiny", 32)):
        out = engine.embed(images, model)
        assert out.shape == (3, dim) and out.dtype == np.float32 and np.isfinite(out).all()
    assert engine.embed([], "dinov2_tiny").shape == (0, 32)


def test_patch_tokens_shape_for_any_layer_and_size(engine, images):
    assert engine.patch_tokens(images, "dinov2_tiny", size=112).shape == (3, 8, 8, 32)
    assert engine.patch_tokens(images, "dinov2_tiny_reg", layer=1, size=70).shape == (3, 5, 5, 32)
    with pytest.raises(ValueError, match="multiple of 14"):
        engine.patch_tokens(images, "dinov2_tiny", size=100)
    with pytest.raises(ValueError, match="DINOv2"):
        engine.patch_tokens(images, "clip_tiny")


def test_clip_equals_open_clip_encode_image_with_its_preprocessing(engine, images):
    ours = engine.embed(images, "clip_tiny")
    theirs_model, _, preprocess = open_clip.create_model_and_transforms("vfm-lens-clip-tiny", pretrained=None)
    theirs_model.load_state_dict(engine.model("clip_tiny").adapter.module.state_dict())
    theirs_model.eval()
    adapter = engine.model("clip_tiny").adapter
    pixels, theirs_pixels = adapter.pixels(images), torch.stack([preprocess(Image.fromarray(im)) for im in images])
    # resampled on the arrays, not in PIL: a pixel may differ by one level of 255 (tests/core/test_pixels.py)
    assert levels(pixels, theirs_pixels, adapter._recipe.std).max() <= 1.001
    with torch.no_grad():
        np.testing.assert_allclose(ours, theirs_model.encode_image(pixels).numpy(), atol=TOL, rtol=TOL)
        theirs = theirs_model.encode_image(theirs_pixels).numpy()
    assert cosines(ours, theirs).min() >= 0.9999


def _upstream_dinov2(engine, name):
    module = engine.model(name).adapter.module
    copy = type(module)(module.config).eval()
    copy.load_state_dict(module.state_dict())
    return copy


def test_dinov2_equals_transformers_model_and_the_reference_transform(engine, images):
    from torchvision import transforms as T

    upstream = _upstream_dinov2(engine, "dinov2_tiny_reg")
    # the DINOv2 eval transform, written out independently: resize 256/224 bicubic, centre crop, ImageNet norm
    transform = T.Compose(
        [
            T.ToTensor(),
            T.Resize(64, interpolation=T.InterpolationMode.BICUBIC, antialias=True),
            T.CenterCrop(56),
            T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ]
    )
    pixels = torch.stack([transform(Image.fromarray(im)) for im in images])
    with torch.no_grad():
        out = upstream(pixel_values=pixels, output_hidden_states=True)
    np.testing.assert_allclose(engine.embed(images, "dinov2_tiny_reg"), out.pooler_output.numpy(), atol=2e-2)
    ours_pixels = engine.model("dinov2_tiny_reg").adapter.pixels(images)
    assert (ours_pixels - pixels).abs().mean() < 0.02  # resampling kernels differ slightly, the recipe may not

    square = engine.model("dinov2_tiny_reg").adapter.pixels(images, 56)
    with torch.no_grad():
        out = upstream(pixel_values=square, output_hidden_states=True)
    last = engine.patch_tokens(images, "dinov2_tiny_reg", size=56)
    np.testing.assert_allclose(last, out.last_hidden_state[:, 5:].reshape(3, 4, 4, 32).numpy(), atol=TOL)
    first = engine.patch_tokens(images, "dinov2_tiny_reg", layer=1, size=56)
    np.testing.assert_allclose(first, out.hidden_states[1][:, 5:].reshape(3, 4, 4, 32).numpy(), atol=TOL)


def test_sam_equals_sam_predictor(engine, images):
    image = images[0]
    module = engine.model("sam_tiny").adapter.module
    upstream = sam_module.build_module(engine.model("sam_tiny").adapter.spec, None).eval()
    upstream.load_state_dict(module.state_dict())
    predictor = SamPredictor(upstream)
    predictor.set_image(image)
    points, labels, box = np.array([[30.0, 40.0], [90.0, 20.0]]), np.array([1, 0]), np.array([10, 10, 100, 80])
    masks, scores, logits = predictor.predict(points[:1], labels[:1], multimask_output=True)

    embedding = engine.sam_embedding(image, "sam_tiny")
    ours = engine.sam_predict(embedding, "sam_tiny", SamPrompt(points[:1], labels[:1]))
    assert ours.masks.shape == masks.shape == (3, 96, 128) and ours.masks.dtype == bool
    np.testing.assert_allclose(ours.logits, logits, atol=1e-4)
    np.testing.assert_allclose(ours.scores, scores, atol=1e-5)
    assert (ours.masks == masks).mean() > 0.999

    masks, scores, logits = predictor.predict(points, labels, box, ours.logits[:1], multimask_output=False)
    again = engine.sam_predict(embedding, "sam_tiny", SamPrompt(points, labels, box, ours.logits[:1]))
    assert again.masks.shape == masks.shape == (1, 96, 128)
    np.testing.assert_allclose(again.logits, logits, atol=1e-4)
    np.testing.assert_allclose(again.scores, scores, atol=1e-5)


def test_sam_embed_is_the_spatial_mean(engine, images):
    means = engine.embed(images[:2], "sam_tiny")
    np.testing.assert_allclose(
        means[1], engine.sam_embedding(images[1], "sam_tiny").features.mean(axis=(1, 2)), atol=1e-6
    )


def test_no_shared_current_image_between_sessions(engine, images):
    a, b = (engine.sam_embedding(im, "sam_tiny") for im in images[:2])
    point = SamPrompt(np.array([[20.0, 20.0]]), np.array([1]))
    alone = engine.sam_predict(a, "sam_tiny", point).logits
    engine.sam_predict(b, "sam_tiny", point)  # another session's click in between
    np.testing.assert_array_equal(engine.sam_predict(a, "sam_tiny", point).logits, alone)


def test_results_come_from_cache_on_a_second_call_and_after_restart(engine, images, monkeypatch):
    first = engine.embed(images, "dinov2_tiny")
    adapter = engine.model("dinov2_tiny").adapter
    monkeypatch.setattr(adapter, "embed", lambda *_: pytest.fail("recomputed despite the cache"))
    np.testing.assert_array_equal(engine.embed(images, "dinov2_tiny"), first)
    restarted = Engine(device="cpu", cache=engine.cache)  # same disk cache, empty memory
    monkeypatch.setattr(engine_module, "build_adapter", lambda *a, **k: adapter)
    np.testing.assert_array_equal(restarted.embed(images, "dinov2_tiny"), first)


def test_only_missing_images_are_computed_and_progress_reaches_the_end(images):
    fresh = Engine(device="cpu", cache=None, batch_size=2)
    fresh.embed(images[:1], "dinov2_tiny")
    seen, calls = [], []
    adapter = fresh.model("dinov2_tiny").adapter
    real = adapter.embed
    adapter.embed = lambda batch: calls.append(len(batch)) or real(batch)
    fresh.embed(images, "dinov2_tiny", progress=lambda done, total: seen.append((done, total)))
    assert calls == [2] and seen[0] == (1, 3) and seen[-1] == (3, 3)


def test_unavailable_weights_fall_back_to_labelled_random_and_never_share_cache_keys():
    fresh = Engine(device="cpu", cache=None)
    loaded = fresh.model("dinov2_small")  # offline in tests: no weights anywhere
    assert loaded.status.source == "unavailable" and loaded.status.is_random
    assert loaded.key == "dinov2_small@random"
    assert "make weights MODELS=dinov2_small" in loaded.status.message


def test_concurrent_first_use_loads_a_model_once(monkeypatch):
    fresh = Engine(device="cpu", cache=None)
    builds = []
    real = engine_module.build_adapter

    def counting(*args, **kwargs):
        builds.append(args[0].name)
        return real(*args, **kwargs)

    monkeypatch.setattr(engine_module, "build_adapter", counting)
    threads = [threading.Thread(target=fresh.model, args=("dinov2_tiny",)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert builds == ["dinov2_tiny"] and fresh.load_counts == {"dinov2_tiny@random": 1}


def test_least_recently_used_model_is_evicted():
    fresh = Engine(device="cpu", cache=None, max_models=2)
    for name in ("dinov2_tiny", "clip_tiny", "dinov2_tiny", "sam_tiny"):
        fresh.model(name)
    assert list(fresh._models) == ["dinov2_tiny@random", "sam_tiny@random"]


def test_out_of_memory_halves_the_batch_and_carries_on():
    seen = []

    def fn(batch):
        seen.append(len(batch))
        if len(batch) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return [x * 10 for x in batch]

    assert run_batched(list(range(7)), fn, batch_size=8) == [x * 10 for x in range(7)]
    assert seen == [7, 4, 2, 2, 2, 1]


def test_out_of_memory_at_batch_one_is_raised():
    def fn(batch):
        raise torch.OutOfMemoryError("simulated")

    with pytest.raises(torch.OutOfMemoryError):
        run_batched([1, 2], fn, batch_size=2)


def test_image_hash_depends_on_content_and_shape():
    a = np.zeros((4, 6, 3), np.uint8)
    assert image_hash(a) == image_hash(a.copy())
    assert image_hash(a) != image_hash(a.reshape(6, 4, 3))
    assert image_hash(a) != image_hash(a.view(np.int8))
    b = a.copy()
    b[0, 0, 0] = 1
    assert image_hash(a) != image_hash(b)


def test_a_model_that_does_not_fit_evicts_the_least_recently_used_and_says_so(monkeypatch):
    import core.engine as engine_module

    fresh = Engine(device="cpu", cache=None, max_models=4)
    fresh.model("dinov2_tiny")
    fresh.model("clip_tiny")
    real_build, attempts = engine_module.build_adapter, []

    def build_or_oom(spec, *args):  # the device is "full" until one model has been unloaded
        attempts.append(spec.name)
        if spec.name == "sam_tiny" and len(attempts) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_build(spec, *args)

    monkeypatch.setattr(engine_module, "build_adapter", build_or_oom)
    fresh.model("sam_tiny")
    assert attempts == ["sam_tiny", "sam_tiny"]
    assert fresh.loaded_models() == ["clip_tiny@random", "sam_tiny@random"]
    assert "dinov2_tiny@random" in fresh.notices[-1] and "did not fit" in fresh.notices[-1]


def test_a_model_that_fits_nowhere_raises_a_clear_memory_error(monkeypatch):
    import core.engine as engine_module

    def always_oom(spec, *args):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(engine_module, "build_adapter", always_oom)
    with pytest.raises(MemoryError, match="does not fit"):
        Engine(device="cpu", cache=None).model("sam_tiny")


def test_layer_tokens_run_one_forward_pass_equal_each_layer_and_fill_the_per_layer_cache(images):
    fresh = Engine(device="cpu", cache=None)
    adapter = fresh.model("dinov2_tiny_reg").adapter
    expected = [adapter.patch_tokens(images, 56, layer=k).numpy() for k in (1, 2)]  # one pass per layer
    forwards, real = [], adapter.module.forward
    adapter.module.forward = lambda *a, **k: forwards.append(1) or real(*a, **k)
    seen = []
    tokens = fresh.layer_tokens(images, "dinov2_tiny_reg", size=56, progress=lambda d, t: seen.append((d, t)))
    assert tokens.shape == (2, 3, 4, 4, 32) and tokens.dtype == np.float32
    for k in (0, 1):
        np.testing.assert_allclose(tokens[k], expected[k], atol=TOL)
    assert len(forwards) == 1 and seen[-1] == (3, 3)  # every layer of every image from a single forward pass
    adapter.module.forward = lambda *a, **k: pytest.fail("recomputed despite the per-layer cache")
    np.testing.assert_array_equal(fresh.patch_tokens(images, "dinov2_tiny_reg", layer=2, size=56), tokens[1])
    np.testing.assert_array_equal(fresh.layer_tokens(images, "dinov2_tiny_reg", size=56), tokens)
    with pytest.raises(ValueError, match="DINOv2"):
        fresh.layer_tokens(images, "clip_tiny")


def test_building_random_clip_and_reading_read_only_images_log_no_warnings(tmp_path):
    """Each a warning in the server log on the main paths; checked in a fresh process (torch warns only once)."""
    code = """
import logging, warnings
import numpy as np
from core.engine import Engine
logging.basicConfig(level=logging.WARNING)
warnings.simplefilter("always")
engine = Engine(device="cpu", cache=None)
image = np.zeros((40, 30, 3), np.uint8)
image.flags.writeable = False  # as images decoded from bytes often are
engine.embed([image], "clip_tiny")
engine.patch_tokens([image], "dinov2_tiny", size=56)
"""
    env = {**os.environ, "VFM_LENS_CACHE": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    assert "No pretrained weights loaded" not in out.stderr and "not writable" not in out.stderr, out.stderr
