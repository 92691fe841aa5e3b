"""PaliGemma 2 through transformers: an image and a prompt → words ("caption en", "detect cat ; dog", ...).

Greedy decoding is `PaliGemmaForConditionalGeneration.generate(do_sample=False)` itself (the prefix-LM attention over
image + prompt and Gemma 2's caches stay upstream's); a stopping criterion that never stops reports each new token.

"detect X" answers carry boxes as four location tokens per object, `<locY0><locX0><locY1><locX1> label`, on a
1024 grid, objects separated by " ; " (`parse_detections`). "segment X" answers add 16 `<segNNN>` tokens per object:
they are codes of big_vision's VQ-VAE mask decoder (vae-oid.npz), which transformers does not ship, so no mask is
made from them here; the boxes can prompt SAM instead.

Images are HWC uint8 RGB; boxes XYXY in image pixels.
"""

from __future__ import annotations

import re
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
import torch
from transformers import (
    GemmaTokenizer,
    PaliGemmaConfig,
    PaliGemmaForConditionalGeneration,
    PaliGemmaProcessor,
    SiglipImageProcessor,
    StoppingCriteria,
    StoppingCriteriaList,
)

from core.models import Can, Family
from core.models.fast import sdpa_attention
from core.registry import ModelSpec
from core.weights import HubSnapshot

LOC_GRID = 1024  # <loc0000> … <loc1023>
IMAGE_TOKEN = "<image>"
GEMMA_TEXT_VOCAB = 256_000  # Gemma's own tokens; then 1024 <loc>, 128 <seg>, <image> (id 257152), 63 unused
SEGMENT_NOTE = (
    "PaliGemma's <seg> tokens encode masks for big_vision's VQ-VAE decoder (vae-oid.npz), which transformers does not "
    "ship: only the boxes are used."
)
_DETECTION = re.compile(r"((?:<loc\d{4}>){4})((?:<seg\d{3}>)*)\s*([^;<]*)")


@dataclass(frozen=True)
class Answer:
    """One greedy answer."""

    text: str  # decoded without special tokens; <loc>/<seg> tokens stay in it
    tokens: np.ndarray  # (T,) int64 generated token ids (the end-of-sequence token included when it came)
    seconds: float  # wall time of the generation


@dataclass(frozen=True)
class Detections:
    """The objects of a "detect X" answer."""

    boxes: np.ndarray  # (K, 4) float32 XYXY pixels
    labels: list[str]
    note: str = ""  # why there are no boxes, or that <seg> tokens were not decoded


def parse_detections(text: str, size: tuple[int, int]) -> Detections:
    """ "<loc0100><loc0200><loc0300><loc0400> cat ; <loc…>… dog" on an image of `size` (H, W) → boxes and labels.

    Each group of four location tokens is y0 x0 y1 x1 on a 1024 grid over the image (value / 1024 × side); the label
    runs up to the next " ;" or location token. Text with no complete group gives no boxes and a note."""
    h, w = size
    boxes, labels, segmented = [], [], False
    for match in _DETECTION.finditer(text):
        y0, x0, y1, x1 = (int(v) for v in re.findall(r"\d{4}", match.group(1)))
        ys, xs = sorted((y0, y1)), sorted((x0, x1))
        boxes.append([xs[0] / LOC_GRID * w, ys[0] / LOC_GRID * h, xs[1] / LOC_GRID * w, ys[1] / LOC_GRID * h])
        labels.append(match.group(3).strip())
        segmented |= bool(match.group(2))
    note = SEGMENT_NOTE if segmented else ""
    if not boxes:
        shown = text if len(text) <= 80 else text[:77] + "…"
        note = f"No box in the answer (no group of four <loc> tokens): {shown!r}."
    return Detections(np.asarray(boxes, np.float32).reshape(-1, 4), labels, note)


@cache
def offline_tokenizer(text_vocab: int) -> GemmaTokenizer:
    """A stand-in tokenizer for random-weight models, built here because Gemma's comes from the (gated) hub: NOT
    Gemma's vocabulary (single characters, byte fallback, unused fillers up to `text_vocab`), then PaliGemma's layout:
    1024 <loc>, 128 <seg>, <image>. With `text_vocab` = 256000 the special ids equal PaliGemma 2's."""
    vocab = {token: i for i, token in enumerate(["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"])}
    vocab |= {f"<0x{b:02X}>": len(vocab) + b for b in range(256)}
    for char in "▁" + string.ascii_letters + string.digits + string.punctuation:
        vocab.setdefault(char, len(vocab))
    vocab |= {f"<unused{i}>": i for i in range(len(vocab), text_vocab)}
    extra = [f"<loc{i:04d}>" for i in range(LOC_GRID)] + [f"<seg{i:03d}>" for i in range(128)] + [IMAGE_TOKEN]
    vocab |= {token: text_vocab + i for i, token in enumerate(extra)}
    return GemmaTokenizer(vocab=vocab, merges=[])


