"""The click protocol: known answers on synthetic shapes, metrics by hand, and the whole loop through the engine
with the tiny SAM (random weights)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from core.analysis.click_eval import (
    Click,
    Target,
    evaluate_model,
    first_click,
    iou,
    miou_curve,
    next_click,
    noc,
    run_object,
    summarize,
)
from core.models import Can, families
from core.models.sam import SamPrompt

MODEL = "sam_tiny@random"


def disc(size: int, cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r**2


# ---- where the clicks go ---------------------------------------------------------------------------
def test_first_click_of_a_disc_is_its_centre():
    assert first_click(disc(64, 30, 21, 12)) == Click(30, 21, True)


def test_first_click_of_a_disc_touching_the_border_stays_off_the_border():
    """The padded distance transform counts the image border as boundary: a disc cut by the border is clicked
    inside, not on the border row."""
    click = first_click(disc(40, 20, 0, 15))
    assert abs(click.x - 20) <= 2 and 5 <= click.y <= 9  # the half disc's deepest points (ties: first in row order)


def test_first_click_of_an_annulus_is_on_its_medial_circle():
    cx, cy, inner, outer = 40, 40, 10, 30
    ring = disc(81, cx, cy, outer) & ~disc(81, cx, cy, inner)
    click = first_click(ring)
    radius = np.hypot(click.x - cx, click.y - cy)
    assert click.positive and abs(radius - (inner + outer) / 2) <= 1.0
    assert ring[click.y, click.x]


def test_after_a_planted_false_positive_blob_the_next_click_is_negative_and_inside_the_blob():
    gt = disc(80, 25, 25, 15)
    blob = disc(80, 60, 60, 8)
    pred = gt.copy()
    pred[gt & (np.mgrid[:80, :80][1] < 14)] = False  # a thin sliver of missed foreground, smaller than the blob
    pred |= blob
    click = next_click(gt, pred)
    assert click == Click(60, 60, False)
    assert blob[click.y, click.x]


def test_missed_foreground_gives_a_positive_click_in_the_missed_part_and_a_perfect_mask_none():
    gt = np.zeros((30, 30), bool)
    gt[5:25, 5:25] = True
    pred = gt.copy()
    pred[5:25, 15:25] = False  # the right half missed
    click = next_click(gt, pred)
    assert click.positive and 15 <= click.x < 25 and (gt & ~pred)[click.y, click.x]
    assert next_click(gt, gt) is None


def test_the_largest_error_region_wins_not_the_deepest():
    gt = np.zeros((50, 50), bool)
    gt[0:6, 0:40] = True  # missed: a long thin strip of 240 px, shallow
    pred = np.zeros_like(gt)
    pred[30:42, 30:42] = True  # false: a 144 px square, deeper
    assert next_click(gt, pred).positive


# ---- metrics by hand -------------------------------------------------------------------------------
def test_iou_by_hand():
    a = np.zeros((4, 4), bool)
    a[:2, :2] = True
    b = np.zeros((4, 4), bool)
    b[:2, :3] = True
    assert iou(a, b) == pytest.approx(4 / 6)
    assert iou(a, ~a) == 0.0
    assert iou(a, a) == 1.0 and iou(np.zeros_like(a), np.zeros_like(a)) == 1.0


def test_miou_and_noc_by_hand():
    ious = np.array([[0.5, 0.86, 0.95], [0.9, 0.9, 0.9], [0.1, 0.2, 0.3]])
    np.testing.assert_allclose(miou_curve(ious), [1.5 / 3, 1.96 / 3, 2.15 / 3])
    assert noc(ious, 0.85) == (pytest.approx((2 + 1 + 3) / 3), 1)
    assert noc(ious, 0.90) == (pytest.approx((3 + 1 + 3) / 3), 1)
    assert noc(ious, 0.96) == (pytest.approx(3.0), 3)


def test_one_click_case_by_hand():
    ious = np.array([[0.84], [0.85]])
    assert miou_curve(ious)[0] == pytest.approx(0.845)
    assert noc(ious, 0.85) == (pytest.approx(1.0), 1)


# ---- the loop with a scripted decoder ------------------------------------------------------------------
class Scripted:
    """A decoder that returns given masks in turn (three candidates for one point, one after), recording calls."""

    def __init__(self, first: list[np.ndarray], scores: list[float], later: list[np.ndarray]):
        self.first, self.scores, self.later, self.calls = first, scores, later, []

    def __call__(self, points, labels, mask_input):
        self.calls.append((points.copy(), labels.copy(), mask_input))
        k = len(self.calls)
        if k == 1:
            masks, scores = np.array(self.first), np.array(self.scores, np.float32)
        else:
            masks, scores = np.array([self.later[k - 2]]), np.array([0.5], np.float32)
        logits = np.stack([np.full((8, 8), 10.0 * k + j, np.float32) for j in range(len(masks))])  # call, candidate
        return SimpleNamespace(masks=masks, scores=scores, logits=logits)


def test_run_object_feeds_back_the_chosen_logits_and_stops_when_perfect():
    gt = np.zeros((20, 20), bool)
    gt[4:16, 4:16] = True
    half = gt.copy()
    half[:, 10:] = False
    empty = np.zeros_like(gt)
    decoder = Scripted([empty, half, gt], [0.1, 0.9, 0.2], [gt])  # the top score is the half mask; the oracle, gt
    run = run_object(decoder, gt, n_clicks=5, keep_masks=True)
    assert run.oracle_iou == 1.0 and run.ious == [0.5, 1.0, 1.0, 1.0, 1.0]
    assert len(decoder.calls) == 2 and len(run.clicks) == 2
    (p1, l1, m1), (p2, l2, m2) = decoder.calls
    assert m1 is None and p1.tolist() == [[9.0, 9.0]] and l1.tolist() == [1]
    assert m2.shape == (1, 8, 8) and m2[0, 0, 0] == 11.0  # the first call's logits, of the top-score candidate
    assert l2.tolist() == [1, 1] and p2[1, 0] >= 10  # the second click in the missed right half
    assert summarize([run]).oracle_miou1 == 1.0


# ---- through the engine, tiny SAM --------------------------------------------------------------------
def shapes() -> tuple[list[np.ndarray], list[Target]]:
    """Two synthetic images with a disc and a square each, drawn in distinct colours."""
    rng = np.random.default_rng(0)
    images, targets = [], []
    for i in range(2):
        image = rng.integers(0, 60, (96, 128, 3), dtype=np.uint8)
        round_ = disc(128, 40 + 10 * i, 40, 18)[:96]
        square = np.zeros((96, 128), bool)
        square[50:85, 75:115] = True
        image[round_] = (220, 40, 40)
        image[square] = (40, 200, 60)
        images.append(image)
        targets += [Target(i, f"img{i}.png", 0, "disc", round_), Target(i, f"img{i}.png", 1, "square", square)]
    return images, targets


def test_the_protocol_through_the_engine_encodes_each_image_once(engine, monkeypatch):
    images, targets = shapes()
    adapter = engine.model(MODEL).adapter
    encoded = []
    real = adapter.image_embedding
    monkeypatch.setattr(adapter, "image_embedding", lambda image, key="": encoded.append(key) or real(image, key))
    seen = []
    result = evaluate_model(engine, MODEL, images, targets, n_clicks=4, progress=lambda d, t: seen.append((d, t)))
    assert len(encoded) <= len(images)  # once per image at most (the engine's cache may already hold them)
    assert seen[0] == (0, 4) and seen[-1] == (4, 4)
    assert [t for t, _ in result.runs] == targets and not result.cancelled
    for target, run in result.runs:
        assert len(run.ious) == 4 and all(0.0 <= v <= 1.0 for v in run.ious)
        assert run.clicks[0] == first_click(target.mask)
    summary = summarize([r for _, r in result.runs])
    assert summary.objects == 4 and summary.miou.shape == (4,)
    assert summary.oracle_miou1 >= summary.miou[0] - 1e-9  # the best of three is at least the top-score one

    # the same chain by hand through the engine: identical IoUs
    target, run = result.runs[1]
    embedding = engine.sam_embedding(images[target.image], MODEL)
    first = engine.sam_predict(
        embedding, MODEL, SamPrompt(np.array([[run.clicks[0].x, run.clicks[0].y]]), np.array([1]))
    )
    best = int(np.argmax(first.scores))
    assert iou(first.masks[best], target.mask) == pytest.approx(run.ious[0])
    assert max(iou(m, target.mask) for m in first.masks) == pytest.approx(run.oracle_iou)
    if len(run.clicks) > 1:
        assert run.clicks[1] == next_click(target.mask, first.masks[best])
        points = np.array([[c.x, c.y] for c in run.clicks[:2]], np.float32)
        labels = np.array([int(c.positive) for c in run.clicks[:2]])
        second = engine.sam_predict(embedding, MODEL, SamPrompt(points, labels, None, first.logits[[best]]))
        assert iou(second.masks[0], target.mask) == pytest.approx(run.ious[1])


def test_cancel_stops_between_objects_and_keeps_what_was_done(engine):
    images, targets = shapes()
    asked = []

    def cancel() -> bool:
        asked.append(1)
        return len(asked) > 2

    result = evaluate_model(engine, MODEL, images, targets, n_clicks=2, cancel=cancel)
    assert result.cancelled and len(result.runs) == 2


PROMPTABLE = [f.tiny for f in families() if Can.PROMPTS in f.can]


@pytest.mark.parametrize("tiny", PROMPTABLE)
def test_every_promptable_family_runs_the_protocol_with_one_encode_per_image(engine, tiny, monkeypatch):
    """Generic over the registry: each family that can take prompts (SAM, SAM 2, EdgeTAM, ...) through its tiny
    model; the decoder loop never encodes again, and more clicks with logits fed back decode without error."""
    model = f"{tiny}@random"
    images, targets = shapes()
    adapter = engine.model(model).adapter
    encoded = []
    real = adapter.image_embedding
    monkeypatch.setattr(adapter, "image_embedding", lambda image, key="": encoded.append(key) or real(image, key))
    result = evaluate_model(engine, model, [im + 1 for im in images], targets[:3], n_clicks=3)  # fresh pixels
    assert len(encoded) == 2  # two images, each encoded once for its objects' 3 × 3 decodes
    for _, run in result.runs:
        assert len(run.ious) == 3 and all(0.0 <= v <= 1.0 for v in run.ious) and run.oracle_iou >= run.ious[0] - 1e-9
