"""core.store: the index finds a planted nearest neighbour; planted near-duplicates are reported, distinct rows not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core import store, store_reports
from core.analysis.duplicates import compute_near_duplicates


def make_store(path, vectors: np.ndarray, labels=None, model: str = "clip_tiny") -> store.StoredDataset:
    n = len(vectors)
    ids = [f"id{i:05d}" for i in range(n)]
    paths = [f"/data/img_{i:05d}.png" for i in range(n)]
    labels = labels if labels is not None else [None] * n
    store.append(path, store.IMAGES, store.images_rows(ids, paths, labels, model, "random", vectors))
    return store.open_store(path)


def test_open_store_reads_model_rows_and_dimension(tmp_path):
    vectors = np.random.default_rng(0).standard_normal((50, 16)).astype(np.float32)
    stored = make_store(tmp_path / "db", vectors, labels=["a", "b"] * 25)
    assert (stored.rows, stored.dim, stored.ref, stored.index_name) == (50, 16, "clip_tiny@random", "exact scan")
    assert list(store.read_column(stored.table, "label")[:2]) == ["a", "b"]
    with pytest.raises(ValueError, match="no stored embeddings"):
        store.open_store(tmp_path / "nothing")


@pytest.mark.parametrize("index", ["lance", "exact", "ivf_flat"])
def test_a_planted_nearest_neighbour_is_found(tmp_path, index):
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((5000, 32)).astype(np.float32)
    stored = make_store(tmp_path / "db", vectors)
    if index == "ivf_flat":
        assert store.build_index(stored.table, min_rows=1000).startswith("IVF-Flat index on 5,000 rows")
        assert stored.index_name == "IVF-Flat"
    elif index == "exact":
        assert store.build_index(stored.table).startswith("exact in-memory index on 5,000 rows")
    assert stored.index_name == {"lance": "exact scan", "exact": "exact scan", "ivf_flat": "IVF-Flat"}[index]
    query = vectors[1234] * 3.0 + 0.01 * rng.standard_normal(32).astype(np.float32)  # cosine ignores the scale
    found = store.search(stored.table, query, k=5)
    assert found["id"][0] == "id01234" and found["similarity"][0] > 0.99
    assert list(found.columns) == ["id", "path", "label", "similarity"]
    assert (np.diff(found["similarity"]) <= 1e-6).all()


def _planted(n_distinct: int = 300, dim: int = 64, seed: int = 2):
    """Distinct random rows (pairwise cosine ≈ 0) plus near copies: row 0 ×2 (a group of 3), row 5 ×1."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n_distinct, dim)).astype(np.float32)
    copies = [base[0] + 0.05 * rng.standard_normal(dim), base[0] * 2, base[5] + 0.05 * rng.standard_normal(dim)]
    return np.vstack([base, np.asarray(copies, np.float32)]), n_distinct


def test_planted_near_duplicates_are_reported_and_distinct_rows_are_not():
    vectors, n = _planted()
    report = compute_near_duplicates(vectors, threshold=0.95, block=64)  # small blocks: crossing block edges
    pairs = {tuple(p) for p in report.pairs.tolist()}
    assert pairs == {(0, n), (0, n + 1), (n, n + 1), (5, n + 2)}
    assert [g.tolist() for g in report.groups] == [[0, n, n + 1], [5, n + 2]]
    assert (report.similarity >= 0.95).all() and (np.diff(report.similarity) <= 0).all()


def test_beyond_the_exact_limit_the_report_is_bucketed_and_finds_the_same_pairs():
    vectors, n = _planted()
    exact = compute_near_duplicates(vectors, threshold=0.95)
    bucketed = compute_near_duplicates(vectors, threshold=0.95, exact_rows=100)
    assert exact.method.startswith("exact") and "k-means buckets" in bucketed.method
    assert {tuple(p) for p in bucketed.pairs.tolist()} == {tuple(p) for p in exact.pairs.tolist()}
    assert [g.tolist() for g in bucketed.groups] == [g.tolist() for g in exact.groups]


def test_the_near_duplicate_report_of_a_store_exports_as_csv(tmp_path):
    vectors, n = _planted()
    stored = make_store(tmp_path / "db", vectors)
    report, table, examined = store_reports.find_near_duplicates(stored, threshold=0.95)
    assert examined == len(vectors) and len(table) == 4
    again = pd.read_csv(__import__("io").StringIO(table.to_csv(index=False)))
    assert list(again.columns) == ["group", "similarity", "id_a", "path_a", "id_b", "path_b"]
    assert set(again.loc[again["group"] == 1, "id_b"]) == {f"id{n + 2:05d}"}
    _, sampled, examined = store_reports.find_near_duplicates(stored, threshold=0.95, max_rows=100)
    assert examined == 100


