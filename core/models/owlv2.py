"""OWLv2 (Minderer et al., 2023) through transformers: one box per image patch, scored against each phrase, with its
own processor's post-processing (`Owlv2Processor.post_process_grounded_object_detection`).

Each full-stop-separated phrase is one text query. The text tower is CLIP's: with the checkpoint, the tokenizer
comes from its folder; without it, the same byte-pair vocabulary is built from the copy open_clip ships in its wheel
(`bpe_simple_vocab_16e6.txt.gz`, CLIP's own), so the token ids are those of the checkpoint's tokenizer.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch
from transformers import CLIPTokenizer, Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessor, Owlv2Processor
from transformers.models.owlv2.modeling_owlv2 import Owlv2ObjectDetectionOutput

from core.models import Can, Family
from core.models.detection import Detections
from core.registry import ModelSpec
from core.weights import HubSnapshot

_BPE_MERGES = 49152 - 256 - 2  # CLIP's merges: the vocabulary is 49408 = 256 bytes × 2 + merges + 2 specials


def clip_tokenizer(max_length: int = 16) -> CLIPTokenizer:
    """CLIP's BPE tokenizer from open_clip's bundled vocabulary (as `open_clip.tokenizer.SimpleTokenizer` reads it),
    with OWLv2's padding token "!" (id 0) and its 16-token context."""
    import open_clip
    from open_clip.tokenizer import bytes_to_unicode

    path = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    lines = gzip.open(path).read().decode("utf-8").split("\n")[1 : _BPE_MERGES + 1]
    merges = [tuple(line.split()) for line in lines]
    symbols = list(bytes_to_unicode().values())
    tokens = [*symbols, *(s + "</w>" for s in symbols), *("".join(m) for m in merges)]
    vocab = {token: i for i, token in enumerate([*tokens, "<|startoftext|>", "<|endoftext|>"])}
    return CLIPTokenizer(vocab=vocab, merges=merges, pad_token="!", model_max_length=max_length)


def _config(spec: ModelSpec) -> Owlv2Config:
    if spec.tiny:
        return Owlv2Config(**spec.config)
    return Owlv2Config(vision_config={"image_size": spec.input_size, "patch_size": spec.patch_size})


def build_module(spec: ModelSpec, path: str | None) -> Owlv2ForObjectDetection:
    """transformers model for `spec`; `path` is a `save_pretrained` folder, None gives random weights."""
    if path is None:
        return Owlv2ForObjectDetection(_config(spec))
    return Owlv2ForObjectDetection.from_pretrained(path, local_files_only=True)


def build_processor(spec: ModelSpec, path: str | None) -> Owlv2Processor:
    if path is not None:
        return Owlv2Processor.from_pretrained(path, local_files_only=True)
    size = {"height": spec.input_size, "width": spec.input_size}
    return Owlv2Processor(image_processor=Owlv2ImageProcessor(size=size), tokenizer=clip_tokenizer())


class Owlv2Adapter:
    def __init__(self, spec: ModelSpec, weights: str, path: str | None):
        self.spec, self.weights = spec, weights
        self.module = build_module(spec, path)
        self.processor = build_processor(spec, path)
        self.tokenizer_source = "CLIP's vocabulary"
        self.max_length = self.module.config.text_config.max_position_embeddings

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def raw(self, image: np.ndarray, phrases: list[str]) -> torch.Tensor:
        """(Q, len(phrases) + 4): per-patch logits for each phrase, then normalised (cx, cy, w, h) boxes of the
        padded square image."""
        inputs = self.processor(
            images=[np.require(image, requirements="W")],
            text=[phrases],
            padding="max_length",
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        ).to(self.device)
        out = self.module(**inputs)
        return torch.cat([out.logits[0].float(), out.pred_boxes[0].float()], dim=-1)

    def detections(
        self, raw: np.ndarray, phrases: list[str], size: tuple[int, int], box_threshold: float, text_threshold: float
    ) -> Detections:
        """The processor's `post_process_grounded_object_detection` (score above `box_threshold`; OWLv2 has no
        text threshold) on cached outputs, boxes in pixels of (H, W) (they may reach into the square's padding)."""
        logits, boxes = torch.from_numpy(raw[:, :-4])[None], torch.from_numpy(raw[:, -4:])[None]
        outputs = Owlv2ObjectDetectionOutput(logits=logits, pred_boxes=boxes)
        (found,) = self.processor.post_process_grounded_object_detection(
            outputs, box_threshold, target_sizes=[tuple(size)], text_labels=[phrases]
        )
        return Detections(
            found["boxes"].numpy().astype(np.float32).reshape(-1, 4),
            found["scores"].numpy().astype(np.float32),
            list(found["text_labels"]),
            float(torch.sigmoid(logits).max()) if logits.numel() else 0.0,
        )


FAMILY = Family(
    name="owlv2",
    title="OWLv2",
    adapter=Owlv2Adapter,
    build_module=build_module,
    weights=HubSnapshot(
        files=(
            "config.json",
            "preprocessor_config.json",
            "tokenizer_config.json",
            "special_tokens_map.json",
            "vocab.json",
            "merges.txt",
            "model.safetensors",
        )
    ),
    can=frozenset({Can.DETECT}),
    default="owlv2_base",
    tiny="owlv2_tiny",
    notes="Apache-2.0",
)
