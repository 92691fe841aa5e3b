"""Model families: one file per family, each exporting one `Family` descriptor; everyone else asks the descriptor.

A family file (`core/models/<family>.py`) holds its adapter, how to build the module (real, tiny, meta device),
where its weights live (a `core.weights` source), its fast-path hook, its default and tiny model names and what
it can do (`Can`). Its models are the registry entries (`core/registry.py`) with `family=<name>`. Adding a family
touches its own file, one line in `_FAMILY_MODULES` below, its registry entries and its tests — nothing else.

Every adapter has `spec`, `weights` (the weights actually loaded: a tag or "random"), `module` (the torch model).
- `Can.EMBED`: `embed(images) -> (B, D)` on HWC uint8 RGB images.
- `Can.PATCHES`: `patch_tokens(images, size, layer)`, `layer_tokens(images, size)`, `num_layers`.
- `Can.TEXT`: `embed_text(texts) -> (T, D)` in the joint space of `embed`; `zero_shot_rule()` (how its cosines
  become class probabilities: `core.analysis.retrieval.ZeroShotRule`); `tokenizer_note` ("" or why text scores
  mean nothing).
- `Can.DENSE_TEXT`: `patch_embeddings(images, route) -> (B, h, w, D)` patch tokens in that joint space.
- `Can.PROMPTS`: `image_embedding`, `embedding_from`, `predict(SamEmbedding, SamPrompt)`, `auto_masks`
  (`core/models/sam.py` defines the prompt and result types every promptable family shares).
- `Can.ATTENTION`: `attentions(images, size, layer)` from the model's own eager attention path.
- `Can.DETECT`: `raw(image, phrases)` (the forward pass, cached by the engine) and `detections(raw, phrases, size,
  box_threshold, text_threshold) -> Detections` (`core/models/detection.py`: what every detector family shares).
- `Can.CONCEPTS`: `vision_features(image)` once per image, then `concepts(features, size, phrase, box, threshold)`
  (`core/models/sam3.py`).
- `Can.CAPTION`: `generate(image, prompt, max_new_tokens, progress)` → `Answer` (`core/models/paligemma.py`).
- `Can.TRACK`: `module` and `processor` of a SAM 2 video model, run on a clip by `core.video.VideoTracker`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from typing import Any, Protocol

import torch

from core.registry import ModelSpec


class Can(StrEnum):
    """What a family's models can do; pages offer a model only for what it can do."""

    EMBED = "image embeddings"  # one vector per image
    PATCHES = "patch tokens"  # a grid of patch tokens per layer
    TEXT = "text embeddings"  # a text tower in the image embedding's space
    DENSE_TEXT = "patch-text similarity"  # patch tokens in that joint space too (CLIP; not SigLIP's pooled head)
    PROMPTS = "masks from prompts"  # masks from points and boxes
    ATTENTION = "attention maps"  # from the model's own attention
    DETECT = "boxes from text"  # boxes, scores and phrase labels for a text query
    CONCEPTS = "masks from a phrase"  # every instance of a noun phrase or an exemplar box
    CAPTION = "answers in words"  # caption, "detect X" (boxes as <loc> tokens)
    TRACK = "video tracking"  # masks of prompted objects through a clip


class Adapter(Protocol):
    spec: ModelSpec
    weights: str
    module: torch.nn.Module


@dataclass(frozen=True)
class Family:
    """Everything the rest of the code needs to know about one model family."""

    name: str  # the registry's `ModelSpec.family`
    title: str  # "DINOv2"
    adapter: Callable[[ModelSpec, str, str | None], Any]  # (spec, weights tag or "random", path or None)
    build_module: Callable[[ModelSpec, str | None], torch.nn.Module]  # path None: random init; meta device works
    weights: Any  # a `core.weights` source: where the weights live, how they are fetched and verified
    can: frozenset[Can]
    default: str  # the model offered first
    tiny: str  # its tiny random-init test model
    # (adapter, device) → (how attention runs, where preprocessing runs); the engine applies it on CUDA
    fast_paths: Callable[[Any, torch.device], tuple[str, str]] | None = None
    fast_on_cpu: bool = False  # apply the fast paths on CPU too
    # the adapter's image tower, which holds bf16 weights on a CPU that multiplies bf16 natively (`fast.cpu_bf16`);
    # the adapter casts its pixels to that tower's dtype
    bf16_tower: Callable[[Any], torch.nn.Module] | None = None
    compile_target: Callable[[torch.nn.Module], torch.nn.Module] = field(default=lambda module: module)
    notes: str = ""  # licence or access notes for the Models page


# one line per family; the order is the order families are offered in
_FAMILY_MODULES = {
    "clip": "core.models.clip",
    "siglip2": "core.models.siglip2",
    "dinov2": "core.models.dinov2",
    "dinov3": "core.models.dinov3",
    "sam": "core.models.sam",
    "sam2": "core.models.sam2",
    "edgetam": "core.models.edgetam",
    "sam3": "core.models.sam3",
    "paligemma": "core.models.paligemma",
    "sam2_video": "core.models.sam2_video",
    "timm": "core.models.timm_models",
    "grounding_dino": "core.models.grounding_dino",
    "owlv2": "core.models.owlv2",
}


def family(name: str) -> Family:
    """The descriptor of family `name` (its module is imported on first use: the libraries are heavy)."""
    try:
        module = _FAMILY_MODULES[name]
    except KeyError:
        raise KeyError(f"Unknown model family {name!r}; known: {', '.join(_FAMILY_MODULES)}") from None
    return importlib.import_module(module).FAMILY


def family_names() -> list[str]:
    return list(_FAMILY_MODULES)


def families() -> list[Family]:
    return [family(name) for name in _FAMILY_MODULES]


def can(spec: ModelSpec, what: Can) -> bool:
    return what in family(spec.family).can


def build_adapter(spec: ModelSpec, weights: str, path: str | None, device: torch.device) -> Adapter:
    """Build `spec` with weights from `path` (None → seeded random init) on `device`."""
    torch.manual_seed(0)  # random weights are reproducible, so their cached results stay valid
    adapter = family(spec.family).adapter(spec, weights, path)
    adapter.module.eval().requires_grad_(False).to(device)
    return adapter


@cache
def count_parameters(spec: ModelSpec) -> int:
    """Parameter count of the real architecture, built on the meta device (no memory, no weights)."""
    build = family(spec.family).build_module
    with torch.device("meta"):
        module = build(spec, None)
    return sum(p.numel() for p in module.parameters())


def check_architecture(spec: ModelSpec, module: torch.nn.Module, path: str) -> None:
    """Raise when `module`, loaded from `path`, is not the registry's architecture for `spec` (a local folder or
    file of another model: its config built another size, or its weights were partly ignored)."""
    expected, got = count_parameters(spec), sum(p.numel() for p in module.parameters())
    if got != expected:
        raise ValueError(f"{got / 1e6:.1f}M parameters where {spec.title} has {expected / 1e6:.1f}M")
