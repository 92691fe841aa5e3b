"""The Segment page's click path as plain state, without Streamlit: tests drive it directly.

A `SegmentSession` holds one image's prompts for one browser session: gestures are `receive`d (from the prompt
widget's callback), `decode` turns each into a `Step` (the prompts so far, SAM's answer, the picked candidate),
`undo`, `clear`, `pick` and `keep` change them. SAM is reached through a `predict(SamPrompt) -> SamPrediction`
callable (the page binds the engine, the image embedding and the model), so nothing here loads a model.
No `streamlit` import here (tests/core/test_segment_session.py checks it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from core.analysis.imaging import palette
from core.models.sam import AutoMaskParams, AutoMasks, SamPrediction, SamPrompt

Predict = Callable[[SamPrompt], SamPrediction]


@dataclass(frozen=True)
class Prompt:
    """One gesture: a point (X, Y) with a label (positive / negative), or a box (X0, Y0, X1, Y1), in pixels."""

    kind: Literal["point", "box"]
    xy: tuple[float, ...]
    positive: bool = True


def one_box(prompts: Sequence[Prompt]) -> tuple[Prompt, ...]:
    """SAM takes one box: keep the last one drawn (points keep their order)."""
    boxes = [i for i, p in enumerate(prompts) if p.kind == "box"]
    return tuple(p for i, p in enumerate(prompts) if p.kind != "box" or i == boxes[-1]) if boxes else tuple(prompts)


def sam_prompt(prompts: Sequence[Prompt], mask_input: np.ndarray | None = None) -> SamPrompt:
    """Gestures → what SAM takes: all points in order, (N, 2) float32 and labels (N,) int; the box (4,) float32
    of `one_box`; `mask_input` (1, h, w) logits of an earlier prediction, or None."""
    prompts = one_box(prompts)
    points = [p for p in prompts if p.kind == "point"]
    box = next((p for p in prompts if p.kind == "box"), None)
    return SamPrompt(
        np.array([p.xy for p in points], np.float32) if points else None,
        np.array([int(p.positive) for p in points], np.int64) if points else None,
        np.array(box.xy, np.float32) if box else None,
        mask_input,
    )


@dataclass
class Step:
    """One prediction: the prompts it answered, SAM's candidates (three or one), and the candidate picked."""

    prompts: tuple[Prompt, ...]
    prediction: SamPrediction
    choice: int
    serial: int  # names its candidate picker: an undone step's picker must not steer a later one
    thumbs: dict = field(default_factory=dict)  # mask colour → its candidate thumbnails, drawn once

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool: the picked candidate."""
        return self.prediction.masks[self.choice]

    def pick(self, choice: int) -> None:
        """Pick candidate `choice` (0-based) of this step."""
        if not 0 <= choice < len(self.prediction.scores):
            raise IndexError(f"candidate {choice + 1} of {len(self.prediction.scores)}")
        self.choice = choice


@dataclass
class Kept:
    """An object the user kept: its name, (H, W) bool mask and RGB colour."""

    name: str
    mask: np.ndarray
    color: tuple[int, int, int]


@dataclass
class SegmentSession:
    """One image's click path in one browser session."""

    steps: list[Step] = field(default_factory=list)
    kept: list[Kept] = field(default_factory=list)
    received: list[Prompt] = field(default_factory=list)  # from the prompt widget, not decoded yet
    seq: int = 0  # gestures received: tells the widget each was answered (its provisional marker goes)
    auto: dict[AutoMaskParams, AutoMasks] = field(default_factory=dict)  # the last automatic masks, by params
    decode_ms: float = 0.0  # the last prediction's time, for the page to show

    @property
    def prompts(self) -> tuple[Prompt, ...]:
        """The prompts of the current step (none after clear, keep, or undoing the first step)."""
        return self.steps[-1].prompts if self.steps else ()

    @property
    def mask(self) -> np.ndarray | None:
        """(H, W) bool: the current step's picked candidate, or None."""
        return self.steps[-1].mask if self.steps else None

    @property
    def next_prompts(self) -> tuple[Prompt, ...]:
        """What the next decode sends to SAM: the prompts so far and the ones received, one box."""
        return one_box(self.prompts + tuple(self.received))

    def receive(self, prompt: Prompt) -> None:
        """A gesture from the prompt widget (its callback, before the rerun): `decode` answers it."""
        self.received.append(prompt)
        self.seq += 1

    def decode(self, predict: Predict) -> None:
        """One prediction per prompt received, each on top of the last: SAM takes the prompts so far (one box,
        the last drawn) and, when they extend the last step's, that step's picked low-resolution mask logits."""
        while self.received:
            prompts = one_box(self.prompts + (self.received.pop(0),))
            last = self.steps[-1] if self.steps else None
            extends = last is not None and prompts[: len(last.prompts)] == last.prompts
            mask_input = last.prediction.logits[last.choice][None] if extends else None
            start = time.perf_counter()
            prediction = predict(sam_prompt(prompts, mask_input))
            self.decode_ms = (time.perf_counter() - start) * 1e3
            self.steps.append(Step(prompts, prediction, int(np.argmax(prediction.scores)), self.seq))

    def undo(self) -> None:
        """Back to the step before the last (a second quick click may come before the button is disabled)."""
        if self.steps:
            self.steps.pop()

    def clear(self) -> None:
        """Drop every step; kept objects stay."""
        self.steps.clear()

    def keep(self, name: str = "") -> Kept:
        """Keep the current mask as a named object in its own colour and start over; an empty name gets
        "object N"."""
        if self.mask is None:
            raise ValueError("nothing to keep: no mask yet")
        color = tuple(int(c) for c in palette(len(self.kept) + 2)[-1])  # the first one is blue, like the current
        kept = Kept(name.strip() or f"object {len(self.kept) + 1}", self.mask, color)
        self.kept.append(kept)
        self.steps.clear()
        return kept

    def remove(self, index: int) -> None:
        """Forget kept object `index`."""
        self.kept.pop(index)

    def layers(self, color: tuple[int, int, int]) -> list[Kept]:
        """The kept objects, then the current mask (named "current", in `color`)."""
        current = [Kept("current", self.mask, color)] if self.mask is not None else []
        return self.kept + current
