"""Known answers for the PCA foreground recipe on synthetic tokens with planted structure."""

from __future__ import annotations

import numpy as np
import pytest

from core.analysis.pca import (
    compute_foreground,
    compute_pc1,
    compute_rgb_pca,
    compute_token_norms,
    flag_high_norm,
    foreground_sign,
    otsu_threshold,
    split_foreground,
)

H = W = 16
D = 32


def _unit(rng: np.random.Generator, d: int = D) -> np.ndarray:
    v = rng.normal(size=d)
    return v / np.linalg.norm(v)


def _disk(radius: float, centre: tuple[float, float] = (7.5, 7.5)) -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def _edges(width: int) -> np.ndarray:
    region = np.zeros((H, W), dtype=bool)
    region[:width] = region[:, :width] = True
    return region


def _planted(sign: float, blob: np.ndarray, n: int = 2, strength: float = 6.0, seed: int = 0):
    """(n, H, W, D) noise tokens with `sign` × strength × a random direction added on the (H, W) blob."""
    rng = np.random.default_rng(seed)
    tokens = rng.normal(size=(n, H, W, D)).astype(np.float32)
    direction = _unit(rng)
    tokens[:, blob] += (sign * strength * direction).astype(np.float32)
    return tokens, direction


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


# ---- PC1 --------------------------------------------------------------------------------------
def test_pc1_recovers_planted_direction_with_fixed_sign():
    blob = _disk(5)
    tokens, direction = _planted(1.0, blob)
    result = compute_pc1(tokens)
    assert result.scores.shape == (2, H, W) and result.scores.dtype == np.float32
    assert result.component.shape == (D,) and result.mean.shape == (D,)
    assert abs(float(result.component @ direction)) > 0.99
    assert result.component[np.abs(result.component).argmax()] > 0
    share = blob.mean()  # variance along the direction: 6² · p(1 − p) + 1 of noise, out of that + (D − 1)
    along = 36 * share * (1 - share) + 1
    assert result.explained_variance_ratio == pytest.approx(along / (along + D - 1), abs=0.03)

    negated = compute_pc1(-tokens)  # same axis, opposite data: the sign rule keeps the component
    np.testing.assert_allclose(negated.component, result.component, atol=1e-5)
    np.testing.assert_allclose(negated.scores, -result.scores, atol=1e-3)


# ---- Otsu and the sign rule --------------------------------------------------------------------
def test_otsu_lands_between_modes():
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.normal(0, 1, 3000), rng.normal(10, 1, 1000)])
    assert 3.0 < otsu_threshold(values) < 7.0


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        (_disk(4), 1),  # small central region high: minority and off the border
        (~_disk(4), -1),  # the same picture with the high side around it
        (_disk(7.2), 1),  # central region covering ~60 %: minority says no, the border says yes
        (_edges(2), 1),  # thin L along two edges, ~23 %: over half the border, yet a clear minority
    ],
)
def test_foreground_sign_known_answers(region: np.ndarray, expected: int):
    scores = np.where(region, 1.0, 0.0)[None].repeat(2, axis=0)
    assert foreground_sign(scores, 0.5) == expected
    assert foreground_sign(-scores, -0.5) == -expected


def test_premises_of_the_sign_cases():
    region = _disk(7.2)
    assert region.mean() > 0.6 and not region[[0, -1]].any() and not region[:, [0, -1]].any()
    edges = _edges(2)
    border = np.zeros((H, W), dtype=bool)
    border[[0, -1]] = border[:, [0, -1]] = True
    assert edges.mean() < 0.25 and edges[border].mean() > 0.5