def _config(spec: ModelSpec) -> PaliGemmaConfig:
    """Tiny: `spec.config`; real: PaliGemma 2 3B's layout (SigLIP So400m/14 + Gemma 2 2B) at the spec's input size."""
    if spec.tiny:
        cfg = spec.config
        vocab = cfg["text_vocab"] + LOC_GRID + 128 + 1
        vision = {**cfg["vision"], "image_size": spec.input_size, "patch_size": spec.patch_size}
        text = {**cfg["text"], "vocab_size": vocab}
        dim = cfg["text"]["hidden_size"]
        return _paligemma(vision, text, image_token=vocab - 1, vocab=vocab, dim=dim)
    vision = {
        "hidden_size": 1152,
        "intermediate_size": 4304,
        "num_hidden_layers": 27,
        "num_attention_heads": 16,
        "patch_size": 14,
        "image_size": spec.input_size,
    }
    text = {
        "hidden_size": 2304,
        "intermediate_size": 9216,
        "num_hidden_layers": 26,
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
        "head_dim": 256,
        "query_pre_attn_scalar": 256,
        "sliding_window": 4096,
        "hidden_activation": "gelu_pytorch_tanh",
        "vocab_size": 257_216,
    }
    return _paligemma(vision, text, image_token=257_152, vocab=257_216, dim=2304)


def _paligemma(vision: dict, text: dict, image_token: int, vocab: int, dim: int) -> PaliGemmaConfig:
    return PaliGemmaConfig(
        vision_config={"model_type": "siglip_vision_model", "vision_use_head": False, **vision},
        text_config={"model_type": "gemma2", **text},
        image_token_index=image_token,
        vocab_size=vocab,
        projection_dim=dim,
        hidden_size=dim,
        bos_token_id=2,
        eos_token_id=1,
        pad_token_id=0,
    )


def build_module(spec: ModelSpec, path: str | None) -> PaliGemmaForConditionalGeneration:
    """The model for `spec`; `path` is a `save_pretrained` folder (google/paligemma2-3b-pt-*), None: random weights."""
    if path is None:
        return PaliGemmaForConditionalGeneration(_config(spec))
    return PaliGemmaForConditionalGeneration.from_pretrained(path, local_files_only=True)


def build_processor(spec: ModelSpec, path: str | None) -> PaliGemmaProcessor:
    """The checkpoint's own processor; for random weights SigLIP's preprocessing (square bicubic resize, mean 0.5,
    std 0.5) with the stand-in `offline_tokenizer`."""
    if path is not None:
        return PaliGemmaProcessor.from_pretrained(path, local_files_only=True)
    side = spec.input_size
    images = SiglipImageProcessor(
        size={"height": side, "width": side},
        resample=3,
        image_mean=[0.5] * 3,
        image_std=[0.5] * 3,
        image_seq_length=(side // spec.patch_size) ** 2,
    )
    text_vocab = spec.config["text_vocab"] if spec.tiny else GEMMA_TEXT_VOCAB
    return PaliGemmaProcessor(image_processor=images, tokenizer=offline_tokenizer(text_vocab))


class _EachToken(StoppingCriteria):
    """Never stops generation; calls `progress(done, total)` after each new token."""

    def __init__(self, progress: Callable[[int, int], None], prompt_length: int, total: int):
        self.progress, self.prompt_length, self.total = progress, prompt_length, total

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        self.progress(input_ids.shape[1] - self.prompt_length, self.total)
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


class PaliGemmaAdapter:
    def __init__(self, spec: ModelSpec, weights: str, path: str | None):
        self.spec, self.weights = spec, weights
        self.module = build_module(spec, path)
        self.processor = build_processor(spec, path)

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def inputs(self, image: np.ndarray, prompt: str) -> dict[str, torch.Tensor]:
        """What the processor makes of `prompt` ("<image>" tokens, <bos>, the prompt, "\\n"), on the model's device."""
        batch = self.processor(
            images=np.require(image, requirements="W"), text=IMAGE_TOKEN + prompt, return_tensors="pt"
        )
        dtype = next(self.module.parameters()).dtype
        inputs = {k: batch[k].to(self.device) for k in ("input_ids", "attention_mask", "token_type_ids")}
        return inputs | {"pixel_values": batch["pixel_values"].to(self.device, dtype)}

    def generate(
        self,
        image: np.ndarray,
        prompt: str,
        max_new_tokens: int = 32,
        progress: Callable[[int, int], None] | None = None,
    ) -> Answer:
        """Greedy answer to `prompt` about `image`, at most `max_new_tokens` tokens; `progress(done, total)` per token."""
        inputs = self.inputs(image, prompt)
        start = inputs["input_ids"].shape[1]
        criteria = StoppingCriteriaList([_EachToken(progress, start, max_new_tokens)] if progress else [])
        began = time.perf_counter()
        out = self.module.generate(**inputs, do_sample=False, max_new_tokens=max_new_tokens, stopping_criteria=criteria)
        seconds = time.perf_counter() - began
        tokens = out[0, start:].cpu()
        text = self.processor.decode(tokens, skip_special_tokens=True).strip()
        return Answer(text, tokens.numpy().astype(np.int64), seconds)


def _fast_paths(adapter: PaliGemmaAdapter, device: torch.device) -> tuple[str, str]:
    return sdpa_attention(adapter.module), "cpu (PaliGemmaProcessor)"


FAMILY = Family(
    name="paligemma",
    title="PaliGemma 2",
    adapter=PaliGemmaAdapter,
    build_module=build_module,
    weights=HubSnapshot(
        files=(
            "config.json",
            "preprocessor_config.json",
            "tokenizer.json",
            "tokenizer_config.json",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
            "model.safetensors.index.json",
        ),
        gated=True,
    ),
    can=frozenset({Can.CAPTION}),
    default="paligemma2_3b_224",
    tiny="paligemma_tiny",
    fast_paths=_fast_paths,
    notes="Gemma licence (gated on the hub: accept Google's terms on the google/paligemma2-3b-pt-* model pages)",
)
