"""SAM through segment-anything, in one place: embed once per image (with the optional on-device
preprocessing), then many light prompt decodes, and the automatic mask generator on a cached embedding.

Images are HWC uint8 RGB. Points are (X, Y) in image pixels, boxes XYXY; masks come back at the original size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from functools import partial

import numpy as np
import torch
from segment_anything import SamAutomaticMaskGenerator, SamPredictor, sam_model_registry
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer
from segment_anything.utils.amg import generate_crop_boxes
from segment_anything.utils.transforms import ResizeLongestSide

from core.models import Can, Family
from core.models.fast import resize_uint8_grid, sam_fast_paths, upload
from core.registry import ModelSpec
from core.weights import UrlCheckpoint


@dataclass(frozen=True)
class SamEmbedding:
    """The image embedding of one image: features (C, h, w) float32, sizes as (H, W) in pixels.

    SAM 2 and EdgeTAM's mask decoder also takes high-resolution features: `levels`, finest first, each (C_i, r_i h,
    r_i w) float32 (SAM 1 has none). The engine caches one array per image, `cached`; the adapter's `embedding_from`
    rebuilds the embedding from it.
    """

    features: np.ndarray
    original_size: tuple[int, int]  # the image as given
    input_size: tuple[int, int]  # after resizing to the encoder's input (SAM: longest side; SAM 2: the square)
    key: str = ""  # the image's content hash, when known: the page keys its state by it without hashing again
    levels: tuple[np.ndarray, ...] = ()

    @property
    def cached(self) -> np.ndarray:
        """The one array the engine caches: `features` itself without levels (SAM), else `pack_levels`."""
        return pack_levels(self.features, self.levels) if self.levels else self.features


def pack_levels(features: np.ndarray, levels: Sequence[np.ndarray]) -> np.ndarray:
    """(C, h, w) features and finer (C_i, r h, r w) levels → one (C + Σ C_i r², h, w) float32 array: each level's
    r × r pixel blocks become channels on the (h, w) grid (a pixel unshuffle). `unpack_levels` undoes it exactly."""
    _, h, w = features.shape
    parts = [features]
    for level in levels:
        c, r = level.shape[0], level.shape[1] // h
        parts.append(level.reshape(c, h, r, w, r).transpose(0, 2, 4, 1, 3).reshape(c * r * r, h, w))
    return np.concatenate(parts).astype(np.float32, copy=False)


def unpack_levels(packed: np.ndarray, levels: Sequence[tuple[int, int]]) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """`pack_levels` undone: `levels` gives each level's (channels, scale r), finest first as packed."""
    _, h, w = packed.shape
    end = packed.shape[0] - sum(c * r * r for c, r in levels)
    features, unpacked = packed[:end], []
    for c, r in levels:
        block, end = packed[end : end + c * r * r], end + c * r * r
        unpacked.append(block.reshape(c, r, r, h, w).transpose(0, 3, 1, 4, 2).reshape(c, h * r, w * r))
    return features, tuple(unpacked)


@dataclass(frozen=True)
class SamPrediction:
    masks: np.ndarray  # (K, H, W) bool, at the original image size
    scores: np.ndarray  # (K,) float32, predicted IoU
    logits: np.ndarray  # (K, h, w) float32 low-resolution logits; feed one back as `mask_input`


@dataclass(frozen=True)
class SamPrompt:
    """What one prediction answers: points (N, 2) as (X, Y) pixels with labels (N,) 1 = positive / 0 = negative,
    one box (4,) XYXY pixels, and mask_input (1, h, w) logits of an earlier prediction; any may be None."""

    points: np.ndarray | None = None
    labels: np.ndarray | None = None
    box: np.ndarray | None = None
    mask_input: np.ndarray | None = None

    @property
    def multimask(self) -> bool:
        """SAM's rule (paper, appendix; `SamPredictor.predict`): three candidates only for a single ambiguous
        prompt — one point, no box, no previous mask. Several prompts are not ambiguous: one mask, from SAM's
        single-mask output."""
        one_point = self.points is not None and len(self.points) == 1
        return one_point and self.box is None and self.mask_input is None


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


def _use_embedding(predictor: SamPredictor, embedding: SamEmbedding) -> None:
    """Give `predictor` an image's cached features instead of encoding the image: no shared "current image"."""
    predictor.reset_image()
    predictor.features = torch.from_numpy(embedding.features)[None].to(predictor.device)
    predictor.original_size, predictor.input_size = embedding.original_size, embedding.input_size
    predictor.is_image_set = True


