"""Attention maps: the eager path's weights equal a hand-computed softmax(QKᵀ/√d), token groups are split right,
the engine restores SDPA after the eager pass and refuses models without attention."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import DINOv3ViTConfig, DINOv3ViTModel

from core import registry
from core.engine import Engine
from core.models.attention_groups import from_patch, register_share, split_attention
from core.models.dinov2 import DINOv2Adapter
from core.models.vit_attention import attention_modules, layer_attention

TOL = 1e-5


def _peaked_adapter(name: str) -> DINOv2Adapter:
    """A fresh tiny adapter whose q/k weights are large: random init alone gives near-uniform attention, which any
    wrong map would also match to a few 1e-5."""
    torch.manual_seed(1)
    adapter = DINOv2Adapter(registry.get(name), "random", None)
    with torch.no_grad():
        for block in attention_modules(adapter.module):
            block.q_proj.weight.normal_(0, 0.6)
            block.k_proj.weight.normal_(0, 0.6)
    adapter.module.eval().requires_grad_(False)
    return adapter


def _by_hand(module, pixels: torch.Tensor, layer: int) -> torch.Tensor:
    """softmax(QKᵀ/√d) of block `layer` from its q/k weights and the hidden states entering it (SDPA forward)."""
    with torch.no_grad():
        entering = module(pixel_values=pixels, output_hidden_states=True).hidden_states[layer - 1]
        block = module.encoder.layer[layer - 1]
        x = block.norm1(entering)
        heads = module.config.num_attention_heads
        q, k = (
            proj(x).unflatten(-1, (heads, -1)).transpose(1, 2)
            for proj in (block.attention.q_proj, block.attention.k_proj)
        )
        return torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1)


@pytest.mark.parametrize("name", ["dinov2_tiny", "dinov2_tiny_reg"])
@pytest.mark.parametrize("layer", [1, 2])
def test_layer_attention_equals_the_hand_computed_softmax(name, layer, images):
    adapter = _peaked_adapter(name)
    pixels = adapter.pixels(images, 70)
    with torch.no_grad():
        ours = layer_attention(adapter.module, pixels, layer)
    expected = _by_hand(adapter.module, pixels, layer)
    assert ours.shape == (3, 2, 1 + adapter.spec.registers + 25, 1 + adapter.spec.registers + 25)
    assert expected.max(-1).values.mean() > 0.3  # peaked: far from uniform (1/T ≈ 0.03)
    torch.testing.assert_close(ours, expected, atol=TOL, rtol=0)
    assert adapter.module.config._attn_implementation == "sdpa"


def test_the_adapter_method_and_transformers_own_output_attentions_agree_for_dinov3_too(images):
    """Any HF ViT the `_can_record_outputs` table describes works: DINOv3 (RoPE, 4 registers, patch 16)."""
    torch.manual_seed(0)
    config = DINOv3ViTConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, patch_size=16,
        num_register_tokens=4, image_size=64,
    )  # fmt: skip
    dinov3 = DINOv3ViTModel(config).eval()
    pixels = torch.randn(2, 3, 64, 64)
    adapter = _peaked_adapter("dinov2_tiny_reg")
    for module, x in ((dinov3, pixels), (adapter.module, adapter.pixels(images[:2], 56))):
        with torch.no_grad():
            ours = [layer_attention(module, x, k) for k in (1, 2)]
            module.set_attn_implementation("eager")
            theirs = module(pixel_values=x, output_attentions=True).attentions
            module.set_attn_implementation("sdpa")
        for a, b in zip(ours, theirs, strict=True):
            torch.testing.assert_close(a, b, atol=TOL, rtol=0)
    with pytest.raises(ValueError, match="layer must be in 1..2"):
        layer_attention(dinov3, pixels, 3)


def test_split_keeps_registers_out_of_the_patch_maps():
    """Key j carries value j: each group must hold exactly its own token indices."""
    prefix, (h, w) = 5, (3, 4)
    t = prefix + h * w
    weights = np.broadcast_to(np.arange(t, dtype=np.float32), (2, 3, t, t)).copy()
    weights += 1000 * np.arange(t, dtype=np.float32)[:, None]  # query i adds 1000·i
    maps = split_attention(weights, prefix, (h, w))
    assert maps.cls.shape == (2, 3, h, w) and maps.grid == (h, w) and maps.registers == 4 and maps.heads == 3
    np.testing.assert_array_equal(maps.cls[0, 0], np.arange(prefix, t).reshape(h, w))  # no register key
    np.testing.assert_array_equal(maps.cls_prefix[1, 2], np.arange(prefix))
    assert maps.patches.shape == (2, 3, h * w, h * w) and maps.patch_prefix.shape == (2, 3, h * w, prefix)
    np.testing.assert_array_equal(maps.patches[0, 1, 0], 1000 * prefix + np.arange(prefix, t))  # query: patch 0
    np.testing.assert_array_equal(from_patch(maps, 1, 7)[2], (1000 * (prefix + 7) + np.arange(prefix, t)).reshape(h, w))
    np.testing.assert_array_equal(maps.patch_prefix[0, 0, 2], 1000 * (prefix + 2) + np.arange(prefix))
    with pytest.raises(ValueError, match=r"T = 4 \+ 3×4"):
        split_attention(weights, 4, (h, w))


def test_engine_maps_of_a_model_with_registers(images):
    engine = Engine(device="cpu")
    maps = engine.attention_maps(images, "dinov2_tiny_reg", size=70)
    assert maps.cls.shape == (3, 2, 5, 5) and maps.cls_prefix.shape == (3, 2, 5) and maps.registers == 4
    assert maps.cls.dtype == np.float32
    total = maps.cls.sum((-1, -2)) + maps.cls_prefix.sum(-1)  # the CLS row: patches + CLS + registers
    np.testing.assert_allclose(total, 1, atol=2e-3)  # cached in float16
    np.testing.assert_allclose(maps.patches.sum(-1) + maps.patch_prefix.sum(-1), 1, atol=2e-3)
    assert register_share(maps.cls_prefix).shape == (3, 2) and (register_share(maps.cls_prefix) > 0).all()
    adapter = engine.model("dinov2_tiny_reg").adapter
    with torch.no_grad():
        direct = layer_attention(adapter.module, adapter.pixels(images, 70), 2).numpy()
    np.testing.assert_allclose(maps.cls, direct[:, :, 0, 5:].reshape(3, 2, 5, 5), atol=1e-3, rtol=1e-3)


def test_engine_caches_and_the_last_layer_is_layer_none(images, monkeypatch):
    engine = Engine(device="cpu")
    calls = []
    original = DINOv2Adapter.attentions
    monkeypatch.setattr(DINOv2Adapter, "attentions", lambda self, *a: calls.append(a[1:]) or original(self, *a))
    last = engine.attention_maps(images, "dinov2_tiny", size=56)
    again = engine.attention_maps(images, "dinov2_tiny", layer=2, size=56)
    first = engine.attention_maps(images, "dinov2_tiny", layer=1, size=56)
    assert calls == [(56, 2), (56, 1)]
    np.testing.assert_array_equal(last.patches, again.patches)
    assert not np.array_equal(last.patches, first.patches)
    with pytest.raises(ValueError, match="layer must be in 1..2"):
        engine.attention_maps(images, "dinov2_tiny", layer=3, size=56)


def test_engine_refuses_a_model_without_attention_before_loading_it(images):
    engine = Engine(device="cpu")
    with pytest.raises(ValueError, match="attention maps come from DINOv2, DINOv3 models, not CLIP tiny"):
        engine.attention_maps(images, "clip_tiny")
    assert engine.loaded_models() == []


def test_sdpa_is_back_after_the_eager_pass_and_the_switch_happens_under_the_model_lock(images, monkeypatch):
    engine = Engine(device="cpu")
    before = engine.patch_tokens(images, "dinov2_tiny", size=56)
    loaded = engine.model("dinov2_tiny")
    module = loaded.adapter.module
    switches = []
    original = type(module).set_attn_implementation

    def watched(self, implementation, *args, **kwargs):
        switches.append((implementation, loaded.lock.locked()))
        return original(self, implementation, *args, **kwargs)

    monkeypatch.setattr(type(module), "set_attn_implementation", watched)
    engine.attention_maps(images, "dinov2_tiny", size=56)
    assert switches == [("eager", True), ("sdpa", True)]
    assert module.config._attn_implementation == "sdpa"
    assert all(m.config._attn_implementation == "sdpa" for m in attention_modules(module))
    with torch.inference_mode():
        after = loaded.adapter.patch_tokens(images, 56).numpy()  # a fresh forward, not the engine's cache
    np.testing.assert_array_equal(after, before)


def test_sdpa_is_restored_when_the_eager_forward_fails():
    adapter = _peaked_adapter("dinov2_tiny")
    with pytest.raises(
        ValueError, match="channel"
    ):  # four channels: the patch embedding refuses them inside the eager pass
        layer_attention(adapter.module, torch.zeros(1, 4, 56, 56), 1)
    assert adapter.module.config._attn_implementation == "sdpa"


def test_dinov3_attention_maps_come_from_the_shared_base_with_its_registers_split_off(engine):
    """DINOv3 (16-px patches, 4 registers) gets attention maps from the same base as DINOv2: CLS→patch maps on its
    own grid, the 1 + 4 prefix tokens apart, each query's attention summing to 1 over every key."""
    image = np.random.default_rng(0).integers(0, 255, (64, 80, 3), dtype=np.uint8)
    maps = engine.attention_maps([image], "dinov3_tiny", size=64)
    assert maps.cls.shape[-2:] == (4, 4) and maps.cls_prefix.shape[-1] == 5
    totals = maps.cls.sum(axis=(-2, -1)) + maps.cls_prefix.sum(axis=-1)
    np.testing.assert_allclose(totals, 1.0, atol=1e-2)  # float16 cache
