"""CLIP through open_clip: image tower with open_clip's own eval preprocessing, text tower with its tokenizer."""

from __future__ import annotations

import logging

import numpy as np
import open_clip
import torch
from open_clip.transform import PreprocessCfg, image_transform_v2
from PIL import Image

from core.analysis.retrieval import ZERO_SHOT_SCALE, ZeroShotRule
from core.models import Can, Family
from core.models.fast import clip_fast_paths, module_dtype
from core.models.pixels import recipe_of
from core.registry import ModelSpec
from core.weights import OpenClipHub


def _register_tiny(spec: ModelSpec) -> None:
    """open_clip finds architectures by name in its config folders; add the tiny one once."""
    if spec.arch in open_clip.list_models():
        return
    import json
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp(prefix="vfm-lens-clip-"))
    (folder / f"{spec.arch}.json").write_text(json.dumps(spec.config))
    open_clip.add_model_config(folder)


def build_module(spec: ModelSpec, path: str | None, tag: str | None = None) -> open_clip.CLIP:
    """open_clip model for `spec`; `path` is a checkpoint file, None gives random weights.

    Loading from a file skips what open_clip reads from a pretrained tag (QuickGELU for the OpenAI
    weights, the tag's mean/std), so the tag's settings are passed explicitly.
    """
    if spec.tiny:
        _register_tiny(spec)
    tag_cfg = open_clip.get_pretrained_cfg(spec.arch, tag) if tag else {}
    root = logging.getLogger()
    root.addFilter(_random_init_notice)  # random weights are said in the UI; not a warning in the server log
    try:
        return open_clip.create_model(
            spec.arch,
            pretrained=path,
            weights_only=True,
            device=torch.get_default_device(),  # the meta device when counting parameters
            force_quick_gelu=bool(tag_cfg.get("quick_gelu", False)),
            force_preprocess_cfg={
                k: tag_cfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in tag_cfg
            },
        )
    finally:
        root.removeFilter(_random_init_notice)


def _random_init_notice(record: logging.LogRecord) -> bool:
    """False for open_clip's "No pretrained weights loaded ... initialized randomly" (a logging filter)."""
    return not record.getMessage().startswith("No pretrained weights loaded")


class CLIPAdapter:
    def __init__(self, spec: ModelSpec, weights: str, path: str | None):
        self.spec, self.weights = spec, weights
        self.module = build_module(spec, path, weights if path else None)
        cfg = self.module.visual.preprocess_cfg
        self.preprocess = image_transform_v2(PreprocessCfg(**cfg), is_train=False)
        self._squash = image_transform_v2(PreprocessCfg(**{**cfg, "resize_mode": "squash"}), is_train=False)
        self._recipe = recipe_of(self.preprocess)  # the same recipe on the arrays, without PIL (or None)
        self.tokenizer = open_clip.get_tokenizer(spec.arch)
        self.tokenizer_note = ""  # open_clip's BPE tokenizer ships in its wheel

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The image tower's dtype (bf16 on CPUs with native bf16, `core.models.fast.cpu_bf16`)."""
        return module_dtype(self.module.visual)

    def pixels(self, images: list[np.ndarray]) -> torch.Tensor:
        """HWC uint8 RGB → (B, 3, S, S) float, as open_clip's eval transform makes it (resampled on the arrays)."""
        if self._recipe is not None:
            return self._recipe.pixels(images)
        return torch.stack([self.preprocess(Image.fromarray(im)) for im in images])

    def embed(self, images: list[np.ndarray]) -> torch.Tensor:
        return self.module.encode_image(self.pixels(images).to(self.device, self.dtype))

    def embed_text(self, texts: list[str]) -> torch.Tensor:
        """(T, D) text embeddings (unnormalised), in the joint space of `embed`."""
        return self.module.encode_text(self.tokenizer(texts).to(self.device))

    def zero_shot_rule(self) -> ZeroShotRule:
        """A softmax over the classes of 100 × cosine (CLIP's learned logit scale, trained up to its cap of 100)."""
        return ZeroShotRule(sigmoid=False, scale=ZERO_SHOT_SCALE, model="CLIP")

    def patch_embeddings(self, images: list[np.ndarray], route: str = "maskclip") -> torch.Tensor:
        """(B, h, w, D) patch tokens in the joint image-text space, by `route` (one of `PATCH_ROUTES`):

        - "maskclip": MaskCLIP (Zhou et al., ECCV 2022): the blocks before the last as usual, then the last block's
          value embeddings through its output projection (no query-key attention, no residual, no MLP), then
          `ln_post` and `proj`. Each patch keeps its own content, so text similarity localises.
        - "final": the last block's output tokens after `ln_post`, projected by `proj` (`VisionTransformer.forward`
          with `output_tokens=True`): every token has mixed in the whole image, so they localise poorly.

        The image is squashed to the model's input size (no crop), so the grid covers the whole image.
        """
        if route not in PATCH_ROUTES:
            raise ValueError(f"route must be one of {', '.join(PATCH_ROUTES)}, got {route!r}")
        visual = self.module.visual
        pixels = torch.stack([self._squash(Image.fromarray(im)) for im in images]).to(self.device, self.dtype)
        x = visual._embeds(pixels)
        if route == "final":
            _, tokens = visual._pool(visual.transformer(x))
        else:
            tokens = visual.ln_post(maskclip_values(visual.transformer, x)[:, 1:])
        grid = self.spec.input_size // self.spec.patch_size
        return (tokens @ visual.proj).reshape(len(images), grid, grid, -1)


PATCH_ROUTES = {
    "maskclip": "MaskCLIP: value embeddings of the last block",
    "final": "Final-layer tokens (raw CLIP)",
}


def maskclip_values(transformer: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(B, T, W) tokens entering open_clip's `transformer` → (B, T, W) MaskCLIP tokens: every block but the last as
    usual, then the last block's value projection of `ln_1(x)` through the attention's output projection."""
    *blocks, last = transformer.resblocks
    x = x if transformer.batch_first else x.transpose(0, 1)
    for block in blocks:
        x = block(x)
    x = x if transformer.batch_first else x.transpose(0, 1)
    attn = last.attn
    width = attn.embed_dim
    values = torch.nn.functional.linear(last.ln_1(x), attn.in_proj_weight[-width:], attn.in_proj_bias[-width:])
    return attn.out_proj(values)


FAMILY = Family(
    name="clip",
    title="CLIP",
    adapter=CLIPAdapter,
    build_module=build_module,
    weights=OpenClipHub(),
    can=frozenset({Can.EMBED, Can.TEXT, Can.DENSE_TEXT}),
    default="clip_vit_b32",
    tiny="clip_tiny",
    fast_paths=clip_fast_paths,
    compile_target=lambda module: module.visual,
    bf16_tower=lambda adapter: adapter.module.visual,
    notes="MIT (OpenAI weights); LAION weights MIT",
)
