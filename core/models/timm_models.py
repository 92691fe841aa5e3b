"""ImageNet-supervised baselines through timm, with timm's own eval preprocessing."""

from __future__ import annotations

import numpy as np
import timm
import torch
from PIL import Image
from timm.data import create_transform, resolve_data_config

from core.models import Can, Family
from core.models.fast import module_dtype, timm_fast_paths
from core.models.pixels import recipe_of
from core.registry import ModelSpec
from core.weights import HubFile


def build_module(spec: ModelSpec, path: str | None) -> torch.nn.Module:
    """timm model for `spec` without its classifier; `path` is a checkpoint file, None gives random weights."""
    if path is None:
        return timm.create_model(spec.arch, pretrained=False, num_classes=0, **spec.config)
    return timm.create_model(
        spec.arch, pretrained=True, pretrained_cfg_overlay={"file": path}, num_classes=0, **spec.config
    )


def build_transform(module: torch.nn.Module, size: int):
    """timm's eval transform for `module` (resize, centre crop, normalise) at `size`×`size`."""
    return create_transform(**resolve_data_config({"input_size": (3, size, size)}, model=module))


class TimmAdapter:
    def __init__(self, spec: ModelSpec, weights: str, path: str | None):
        self.spec, self.weights = spec, weights
        self.module = build_module(spec, path)
        self.preprocess = build_transform(self.module, spec.input_size)
        self._recipe = recipe_of(self.preprocess)  # the same recipe on the arrays, without PIL (or None)

    def pixels(self, images: list[np.ndarray]) -> torch.Tensor:
        """HWC uint8 RGB → (B, 3, S, S) float, as timm's eval transform makes it (resampled on the arrays)."""
        if self._recipe is not None:
            return self._recipe.pixels(images)
        return torch.stack([self.preprocess(Image.fromarray(im)) for im in images])

    def embed(self, images: list[np.ndarray]) -> torch.Tensor:
        """Pooled pre-logits features, (B, D)."""
        device = next(self.module.parameters()).device
        features = self.module.forward_features(self.pixels(images).to(device, module_dtype(self.module)))
        return self.module.forward_head(features, pre_logits=True)


FAMILY = Family(
    name="timm",
    title="ImageNet baseline (timm)",
    adapter=TimmAdapter,
    build_module=build_module,
    weights=HubFile("timm/"),
    can=frozenset({Can.EMBED}),
    default="timm_vit_b16",
    tiny="timm_tiny",
    fast_paths=timm_fast_paths,
    bf16_tower=lambda adapter: adapter.module,
    notes="Apache-2.0",
)
