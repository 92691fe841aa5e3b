"""Words-to-masks routes that need no separate detector: SAM 3 concept prompts, and PaliGemma 2's "detect X" boxes
prompting SAM. Each route asks the engine for everything (cached by image hash + weights); `ROUTES_EXTRA` joins
`core.text_routes.ROUTES`.

models roles: "concept" (a SAM 3 model), "vlm" (a PaliGemma model), "segment" (a SAM model for box prompts).

`core.text_routes` is imported lazily (inside the functions, and `ROUTES_EXTRA` on first access) while it travels on
another branch, so that importing this module never fails; once both are on main a plain top import can replace it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from core.engine import Engine
from core.models import Can
from core.models.detection import split_phrases
from core.models.paligemma import parse_detections
from core.models.sam import SamPrompt

if TYPE_CHECKING:
    from core.text_routes import Instances, Route, RouteOptions

# an answer's token budget: "detect" ~8 tokens per object (4 <loc>, the label, " ;"), "segment" 16 <seg> more
ANSWER_TOKENS = {"caption": 32, "detect": 64, "segment": 96}
DETECT_TOKENS = ANSWER_TOKENS["detect"]


def _say(progress: Callable[[str], None] | None, message: str) -> None:
    if progress:
        progress(message)


def _instances(*fields) -> Instances:
    from core.text_routes import Instances

    return Instances(*fields)


def _none_found(image: np.ndarray, seconds: float, note: str) -> Instances:
    h, w = image.shape[:2]
    return _instances(
        np.zeros((0, h, w), bool), np.zeros((0, 4), np.float32), np.zeros(0, np.float32), [], seconds, note
    )


def vlm_prompt(task: str, phrase: str = "") -> tuple[str, int]:
    """PaliGemma's prompt for `task` ("caption", "detect", "segment") and its answer's token budget. The phrase's
    parts ("a dog. a red car.") are joined PaliGemma's way: "detect a dog ; a red car". ValueError for a phrase with
    nothing to find (a caption needs none)."""
    if task == "caption":
        return "caption en", ANSWER_TOKENS[task]
    return f"{task} {' ; '.join(split_phrases(phrase))}", ANSWER_TOKENS[task]


def sam3_route(
    engine: Engine,
    image: np.ndarray,
    phrase: str,
    models: dict[str, str],
    options: RouteOptions,
    progress: Callable[[str], None] | None = None,
) -> Instances:
    """SAM 3: every instance of `phrase` and/or of the concept in `options.exemplar_box` (XYXY pixels on this image)
    above `options.score_threshold`, best first, at most `options.max_instances`. With a box alone, each instance is
    labelled "exemplar"."""
    box = None if options.exemplar_box is None else np.asarray(options.exemplar_box, np.float32)
    _say(progress, "SAM 3: loading the model")
    engine.model(models["concept"])
    began = time.perf_counter()
    what = f"“{phrase.strip()}”" if phrase.strip() else "the exemplar's concept"
    _say(progress, f"SAM 3: finding every {what}" + (" (with the exemplar box)" if box is not None else ""))
    found = engine.concept_masks(image, phrase, models["concept"], exemplar_box=box, threshold=options.score_threshold)
    seconds = time.perf_counter() - began
    keep = slice(0, options.max_instances)
    with_box = (
        "" if box is None else " Prompted with the exemplar box" + (" and the phrase." if phrase.strip() else " alone.")
    )
    if not len(found.scores):
        note = f"No instance above the threshold {options.score_threshold:.2f} (best score {found.best_score:.2f})."
        return _none_found(image, seconds, note + with_box)
    label = phrase.strip() or "exemplar"
    kept = found.scores[keep]
    return _instances(found.masks[keep], found.boxes[keep], kept, [label] * len(kept), seconds, with_box.strip())


def paligemma_route(
    engine: Engine,
    image: np.ndarray,
    phrase: str,
    models: dict[str, str],
    options: RouteOptions,
    progress: Callable[[str], None] | None = None,
    task: str = "detect",
) -> Instances:
    """PaliGemma 2 answers "detect <phrase>" (`task` "segment": "segment <phrase>", whose <seg> tokens are not
    decoded); each box of the answer prompts SAM (one mask per box). Scores are SAM's predicted IoU: PaliGemma's
    answer has none. The note gives the answer's seconds per token."""
    prompt, budget = vlm_prompt(task, phrase)
    _say(progress, "PaliGemma: loading the models")
    engine.model(models["vlm"])
    engine.model(models["segment"])
    began = time.perf_counter()

    def tokens(done: int, total: int) -> None:
        _say(progress, f"PaliGemma: token {done} of at most {total}")

    answer = engine.generate(image, prompt, models["vlm"], budget, tokens)
    found = parse_detections(answer.text, image.shape[:2])
    pace = f"PaliGemma answered in {answer.seconds:.1f} s ({answer.seconds / max(len(answer.tokens), 1):.2f} s/token)."
    if not len(found.boxes):
        return _none_found(image, time.perf_counter() - began, f"{found.note} {pace}")
    _say(progress, "SAM: encoding the image")
    embedding = engine.sam_embedding(image, models["segment"])
    masks, scores = [], []
    for box in found.boxes[: options.max_instances]:
        prediction = engine.sam_predict(embedding, models["segment"], SamPrompt(box=box))
        masks.append(prediction.masks[0])
        scores.append(prediction.scores[0])
    labels = [label or phrase for label in found.labels[: len(masks)]]
    note = " ".join(part for part in (found.note, pace) if part)
    return _instances(
        np.stack(masks),
        found.boxes[: len(masks)],
        np.asarray(scores, np.float32),
        labels,
        time.perf_counter() - began,
        note,
    )


def __getattr__(name: str) -> dict[str, Route]:
    """`ROUTES_EXTRA: dict[str, Route]`, for `core.text_routes.ROUTES`, built on first access."""
    if name != "ROUTES_EXTRA":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from core.text_routes import Route

    return {
        "sam3": Route("sam3", "SAM 3 concept prompt", (Can.CONCEPTS,), sam3_route),
        "paligemma_sam": Route(
            "paligemma_sam", "PaliGemma 2 detect → SAM", (Can.CAPTION, Can.PROMPTS), paligemma_route
        ),
    }
