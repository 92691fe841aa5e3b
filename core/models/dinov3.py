"""DINOv3 ViTs (patch 16, 4 register tokens, RoPE) through transformers' `DINOv3ViTModel`.

Tokens come out as [CLS, 4 registers, patch grid] (`core.models.hf_vit`). Preprocessing is the hub's published
processor (`DINOv3ViTImageProcessor`, "…Fast" in the hub's preprocessor_config.json): rescale to [0, 1], square
bilinear resize with antialias to 224 (no centre crop), ImageNet mean and std. `pixels` does those same steps in
torch, in that order, on any device (the fast path only moves them onto the GPU). RoPE positions let the model
take any multiple of 16.

The weights are gated on the hub: accept the DINOv3 licence on the model's page before they download.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F
from transformers import DINOv3ViTConfig, DINOv3ViTModel

from core.models import Can, Family
from core.models.fast import sdpa_attention, upload
from core.models.hf_vit import TokenGridViT
from core.registry import ModelSpec
from core.weights import HubSnapshot

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# the hub checkpoints' config.json (facebook/dinov3-vit*16*-pretrain-lvd1689m), for random init offline:
# hidden size, layers, heads, ffn size, gated (SwiGLU) ffn, q/v biases
_DIMS = {
    "small": (384, 12, 6, 1536, False, True),
    "small_plus": (384, 12, 6, 1536, True, True),
    "base": (768, 12, 12, 3072, False, True),
    "large": (1024, 24, 16, 4096, False, True),
    "huge_plus": (1280, 32, 20, 5120, True, True),
    "7b": (4096, 40, 32, 8192, True, False),
}
LICENCE = "DINOv3 License (gated on the hub: accept it there first)"


def _config(spec: ModelSpec) -> DINOv3ViTConfig:
    if spec.tiny:
        return DINOv3ViTConfig(**spec.config)
    hidden, layers, heads, ffn, gated, qv_bias = _DIMS[spec.name.removeprefix("dinov3_")]
    return DINOv3ViTConfig(
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=ffn,
        use_gated_mlp=gated,
        hidden_act="silu" if gated else "gelu",
        query_bias=qv_bias,
        value_bias=qv_bias,
        patch_size=16,
        num_register_tokens=spec.registers,
        image_size=224,
    )


def build_module(spec: ModelSpec, path: str | None) -> DINOv3ViTModel:
    """transformers model for `spec`; `path` is a `save_pretrained` folder, None gives random weights."""
    if path is None:
        return DINOv3ViTModel(_config(spec))
    return DINOv3ViTModel.from_pretrained(path, local_files_only=True)


class DINOv3Adapter(TokenGridViT):
    def __init__(self, spec: ModelSpec, weights: str, path: str | None):
        super().__init__(spec, weights, build_module(spec, path))
        self.mean, self.std = IMAGENET_MEAN, IMAGENET_STD
        self.pixel_device = torch.device("cpu")  # where `pixels` resizes; the fast path moves it to the GPU

    def pixels(self, images: list[np.ndarray], size: int | None = None) -> torch.Tensor:
        """HWC uint8 RGB → (B, 3, S, S) float32 on `pixel_device`, S = `size` or the model's input size: the hub
        processor's steps (rescale, bilinear antialiased square resize, normalise), same-shape runs batched."""
        size = size or self.spec.input_size
        if not images:
            return torch.empty(0, 3, size, size, device=self.pixel_device)
        runs = []
        for _, run in itertools.groupby(images, key=lambda im: im.shape):
            x = upload(np.stack(list(run)), self.pixel_device).permute(0, 3, 1, 2).float() * (1 / 255)
            runs.append(F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False))
        mean = torch.tensor(self.mean, device=self.pixel_device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=self.pixel_device).view(1, 3, 1, 1)
        return (torch.cat(runs) - mean) / std


def fast_paths(adapter: DINOv3Adapter, device: torch.device) -> tuple[str, str]:
    """SDPA attention; the processor's own steps (float bilinear resize) on `device`, so results stay upstream's."""
    adapter.pixel_device = device
    return sdpa_attention(adapter.module), f"{device.type}: rescale, bilinear resize, normalise (the processor's)"


FAMILY = Family(
    name="dinov3",
    title="DINOv3",
    adapter=DINOv3Adapter,
    build_module=build_module,
    weights=HubSnapshot(gated=True),
    can=frozenset({Can.EMBED, Can.PATCHES, Can.ATTENTION}),
    default="dinov3_small",
    tiny="dinov3_tiny",
    fast_paths=fast_paths,
    bf16_tower=lambda adapter: adapter.module,
    notes=LICENCE,
)
