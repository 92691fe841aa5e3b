"""SAM 2 video tracking through transformers' `Sam2VideoModel` and `Sam2VideoProcessor`, in one place.

The hub's SAM 2.1 checkpoints (facebook/sam2.1-hiera-tiny, ...) are the same repos for images and video; this
family loads them as the video model (memory attention, memory encoder, object pointers). Offline, the same
architecture is built from the published layouts below with random weights. The tracking itself (an inference
session per clip, prompts, propagation) is `core.video.VideoTracker`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import Sam2VideoConfig, Sam2VideoModel, Sam2VideoProcessor
from transformers.models.sam2.image_processing_sam2 import Sam2ImageProcessor
from transformers.models.sam2_video.video_processing_sam2_video import Sam2VideoVideoProcessor

from core.models import Can, Family
from core.registry import ModelSpec
from core.weights import HubSnapshot


@dataclass(frozen=True)
class Hiera:
    """A Hiera image encoder's layout, as in the published checkpoints' config.json."""

    dim: int  # channels of the first stage; each later stage doubles them
    heads: int  # heads of the first stage; each later stage doubles them
    blocks: tuple[int, int, int, int]
    global_blocks: tuple[int, ...]  # blocks with global (not windowed) attention
    windows: tuple[int, int, int, int] = (8, 4, 14, 7)
    background: tuple[int, int] = (7, 7)  # the interpolated positional embedding's grid


_HIERA = {
    "tiny": Hiera(96, 1, (1, 2, 7, 2), (5, 7, 9)),
    "small": Hiera(96, 1, (1, 2, 11, 2), (7, 10, 13)),
    "base-plus": Hiera(112, 2, (2, 3, 16, 3), (12, 16, 20), background=(14, 14)),
    "large": Hiera(144, 2, (2, 6, 36, 4), (23, 33, 43), windows=(8, 4, 16, 8)),
}


def _vision(hiera: Hiera, image_size: int, fpn: int) -> dict:
    dims = [hiera.dim * 2**i for i in range(4)]
    grid = image_size // 4  # the first stage's stride
    return {
        "model_type": "sam2_vision_model",
        "backbone_config": {
            "model_type": "sam2_hiera_det_model",
            "hidden_size": hiera.dim,
            "num_attention_heads": hiera.heads,
            "image_size": [image_size, image_size],
            "blocks_per_stage": list(hiera.blocks),
            "embed_dim_per_stage": dims,
            "num_attention_heads_per_stage": [hiera.heads * 2**i for i in range(4)],
            "window_size_per_stage": list(hiera.windows),
            "global_attention_blocks": list(hiera.global_blocks),
            "window_positional_embedding_background_size": list(hiera.background),
        },
        "backbone_channel_list": dims[::-1],
        "backbone_feature_sizes": [[grid >> i, grid >> i] for i in range(3)],
        "fpn_hidden_size": fpn,
    }


def config(spec: ModelSpec) -> Sam2VideoConfig:
    """The architecture of `spec`: a published layout at 1024 px, or the tiny test model's (`spec.config`)."""
    if not spec.tiny:
        size = spec.arch.rsplit("hiera-", 1)[-1]
        return Sam2VideoConfig(vision_config=_vision(_HIERA[size], 1024, 256))
    c = spec.config
    size, hidden = c["image_size"], c["hidden_size"]
    # the memory path's sizes are tied: memory channels are 64 (a constant in the memory attention), the object
    # pointer (hidden) splits into hidden/64 memory tokens, and RoPE runs on the 1/16 feature grid
    return Sam2VideoConfig(
        vision_config=_vision(Hiera(**c["hiera"]), size, hidden),
        prompt_encoder_config={"hidden_size": hidden, "image_size": size, "patch_size": 16},
        mask_decoder_config={"hidden_size": hidden, "mlp_dim": 64, "num_attention_heads": 2, "iou_head_hidden_dim": 32},
        image_size=size,
        memory_attention_hidden_size=hidden,
        memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=hidden,
        memory_attention_rope_feat_sizes=[size // 16, size // 16],
        memory_encoder_hidden_size=hidden,
        memory_encoder_output_channels=64,
        mask_downsampler_embed_dim=hidden,
        memory_fuser_embed_dim=hidden,
        memory_fuser_intermediate_dim=64,
    )


def build_module(spec: ModelSpec, path: str | None) -> Sam2VideoModel:
    """`Sam2VideoModel` for `spec`; `path` is a `save_pretrained` folder (the hub repo), None gives random weights."""
    if path is None:
        module = Sam2VideoModel(config(spec))
        if spec.tiny:  # random object scores hide most masks (a score < 0 means "not in this frame"): say "present"
            torch.nn.init.constant_(module.mask_decoder.pred_obj_score_head.proj_out.bias, 10.0)
        return module
    return Sam2VideoModel.from_pretrained(path, local_files_only=True)


def build_processor(image_size: int) -> Sam2VideoProcessor:
    """The hub repos' processor (ImageNet mean and std, bilinear resize to a square), at the model's input size;
    built here, so nothing is downloaded for it."""
    mask = image_size // 4
    return Sam2VideoProcessor(
        Sam2ImageProcessor(size={"height": image_size, "width": image_size}, mask_size={"height": mask, "width": mask}),
        Sam2VideoVideoProcessor(size={"height": image_size, "width": image_size}),
    )


class Sam2VideoAdapter:
    """`module` (the `Sam2VideoModel`) and its `processor`; `core.video.VideoTracker` runs them on a clip."""

    def __init__(self, spec: ModelSpec, weights: str, path: str | None):
        self.spec, self.weights = spec, weights
        self.module = build_module(spec, path)
        self.processor = build_processor(self.module.config.image_size)

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device


FAMILY = Family(
    name="sam2_video",
    title="SAM 2 (video)",
    adapter=Sam2VideoAdapter,
    build_module=build_module,
    weights=HubSnapshot(),
    can=frozenset({Can.TRACK}),
    default="sam2_video_hiera_tiny",
    tiny="sam2_video_tiny",
    notes="Apache-2.0",
)
