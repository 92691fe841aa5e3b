"""Words to masks: routes from one phrase on one image to instance masks, compared side by side (issue #18).

A route asks the engine (`core/engine.py`) for everything it computes, so results are cached by image hash and
the weights actually loaded, under the engine's locks. Routes never import streamlit. `models` maps a role
("segment", "detector", "concept", "text", "vlm") to a ``name@weights`` model reference.

Conventions: images HWC uint8 RGB; masks (K, H, W) bool at the image's size; boxes (K, 4) float32 XYXY pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.models import Can

StepNote = Callable[[str], None]  # progress("Detecting boxes with Grounding DINO…"): names the step starting now


@dataclass(frozen=True)
class Instances:
    """What one route found for one phrase on one image."""

    masks: np.ndarray  # (K, H, W) bool at the image's size
    boxes: np.ndarray  # (K, 4) float32 XYXY pixels (a mask's bounding box when the route has no box)
    scores: np.ndarray  # (K,) float32, the route's own confidence
    labels: list[str]  # (K,) the phrase (or sub-phrase) each instance answers
    seconds: float  # wall time of the route on this image, model loading excluded
    note: str = ""  # one sentence the page shows under the route (e.g. "segment tokens not decodable")

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class RouteOptions:
    box_threshold: float = 0.35  # Grounding DINO: a box's best token logit (sigmoid) must exceed this
    text_threshold: float = 0.25  # Grounding DINO: tokens above this make the box's label
    score_threshold: float = 0.5  # SAM 3 / OWLv2: an instance's score must exceed this
    n_points: int = 1  # CLIP routes: the most similar patches given to SAM as positive points
    max_instances: int = 20  # best-scoring instances kept per route


@dataclass(frozen=True)
class Route:
    name: str  # "grounded_sam", "owlv2_sam", "sam3", "maskclip_sam", "clip_final_sam", "paligemma"
    title: str  # shown on the page
    needs: tuple[Can, ...]  # capabilities of the models it uses (core.models.Can)
    # run(engine, image, phrase, models: dict[str, str], options: RouteOptions, progress: StepNote | None)
    run: Callable[..., Instances]


ROUTES: dict[str, Route] = {}