# ---- foreground mask ---------------------------------------------------------------------------
@pytest.mark.parametrize("sign", [1.0, -1.0])
@pytest.mark.parametrize("radius", [4.0, 7.2])
def test_foreground_recovers_planted_blob_for_either_sign(sign: float, radius: float):
    blob = _disk(radius)
    tokens, _ = _planted(sign, blob)
    fg = compute_foreground(tokens)
    assert fg.mask.shape == (2, H, W) and fg.mask.dtype == bool
    assert fg.scores.min() < fg.threshold < fg.scores.max()
    for mask in fg.mask:
        assert _iou(mask, blob) > 0.9


def test_flip_gives_the_complement_and_threshold_is_respected():
    tokens, _ = _planted(1.0, _disk(5))
    fg = compute_foreground(tokens)
    flipped = compute_foreground(tokens, flip=True)
    assert flipped.sign == -fg.sign
    np.testing.assert_array_equal(flipped.mask, ~fg.mask)
    at_a_score = float(fg.scores[0, 0, 0])  # a patch exactly at the threshold still lands on one side
    exact, exact_flipped = compute_foreground(tokens, at_a_score), compute_foreground(tokens, at_a_score, flip=True)
    np.testing.assert_array_equal(exact_flipped.mask, ~exact.mask)

    high = compute_foreground(tokens, threshold=float(fg.scores.max()) + 1)
    low = compute_foreground(tokens, threshold=float(fg.scores.min()) - 1)
    assert high.threshold == pytest.approx(float(fg.scores.max()) + 1)
    assert high.sign == low.sign == fg.sign  # the side is decided at the Otsu threshold, whatever the threshold
    np.testing.assert_array_equal(high.mask, np.full(fg.mask.shape, fg.sign < 0))  # nothing / all on the high side
    np.testing.assert_array_equal(low.mask, np.full(fg.mask.shape, fg.sign > 0))


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_moving_the_threshold_keeps_the_automatic_side(sign: float):
    blob = _disk(4)  # ~20 % of the patches
    tokens, _ = _planted(sign, blob)
    scores = compute_pc1(tokens).scores
    auto = split_foreground(scores)
    np.testing.assert_array_equal(auto.mask, compute_foreground(tokens).mask)
    # a threshold deep inside the background side: the foreground grows to most patches, it does not
    # jump to the (now minority) background side as a sign decided at the threshold itself would
    background_scores = scores[~auto.mask]
    deep = float(np.quantile(background_scores, 0.25 if auto.sign > 0 else 0.75))
    grown = split_foreground(scores, deep)
    assert grown.sign == auto.sign
    assert grown.mask.mean() > 0.7 and (grown.mask | ~auto.mask).all()  # a superset of the automatic mask
    np.testing.assert_array_equal(split_foreground(scores, deep, flip=True).mask, ~grown.mask)


# ---- joint RGB PCA -----------------------------------------------------------------------------
def _two_images_with_parts(seed: int = 2):
    """Two images with the same 4 parts (4×4 squares) at different places; returns tokens, fg, part masks."""
    rng = np.random.default_rng(seed)
    tokens = (0.3 * rng.normal(size=(2, H, W, D))).astype(np.float32)
    directions = np.linalg.qr(rng.normal(size=(D, 4)))[0].T * 5.0  # 4 orthogonal part directions
    corners = [[(2, 2), (2, 8), (8, 2), (8, 8)], [(10, 9), (1, 10), (9, 1), (3, 3)]]  # part p of image i at corner
    parts = np.zeros((2, 4, H, W), dtype=bool)
    for i, image_corners in enumerate(corners):
        for p, (y, x) in enumerate(image_corners):
            parts[i, p, y : y + 4, x : x + 4] = True
            tokens[i, y : y + 4, x : x + 4] += directions[p].astype(np.float32)
    return tokens, parts.any(axis=1), parts


