"""EdgeTAM through transformers (`EdgeTamModel`): SAM 2's image path (prompt encoder, mask decoder, processor) on a
RepViT-M1 image encoder (timm), small enough for phones. Its adapter is SAM 2's (`core/models/sam2.py`).

The released checkpoint's config is SAM 2 video's (`edgetam_video`), with its timm backbone config inside; it is
read here field by field, so loading never asks the hub for timm's default backbone config.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

from transformers import EdgeTamConfig, EdgeTamModel
from transformers.models.edgetam.configuration_edgetam import EdgeTamVisionConfig
from transformers.models.timm_wrapper.configuration_timm_wrapper import TimmWrapperConfig

from core.models import Can, Family
from core.models.sam2 import Sam2Adapter, feature_sizes, heads_config
from core.registry import ModelSpec
from core.weights import HubSnapshot

# RepViT-M1's four stages (timm `repvit_m1`): the FPN neck takes all four, coarsest first
_REPVIT_CHANNELS = (48, 96, 192, 384)


def _backbone(spec: ModelSpec) -> TimmWrapperConfig:
    """timm's RepViT-M1 as a feature extractor; the tiny test model narrows and shortens it."""
    args = {"in_chans": 3, "features_only": True, "out_indices": [0, 1, 2, 3]}
    if spec.tiny:
        args |= {"embed_dim": tuple(spec.config["repvit_dims"]), "depth": (1, 1, 1, 1)}
    return TimmWrapperConfig(architecture="repvit_m1", model_args=args)


def config(spec: ModelSpec) -> EdgeTamConfig:
    """EdgeTAM's architecture. (`EdgeTamConfig()` alone does not run: its default backbone config misspells
    "architecture", so timm builds a ResNet-50 whose 2048 channels the RepViT-sized neck rejects.)"""
    channels = spec.config["repvit_dims"] if spec.tiny else _REPVIT_CHANNELS
    vision = EdgeTamVisionConfig(
        backbone_config=_backbone(spec),
        backbone_channel_list=list(channels)[::-1],
        backbone_feature_sizes=feature_sizes(spec.input_size),
        fpn_hidden_size=spec.config.get("hidden", 256),
    )
    return EdgeTamConfig(vision_config=vision, **heads_config(spec))


def _saved_config(path: str) -> EdgeTamConfig:
    """The image model's config from a `save_pretrained` folder, nested configs built from their own fields."""
    data = json.loads((Path(path) / "config.json").read_text())
    vision = dict(data["vision_config"])
    vision = EdgeTamVisionConfig(backbone_config=TimmWrapperConfig(**vision.pop("backbone_config")), **vision)
    keep = ("prompt_encoder_config", "mask_decoder_config")
    return EdgeTamConfig(vision_config=vision, **{k: data[k] for k in keep if k in data})


def build_module(spec: ModelSpec, path: str | None) -> EdgeTamModel:
    """`EdgeTamModel` for `spec`; `path` is the hub's `save_pretrained` folder, None gives random weights."""
    if path is None:
        return EdgeTamModel(config(spec))
    return EdgeTamModel.from_pretrained(path, config=_saved_config(path), local_files_only=True)


FAMILY = Family(
    name="edgetam",
    title="EdgeTAM",
    adapter=partial(Sam2Adapter, build=build_module),
    build_module=build_module,
    weights=HubSnapshot(),
    can=frozenset({Can.EMBED, Can.PROMPTS}),
    default="edgetam",
    tiny="edgetam_tiny",
    compile_target=lambda module: module.vision_encoder,
    notes="Apache-2.0",
)
