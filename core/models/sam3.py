"""SAM 3 concept prompts through transformers: a noun phrase and/or an exemplar box → every instance of the concept.

Embed once, prompt many: the vision encoder (ViT + FPN neck) runs once per image (`vision_features`); each phrase or
exemplar box runs only the text encoder, the DETR encoder/decoder and the mask decoder on those features (`concepts`),
through `Sam3Model.forward(vision_embeds=...)`, the split upstream offers. Pre- and post-processing are
`Sam3Processor`'s own (`post_process_instance_segmentation`).

Images are HWC uint8 RGB; boxes XYXY in image pixels; masks come back at the image's size.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cache

import numpy as np
import torch
from transformers import CLIPTokenizer, Sam3Config, Sam3ImageProcessor, Sam3Model, Sam3Processor
from transformers.models.sam3.modeling_sam3 import Sam3VisionEncoderOutput

from core.models import Can, Family
from core.models.fast import sdpa_attention
from core.registry import ModelSpec
from core.weights import HubSnapshot

TEXT_TOKENS = 32  # Sam3Processor pads every phrase to 32 CLIP tokens (the text encoder's positions)
VISUAL = "visual"  # the phrase Sam3Processor puts in when only an exemplar box is given


@dataclass(frozen=True)
class ConceptMasks:
    """SAM 3's instances of one concept on one image, above the score threshold, best first."""

    masks: np.ndarray  # (K, H, W) bool at the image's size
    boxes: np.ndarray  # (K, 4) float32 XYXY pixels
    scores: np.ndarray  # (K,) float32: query score × presence score (Sam3Processor's)
    best_score: float  # the best score of any query, kept or not (to say how far "nothing found" was)


def _config(spec: ModelSpec) -> Sam3Config:
    """Tiny: `spec.config` (nested sub-config dicts); real: the default config, which is facebook/sam3's layout."""
    return Sam3Config(**copy.deepcopy(spec.config)) if spec.tiny else Sam3Config()  # the config pops keys


def build_module(spec: ModelSpec, path: str | None) -> Sam3Model:
    """`Sam3Model` for `spec`; `path` is a `save_pretrained` folder (facebook/sam3), None gives random weights."""
    if path is None:
        return Sam3Model(_config(spec))
    return Sam3Model.from_pretrained(path, local_files_only=True)


@cache
def clip_bpe_tokenizer() -> CLIPTokenizer:
    """SAM 3's text tokenizer: CLIP's byte-pair vocabulary (bpe_simple_vocab_16e6, the file SAM 3's own code ships),
    read from the copy inside the open_clip wheel, so no download is needed (the real vocabulary, not a random one)."""
    from open_clip.tokenizer import SimpleTokenizer

    simple = SimpleTokenizer()
    names = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}  # transformers' spelling
    vocab = {names.get(token, token): i for token, i in simple.encoder.items()}
    return CLIPTokenizer(vocab=vocab, merges=sorted(simple.bpe_ranks, key=simple.bpe_ranks.get))


def build_processor(spec: ModelSpec) -> Sam3Processor:
    """The processor at the model's input size (1008 for SAM 3; other settings are the class defaults, the
    released ones)."""
    size = {"height": spec.input_size, "width": spec.input_size}
    return Sam3Processor(image_processor=Sam3ImageProcessor(size=size), tokenizer=clip_bpe_tokenizer())


