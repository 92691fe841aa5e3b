"""The Segment click path without Streamlit: a SegmentSession driven directly with the tiny SAM.

Expected masks come from segment-anything's own SamPredictor on the same weights, never from the session.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from segment_anything import SamPredictor

from core.analysis.imaging import palette
from core.segment_session import Prompt, SegmentSession, one_box, sam_prompt

MODEL = "sam_tiny@random"
ROOT = Path(__file__).resolve().parents[2]
POINT, NEGATIVE = Prompt("point", (40.0, 30.0)), Prompt("point", (10.0, 50.0), positive=False)
BOX, OTHER_BOX = Prompt("box", (5.0, 5.0, 70.0, 55.0)), Prompt("box", (20.0, 10.0, 85.0, 58.0))


@pytest.fixture(scope="module")
def sam(engine):
    """(predict for the session, upstream SamPredictor set on the image) for a 60 × 90 random image."""
    image = np.random.default_rng(1).integers(0, 256, (60, 90, 3), dtype=np.uint8)
    embedding = engine.sam_embedding(image, MODEL)
    predictor = SamPredictor(engine.model(MODEL).adapter.module)
    predictor.set_image(image)
    return (lambda prompt: engine.sam_predict(embedding, MODEL, prompt)), predictor


def test_the_click_path_module_does_not_import_streamlit():
    code = "import sys, core.segment_session; print('streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_one_box_keeps_the_last_box_and_the_points_in_order():
    assert one_box([POINT, BOX, NEGATIVE, OTHER_BOX]) == (POINT, NEGATIVE, OTHER_BOX)
    assert one_box([BOX, POINT]) == (BOX, POINT) and one_box([]) == ()
    prompt = sam_prompt([POINT, BOX, NEGATIVE, OTHER_BOX])
    np.testing.assert_array_equal(prompt.points, [[40, 30], [10, 50]])
    np.testing.assert_array_equal(prompt.labels, [1, 0])
    np.testing.assert_array_equal(prompt.box, OTHER_BOX.xy)
    assert prompt.points.dtype == prompt.box.dtype == np.float32 and prompt.mask_input is None
    empty = sam_prompt([])
    assert empty.points is None and empty.labels is None and empty.box is None


def test_a_point_gives_three_candidates_and_a_negative_point_one_mask_fed_the_picked_logits(sam):
    predict, upstream = sam
    session = SegmentSession()
    session.receive(POINT)
    assert session.seq == 1 and not session.steps and session.next_prompts == (POINT,)
    session.decode(predict)
    masks, scores, logits = upstream.predict(np.array([POINT.xy]), np.array([1]), multimask_output=True)
    (step,) = session.steps
    assert step.prompts == (POINT,) and not session.received and step.serial == 1
    np.testing.assert_allclose(step.prediction.logits, logits, atol=1e-4)
    assert step.choice == int(np.argmax(scores)) and (session.mask == masks[step.choice]).mean() > 0.999

    step.pick((step.choice + 1) % 3)  # the user picks another candidate: the next click refines that one
    with pytest.raises(IndexError):
        step.pick(3)
    session.receive(NEGATIVE)
    session.decode(predict)
    fed = logits[step.choice][None]
    masks, _, logits = upstream.predict(
        np.array([POINT.xy, NEGATIVE.xy]), np.array([1, 0]), mask_input=fed, multimask_output=False
    )
    assert session.prompts == (POINT, NEGATIVE) and session.steps[-1].prediction.masks.shape == (1, 60, 90)
    np.testing.assert_allclose(session.steps[-1].prediction.logits, logits, atol=1e-4)


def test_a_box_then_a_point_combine_and_a_second_box_replaces_the_first(sam):
    predict, upstream = sam
    session = SegmentSession()
    for prompt in (BOX, POINT, OTHER_BOX):  # received together: decoded one by one, each on top of the last
        session.receive(prompt)
    assert session.next_prompts == (POINT, OTHER_BOX)
    session.decode(predict)
    assert [s.prompts for s in session.steps] == [(BOX,), (BOX, POINT), (POINT, OTHER_BOX)]
    _, _, box_logits = upstream.predict(box=np.array(BOX.xy), multimask_output=False)
    _, _, both = upstream.predict(
        np.array([POINT.xy]), np.array([1]), np.array(BOX.xy), box_logits, multimask_output=False
    )
    np.testing.assert_allclose(session.steps[1].prediction.logits, both, atol=1e-4)
    _, _, replaced = upstream.predict(np.array([POINT.xy]), np.array([1]), np.array(OTHER_BOX.xy), None, False)
    np.testing.assert_allclose(session.steps[2].prediction.logits, replaced, atol=1e-4)  # not an extension: no feed


def test_undo_clear_keep_and_remove(sam):
    predict, _ = sam
    session = SegmentSession()
    for prompt in (POINT, NEGATIVE):
        session.receive(prompt)
    session.decode(predict)
    first = session.steps[0].mask
    session.undo()
    assert session.prompts == (POINT,) and np.array_equal(session.mask, first)
    session.undo()
    session.undo()  # a second quick click on a button about to be disabled
    assert session.prompts == () and session.mask is None
    with pytest.raises(ValueError):
        session.keep()

    session.receive(POINT)
    session.decode(predict)
    session.steps[-1].pick(2)
    picked = session.steps[-1].prediction.masks[2]
    kept = session.keep("  astronaut ")
    assert kept.name == "astronaut" and kept is session.kept[0] and not session.steps
    np.testing.assert_array_equal(kept.mask, picked)
    assert kept.color == tuple(int(c) for c in palette(2)[1])
    session.receive(BOX)
    session.decode(predict)
    assert [layer.name for layer in session.layers((0, 0, 255))] == ["astronaut", "current"]
    session.clear()
    assert not session.steps and session.layers((0, 0, 255)) == session.kept
    session.receive(POINT)
    session.decode(predict)
    assert session.keep().name == "object 2"
    session.remove(0)
    assert [k.name for k in session.kept] == ["object 2"]
