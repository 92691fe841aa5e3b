"""Grounding DINO (Liu et al., 2023) through transformers: boxes for a phrase, with its own processor's
post-processing (`GroundingDinoProcessor.post_process_grounded_object_detection`).

The text tower is BERT (bert-base-uncased). With the checkpoint, the processor (image processor and BERT tokenizer)
comes from the checkpoint folder. Without it (random weights, offline), BERT's vocabulary is not on this machine
either: a character-level WordPiece vocabulary stands in (every letter and digit, alone and as a ``##`` continuation,
and ASCII punctuation), so any Latin phrase tokenises and decodes back to its words; other scripts become [UNK].
"""

from __future__ import annotations

import string
import threading

import numpy as np
import torch
from transformers import (
    BertTokenizer,
    GroundingDinoConfig,
    GroundingDinoForObjectDetection,
    GroundingDinoImageProcessor,
    GroundingDinoProcessor,
)
from transformers.models.grounding_dino.modeling_grounding_dino import GroundingDinoObjectDetectionOutput

from core.models import Can, Family
from core.models.detection import Detections, joined
from core.registry import ModelSpec
from core.weights import HubSnapshot

# the published backbones (config.json of each checkpoint); the rest of the config is the library's default
_SWIN = {
    "IDEA-Research/grounding-dino-tiny": {},  # Swin-T: SwinConfig's defaults
    "IDEA-Research/grounding-dino-base": {
        "embed_dim": 128,
        "depths": [2, 2, 18, 2],
        "num_heads": [4, 8, 16, 32],
        "window_size": 12,
        "image_size": 384,
    },
}
_PROCESSOR_KEYS = ("shortest_edge", "longest_edge")
SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def character_vocab() -> list[str]:
    """The stand-in WordPiece vocabulary: specials, single characters, then ``##`` continuations."""
    alnum = string.ascii_lowercase + string.digits
    return [*SPECIALS, *alnum, *string.punctuation, *(f"##{c}" for c in alnum)]


def character_tokenizer() -> BertTokenizer:
    """A BERT (WordPiece, lower-casing) tokenizer on `character_vocab`: no file, no download."""
    vocab = character_vocab()
    return BertTokenizer(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=True)


def _config(spec: ModelSpec) -> GroundingDinoConfig:
    if spec.tiny:
        dims = {k: v for k, v in spec.config.items() if k not in _PROCESSOR_KEYS}
        return GroundingDinoConfig(**dims)
    backbone = {"model_type": "swin", "out_indices": [2, 3, 4], **_SWIN[spec.arch]}
    return GroundingDinoConfig(backbone_config=backbone)


def build_module(spec: ModelSpec, path: str | None) -> GroundingDinoForObjectDetection:
    """transformers model for `spec`; `path` is a `save_pretrained` folder, None gives random weights."""
    if path is None:
        return GroundingDinoForObjectDetection(_config(spec))
    return GroundingDinoForObjectDetection.from_pretrained(path, local_files_only=True)


def build_processor(spec: ModelSpec, path: str | None) -> tuple[GroundingDinoProcessor, str]:
    """(processor, where its tokenizer came from): the checkpoint's own, or the character-level stand-in."""
    if path is not None:
        return GroundingDinoProcessor.from_pretrained(path, local_files_only=True), "BERT's vocabulary"
    sizes = {k: spec.config[k] for k in _PROCESSOR_KEYS} if spec.tiny else {"shortest_edge": 800, "longest_edge": 1333}
    images = GroundingDinoImageProcessor(size=sizes)
    why = "a character-level stand-in for BERT's vocabulary (not on this machine)"
    return GroundingDinoProcessor(image_processor=images, tokenizer=character_tokenizer()), why


class GroundingDinoAdapter:
    def __init__(self, spec: ModelSpec, weights: str, path: str | None):
        self.spec, self.weights = spec, weights
        self.module = build_module(spec, path)
        self.processor, self.tokenizer_source = build_processor(spec, path)
        self.max_text_len = self.module.config.max_text_len
        # a fast tokenizer set to truncate is not safe to call from two threads at once ("Already borrowed"), and
        # post-processing runs outside the engine's model lock
        self._text_lock = threading.Lock()

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def input_ids(self, phrases: list[str]) -> torch.Tensor:
        """(1, T) token ids of the joined phrases, cut at the model's `max_text_len`."""
        with self._text_lock:
            return self.processor.tokenizer(
                [joined(phrases)], truncation=True, max_length=self.max_text_len, return_tensors="pt"
            )["input_ids"]

    def raw(self, image: np.ndarray, phrases: list[str]) -> torch.Tensor:
        """(Q, 256 + 4): per-query token logits (-inf past the text) and normalised (cx, cy, w, h) boxes."""
        with self._text_lock:
            inputs = self.processor(
                images=[np.require(image, requirements="W")],
                text=joined(phrases),
                truncation=True,
                max_length=self.max_text_len,
                return_tensors="pt",
            ).to(self.device)
        out = self.module(**inputs)
        return torch.cat([out.logits[0].float(), out.pred_boxes[0].float()], dim=-1)

    def detections(
        self, raw: np.ndarray, phrases: list[str], size: tuple[int, int], box_threshold: float, text_threshold: float
    ) -> Detections:
        """The processor's `post_process_grounded_object_detection` on cached outputs, boxes in pixels of (H, W)."""
        logits, boxes = torch.from_numpy(raw[:, :-4])[None], torch.from_numpy(raw[:, -4:])[None]
        outputs = GroundingDinoObjectDetectionOutput(logits=logits, pred_boxes=boxes)
        (found,) = self.processor.post_process_grounded_object_detection(
            outputs, self.input_ids(phrases), box_threshold, text_threshold, target_sizes=[tuple(size)]
        )
        return Detections(
            found["boxes"].numpy().astype(np.float32).reshape(-1, 4),
            found["scores"].numpy().astype(np.float32),
            [label.strip() for label in found["text_labels"]],
            float(torch.sigmoid(logits).max()) if logits.numel() else 0.0,
        )


FAMILY = Family(
    name="grounding_dino",
    title="Grounding DINO",
    adapter=GroundingDinoAdapter,
    build_module=build_module,
    weights=HubSnapshot(
        files=(
            "config.json",
            "preprocessor_config.json",
            "tokenizer_config.json",
            "special_tokens_map.json",
            "vocab.txt",
            "tokenizer.json",
            "model.safetensors",
        )
    ),
    can=frozenset({Can.DETECT}),
    default="grounding_dino_tiny",
    tiny="gdino_tiny",
    notes="Apache-2.0",
)