class Sam3Adapter:
    def __init__(self, spec: ModelSpec, weights: str, path: str | None):
        self.spec, self.weights = spec, weights
        self.module = build_module(spec, path)
        self.processor = build_processor(spec)

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def vision_features(self, image: np.ndarray) -> tuple[np.ndarray, ...]:
        """The heavy step, once per image: the FPN levels (C, h, w) float32, finest first (288², 144², 72², 36² at
        1008 px)."""
        pixels = self.processor.image_processor(images=[np.require(image, requirements="W")], return_tensors="pt")
        out = self.module.get_vision_features(pixel_values=pixels["pixel_values"].to(self.device))
        return tuple(level[0].float().cpu().numpy() for level in out.fpn_hidden_states)

    def _vision_embeds(self, features: tuple[np.ndarray, ...]) -> Sam3VisionEncoderOutput:
        """Cached FPN levels → what `Sam3Model.forward(vision_embeds=...)` takes (position encodings recomputed:
        they depend on the shapes only)."""
        dtype = next(self.module.parameters()).dtype
        levels = tuple(torch.from_numpy(f)[None].to(self.device, dtype) for f in features)
        encode = self.module.vision_encoder.neck.position_encoding
        return Sam3VisionEncoderOutput(
            fpn_hidden_states=levels,
            fpn_position_encoding=tuple(encode(level.shape, level.device, level.dtype) for level in levels),
        )

    def prompt_inputs(self, size: tuple[int, int], phrase: str, box: np.ndarray | None) -> dict[str, torch.Tensor]:
        """input_ids, attention_mask (and input_boxes, input_boxes_labels for an exemplar box) as Sam3Processor
        makes them; a phrase longer than 32 tokens is cut there (the processor would crash the text encoder)."""
        phrase = phrase.strip() or (VISUAL if box is not None else "")
        if not phrase:
            raise ValueError("Type a phrase or draw an exemplar box.")
        text = self.processor.tokenizer(
            phrase, padding="max_length", max_length=TEXT_TOKENS, truncation=True, return_tensors="pt"
        )
        inputs = {"input_ids": text["input_ids"], "attention_mask": text["attention_mask"]}
        if box is not None:
            boxes = self.processor(
                original_sizes=[list(size)], input_boxes=[[np.asarray(box, float).tolist()]], return_tensors="pt"
            )
            inputs |= {"input_boxes": boxes["input_boxes"], "input_boxes_labels": boxes["input_boxes_labels"]}
        return {k: v.to(self.device) for k, v in inputs.items()}

    def concepts(
        self,
        features: tuple[np.ndarray, ...],
        size: tuple[int, int],
        phrase: str,
        box: np.ndarray | None = None,
        threshold: float = 0.5,
        mask_threshold: float = 0.5,
    ) -> ConceptMasks:
        """The light step, per prompt: instances of `phrase` (and/or the concept in exemplar `box`, XYXY pixels) on
        the image of `size` (H, W) whose `features` these are, through Sam3Processor's instance post-processing."""
        out = self.module(vision_embeds=self._vision_embeds(features), **self.prompt_inputs(size, phrase, box))
        found = self.processor.post_process_instance_segmentation(
            out, threshold=threshold, mask_threshold=mask_threshold, target_sizes=[tuple(size)]
        )[0]
        best = (out.pred_logits.sigmoid() * out.presence_logits.sigmoid()).max()  # the processor's score
        order = torch.argsort(found["scores"], descending=True)
        masks = found["masks"][order].bool().cpu().numpy()
        return ConceptMasks(
            masks=masks if len(order) else np.zeros((0, *size), bool),  # upstream leaves none unresized
            boxes=found["boxes"][order].float().cpu().numpy(),
            scores=found["scores"][order].float().cpu().numpy(),
            best_score=float(best),
        )


def _fast_paths(adapter: Sam3Adapter, device: torch.device) -> tuple[str, str]:
    return sdpa_attention(adapter.module), "cpu (Sam3Processor)"


FAMILY = Family(
    name="sam3",
    title="SAM 3",
    adapter=Sam3Adapter,
    build_module=build_module,
    weights=HubSnapshot(gated=True),
    can=frozenset({Can.CONCEPTS}),
    default="sam3",
    tiny="sam3_tiny",
    fast_paths=_fast_paths,
    notes="SAM License (gated on the hub: accept Meta's terms at huggingface.co/facebook/sam3)",
)
