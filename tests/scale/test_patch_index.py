"""Patch search (core.patch_index, `python -m core.batch patches`): known answers on planted patches, one result per
image, the mean of a region, the class filter, recall of the approximate index, the foreground rule of PCA
Foreground, and the CLI on a tiny folder with the tiny DINOv2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.bench_vs_upstream import clustered_vectors, exact_neighbours
from core import batch, patch_index
from core.analysis.pca import compute_foreground
from core.patch_index import (
    PatchSettings,
    build_patch_index,
    heat,
    hits_table,
    patch_vectors,
    query_cells,
    search_patches,
)
from core.vector_index import recall_at

ROOT = Path(__file__).resolve().parents[2]
MODEL = "dinov2_tiny"
SETTINGS = PatchSettings("dinov2_tiny@random", 56, 14)
PLANTED = {3: (1, 2), 8: (0, 0), 15: (3, 1)}  # image → (row, col) of the planted patch


def planted_tokens(seed: int = 0, n: int = 20, grid: int = 4, dim: int = 16) -> tuple[list[np.ndarray], np.ndarray]:
    """n random (grid, grid, dim) token grids; one distinctive vector copied into the `PLANTED` patches."""
    rng = np.random.default_rng(seed)
    tokens = [rng.standard_normal((grid, grid, dim)).astype(np.float32) for _ in range(n)]
    planted = 10 * rng.standard_normal(dim).astype(np.float32)
    for image, (row, col) in PLANTED.items():
        tokens[image][row, col] = planted * (1 + image / 100)  # a copy, scaled: cosine 1 with the query
    return tokens, planted


def brute_force(tokens: list[np.ndarray], query: np.ndarray) -> list[tuple[int, int, int, float]]:
    """Every patch as (image, row, col, cosine), best first."""
    out = []
    q = query / np.linalg.norm(query)
    for i, t in enumerate(tokens):
        unit = t / np.linalg.norm(t, axis=-1, keepdims=True)
        cos = unit @ q
        out += [(i, r, c, float(cos[r, c])) for r in range(t.shape[0]) for c in range(t.shape[1])]
    return sorted(out, key=lambda x: -x[3])


def test_a_planted_patch_is_found_first_at_its_row_and_col_and_the_rest_is_the_brute_force_top_k():
    tokens, planted = planted_tokens()
    index = build_patch_index(tokens, [f"im{i}.png" for i in range(20)], [None] * 20, SETTINGS)
    hits = search_patches(index, planted, k=10)
    assert {(h.image, (h.row, h.col)) for h in hits[:3]} == set(PLANTED.items())
    np.testing.assert_allclose([h.cosine for h in hits[:3]], 1.0, atol=1e-5)
    expected = brute_force(tokens, planted)[:10]
    assert [(h.image, h.row, h.col) for h in hits[3:]] == [e[:3] for e in expected[3:]]  # the three copies tie
    np.testing.assert_allclose([h.cosine for h in hits], [e[3] for e in expected], atol=1e-5)
    rows = hits_table(index, hits[:1])
    assert set(rows[0]) == {"image", "class", "row", "col", "cosine"} and rows[0]["image"].startswith("im")


def test_one_result_per_image_keeps_each_images_best_patch_in_order():
    tokens, planted = planted_tokens(seed=1)
    index = build_patch_index(tokens, [str(i) for i in range(20)], [None] * 20, SETTINGS)
    hits = search_patches(index, planted, k=8, one_per_image=True)
    expected, seen = [], set()
    for image, row, col, _cos in brute_force(tokens, planted):
        if image not in seen:
            seen.add(image)
            expected.append((image, row, col))
    assert {(h.image, h.row, h.col) for h in hits[:3]} == {(i, *rc) for i, rc in PLANTED.items()}  # they tie
    assert [(h.image, h.row, h.col) for h in hits[3:]] == expected[3:8]
    assert len({h.image for h in hits}) == 8
    everything = search_patches(index, planted, k=100, one_per_image=True)
    assert len(everything) == 20  # asks again until every image is there


def test_a_region_searches_with_the_mean_of_its_patches():
    tokens, _ = planted_tokens(seed=2)
    tokens[5][2:4, 2:4] = tokens[0][0:2, 0:2].mean(axis=(0, 1))  # the mean of image 0's top-left 2 × 2, copied
    index = build_patch_index(tokens, [str(i) for i in range(20)], [None] * 20, SETTINGS)
    region = tokens[0][0:2, 0:2].reshape(-1, 16).mean(axis=0)
    hits = search_patches(index, region, k=4)
    assert {(h.image, h.row, h.col) for h in hits} == {(5, 2, 2), (5, 2, 3), (5, 3, 2), (5, 3, 3)}


def test_the_class_filter_keeps_only_that_class_and_still_finds_k():
    tokens, planted = planted_tokens(seed=3)
    labels = ["cat" if i in (3, 4) else "dog" for i in range(20)]
    index = build_patch_index(tokens, [str(i) for i in range(20)], labels, SETTINGS)
    cats = search_patches(index, planted, k=5, classes=["cat"])
    assert cats[0].image == 3 and (cats[0].row, cats[0].col) == PLANTED[3]
    assert {h.image for h in cats} <= {3, 4} and len(cats) == 5
    every_cat_patch = search_patches(index, planted, k=1000, classes=["cat"])
    assert len(every_cat_patch) == 32  # two 4 × 4 grids: all of them, none of the dogs
    assert search_patches(index, planted, k=5, classes=[]) == []


def test_the_approximate_index_recalls_at_least_090_of_the_exact_top_20():
    vectors, queries = clustered_vectors(40_000, 64, seed=1), clustered_vectors(200, 64, seed=2)
    tokens = list(vectors.reshape(625, 8, 8, 64))
    index = build_patch_index(tokens, [str(i) for i in range(625)], [None] * 625, SETTINGS)
    assert not index.knn.info.exact and index.knn.info.nprobe < index.knn.info.lists
    found = []
    for q in queries:
        hits = search_patches(index, q, k=20)
        found.append([h.image * 64 + h.row * 8 + h.col for h in hits])
    assert recall_at(np.asarray(found), exact_neighbours(vectors, queries, 20)) >= 0.9


def test_the_foreground_filter_keeps_exactly_the_pc1_foreground_of_pca_foreground():
    rng = np.random.default_rng(4)
    tokens = rng.standard_normal((6, 6, 16)).astype(np.float32)
    tokens[1:4, 2:5] += 6 * np.eye(16, dtype=np.float32)[0]  # a planted foreground direction
    mask = compute_foreground(tokens[None]).mask[0]
    kept = patch_vectors(tokens, foreground=True)
    assert set(zip(kept.rows.tolist(), kept.cols.tolist(), strict=True)) == set(zip(*np.nonzero(mask), strict=True))
    np.testing.assert_array_equal(kept.vectors, tokens[mask])


def test_pooling_averages_2x2_windows_and_keeps_the_top_left_patch():
    tokens = np.arange(5 * 5 * 2, dtype=np.float32).reshape(5, 5, 2)
    kept = patch_vectors(tokens, pool=2)
    assert kept.rows.tolist() == [0, 0, 0, 2, 2, 2, 4, 4, 4] and kept.cols.tolist() == [0, 2, 4] * 3
    np.testing.assert_allclose(kept.vectors[0], tokens[:2, :2].reshape(-1, 2).mean(axis=0))
    np.testing.assert_allclose(kept.vectors[-1], tokens[4, 4])  # a corner window of one patch
    index = build_patch_index([tokens], ["a"], [None], PatchSettings("x@random", 70, 14, pool=2))
    h = heat(index, 0, kept.vectors[0])
    assert h.shape == (5, 5) and np.allclose(h[:2, :2], 1.0)
    cells = query_cells([(3, 2)], (5, 5), 2)  # a click on a pooled index queries with its whole window
    assert cells == [(2, 2), (2, 3), (3, 2), (3, 3)] and query_cells([(4, 4)], (5, 5), 2) == [(4, 4)]
    query = tokens[tuple(np.transpose(cells))].mean(axis=0)
    best = search_patches(index, query, 1)[0]
    assert (best.row, best.col) == (2, 2) and best.cosine == pytest.approx(1.0, abs=1e-5)


@pytest.fixture(scope="module")
def painted(tmp_path_factory):
    """20 noise images of 56 × 56 px in two class folders; a checkerboard square painted on one 14 px patch of 3."""
    root = tmp_path_factory.mktemp("painted")
    rng = np.random.default_rng(5)
    square = np.kron((np.indices((2, 2)).sum(axis=0) % 2) * 255, np.ones((7, 7)))[..., None] * [1, 0, 1]
    for i in range(20):
        image = rng.integers(90, 140, (56, 56, 3), dtype=np.uint8)
        if i in PLANTED:
            r, c = PLANTED[i]
            image[14 * r : 14 * r + 14, 14 * c : 14 * c + 14] = square
        folder = root / ("cats" if i % 2 else "dogs")
        folder.mkdir(exist_ok=True)
        Image.fromarray(image).save(folder / f"im_{i:02d}.png")
    (root / "dogs" / "broken.png").write_bytes(b"not a png")
    return root


@pytest.mark.slow
def test_the_cli_stores_every_images_patches_resumes_and_the_planted_square_is_found(painted, tmp_path, engine):
    out = tmp_path / "patches.lance"
    command = [sys.executable, "-m", "core.batch", "patches", str(painted), str(out), "--model", MODEL]
    command += ["--num-cpus", "2", "--actors", "1", "--batch-size", "8"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "21 images listed, 0 already stored, 20 embedded, 1 skipped" in run.stdout
    assert "broken.png" in (out / "skipped.csv").read_text()
    index = patch_index.open_patch_index(out)
    assert index.settings == PatchSettings("dinov2_tiny@random", 56, 14) and int(index.starts[-1]) == 20 * 16
    assert index.knn.info.exact and sorted(index.classes) == ["cats", "dogs"]
    by_name = {name: i for i, name in enumerate(index.names)}
    query_image = np.asarray(Image.open(painted / "cats" / "im_03.png"))
    (tokens,) = engine.patch_tokens([query_image], MODEL, size=56)
    stored = index.image_vectors(by_name["im_03.png"])  # the engine's tokens are what was stored
    np.testing.assert_allclose(stored, tokens.reshape(-1, tokens.shape[-1]), rtol=1e-4, atol=1e-5)
    hits = search_patches(index, tokens[PLANTED[3]], k=3)
    assert {(index.names[h.image], (h.row, h.col)) for h in hits} == {
        (f"im_{i:02d}.png", rc) for i, rc in PLANTED.items()
    }
    again = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert "21 images listed, 21 already stored, 0 embedded, 0 skipped" in again.stdout
    other = subprocess.run([*command, "--pool", "2"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert other.returncode != 0 and "averaged over 2 × 2" in other.stderr


def test_in_process_ray_path_pools_and_keeps_only_the_foreground(painted, tmp_path, local_ray, engine, capsys):
    out = tmp_path / "fg.lance"
    summary = batch.patches_dataset(
        painted, out, MODEL, pool=2, foreground=True, batch_size=8, actors=1, progress=False
    )
    assert (summary.embedded, summary.skipped) == (20, 1)
    index = patch_index.open_patch_index(out)
    assert index.settings.pool == 2 and index.settings.foreground
    name = "im_08.png"
    image = np.asarray(Image.open(painted / "dogs" / name))
    (tokens,) = engine.patch_tokens([image], MODEL, size=56)
    expected = patch_vectors(tokens, pool=2, foreground=True)
    i = index.names.index(name)
    sl = slice(index.starts[i], index.starts[i + 1])
    assert index.rows[sl].tolist() == expected.rows.tolist() and index.cols[sl].tolist() == expected.cols.tolist()
    np.testing.assert_allclose(index.image_vectors(i), expected.vectors, rtol=1e-4, atol=1e-5)
    assert batch.main(["index", str(out), "--min-rows", "1"]) == 0  # rebuilt as an IVF-Flat, found again
    assert "IVF-Flat index on" in capsys.readouterr().out
    rebuilt = patch_index.open_patch_index(out)
    assert not rebuilt.knn.info.exact and rebuilt.knn.info.rows == int(index.starts[-1])


def test_a_model_without_patch_tokens_or_a_size_off_the_patch_grid_is_refused():
    with pytest.raises(ValueError, match="gives no patch tokens"):
        batch.patch_settings("sam_tiny", None, 1, False)
    with pytest.raises(ValueError, match="multiple of 14 px"):
        batch.patch_settings(MODEL, 60, 1, False)
    assert batch.patch_settings(MODEL, None, 2, True) == PatchSettings("dinov2_tiny@random", 56, 14, 2, True)


def test_a_folder_without_a_patch_index_says_so(tmp_path):
    with pytest.raises(ValueError, match="holds no patch index"):
        patch_index.open_patch_index(tmp_path)
