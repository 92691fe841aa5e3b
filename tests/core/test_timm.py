"""timm baselines: shapes, equality with timm's own path on the same random weights, weights lookup offline."""

import socket

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from safetensors.torch import save_file
from timm.data import create_transform, resolve_data_config

from core import registry, weights
from core.models import build_adapter, count_parameters
from tests.core.test_pixels import cosines, levels


def test_timm_tiny_embeds_to_its_registry_dimension(engine, images):
    out = engine.embed(images, "timm_tiny")
    assert out.shape == (3, 32) and out.dtype == np.float32 and np.isfinite(out).all()
    assert engine.embed([], "timm_tiny").shape == (0, 32)


def test_timm_tiny_equals_timms_own_forward_and_transform(engine, images):
    spec = registry.get("timm_tiny")
    upstream = timm.create_model(spec.arch, pretrained=False, num_classes=0, **spec.config).eval()
    upstream.load_state_dict(engine.model("timm_tiny").adapter.module.state_dict())
    config = resolve_data_config({"input_size": (3, 64, 64)}, model=upstream)
    assert config["crop_pct"] == 0.9 and config["mean"] == (0.5, 0.5, 0.5)  # vit_tiny's own eval recipe
    transform = create_transform(**config)
    adapter, ours = engine.model("timm_tiny").adapter, engine.embed(images, "timm_tiny")
    pixels, theirs_pixels = adapter.pixels(images), torch.stack([transform(Image.fromarray(im)) for im in images])
    # resampled on the arrays, not in PIL: a pixel may differ by one level of 255 (tests/core/test_pixels.py)
    assert levels(pixels, theirs_pixels, config["std"]).max() <= 1.001
    with torch.no_grad():
        np.testing.assert_allclose(ours, upstream(pixels).numpy(), atol=1e-5)
        assert cosines(ours, upstream(theirs_pixels).numpy()).min() >= 0.9999


def test_timm_checkpoint_file_loads_without_its_classifier(tmp_path):
    spec = registry.get("timm_tiny")
    torch.manual_seed(3)
    with_head = timm.create_model(spec.arch, pretrained=False, **spec.config)  # a published file keeps its head
    path = tmp_path / "timm_tiny.safetensors"
    save_file(with_head.state_dict(), str(path))
    adapter = build_adapter(spec, "in1k", str(path), torch.device("cpu"))
    loaded = adapter.module.state_dict()
    assert "head.weight" not in loaded
    assert all(torch.equal(loaded[k], v) for k, v in with_head.state_dict().items() if k in loaded)


def test_baselines_are_registry_entries_with_published_sizes():
    for name, dim, millions in (("timm_vit_b16", 768, 86), ("timm_convnext_tiny", 768, 28)):
        spec = registry.get(name)
        assert spec.family == "timm" and spec.embed_dim == dim and spec.default_weights == "in1k"
        assert abs(count_parameters(spec) / 1e6 - millions) < 1
    assert str(registry.parse("timm_convnext_tiny@random")) == "timm_convnext_tiny@random"
    assert registry.get("timm_tiny").tiny and registry.list_models("timm")


def test_timm_weights_offline_are_unavailable_at_once(monkeypatch):
    monkeypatch.setenv("VFM_LENS_OFFLINE", "1")
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: pytest.fail("probed"))
    status = weights.locate("timm_vit_b16")
    assert status.source == "unavailable" and "make weights MODELS=timm_vit_b16" in status.message


def test_timm_weights_are_found_in_the_local_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("VFM_LENS_WEIGHTS", str(tmp_path))
    (tmp_path / "timm_convnext_tiny.safetensors").write_bytes(b"x")
    status = weights.locate("timm_convnext_tiny")
    assert status.source == "local" and status.path == str(tmp_path / "timm_convnext_tiny.safetensors")
    assert weights.locate("timm_vit_b16").source != "local"
    assert (
        weights.source_of(registry.parse("timm_vit_b16")).repo(registry.parse("timm_vit_b16"))
        == "timm/vit_base_patch16_224.augreg2_in21k_ft_in1k"
    )
