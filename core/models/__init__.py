"""One adapter per model family, built from the upstream library's own classes.

Every adapter has `spec`, `weights` (the weights actually loaded: a tag or "random"),
`module` (the torch model). CLIP, DINOv2 and timm add `embed(images) -> (B, D)` on HWC uint8 RGB images;
SAM adds `image_embedding` and `predict` (its `Engine.embed` is the spatial mean of the embedding).
"""

from __future__ import annotations

from typing import Protocol

import torch

from core.registry import ModelSpec


class Adapter(Protocol):
    spec: ModelSpec
    weights: str
    module: torch.nn.Module


def build_adapter(spec: ModelSpec, weights: str, path: str | None, device: torch.device) -> Adapter:
    """Build `spec` with weights from `path` (None → seeded random init) on `device`."""
    from core.models import clip, dinov2, sam, timm_models

    builder = {
        "clip": clip.CLIPAdapter,
        "dinov2": dinov2.DINOv2Adapter,
        "sam": sam.SAMAdapter,
        "timm": timm_models.TimmAdapter,
    }[spec.family]
    torch.manual_seed(0)  # random weights are reproducible, so their cached results stay valid
    adapter = builder(spec, weights, path)
    adapter.module.eval().requires_grad_(False).to(device)
    return adapter


def count_parameters(spec: ModelSpec) -> int:
    """Parameter count of the real architecture, built on the meta device (no memory, no weights)."""
    from core.models import clip, dinov2, sam, timm_models

    build = {
        "clip": clip.build_module,
        "dinov2": dinov2.build_module,
        "sam": sam.build_module,
        "timm": timm_models.build_module,
    }[spec.family]
    options = {"device": "meta"} if spec.family == "clip" else {}  # open_clip moves the model itself
    with torch.device("meta"):
        module = build(spec, None, **options)
    return sum(p.numel() for p in module.parameters())
