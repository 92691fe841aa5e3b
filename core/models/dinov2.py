"""DINOv2 (with or without registers) through transformers, with its own image processor."""

from __future__ import annotations

import numpy as np
import torch
from transformers import (
    BitImageProcessor,
    Dinov2Config,
    Dinov2Model,
    Dinov2WithRegistersConfig,
    Dinov2WithRegistersModel,
)

from core.models import Can, Family
from core.models.fast import transformers_fast_paths
from core.models.hf_vit import TokenGridViT
from core.models.pixels import EvalRecipe
from core.registry import ModelSpec
from core.weights import HubSnapshot

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# hidden size, layers, heads of the published checkpoints (their config.json), for random init offline
_DIMS = {"small": (384, 12, 6), "base": (768, 12, 12), "large": (1024, 24, 16), "giant": (1536, 40, 24)}


def _config(spec: ModelSpec) -> Dinov2Config:
    config_cls = Dinov2WithRegistersConfig if spec.registers else Dinov2Config
    if spec.tiny:
        return config_cls(**spec.config)
    size = spec.arch.rsplit("-", 1)[-1]
    hidden, layers, heads = _DIMS[size]
    extra = {"num_register_tokens": spec.registers} if spec.registers else {}
    return config_cls(
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        patch_size=14,
        image_size=518,
        layerscale_value=1.0,
        use_swiglu_ffn=size == "giant",
        **extra,
    )


def build_module(spec: ModelSpec, path: str | None) -> Dinov2Model | Dinov2WithRegistersModel:
    """transformers model for `spec`; `path` is a `save_pretrained` folder, None gives random weights."""
    model_cls = Dinov2WithRegistersModel if spec.registers else Dinov2Model
    if path is None:
        return model_cls(_config(spec))
    return model_cls.from_pretrained(path, local_files_only=True)


def _processor(size: int, crop: bool) -> BitImageProcessor:
    """The DINOv2 eval transform: resize (shortest edge 256/224 × size) + centre crop, or a square resize."""
    resize = {"shortest_edge": round(size * 256 / 224)} if crop else {"height": size, "width": size}
    return BitImageProcessor(
        size=resize,
        crop_size={"height": size, "width": size},
        do_center_crop=crop,
        resample=3,
        image_mean=IMAGENET_MEAN,
        image_std=IMAGENET_STD,
    )


class DINOv2Adapter(TokenGridViT):
    def __init__(self, spec: ModelSpec, weights: str, path: str | None):
        super().__init__(spec, weights, build_module(spec, path))
        self.mean, self.std = IMAGENET_MEAN, IMAGENET_STD
        size = spec.input_size  # the processor's eval crop, on the arrays without PIL
        self._crop = EvalRecipe(round(size * 256 / 224), size, IMAGENET_MEAN, IMAGENET_STD, "bicubic", True)

    def pixels(self, images: list[np.ndarray], size: int | None = None) -> torch.Tensor:
        """HWC uint8 RGB → (B, 3, S, S): eval crop at the model's size (resize 256/224, centre crop, as the
        processor with crop does it), or a square resize to `size` (the processor)."""
        if size is None:
            return self._crop.pixels(images)
        processor = _processor(size, crop=False)
        writable = [np.require(im, requirements="W") for im in images]  # torch warns on read-only arrays
        return processor(images=writable, return_tensors="pt")["pixel_values"]


FAMILY = Family(
    name="dinov2",
    title="DINOv2",
    adapter=DINOv2Adapter,
    build_module=build_module,
    weights=HubSnapshot(),
    can=frozenset({Can.EMBED, Can.PATCHES, Can.ATTENTION}),
    default="dinov2_small",
    tiny="dinov2_tiny",
    fast_paths=transformers_fast_paths,
    bf16_tower=lambda adapter: adapter.module,
    notes="Apache-2.0",
)
