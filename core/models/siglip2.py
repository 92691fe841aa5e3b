"""SigLIP 2 (fixed resolution) through transformers: image and text towers in one joint space, sigmoid scores.

The fixed-resolution SigLIP 2 checkpoints (``google/siglip2-base-patch16-224`` …) are stored as transformers
``SiglipModel`` (their config says ``"model_type": "siglip"``): the same architecture as SigLIP, a new training
recipe and Gemma's 256k tokenizer. ``Siglip2Model`` is the NaFlex variant (patchified inputs at native aspect
ratio, a linear patch embedding); its weights do not load into the fixed-resolution class, nor the reverse.

Zero-shot differs from CLIP: SigLIP was trained with a sigmoid loss, so each class is scored on its own,
sigmoid(exp(logit_scale) × cosine + logit_bias) with the model's learned scale and bias — the probabilities
need not sum to 1 (`ZeroShotRule`).

Text is tokenised by the checkpoint's own tokenizer (it comes with the weights). Random weights have none, and
the Gemma tokenizer cannot be downloaded offline: they get a stand-in, transformers' `Siglip2Tokenizer` (Gemma's
normaliser and special tokens, lowercasing) with only the 256 byte-fallback tokens as vocabulary. Its ids are
not Gemma's, which does not matter for random weights (their text scores mean nothing) and is said in the UI.
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import (
    AutoProcessor,
    Siglip2Tokenizer,
    SiglipConfig,
    SiglipImageProcessor,
    SiglipModel,
    SiglipProcessor,
)

from core.analysis.retrieval import ZeroShotRule
from core.models import Can, Family
from core.models.fast import module_dtype, sdpa_attention
from core.registry import ModelSpec
from core.weights import HubSnapshot

MEAN = STD = (0.5, 0.5, 0.5)  # the checkpoints' preprocessor_config.json
BILINEAR = 2  # PIL's code, as the checkpoints' preprocessor_config.json gives it
GEMMA_SPECIALS = ("<pad>", "<eos>", "<bos>", "<unk>", "<mask>")  # ids 0..4, as in Gemma's vocabulary
STAND_IN_NOTE = (
    "Text is tokenised by a stand-in (bytes and Gemma's special tokens), not by the Gemma tokenizer that comes with "
    "the pretrained weights: with random weights and this tokenizer, text scores mean nothing."
)
# (hidden, layers, heads, MLP) of both towers of the published checkpoints (their config.json), for random init
_DIMS = {
    "google/siglip2-base-patch16-224": (768, 12, 12, 3072),
    "google/siglip2-large-patch16-256": (1024, 24, 16, 4096),
    "google/siglip2-so400m-patch14-384": (1152, 27, 16, 4304),
}
_GEMMA_VOCAB = 256_000


def _config(spec: ModelSpec) -> SiglipConfig:
    specials = {"pad_token_id": 0, "eos_token_id": 1, "bos_token_id": 2}
    if spec.tiny:
        text, vision = spec.config["text_config"], spec.config["vision_config"]
        return SiglipConfig(text_config={**text, **specials}, vision_config=vision)
    hidden, layers, heads, mlp = _DIMS[spec.arch]
    tower = {"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads, "intermediate_size": mlp}
    return SiglipConfig(
        text_config={**tower, "vocab_size": _GEMMA_VOCAB, "max_position_embeddings": 64, **specials},
        vision_config={**tower, "image_size": spec.input_size, "patch_size": spec.patch_size},
    )


def build_module(spec: ModelSpec, path: str | None) -> SiglipModel:
    """transformers model for `spec`; `path` is a `save_pretrained` folder, None gives random weights."""
    if path is None:
        return SiglipModel(_config(spec))
    return SiglipModel.from_pretrained(path, local_files_only=True)


def stand_in_tokenizer() -> Siglip2Tokenizer:
    """transformers' SigLIP 2 tokenizer with Gemma's five special tokens and the 256 byte tokens as its vocabulary:
    any text tokenises (to its UTF-8 bytes), offline. For random weights only."""
    vocab = {token: i for i, token in enumerate(GEMMA_SPECIALS)}
    vocab |= {f"<0x{byte:02X}>": len(GEMMA_SPECIALS) + byte for byte in range(256)}
    return Siglip2Tokenizer(vocab=vocab, merges=[])


def build_processor(spec: ModelSpec, path: str | None) -> SiglipProcessor:
    """The checkpoint's own processor; for random weights, its image processor settings and the stand-in tokenizer."""
    if path is not None:
        try:
            return AutoProcessor.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ValueError(
                f"{spec.title}: {path} has weights but no processor or tokenizer files (preprocessor_config.json, "
                "tokenizer_config.json, tokenizer.json): copy the whole hub folder."
            ) from exc
    size = {"height": spec.input_size, "width": spec.input_size}
    images = SiglipImageProcessor(size=size, resample=BILINEAR, image_mean=MEAN, image_std=STD)
    return SiglipProcessor(image_processor=images, tokenizer=stand_in_tokenizer())


class SigLIP2Adapter:
    def __init__(self, spec: ModelSpec, weights: str, path: str | None):
        self.spec, self.weights = spec, weights
        self.module = build_module(spec, path)
        self.processor = build_processor(spec, path)
        self.tokenizer_note = "" if path is not None else STAND_IN_NOTE
        self.max_tokens = self.module.config.text_config.max_position_embeddings

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def pixels(self, images: list[np.ndarray]) -> torch.Tensor:
        """HWC uint8 RGB → (B, 3, S, S) float: the image processor's square resize (no crop), normalised."""
        writable = [np.require(im, requirements="W") for im in images]  # torch warns on read-only arrays
        return self.processor.image_processor(images=writable, return_tensors="pt")["pixel_values"]

    def embed(self, images: list[np.ndarray]) -> torch.Tensor:
        """(B, D) image embeddings (unnormalised): the attention-pooling head's output, already in the joint space."""
        pixels = self.pixels(images).to(self.device, module_dtype(self.module.vision_model))
        return self.module.get_image_features(pixel_values=pixels).pooler_output

    def embed_text(self, texts: list[str]) -> torch.Tensor:
        """(T, D) text embeddings (unnormalised) in the joint space of `embed`, padded to the trained length."""
        tokens = self.processor.tokenizer(
            list(texts), padding="max_length", truncation=True, max_length=self.max_tokens, return_tensors="pt"
        )
        return self.module.get_text_features(**tokens.to(self.device)).pooler_output

    def zero_shot_rule(self) -> ZeroShotRule:
        """Each class on its own: sigmoid of the learned exp(logit_scale) × cosine + logit_bias."""
        scale, bias = self.module.logit_scale.exp().item(), self.module.logit_bias.item()
        return ZeroShotRule(sigmoid=True, scale=scale, bias=bias, model="SigLIP 2")


def _fast_paths(adapter: SigLIP2Adapter, device: torch.device) -> tuple[str, str]:
    return sdpa_attention(adapter.module), "cpu (the image processor)"


FAMILY = Family(
    name="siglip2",
    title="SigLIP 2",
    adapter=SigLIP2Adapter,
    build_module=build_module,
    weights=HubSnapshot(
        files=(
            "config.json",
            "preprocessor_config.json",
            "tokenizer_config.json",
            "tokenizer.json",
            "model.safetensors",
        )
    ),
    can=frozenset({Can.EMBED, Can.TEXT}),
    default="siglip2_base",
    tiny="siglip2_tiny",
    bf16_tower=lambda adapter: adapter.module.vision_model,
    fast_paths=_fast_paths,
    notes="Apache-2.0",
)
