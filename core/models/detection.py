"""What every text-prompted detector family shares (`Can.DETECT`): the phrase convention and the result type.

A detector adapter has two steps, so the engine can cache the heavy one:
- `raw(image, phrases) -> (Q, C + 4)` float32: the model's per-query class logits, then its normalised
  (cx, cy, w, h) boxes, for one HWC uint8 RGB image (the forward pass);
- `detections(raw, phrases, (H, W), box_threshold, text_threshold) -> Detections`: the upstream processor's own
  post-processing on those outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EMPTY_PHRASE = "Type what to find: one or more short phrases ending in full stops, e.g. “a dog. a red car.”"


@dataclass(frozen=True)
class Detections:
    """Boxes for a phrase on one image, in the upstream post-processing's order."""

    boxes: np.ndarray  # (K, 4) float32 XYXY pixels of the image as given
    scores: np.ndarray  # (K,) float32
    labels: list[str]  # (K,) the (sub-)phrase each box answers
    best_score: float  # the best score of any query before the thresholds (what "nothing found" reports)

    def __len__(self) -> int:
        return len(self.labels)


def split_phrases(text: str) -> list[str]:
    """Grounding DINO's convention: "A dog. a red car." → ["a dog", "a red car"] (lower case, full stops separate
    phrases; parts without a letter or digit are dropped). ValueError when nothing is left."""
    phrases = [" ".join(part.split()).lower() for part in text.split(".")]
    phrases = [p for p in phrases if any(c.isalnum() for c in p)]
    if not phrases:
        raise ValueError(EMPTY_PHRASE)
    return phrases


def joined(phrases: list[str]) -> str:
    """["a dog", "a red car"] → "a dog. a red car." (the text Grounding DINO reads)."""
    return ". ".join(phrases) + "."


def clip_boxes(boxes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(K, 4) XYXY pixels clipped to an image of (H, W) pixels, float32."""
    h, w = size
    return np.clip(np.asarray(boxes, np.float32).reshape(-1, 4), 0, [w, h, w, h]).astype(np.float32)
