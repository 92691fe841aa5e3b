"""SAM through segment-anything: embed once per image, then many light prompt decodes."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from segment_anything import SamPredictor, sam_model_registry
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer
from segment_anything.utils.transforms import ResizeLongestSide

from core.registry import ModelSpec


@dataclass(frozen=True)
class SamEmbedding:
    """SAM image embedding of one image: features (C, h, w) float32, sizes as (H, W) in pixels."""

    features: np.ndarray
    original_size: tuple[int, int]  # the image as given
    input_size: tuple[int, int]  # after resizing the longest side to the encoder's input size


@dataclass(frozen=True)
class SamPrediction:
    masks: np.ndarray  # (K, H, W) bool, at the original image size
    scores: np.ndarray  # (K,) float32, predicted IoU
    logits: np.ndarray  # (K, h, w) float32 low-resolution logits; feed one back as `mask_input`


def _build_tiny(config: dict) -> Sam:
    """segment_anything's `_build_sam`, with every size a parameter (the constants there are for 1024 px)."""
    image_size, prompt_dim, patch = config["image_size"], config["prompt_embed_dim"], 16
    grid = image_size // patch
    return Sam(
        image_encoder=ImageEncoderViT(
            depth=config["encoder_depth"],
            embed_dim=config["encoder_embed_dim"],
            img_size=image_size,
            mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=config["encoder_num_heads"],
            patch_size=patch,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=config["encoder_global_attn_indexes"],
            window_size=config["window_size"],
            out_chans=prompt_dim,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=prompt_dim,
            image_embedding_size=(grid, grid),
            input_image_size=(image_size, image_size),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer_dim=prompt_dim,
            iou_head_depth=3,
            iou_head_hidden_dim=prompt_dim,
            transformer=TwoWayTransformer(depth=2, embedding_dim=prompt_dim, mlp_dim=2 * prompt_dim, num_heads=2),
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )


def build_module(spec: ModelSpec, path: str | None) -> Sam:
    """SAM for `spec`; `path` is an official checkpoint, loaded safely (weights_only, on CPU)."""
    sam = _build_tiny(spec.config) if spec.tiny else sam_model_registry[spec.arch](checkpoint=None)
    if path is not None:
        sam.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return sam


class SAMAdapter:
    def __init__(self, spec: ModelSpec, weights: str, path: str | None):
        self.spec, self.weights = spec, weights
        self.module = build_module(spec, path)

    def image_embedding(self, image: np.ndarray) -> SamEmbedding:
        """The heavy step, once per image: HWC uint8 RGB → SamEmbedding."""
        predictor = SamPredictor(self.module)
        predictor.set_image(image, image_format="RGB")
        return SamEmbedding(predictor.features[0].float().cpu().numpy(), predictor.original_size, predictor.input_size)

    def embedding_from(self, features: np.ndarray, image: np.ndarray) -> SamEmbedding:
        """Rebuild the SamEmbedding of `image` from cached features (sizes as SamPredictor computes them)."""
        h, w = image.shape[:2]
        input_size = ResizeLongestSide.get_preprocess_shape(h, w, self.module.image_encoder.img_size)
        return SamEmbedding(features, (h, w), input_size)

    def predict(
        self,
        embedding: SamEmbedding,
        points: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask: bool = True,
    ) -> SamPrediction:
        """The light step, per click: points (N, 2) as (X, Y) pixels, labels (N,) 1 = positive / 0 = negative,
        box (4,) XYXY pixels, mask_input (1, h, w) logits from an earlier prediction."""
        predictor = SamPredictor(self.module)  # a fresh, stateless wrapper: no shared "current image"
        predictor.features = torch.from_numpy(embedding.features)[None].to(next(self.module.parameters()).device)
        predictor.original_size, predictor.input_size = embedding.original_size, embedding.input_size
        predictor.is_image_set = True
        masks, scores, logits = predictor.predict(
            point_coords=points, point_labels=labels, box=box, mask_input=mask_input, multimask_output=multimask
        )
        return SamPrediction(masks.astype(bool), scores.astype(np.float32), logits.astype(np.float32))