def test_rgb_pca_same_part_same_colour_across_images():
    tokens, fg, parts = _two_images_with_parts()
    proj = compute_rgb_pca(tokens, fg)
    assert proj.rgb.shape == (2, H, W, 3) and proj.rgb.dtype == np.float32
    assert proj.components.shape == (3, D) and proj.mean.shape == (D,)
    np.testing.assert_allclose(np.linalg.norm(proj.components, axis=1), 1.0, atol=1e-5)
    between, noise = 25 * (1 - 1 / 4), 0.3**2  # 4 equal parts at orthogonal directions of norm 5
    expected = (between + 3 * noise) / (between + D * noise)
    assert proj.explained_variance_ratio.shape == (3,)
    assert proj.explained_variance_ratio.sum() == pytest.approx(expected, abs=0.02)
    assert np.all(proj.rgb[~fg] == 0)
    np.testing.assert_allclose(proj.rgb[fg].min(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(proj.rgb[fg].max(axis=0), 1.0, atol=1e-6)

    colours = np.array([[proj.rgb[i][parts[i, p]].mean(axis=0) for p in range(4)] for i in range(2)])
    spread = max(proj.rgb[i][parts[i, p]].std(axis=0).max() for i in range(2) for p in range(4))
    assert spread < 0.1
    np.testing.assert_allclose(colours[0], colours[1], atol=0.05)
    gaps = [np.linalg.norm(colours[0, p] - colours[0, q]) for p in range(4) for q in range(p + 1, 4)]
    assert min(gaps) > 0.3


def test_rgb_pca_is_deterministic_under_negation():
    tokens, fg, _ = _two_images_with_parts()
    first, again = compute_rgb_pca(tokens, fg), compute_rgb_pca(-tokens, fg)
    np.testing.assert_allclose(first.components, again.components, atol=1e-4)
    assert np.all(first.components[np.arange(3), np.abs(first.components).argmax(axis=1)] > 0)


# ---- token norms -------------------------------------------------------------------------------
def test_token_norms_known_values_and_list_input():
    layers = np.zeros((3, 2, 2, 4), dtype=np.float32)
    layers[1, 0, 1, :2] = [3.0, 4.0]
    layers[2] = 1.0
    norms = compute_token_norms(layers)
    assert norms.shape == (3, 2, 2)
    assert norms[1, 0, 1] == pytest.approx(5.0)
    assert norms[0].sum() == 0 and np.allclose(norms[2], 2.0)
    np.testing.assert_allclose(compute_token_norms(list(layers)), norms)


def test_high_norm_flag_finds_planted_tokens_per_layer():
    rng = np.random.default_rng(3)
    layers = rng.normal(size=(3, H, W, D)).astype(np.float32)
    layers[0] *= 10  # a uniformly louder layer has no outliers
    planted = np.zeros((3, H, W), dtype=bool)
    planted[1, [0, 3, 7, 12], [5, 9, 2, 14]] = True
    layers[planted] *= 5
    flags = flag_high_norm(compute_token_norms(layers))
    np.testing.assert_array_equal(flags, planted)


# ---- degenerate input --------------------------------------------------------------------------
def test_errors_on_degenerate_input():
    with pytest.raises(ValueError, match="equal"):
        compute_pc1(np.ones((2, 4, 4, 8), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(N, h, w, D\)"):
        compute_pc1(np.zeros((4, 4, 8), dtype=np.float32))
    with pytest.raises(ValueError, match="NaN"):
        compute_pc1(np.full((1, 2, 2, 3), np.nan, dtype=np.float32))
    with pytest.raises(ValueError, match="equal"):
        otsu_threshold(np.full(10, 3.0))

    tokens, fg, _ = _two_images_with_parts()
    few = np.zeros_like(fg)
    few[0, 0, :2] = True
    with pytest.raises(ValueError, match="Only 2 foreground"):
        compute_rgb_pca(tokens, few)
    with pytest.raises(ValueError, match="mask shape"):
        compute_rgb_pca(tokens, fg[0])
    same = tokens.copy()
    same[fg] = 1.0
    with pytest.raises(ValueError, match="equal"):
        compute_rgb_pca(same, fg)
