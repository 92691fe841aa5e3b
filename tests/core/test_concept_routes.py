"""The SAM 3 and PaliGemma → SAM words-to-masks routes (core/concept_routes.py) on tiny random models: Instances of
the right shapes, the engine's own results inside, notes when nothing is found."""

from __future__ import annotations

import numpy as np
import pytest

from core.concept_routes import ROUTES_EXTRA, paligemma_route, sam3_route
from core.models import Can
from core.models.paligemma import Answer
from core.models.sam import SamPrompt
from core.text_routes import Instances, Route, RouteOptions  # noqa: E402

MODELS = {"concept": "sam3_tiny", "vlm": "paligemma_tiny", "segment": "sam_tiny"}


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(7).integers(0, 256, (80, 120, 3), dtype=np.uint8)


def _shapes_agree(found: Instances, image: np.ndarray) -> int:
    k = len(found.scores)
    assert found.masks.shape == (k, *image.shape[:2]) and found.masks.dtype == bool
    assert found.boxes.shape == (k, 4) and found.boxes.dtype == np.float32
    assert found.scores.dtype == np.float32 and len(found.labels) == k
    assert found.seconds > 0
    return k


def test_sam3_route_returns_the_engine_s_instances_best_first(engine, image):
    messages = []
    found = sam3_route(
        engine, image, "a cat", MODELS, RouteOptions(score_threshold=0.25, max_instances=3), messages.append
    )
    direct = engine.concept_masks(image, "a cat", "sam3_tiny", threshold=0.25)
    k = _shapes_agree(found, image)
    assert k == min(3, len(direct.scores)) > 0 and found.labels == ["a cat"] * k
    np.testing.assert_array_equal(found.scores, direct.scores[:k])
    np.testing.assert_array_equal(found.masks, direct.masks[:k])
    assert messages and all(m.startswith("SAM 3") for m in messages)


def test_sam3_route_says_when_nothing_is_above_the_threshold(engine, image):
    found = sam3_route(engine, image, "a cat", MODELS, RouteOptions(score_threshold=0.99), None)
    assert _shapes_agree(found, image) == 0
    assert found.note.startswith("No instance above the threshold 0.99 (best score 0.")


def test_paligemma_boxes_prompt_sam_one_mask_each(engine, image, monkeypatch):
    """A hand-written "detect" answer (the tiny random model's own is noise): each box prompts SAM."""
    text = "<loc0000><loc0000><loc0512><loc0512> cat ; <loc0256><loc0512><loc1023><loc1023> dog"
    answer = Answer(text, np.arange(12), 0.6)
    asked = []
    monkeypatch.setattr(engine, "generate", lambda *args, **kw: asked.append(args[1]) or answer)
    found = paligemma_route(engine, image, "cat ; dog", MODELS, RouteOptions(), None)
    assert asked == ["detect cat ; dog"] and _shapes_agree(found, image) == 2
    assert found.labels == ["cat", "dog"]
    np.testing.assert_allclose(found.boxes[0], [0, 0, 60, 40])
    embedding = engine.sam_embedding(image, "sam_tiny")
    for i, box in enumerate(found.boxes):
        expected = engine.sam_predict(embedding, "sam_tiny", SamPrompt(box=box))
        np.testing.assert_array_equal(found.masks[i], expected.masks[0])
        assert found.scores[i] == expected.scores[0]
    assert "0.05 s/token" in found.note


def test_paligemma_route_without_boxes_says_so(engine, image, monkeypatch):
    monkeypatch.setattr(engine, "generate", lambda *args, **kw: Answer("a cat", np.arange(3), 0.3))
    found = paligemma_route(engine, image, "cat", MODELS, RouteOptions(), None)
    assert _shapes_agree(found, image) == 0
    assert found.note.startswith("No box in the answer") and "s/token" in found.note


def test_paligemma_route_end_to_end_on_the_tiny_model(engine, image):
    messages = []
    found = paligemma_route(engine, image, "cat", MODELS, RouteOptions(max_instances=2), messages.append)
    assert _shapes_agree(found, image) <= 2
    assert any(m.startswith("PaliGemma: token 1 of at most") for m in messages)


def test_routes_extra_names_what_they_need():
    assert set(ROUTES_EXTRA) == {"sam3", "paligemma_sam"}
    assert all(isinstance(route, Route) and route.name == key for key, route in ROUTES_EXTRA.items())
    assert ROUTES_EXTRA["sam3"].needs == (Can.CONCEPTS,) and ROUTES_EXTRA["sam3"].run is sam3_route
    assert ROUTES_EXTRA["paligemma_sam"].needs == (Can.CAPTION, Can.PROMPTS)
