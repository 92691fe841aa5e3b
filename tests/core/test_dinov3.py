"""DINOv3 against transformers' own path on the same random weights, its token layout, sizes and gated weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import DINOv3ViTImageProcessor, DINOv3ViTModel
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from core import registry, weights
from core.models import Can, build_adapter, count_parameters, family
from core.models import dinov3 as dinov3_module
from core.models.fast import apply_fast_paths

TINY = registry.get("dinov3_tiny")


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(a.flatten(0, -2), b.flatten(0, -2), dim=-1)


@pytest.fixture(scope="module")
def adapter():
    return build_adapter(TINY, "random", None, torch.device("cpu"))


def _processor(size: int) -> DINOv3ViTImageProcessor:
    return DINOv3ViTImageProcessor(size={"height": size, "width": size})


def test_the_processor_defaults_are_what_the_adapter_does():
    """The hub's processor: square bilinear resize to 224, no crop, ImageNet mean and std (read from the library)."""
    processor = DINOv3ViTImageProcessor()
    assert processor.size == {"height": 224, "width": 224} and processor.resample == 2  # PIL BILINEAR
    assert not getattr(processor, "do_center_crop", False)
    assert tuple(processor.image_mean) == dinov3_module.IMAGENET_MEAN == tuple(IMAGENET_DEFAULT_MEAN)
    assert tuple(processor.image_std) == dinov3_module.IMAGENET_STD == tuple(IMAGENET_DEFAULT_STD)
    real = registry.list_models("dinov3", include_tiny=False)
    assert real and all(s.input_size == 224 and s.patch_size == 16 and s.registers == 4 for s in real)


@pytest.mark.parametrize("size", [64, 96, 224])
def test_pixels_equal_the_published_processor(adapter, images, size):
    expected = _processor(size)(images=images, return_tensors="pt")["pixel_values"]
    ours = adapter.pixels(images, size)
    assert ours.shape == expected.shape == (len(images), 3, size, size)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(adapter.pixels(images), adapter.pixels(images, TINY.input_size))  # eval: no crop


def test_tokens_and_cls_equal_upstream_on_the_same_weights(adapter, images):
    """Our patch grid, CLS and per-block tokens vs `DINOv3ViTModel` fed by the processor (cosine ≥ 0.9999)."""
    assert type(adapter.module) is DINOv3ViTModel and adapter.module.config.num_register_tokens == 4
    size = 96  # a 6 × 6 grid: not the model's own input size
    with torch.inference_mode():
        pixel_values = _processor(size)(images=images, return_tensors="pt")["pixel_values"]
        out = adapter.module(pixel_values=pixel_values, output_hidden_states=True)
        upstream = out.last_hidden_state[:, 1 + 4 :].unflatten(1, (6, 6))
        ours = adapter.patch_tokens(images, size)
        assert ours.shape == (len(images), 6, 6, 32)
        assert _cosine(ours, upstream).min() >= 0.9999
        block = adapter.patch_tokens(images, size, layer=1)
        assert _cosine(block, out.hidden_states[1][:, 5:].unflatten(1, (6, 6))).min() >= 0.9999
        stacked = adapter.layer_tokens(images, size)
        assert stacked.shape == (2, len(images), 6, 6, 32) and _cosine(stacked[0], block).min() >= 0.9999

        eval_pixels = DINOv3ViTImageProcessor(size={"height": 64, "width": 64})(images=images, return_tensors="pt")
        cls = adapter.module(**eval_pixels).pooler_output
        assert _cosine(adapter.embed(images), cls).min() >= 0.9999