def test_stored_images_are_read_only_inside_the_data_roots(tmp_path):
    from PIL import Image

    from core.data import ImageError

    (tmp_path / "root").mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "root" / "a.png")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "outside.png")
    assert store.load_stored_image(str(tmp_path / "root" / "a.png"), [tmp_path / "root"]).shape == (4, 4, 3)
    with pytest.raises(ImageError, match="outside"):
        store.load_stored_image(str(tmp_path / "root" / ".." / "outside.png"), [tmp_path / "root"])


def test_find_stores_lists_dataset_folders_within_the_depth_sorted_and_skips_lance_tables(tmp_path):
    vectors = np.ones((3, 4), np.float32)
    for folder in ["b/db", "a/db", "a/x/y/too_deep", ".hidden/db", "photos.lance", "c/d/e.lance"]:
        make_store(tmp_path / folder, vectors)  # a dataset folder may end in .lance, as in the README
    (tmp_path / "a" / "db" / "images.lance" / "images.lance").mkdir()  # a Lance table is never walked into
    (tmp_path / "t.lance" / "images.lance").mkdir(parents=True)
    (tmp_path / "t.lance" / "_versions").mkdir()  # nor is a table outside a dataset
    (tmp_path / "plain" / "images.lance").mkdir(parents=True)  # a folder holding only a Lance-looking table counts
    other = tmp_path / "other"
    make_store(other, vectors)  # a root may itself be a stored dataset
    found = store.find_stores([tmp_path, other / "missing", other], max_depth=3)
    expected = ["a/db", "b/db", "plain", "other", "photos.lance", "c/d/e.lance"]
    assert found == sorted([(tmp_path / f).resolve() for f in expected])
    assert (tmp_path / "a/x/y/too_deep").resolve() in store.find_stores([tmp_path], max_depth=4)
    assert store.find_stores([tmp_path / "missing"]) == []


def test_aligned_stores_join_on_path_keep_labeled_rows_and_sample_per_class(tmp_path):
    rng = np.random.default_rng(3)
    n = 40
    paths = [f"/data/{'cat' if i % 2 else 'dog'}/img_{i:03d}.png" for i in range(n)]
    labels = [None if i < 4 else ("cat" if i % 2 else "dog") for i in range(n)]  # four unlabeled rows
    a_vectors, b_vectors = rng.standard_normal((n, 8)), rng.standard_normal((n, 16))
    store.append(
        tmp_path / "a", store.IMAGES, store.images_rows(paths, paths, labels, "clip_tiny", "random", a_vectors)
    )
    order = rng.permutation(n)[:30]  # the second store holds 30 of the images, in another order
    b_rows = store.images_rows(
        [paths[i] for i in order], [paths[i] for i in order], [None] * 30, "dinov2_tiny", "random", b_vectors[order]
    )
    store.append(tmp_path / "b", store.IMAGES, b_rows)
    a, b = store.open_store(tmp_path / "a"), store.open_store(tmp_path / "b")

    rows = store_reports.align_stores([a, b], per_class=1000)
    shared = sorted(paths[i] for i in order if labels[i] is not None)
    assert list(rows.paths) == shared and rows.shared == len(shared) and rows.classes == 2
    index = {p: i for i, p in enumerate(paths)}
    picked = [index[p] for p in rows.paths]
    np.testing.assert_allclose(rows.vectors[0], a_vectors[picked], rtol=1e-6)
    np.testing.assert_allclose(rows.vectors[1], b_vectors[picked], rtol=1e-6)
    assert list(rows.labels) == [labels[i] for i in picked]  # the first store's labels
    assert "no subsampling" in rows.describe()

    sample = store_reports.align_stores([a, b], per_class=3)
    assert len(sample.paths) == 6 and sorted(np.unique(sample.labels, return_counts=True)[1]) == [3, 3]
    assert set(sample.paths) <= set(shared) and f"Using 6 of the {len(shared)}" in sample.describe()
    assert list(store_reports.align_stores([a, b], per_class=3).paths) == list(sample.paths)  # seeded

    with pytest.raises(ValueError, match="share no labeled image"):
        store_reports.align_stores([b, a], per_class=10)  # the first store's labels count: b has none
    one_class = [v if v == "dog" else None for v in labels]  # only dogs labeled
    store.append(
        tmp_path / "c", store.IMAGES, store.images_rows(paths, paths, one_class, "timm_tiny", "random", a_vectors)
    )
    with pytest.raises(ValueError, match="all of one class"):
        store_reports.align_stores([store.open_store(tmp_path / "c"), a], per_class=10)
