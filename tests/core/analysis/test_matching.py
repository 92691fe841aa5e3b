"""Patch matching on planted synthetic tokens: patch i of A is patch perm[i] of B, rescaled, plus a little noise."""

from __future__ import annotations

import numpy as np
import pytest

from core.analysis.matching import (
    compute_mutual_matches,
    compute_similarity,
    matches_csv,
    matches_table,
    outline_patches,
    overlay_similarity,
    patch_box,
    patch_center,
    patch_crops,
    pixel_to_patch,
    similarity_map,
    top_matches,
)

GRID_A, GRID_B, DIM = (4, 6), (6, 4), 32  # same patch count, different shapes: rows/cols must not be swapped


@pytest.fixture
def planted() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tokens_a (4, 6, D), tokens_b (6, 4, D), perm (24,)): tokens_a[i] ≈ scale_i * tokens_b[perm[i]]."""
    rng = np.random.default_rng(0)
    n = GRID_A[0] * GRID_A[1]
    flat_b = rng.normal(size=(n, DIM))
    perm = rng.permutation(n)
    scale = rng.uniform(0.5, 3.0, size=(n, 1))  # raw and normalised distances differ
    flat_a = scale * flat_b[perm] + 0.05 * rng.normal(size=(n, DIM))
    return flat_a.reshape(*GRID_A, DIM), flat_b.reshape(*GRID_B, DIM), perm


def _cosine64(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.reshape(-1, a.shape[-1]).astype(np.float64)
    b = b.reshape(-1, b.shape[-1]).astype(np.float64)
    return (a @ b.T) / np.outer(np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1))


def test_similarity_matrix_equals_cosine_formula(planted):
    tokens_a, tokens_b, _ = planted
    sim = compute_similarity(tokens_a, tokens_b)
    assert sim.cosine.shape == (24, 24) and sim.cosine.dtype == np.float32
    assert (sim.grid_a, sim.grid_b) == (GRID_A, GRID_B)
    np.testing.assert_allclose(sim.cosine, _cosine64(tokens_a, tokens_b), atol=1e-5)


def test_mutual_matches_recover_planted_permutation(planted):
    tokens_a, tokens_b, perm = planted
    matches = compute_mutual_matches(compute_similarity(tokens_a, tokens_b))
    assert sorted((m.index_a, m.index_b) for m in matches) == [(i, int(perm[i])) for i in range(24)]
    cosines = [m.cosine for m in matches]
    assert cosines == sorted(cosines, reverse=True)
    for m in matches:
        assert (m.row_a, m.col_a) == divmod(m.index_a, GRID_A[1])
        assert (m.row_b, m.col_b) == divmod(m.index_b, GRID_B[1])


def test_mutual_matches_top_n_keeps_the_best(planted):
    sim = compute_similarity(*planted[:2])
    everything = compute_mutual_matches(sim)
    assert compute_mutual_matches(sim, top_n=5) == everything[:5]
    assert compute_mutual_matches(sim, top_n=0) == []


def test_mutual_match_is_not_a_one_way_nearest_neighbour():
    # A0 and A1 both prefer B0; B0 prefers A0, so only (0, 0) is mutual.
    tokens_a = np.array([[[1.0, 0.0], [0.9, 0.3]]])
    tokens_b = np.array([[[1.0, 0.05], [0.0, 1.0]]])
    matches = compute_mutual_matches(compute_similarity(tokens_a, tokens_b))
    assert [(m.index_a, m.index_b) for m in matches] == [(0, 0)]


def test_masks_restrict_mutual_matches(planted):
    tokens_a, tokens_b, perm = planted
    sim = compute_similarity(tokens_a, tokens_b)
    keep = np.zeros(24, dtype=bool)
    keep[[0, 3, 7, 11, 19, 23]] = True
    mask_b = np.zeros(24, dtype=bool)
    mask_b[perm[keep]] = True
    matches = compute_mutual_matches(sim, mask_a=keep.reshape(GRID_A), mask_b=mask_b.reshape(GRID_B))
    assert sorted((m.index_a, m.index_b) for m in matches) == [(i, int(perm[i])) for i in np.flatnonzero(keep)]


def test_masks_exclude_the_planted_partners(planted):
    tokens_a, tokens_b, perm = planted
    sim = compute_similarity(tokens_a, tokens_b)
    mask_a = np.zeros(24, dtype=bool)
    mask_a[:12] = True
    mask_b = np.ones(24, dtype=bool)
    mask_b[perm[:12]] = False  # none of A's foreground partners is in B's foreground
    matches = compute_mutual_matches(sim, mask_a=mask_a.reshape(GRID_A), mask_b=mask_b.reshape(GRID_B))
    assert matches, "restricted to the masks, some mutual pairs still exist"
    assert all(mask_a[m.index_a] and mask_b[m.index_b] for m in matches)
    assert compute_mutual_matches(sim, mask_a=np.zeros(GRID_A, dtype=bool)) == []
    with pytest.raises(ValueError):
        compute_mutual_matches(sim, mask_a=np.ones(GRID_B, dtype=bool))


def test_similarity_map_peaks_at_planted_match(planted):
    tokens_a, tokens_b, perm = planted
    sim = compute_similarity(tokens_a, tokens_b)
    for i in range(24):
        heat = similarity_map(sim, i)
        assert heat.shape == GRID_B
        assert np.unravel_index(heat.argmax(), GRID_B) == divmod(int(perm[i]), GRID_B[1])


def test_top_matches_equal_numpy_cosine_and_raw_l2(planted):
    tokens_a, tokens_b, perm = planted
    sim = compute_similarity(tokens_a, tokens_b)
    flat_a, flat_b = tokens_a.reshape(24, DIM), tokens_b.reshape(24, DIM)
    cos = _cosine64(tokens_a, tokens_b)
    for i in (0, 5, 23):
        matches = top_matches(sim, i, k=5)
        assert [m.index_b for m in matches] == list(np.argsort(-cos[i])[:5])
        assert matches[0].index_b == perm[i]
        for m in matches:
            assert m.index_a == i and (m.row_a, m.col_a) == divmod(i, GRID_A[1])
            assert m.cosine == pytest.approx(cos[i, m.index_b], abs=1e-5)
            assert m.euclidean == pytest.approx(np.sqrt(np.sum((flat_a[i] - flat_b[m.index_b]) ** 2)), rel=1e-5)
    assert len(top_matches(sim, 0, k=100)) == 24
    with pytest.raises(IndexError):
        top_matches(sim, 24)
    with pytest.raises(IndexError):
        similarity_map(sim, -1)


def test_mismatched_token_dims_are_refused():
    with pytest.raises(ValueError):
        compute_similarity(np.zeros((2, 2, 8)), np.zeros((2, 2, 16)))


# ---- pixels ↔ patches: 300 (H) × 500 (W) image, 16 × 16 grid → patches 31.25 px wide, 18.75 px tall ----
SIZE, GRID = (300, 500), (16, 16)


@pytest.mark.parametrize(
    ("x", "y", "expected"),
    [
        (0, 0, (0, 0, 0)),
        (499, 299, (15, 15, 255)),  # last pixel
        (500, 300, (15, 15, 255)),  # x == W, y == H
        (-3, -0.5, (0, 0, 0)),  # outside, top-left
        (510, -2, (0, 15, 15)),  # outside, top-right
        (-1, 300.4, (15, 0, 240)),  # outside, bottom-left
        (31.2, 18.7, (0, 0, 0)),  # just inside the first patch
        (31.25, 18.75, (1, 1, 17)),  # first pixel of the next patch
        (100, 200, (10, 3, 163)),  # floor(200 / 18.75), floor(100 / 31.25)
    ],
)
def test_pixel_to_patch_known_answers(x, y, expected):
    assert pixel_to_patch(x, y, SIZE, GRID) == expected


def test_pixel_to_patch_non_square_grid():
    assert pixel_to_patch(499, 0, (300, 500), (4, 6)) == (0, 5, 5)
    assert pixel_to_patch(0, 299, (300, 500), (4, 6)) == (3, 0, 18)
    assert pixel_to_patch(250, 150, (300, 500), (4, 6)) == (2, 3, 15)


@pytest.mark.parametrize(("size", "grid"), [(SIZE, GRID), ((500, 300), GRID), ((300, 500), (4, 6)), ((7, 5), (16, 16))])
def test_patch_center_round_trips(size, grid):
    for row in range(grid[0]):
        for col in range(grid[1]):
            x, y = patch_center(row, col, size, grid)
            assert 0 <= x < size[1] and 0 <= y < size[0]
            assert pixel_to_patch(x, y, size, grid) == (row, col, row * grid[1] + col)


def test_patch_center_and_box_known_answers():
    assert patch_center(0, 0, SIZE, GRID) == (15.625, 9.375)
    assert patch_center(15, 15, SIZE, GRID) == (484.375, 290.625)
    assert patch_box(15, 15, SIZE, GRID) == (468.75, 281.25, 500.0, 300.0)
    assert patch_box(1, 2, (300, 500), (4, 6)) == pytest.approx((500 / 3, 75.0, 250.0, 150.0))


def test_matches_table_rows(planted):
    tokens_a, tokens_b, _ = planted
    matches = compute_mutual_matches(compute_similarity(tokens_a, tokens_b), top_n=3)
    size_a, size_b = (300, 500), (640, 480)
    rows = matches_table(matches, size_a, size_b, GRID_A, GRID_B)
    assert [r["rank"] for r in rows] == [1, 2, 3]
    for row, m in zip(rows, matches, strict=True):
        assert (row["index_a"], row["index_b"], row["cosine"], row["euclidean"]) == (
            m.index_a,
            m.index_b,
            m.cosine,
            m.euclidean,
        )
        assert (row["row_b"], row["col_b"]) == divmod(m.index_b, GRID_B[1])
        assert (row["x_a"], row["y_a"]) == patch_center(m.row_a, m.col_a, size_a, GRID_A)
        assert (row["x_b"], row["y_b"]) == patch_center(m.row_b, m.col_b, size_b, GRID_B)


def test_patch_crops_cut_the_right_patches():
    # 64 × 96 image on a 4 × 6 grid: 16 × 16 px patches, patch k painted with value k.
    labels = np.arange(24, dtype=np.uint8).reshape(4, 6)
    image = np.repeat(np.repeat(labels, 16, axis=0), 16, axis=1)[..., None].repeat(3, axis=2)
    crops = patch_crops(image, (4, 6), [0, 7, 23])
    assert [c.shape for c in crops] == [(16, 16, 3)] * 3
    assert [np.unique(c).tolist() for c in crops] == [[0], [7], [23]]


def test_patch_crops_uneven_and_tiny_images():
    image = np.zeros((300, 500, 3), dtype=np.uint8)
    crops = patch_crops(image, GRID, list(range(256)))
    assert sum(c.shape[0] * c.shape[1] for c in crops) == 300 * 500  # the crops tile the image
    assert all(c.shape[0] >= 1 and c.shape[1] >= 1 for c in patch_crops(np.zeros((7, 5, 3), np.uint8), GRID, [0, 255]))


def test_matches_csv_round_trips_the_table(planted):
    import csv
    import io

    tokens_a, tokens_b, _ = planted
    matches = compute_mutual_matches(compute_similarity(tokens_a, tokens_b), top_n=4)
    rows = matches_table(matches, (300, 500), (640, 480), GRID_A, GRID_B)
    parsed = list(csv.DictReader(io.StringIO(matches_csv(rows))))
    assert [int(r["index_b"]) for r in parsed] == [m.index_b for m in matches]
    assert [float(r["cosine"]) for r in parsed] == [m.cosine for m in matches]  # repr round-trips floats
    assert {"x_a", "y_a", "x_b", "y_b", "euclidean"} <= set(parsed[0])
    assert matches_csv([]) == ""


def test_overlay_similarity_colours_the_peak_patch_and_keeps_the_image_at_zero_opacity():
    image = np.full((60, 90, 3), 128, dtype=np.uint8)
    sim_map = np.zeros((2, 3), dtype=np.float32)
    sim_map[1, 2] = 1.0  # peak in the bottom-right patch
    out = overlay_similarity(image, sim_map, alpha=1.0)
    assert out.shape == image.shape and out.dtype == np.uint8
    # Viridis: high = yellow (R+G large, B small), low = dark purple.
    assert out[55, 85, 0] > 200 and out[55, 85, 2] < 100
    assert out[5, 5].tolist() == [68, 1, 84]
    np.testing.assert_array_equal(overlay_similarity(image, sim_map, alpha=0.0), image)


def test_outline_patches_draws_only_on_the_patch_border():
    image = np.zeros((40, 60, 3), dtype=np.uint8)  # 2 × 3 grid of 20 × 20 px patches
    red = np.array([[255, 0, 0]], dtype=np.uint8)
    out = outline_patches(image, (2, 3), [4], red, thickness=2)  # row 1, col 1: x 20..40, y 20..40
    painted = out.any(axis=2)
    assert painted[20:22, 20:40].all() and painted[38:40, 20:40].all()
    assert painted[20:40, 20:22].all() and painted[20:40, 38:40].all()
    assert not painted[22:38, 22:38].any()  # inside stays
    assert painted.sum() == 4 * 2 * 20 - 4 * 4  # nothing outside the patch
    assert not image.any()  # input untouched
    with pytest.raises(IndexError):
        outline_patches(image, (2, 3), [6], red)
