"""PaliGemma 2 (core/models/paligemma.py, Engine.generate) on the tiny random PaliGemma with its stand-in tokenizer:
greedy answers equal upstream's `generate(do_sample=False)` on the processor's inputs, one progress call per token,
and the <loc> parser on hand-written answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.models import Can, build_adapter, family
from core.models.paligemma import SEGMENT_NOTE, offline_tokenizer, parse_detections
from core.registry import get

SIZE = (200, 300)  # H, W of the image the hand-written answers are about


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(5).integers(0, 256, (40, 60, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def adapter():
    return build_adapter(get("paligemma_tiny"), "random", None, torch.device("cpu"))


@pytest.mark.parametrize("prompt", ["caption en", "detect cat ; dog"])
def test_greedy_answers_equal_upstream_generate(engine, adapter, image, prompt):
    inputs = adapter.processor(images=image, text="<image>" + prompt, return_tensors="pt")
    with torch.inference_mode():
        out = adapter.module.generate(**inputs, do_sample=False, max_new_tokens=12)
    expected = out[0, inputs["input_ids"].shape[1] :]
    steps = []
    answer = engine.generate(image, prompt, "paligemma_tiny", 12, lambda done, total: steps.append((done, total)))
    assert np.array_equal(answer.tokens, expected.numpy())
    assert answer.text == adapter.processor.decode(expected, skip_special_tokens=True).strip()
    assert steps == [(k, 12) for k in range(1, len(expected) + 1)]
    assert answer.seconds > 0


def test_the_prompt_is_image_tokens_bos_prompt_newline(adapter, image):
    ids = adapter.inputs(image, "caption en")["input_ids"][0].tolist()
    tokenizer = adapter.processor.tokenizer
    n_image = (28 // 14) ** 2
    assert ids[:n_image] == [tokenizer.convert_tokens_to_ids("<image>")] * n_image
    assert ids[n_image] == tokenizer.bos_token_id
    assert tokenizer.decode(ids[n_image + 1 :]) == "caption en\n"


def test_answers_are_cached_per_image_prompt_and_budget(engine, image):
    first = engine.generate(image, "caption es", "paligemma_tiny", 5)
    assert engine.generate(image, "caption es", "paligemma_tiny", 5) is first
    assert engine.generate(image, "caption es", "paligemma_tiny", 6) is not first
    with pytest.raises(ValueError, match="answers in words come from PaliGemma"):
        engine.generate(image, "caption en", "sam_tiny", 5)


def test_the_stand_in_tokenizer_keeps_paligemma_s_special_ids():
    """With Gemma's 256000 text tokens the <loc>, <seg> and <image> ids are PaliGemma 2's (its config's
    image_token_index is 257152); the tiny one packs the same layout after 512."""
    tokenizer = offline_tokenizer(256_000)
    ids = tokenizer.convert_tokens_to_ids(["<loc0000>", "<loc1023>", "<seg000>", "<seg127>", "<image>"])
    assert ids == [256_000, 257_023, 257_024, 257_151, 257_152]
    assert [tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.bos_token_id] == [0, 1, 2]
    tiny = offline_tokenizer(512)
    assert tiny.convert_tokens_to_ids("<image>") == 512 + 1024 + 128
    assert tiny.decode(tiny("detect <loc0001> 猫", add_special_tokens=False)["input_ids"]) == "detect <loc0001> 猫"


# ---- the <loc> parser on hand-written answers -----------------------------------------------------
def test_one_box_y0_x0_y1_x1_on_a_1024_grid():
    found = parse_detections("<loc0256><loc0512><loc0768><loc1023> cat", SIZE)
    np.testing.assert_allclose(found.boxes, [[150.0, 50.0, 1023 / 1024 * 300, 150.0]], rtol=1e-6)
    assert found.labels == ["cat"] and found.note == "" and found.boxes.dtype == np.float32


def test_several_objects_separated_by_semicolons():
    text = "<loc0000><loc0000><loc0512><loc0512> dog ; <loc0100><loc0200><loc0300><loc0400> red car ; " + (
        "<loc0512><loc0512><loc1024><loc1024> dog"
    )
    found = parse_detections(text, SIZE)
    assert found.labels == ["dog", "red car", "dog"]
    np.testing.assert_allclose(
        found.boxes,
        [
            [0, 0, 150, 100],
            [200 / 1024 * 300, 100 / 1024 * 200, 400 / 1024 * 300, 300 / 1024 * 200],
            [150, 100, 300, 200],
        ],
        rtol=1e-6,
    )


def test_segment_answers_give_boxes_and_say_the_masks_are_not_decoded():
    segs = "".join(f"<seg{i:03d}>" for i in range(16))
    found = parse_detections(
        f"<loc0000><loc0000><loc1024><loc1024>{segs} cat ; <loc0000><loc0000><loc0512><loc0512>", SIZE
    )
    assert found.labels == ["cat", ""] and found.boxes.shape == (2, 4)
    assert found.note == SEGMENT_NOTE and "VQ-VAE" in found.note


@pytest.mark.parametrize(
    "text",
    ["a cat on a mat", "", "<loc0100><loc0200><loc0300> cat", "<loc12><loc0200><loc0300><loc0400> cat", "<seg001> ;"],
)
def test_malformed_answers_give_no_boxes_and_a_note(text):
    found = parse_detections(text, SIZE)
    assert found.boxes.shape == (0, 4) and found.labels == []
    assert found.note.startswith("No box in the answer")


def test_swapped_corners_are_ordered():
    found = parse_detections("<loc0768><loc0512><loc0256><loc0000> x", SIZE)
    np.testing.assert_allclose(found.boxes, [[0, 50, 150, 150]])


def test_the_descriptor():
    described = family("paligemma")
    assert described.can == {Can.CAPTION} and described.weights.gated
    assert get(described.default).arch == "google/paligemma2-3b-pt-224" and get(described.tiny).tiny