def test_register_tokens_are_sliced_off_before_the_grid(adapter, images):
    """Known answer: token t carries the value t, so the 4 × 4 grid must hold 5..20 row-major and CLS is token 0."""

    class Numbered(torch.nn.Module):
        def __init__(self, config):
            super().__init__()
            self.config, self.weight = config, torch.nn.Parameter(torch.zeros(1))

        def forward(self, pixel_values, output_hidden_states=False):
            b, _, h, w = pixel_values.shape
            tokens = torch.arange(1 + 4 + (h // 16) * (w // 16), dtype=torch.float32)
            tokens = tokens[None, :, None].expand(b, -1, 3)
            return type("Out", (), {"last_hidden_state": tokens, "pooler_output": tokens[:, 0]})

    numbered = dinov3_module.DINOv3Adapter(TINY, "random", None)
    numbered.module = Numbered(adapter.module.config)
    grid = numbered.patch_tokens(images[:1], 64)[0, ..., 0]
    np.testing.assert_array_equal(grid.numpy(), np.arange(5, 21).reshape(4, 4))
    assert numbered.embed(images[:1])[0].tolist() == [0.0, 0.0, 0.0]


def test_sizes_must_be_multiples_of_16_and_layers_in_range(adapter, images):
    with pytest.raises(ValueError, match="multiple of 16"):
        adapter.patch_tokens(images, 56)  # a DINOv2 size
    with pytest.raises(ValueError, match="layer must be in 1..2"):
        adapter.patch_tokens(images, 64, layer=3)


def test_the_family_descriptor(adapter):
    described = family("dinov3")
    assert described.can == {Can.EMBED, Can.PATCHES, Can.ATTENTION} and described.weights.gated
    assert (described.default, described.tiny) == ("dinov3_small", "dinov3_tiny")
    assert registry.get(described.default).arch == "facebook/dinov3-vits16-pretrain-lvd1689m"


def test_real_architectures_have_the_published_sizes():
    """Parameter counts of the hub checkpoints (21.6M, 28.7M, 85.7M, 0.3B, 0.84B, 6.7B): the dims are right."""
    published = {"small": 21.6, "small_plus": 28.7, "base": 85.7, "large": 303.1, "huge_plus": 840.6, "7b": 6716.0}
    for size, millions in published.items():
        assert round(count_parameters(registry.get(f"dinov3_{size}")) / 1e6, 1) == millions, size
    assert registry.get("dinov3_7b").embed_dim == 4096 and registry.get("dinov3_small_plus").embed_dim == 384


def test_offline_weights_say_gated_licence_and_the_local_folder(monkeypatch):
    monkeypatch.setenv("VFM_LENS_OFFLINE", "1")
    status = weights.locate("dinov3_small")
    assert status.source == "unavailable" and status.is_random
    assert "gated" in status.message
    assert "https://huggingface.co/facebook/dinov3-vits16-pretrain-lvd1689m" in status.message
    assert "$VFM_LENS_WEIGHTS/dinov3_small/" in status.message and "save_pretrained" in status.message


def test_a_local_save_pretrained_folder_loads_the_same_weights(tmp_path, monkeypatch, adapter, images):
    adapter.module.save_pretrained(tmp_path / "dinov3_small")
    monkeypatch.setenv("VFM_LENS_WEIGHTS", str(tmp_path))
    status = weights.locate("dinov3_small")
    assert status.source == "local" and status.path == str(tmp_path / "dinov3_small")
    loaded = dinov3_module.DINOv3Adapter(TINY, "lvd1689m", status.path)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.patch_tokens(images, 64), adapter.patch_tokens(images, 64))


def test_the_fast_path_keeps_the_processor_steps(images):
    fast = build_adapter(TINY, "random", None, torch.device("cpu"))
    plain = fast.pixels(images, 96)
    paths = apply_fast_paths(fast, "cpu")
    assert "sdpa" in paths.attention and "bilinear" in paths.preprocess
    torch.testing.assert_close(fast.pixels(images, 96), plain)


@pytest.mark.gpu
def test_on_cuda_tokens_match_the_cpu(images):
    cpu = build_adapter(TINY, "random", None, torch.device("cpu"))
    cuda = build_adapter(TINY, "random", None, torch.device("cuda"))
    apply_fast_paths(cuda, "cuda")
    with torch.inference_mode():
        ours, upstream = cuda.patch_tokens(images, 224).cpu(), cpu.patch_tokens(images, 224)
    assert _cosine(ours, upstream).min() >= 0.9999