class SAMAdapter:
    def __init__(self, spec: ModelSpec, weights: str, path: str | None):
        self.spec, self.weights = spec, weights
        self.module = build_module(spec, path)
        self.preprocess_device: torch.device | None = None  # where the longest-side resize runs (None: upstream's)
        self.encoder_dtype: torch.dtype | None = None  # CPU autocast dtype for the encoder (None: as the caller's)

    def preprocess_on(self, device: torch.device | str) -> str:
        """Resize on `device` from now on (bilinear with antialias, as upstream's uint8 path); says what it does."""
        self.preprocess_device = torch.device(device)
        return f"{self.preprocess_device.type}: longest-side resize"

    def image_embedding(self, image: np.ndarray, key: str = "") -> SamEmbedding:
        """The heavy step, once per image: HWC uint8 RGB → SamEmbedding (carrying `key`, the image's hash)."""
        predictor = SamPredictor(self.module)
        if self.preprocess_device is None:
            predictor.set_image(image, image_format="RGB")
        else:
            h, w = image.shape[:2]
            target = ResizeLongestSide.get_preprocess_shape(h, w, self.module.image_encoder.img_size)
            with torch.autocast("cpu", self.encoder_dtype) if self.encoder_dtype else nullcontext():
                predictor.set_torch_image(self._resized(image, target), (h, w))
        features = predictor.features[0].float().cpu().numpy()
        return SamEmbedding(features, predictor.original_size, predictor.input_size, key)

    def _resized(self, image: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
        """HWC uint8 → (1, 3, *size) float in 0..255: on CPU SamPredictor's own resize (PIL: its pixels exactly,
        no float round trip), elsewhere the antialiased float grid on the preprocessing device."""
        if self.preprocess_device.type == "cpu":
            resized = ResizeLongestSide(self.module.image_encoder.img_size).apply_image(image)
            return torch.from_numpy(resized).permute(2, 0, 1)[None].float()
        return resize_uint8_grid(upload(image, self.preprocess_device).permute(2, 0, 1)[None].float(), size, "bilinear")

    def embedding_from(self, features: np.ndarray, image: np.ndarray, key: str = "") -> SamEmbedding:
        """Rebuild the SamEmbedding of `image` from cached features (sizes as SamPredictor computes them)."""
        h, w = image.shape[:2]
        input_size = ResizeLongestSide.get_preprocess_shape(h, w, self.module.image_encoder.img_size)
        return SamEmbedding(features, (h, w), input_size, key)

    def predict(self, embedding: SamEmbedding, prompt: SamPrompt) -> SamPrediction:
        """The light step, per click: SAM's mask decoder on `prompt` (three candidates or one: `prompt.multimask`)."""
        predictor = SamPredictor(self.module)
        _use_embedding(predictor, embedding)
        masks, scores, logits = predictor.predict(
            point_coords=prompt.points,
            point_labels=prompt.labels,
            box=prompt.box,
            mask_input=prompt.mask_input,
            multimask_output=prompt.multimask,
        )
        # copy=False: the (K, H, W) masks are already bool (a copy is ~10 MB for a 2250 × 1500 photo, each click)
        return SamPrediction(
            masks.astype(bool, copy=False), scores.astype(np.float32, copy=False), logits.astype(np.float32, copy=False)
        )

    def auto_masks(
        self,
        image: np.ndarray,
        embedding: SamEmbedding | None = None,
        params: AutoMaskParams | None = None,
        guard: AbstractContextManager | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> AutoMasks:
        """segment_anything's SamAutomaticMaskGenerator on an HWC uint8 RGB image.

        `embedding` (of this image) skips the heavy encoder; `guard` is held around the model calls (pass the
        engine's per-model lock); `progress(done, total)` is called with 0 and after each batch of point prompts.
        Runs in fp32 with autocast off: the generator converts its tensors to numpy, which bf16 cannot do.
        """
        params = params or AutoMaskParams()
        generator = ProgressMaskGenerator(
            self.module,
            progress,
            points_per_side=params.points_per_side,
            points_per_batch=params.points_per_batch,
            pred_iou_thresh=params.pred_iou_thresh,
            stability_score_thresh=params.stability_score_thresh,
            box_nms_thresh=params.box_nms_thresh,
        )
        generator.predictor = _CachedPredictor(self.module, embedding)
        return run_generator(generator, image, next(self.module.parameters()).device, guard)


# ---- automatic masks --------------------------------------------------------------------------
@dataclass(frozen=True)
class AutoMaskParams:
    """SamAutomaticMaskGenerator's grid density, quality thresholds and batch size (its defaults)."""

    points_per_side: int = 32
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    box_nms_thresh: float = 0.7
    points_per_batch: int = 64  # point prompts decoded at once: changes memory and progress steps, not the masks

    @property
    def points(self) -> int:
        """Point prompts on the (single-crop) grid."""
        return self.points_per_side**2


PREVIEW_SIDE = 8  # a quick look first: an 8 × 8 grid is 64 prompts, 1/16 of SAM's default 32 × 32


def auto_mask_defaults(random_weights: bool, points_per_side: int = 32) -> AutoMaskParams:
    """SAM's default thresholds; with random weights both quality thresholds at 0 (SAM's defaults let no random
    mask through: its predicted IoU and stability are meaningless then)."""
    params = AutoMaskParams(points_per_side)
    return replace(params, pred_iou_thresh=0.0, stability_score_thresh=0.0) if random_weights else params


@dataclass(frozen=True)
class AutoMasks:
    """SAM's automatic masks, largest first: masks (K, H, W) bool, areas (K,) pixels, scores (K,) predicted IoU,
    stability (K,) stability scores."""

    masks: np.ndarray
    areas: np.ndarray
    scores: np.ndarray
    stability: np.ndarray


def run_generator(
    generator: SamAutomaticMaskGenerator,
    image: np.ndarray,
    device: torch.device,
    guard: AbstractContextManager | None = None,
) -> AutoMasks:
    """`generator.generate(image)` under `guard`, in fp32 with autocast off, as `AutoMasks` (largest first)."""
    with guard or nullcontext(), torch.inference_mode(), torch.autocast(device.type, enabled=False):
        records = sorted(generator.generate(image), key=lambda r: -r["area"])
    h, w = image.shape[:2]
    return AutoMasks(
        np.array([r["segmentation"] for r in records], bool).reshape(-1, h, w),
        np.array([r["area"] for r in records], np.int64),
        np.array([r["predicted_iou"] for r in records], np.float32),
        np.array([r["stability_score"] for r in records], np.float32),
    )


class _CachedPredictor(SamPredictor):
    """The generator's predictor: an image of the embedding's size takes the embedding instead of the encoder
    (other sizes, e.g. crops, are encoded as upstream does)."""

    def __init__(self, module: Sam, embedding: SamEmbedding | None):
        super().__init__(module)
        self.embedding = embedding

    def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
        if self.embedding is None or tuple(image.shape[:2]) != tuple(self.embedding.original_size):
            return super().set_image(image, image_format)
        _use_embedding(self, self.embedding)


class ProgressMaskGenerator(SamAutomaticMaskGenerator):
    """SamAutomaticMaskGenerator that reports (done, total) point batches over all crops as it decodes them.

    Only counts: every batch goes through the upstream `_process_batch`, so the masks are the plain generator's.
    """

    def __init__(self, module: Sam, progress: Callable[[int, int], None] | None = None, **kwargs):
        super().__init__(module, **kwargs)
        self.progress = progress
        self.done = self.total = 0

    def batches(self, size: tuple[int, int]) -> int:
        """Point batches the generator decodes for an image of (H, W) pixels, over every crop layer."""
        _, layers = generate_crop_boxes(size, self.crop_n_layers, self.crop_overlap_ratio)
        return sum(math.ceil(len(self.point_grids[layer]) / self.points_per_batch) for layer in layers)

    def _generate_masks(self, image: np.ndarray):
        self.done, self.total = 0, self.batches(image.shape[:2])
        self._report()
        return super()._generate_masks(image)

    def _process_batch(self, *args, **kwargs):
        out = super()._process_batch(*args, **kwargs)
        self.done += 1
        self._report()
        return out

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(self.done, self.total)


FAMILY = Family(
    name="sam",
    title="SAM",
    adapter=SAMAdapter,
    build_module=build_module,
    weights=UrlCheckpoint("https://dl.fbaipublicfiles.com/segment_anything/", "dl.fbaipublicfiles.com"),
    can=frozenset({Can.EMBED, Can.PROMPTS}),
    default="sam_vit_b",
    tiny="sam_tiny",
    fast_paths=sam_fast_paths,
    fast_on_cpu=True,  # SDPA and, on CPUs with native bf16, a bf16 image encoder
    compile_target=lambda module: module.image_encoder,
    notes="Apache-2.0",
)
