"""SAM 2 (2.1) through transformers (`Sam2Model`, `Sam2Processor`), with SAM's interface (`core/models/sam.py`):
embed once per image, then many light prompt decodes, and the automatic mask generator on a cached embedding.

The image is resized to the encoder's square input (1024 × 1024, aspect ratio not kept, as SAM 2 does) by
`Sam2Processor`'s image processor. The embedding has three levels: the (256, 64, 64) image embedding the mask
decoder attends to (`SamEmbedding.features`) and two high-resolution levels its upsampler adds back (`levels`:
(32, 256, 256) and (64, 128, 128), already projected by the decoder's `conv_s0`/`conv_s1`, as
`Sam2Model.get_image_embeddings` returns them). Images are HWC uint8 RGB; points (X, Y) and boxes XYXY in image
pixels; masks come back at the original size.

EdgeTAM (`core/models/edgetam.py`) is SAM 2's image path on a RepViT encoder: it reuses `Sam2Adapter`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F
from transformers import Sam2Config, Sam2ImageProcessor, Sam2Model, Sam2Processor
from transformers.models.sam2.configuration_sam2 import (
    Sam2HieraDetConfig,
    Sam2MaskDecoderConfig,
    Sam2PromptEncoderConfig,
    Sam2VisionConfig,
)

from core.models import Can, Family
from core.models.sam import (
    AutoMaskParams,
    AutoMasks,
    ProgressMaskGenerator,
    SamEmbedding,
    SamPrediction,
    SamPrompt,
    run_generator,
    unpack_levels,
)
from core.registry import ModelSpec
from core.weights import HubSnapshot

# SAM 2.1's Hiera image encoders (sam2/configs/sam2.1/sam2.1_hiera_{t,s,b+,l}.yaml): first-stage width and heads
# (both double per stage), blocks per stage, global-attention blocks, background position-embedding size, windows.
_HIERA = {
    "facebook/sam2.1-hiera-tiny": (96, 1, [1, 2, 7, 2], [5, 7, 9], [7, 7], [8, 4, 14, 7]),
    "facebook/sam2.1-hiera-small": (96, 1, [1, 2, 11, 2], [7, 10, 13], [7, 7], [8, 4, 14, 7]),
    "facebook/sam2.1-hiera-base-plus": (112, 2, [2, 3, 16, 3], [12, 16, 20], [14, 14], [8, 4, 14, 7]),
    "facebook/sam2.1-hiera-large": (144, 2, [2, 6, 36, 4], [23, 33, 43], [7, 7], [8, 4, 16, 8]),
}


def hiera_config(width: int, heads: int, blocks, global_blocks, background, windows, size: int) -> Sam2HieraDetConfig:
    return Sam2HieraDetConfig(
        hidden_size=width,
        num_attention_heads=heads,
        image_size=[size, size],
        blocks_per_stage=list(blocks),
        embed_dim_per_stage=[width * 2**i for i in range(4)],
        num_attention_heads_per_stage=[heads * 2**i for i in range(4)],
        window_size_per_stage=list(windows),
        global_attention_blocks=list(global_blocks),
        window_positional_embedding_background_size=list(background),
    )


def feature_sizes(size: int) -> list[list[int]]:
    """The three levels' grids for a `size` px input: strides 4, 8, 16."""
    return [[size // s, size // s] for s in (4, 8, 16)]


def heads_config(spec: ModelSpec) -> dict:
    """Prompt encoder and mask decoder configs: SAM 2's (256 wide) for real models, `spec.config`'s for tiny ones."""
    size, hidden = spec.input_size, spec.config.get("hidden", 256)
    decoder = {"hidden_size": hidden}
    if spec.tiny:
        decoder |= {"mlp_dim": 2 * hidden, "num_attention_heads": 2, "iou_head_hidden_dim": hidden}
    return {
        "prompt_encoder_config": Sam2PromptEncoderConfig(hidden_size=hidden, image_size=size, patch_size=16),
        "mask_decoder_config": Sam2MaskDecoderConfig(**decoder),
    }


def config(spec: ModelSpec) -> Sam2Config:
    """The architecture of `spec`: a SAM 2.1 variant by hub id, or the tiny one of `spec.config`."""
    c = spec.config
    trunk = (c["width"], 1, c["blocks"], c["global_blocks"], [4, 4], c["windows"]) if spec.tiny else _HIERA[spec.arch]
    width = trunk[0]
    vision = Sam2VisionConfig(
        backbone_config=hiera_config(*trunk, spec.input_size),
        backbone_channel_list=[width * 8, width * 4, width * 2, width],
        backbone_feature_sizes=feature_sizes(spec.input_size),
        fpn_hidden_size=c.get("hidden", 256),
    )
    return Sam2Config(vision_config=vision, **heads_config(spec))


def build_module(spec: ModelSpec, path: str | None) -> Sam2Model:
    """`Sam2Model` for `spec`; `path` is the hub's `save_pretrained` folder (its config says sam2_video: the image
    model takes its image-path subset), None gives random weights."""
    if path is None:
        return Sam2Model(config(spec))
    return Sam2Model.from_pretrained(path, local_files_only=True)


def processor(size: int) -> Sam2Processor:
    """SAM 2's processor for a `size` px square input (the hub's: bilinear resize, ImageNet mean and std)."""
    return Sam2Processor(Sam2ImageProcessor(size={"height": size, "width": size}))


class Sam2Adapter:
    """SAM 2's image path with SAMAdapter's interface; EdgeTAM's too (`Sam2Model` and `EdgeTamModel` share it)."""

    def __init__(self, spec: ModelSpec, weights: str, path: str | None, build=build_module):
        self.spec, self.weights = spec, weights
        self.module = build(spec, path)
        self.size = self.module.config.prompt_encoder_config.image_size
        self.processor = processor(self.size)
        hidden = self.module.config.mask_decoder_config.hidden_size
        self.level_layout = ((hidden // 8, 4), (hidden // 4, 2))  # (channels, scale) of conv_s0, conv_s1's outputs

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def image_embedding(self, image: np.ndarray, key: str = "") -> SamEmbedding:
        """The heavy step, once per image: HWC uint8 RGB → SamEmbedding (carrying `key`, the image's hash)."""
        pixels = self.processor.image_processor(images=np.require(image, requirements="W"), return_tensors="pt")[
            "pixel_values"
        ]
        s0, s1, main = (e[0].float().cpu().numpy() for e in self.module.get_image_embeddings(pixels.to(self.device)))
        return SamEmbedding(main, image.shape[:2], (self.size, self.size), key, (s0, s1))

    def embedding_from(self, features: np.ndarray, image: np.ndarray, key: str = "") -> SamEmbedding:
        """Rebuild the SamEmbedding of `image` from the engine's cached array (`SamEmbedding.cached`)."""
        main, levels = unpack_levels(features, self.level_layout)
        return SamEmbedding(main, image.shape[:2], (self.size, self.size), key, levels)

    def _frame(self, xy: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """(..., 2k) (X, Y) pixels of an (H, W) image → the encoder's square frame, as `Sam2Processor` scales them."""
        h, w = size
        xy = xy.reshape(*xy.shape[:-1], -1, 2).clone()
        xy[..., 0] = xy[..., 0] * (self.size / w)
        xy[..., 1] = xy[..., 1] * (self.size / h)
        return xy.flatten(-2)

    def decode(
        self,
        embedding: SamEmbedding,
        points: torch.Tensor | None,
        labels: torch.Tensor | None,
        box: torch.Tensor | None = None,
        mask_input: torch.Tensor | None = None,
        multimask: bool = True,
        size: tuple[int, int] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """SAM 2's prompt encoder and mask decoder for P prompts at once: points (P, N, 2) pixels of an image of
        `size` (default: the embedding's), labels (P, N), box (1, 4), mask_input (1, 1, h, w) logits. Returns mask
        logits (P, K, H, W) at `size`, predicted IoU (P, K) and the low-resolution logits (P, K, h, w)."""
        size = size or embedding.original_size
        device = self.device
        levels = [torch.from_numpy(a)[None].to(device) for a in (*embedding.levels, embedding.features)]
        out = self.module(
            image_embeddings=levels,
            input_points=None if points is None else self._frame(points.float(), size)[None].to(device),
            input_labels=None if labels is None else labels.long()[None].to(device),
            input_boxes=None if box is None else self._frame(box.float(), size)[None].to(device),
            input_masks=None if mask_input is None else mask_input.float().to(device),
            multimask_output=multimask,
        )
        low = out.pred_masks[0].float()
        logits = F.interpolate(low, size, mode="bilinear", align_corners=False)  # as `post_process_masks` upscales
        return logits, out.iou_scores[0].float(), low

    def predict(self, embedding: SamEmbedding, prompt: SamPrompt) -> SamPrediction:
        """The light step, per click: three candidates or one (`prompt.multimask`, SAM's rule; with one, SAM 2's
        decoder falls back to its best multimask candidate when the single mask is unstable, as upstream)."""
        points = labels = box = mask_input = None
        if prompt.points is not None:
            points, labels = torch.as_tensor(prompt.points)[None], torch.as_tensor(prompt.labels)[None]
        if prompt.box is not None:
            box = torch.as_tensor(prompt.box)[None]
        if prompt.mask_input is not None:
            mask_input = torch.as_tensor(prompt.mask_input)[None]
        logits, scores, low = self.decode(embedding, points, labels, box, mask_input, prompt.multimask)
        return SamPrediction((logits[0] > 0).cpu().numpy(), scores[0].cpu().numpy(), low[0].cpu().numpy())

    def auto_masks(
        self,
        image: np.ndarray,
        embedding: SamEmbedding | None = None,
        params: AutoMaskParams | None = None,
        guard: AbstractContextManager | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> AutoMasks:
        """SAM 2's automatic mask generator: segment_anything's `SamAutomaticMaskGenerator` (grid of points, batched
        decode, predicted-IoU and stability filters, box NMS: SAM2AutomaticMaskGenerator's algorithm without its
        optional mask-to-mask refinement) on SAM 2's decoder (`_Sam2Predictor`). Arguments as `SAMAdapter.auto_masks`.
        """
        params = params or AutoMaskParams()
        predictor = _Sam2Predictor(self, embedding)
        generator = ProgressMaskGenerator(
            predictor.model,  # upstream's constructor builds a SamPredictor on it, replaced at once
            progress,
            points_per_side=params.points_per_side,
            points_per_batch=params.points_per_batch,
            pred_iou_thresh=params.pred_iou_thresh,
            stability_score_thresh=params.stability_score_thresh,
            box_nms_thresh=params.box_nms_thresh,
        )
        generator.predictor = predictor
        return run_generator(generator, image, self.device, guard)


class _Sam2Predictor:
    """What `SamAutomaticMaskGenerator` uses of its SamPredictor (`set_image`, `reset_image`, `transform`,
    `predict_torch`, `device`, `model.mask_threshold`), answered by SAM 2. An image of the embedding's size takes the
    embedding; other sizes (crops) are encoded."""

    def __init__(self, adapter: Sam2Adapter, embedding: SamEmbedding | None):
        self.adapter, self.embedding, self.current = adapter, embedding, None
        self.device = adapter.device
        self.model = SimpleNamespace(mask_threshold=0.0, image_encoder=SimpleNamespace(img_size=adapter.size))
        self.transform = SimpleNamespace(apply_coords=lambda coords, size: coords)  # pixels: `decode` maps them

    def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
        cached = self.embedding is not None and tuple(image.shape[:2]) == tuple(self.embedding.original_size)
        self.current = self.embedding if cached else self.adapter.image_embedding(image)

    def reset_image(self) -> None:
        self.current = None

    def predict_torch(self, points, labels, boxes=None, mask_input=None, multimask_output=True, return_logits=False):
        """(B, 1, 2) point pixels and (B, 1) labels → masks (B, K, H, W) (logits with `return_logits`), IoU (B, K),
        low-resolution logits (B, K, h, w): B prompts of one point each, decoded in one batch."""
        logits, scores, low = self.adapter.decode(self.current, points, labels, multimask=multimask_output)
        return (logits if return_logits else logits > 0), scores, low


FAMILY = Family(
    name="sam2",
    title="SAM 2",
    adapter=Sam2Adapter,
    build_module=build_module,
    weights=HubSnapshot(),
    can=frozenset({Can.EMBED, Can.PROMPTS}),
    default="sam2_hiera_tiny",
    tiny="sam2_tiny",
    compile_target=lambda module: module.vision_encoder,
    notes="Apache-2.0",
)
