"""The k-NN index beside a stored dataset (core.vector_index through core.store): exact where it claims to be,
recall@10 ≥ 0.95 where approximate, persisted for the table's version and never used for another."""

from __future__ import annotations

import numpy as np

from bench.bench_vs_upstream import clustered_vectors, exact_neighbours
from core import store, vector_index
from core.vector_index import recall_at

from .test_store import make_store


def _ids(found) -> list[int]:
    return [int(i[2:]) for i in found["id"]]


def test_the_exact_index_gives_the_brute_force_top_k_and_similarities(tmp_path):
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((3000, 48)).astype(np.float32) * rng.uniform(0.5, 4, (3000, 1)).astype(np.float32)
    stored = make_store(tmp_path / "db", vectors)
    assert store.build_index(stored.table).startswith("exact in-memory index on 3,000 rows")
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    for query in rng.standard_normal((20, 48)).astype(np.float32):
        cosine = unit @ (query / np.linalg.norm(query))
        best = np.argsort(-cosine)[:7]
        found = store.search(stored.table, query, k=7)
        assert _ids(found) == best.tolist()
        np.testing.assert_allclose(found["similarity"], cosine[best], atol=1e-5)


def test_recall_at_10_is_at_least_095_on_20k_rows_with_fresh_queries(tmp_path):
    vectors, queries = clustered_vectors(20_000, 384, seed=1), clustered_vectors(100, 384, seed=2)
    stored = make_store(tmp_path / "db", vectors)
    built = store.build_index(stored.table)
    assert built.startswith("IVF-Flat index on 20,000 rows") and stored.index_name == "IVF-Flat"
    info = vector_index.read_info(tmp_path / "db")
    assert 0 < info.nprobe < info.lists  # approximate: it does not scan every list
    found = np.asarray([_ids(store.search(stored.table, q, k=10)) for q in queries])
    assert recall_at(found, exact_neighbours(vectors, queries, 10)) >= 0.95


def test_the_index_is_read_back_from_its_files_and_gives_the_same_answers(tmp_path):
    vectors = clustered_vectors(3000, 64, seed=4)
    stored = make_store(tmp_path / "db", vectors)
    store.build_index(stored.table, min_rows=1000)
    query = clustered_vectors(1, 64, seed=5)[0]
    before = store.search(stored.table, query, k=10)
    store._KNN.clear()  # a new server process: nothing in memory
    reopened = store.open_store(tmp_path / "db")
    assert reopened.index_name == "IVF-Flat" and (tmp_path / "db" / vector_index.INDEX_FILE).exists()
    again = store.search(reopened.table, query, k=10)
    assert _ids(again) == _ids(before)


def test_rows_added_after_the_index_was_built_are_found_and_rebuilding_indexes_them(tmp_path):
    rng = np.random.default_rng(6)
    vectors = rng.standard_normal((2000, 32)).astype(np.float32)
    stored = make_store(tmp_path / "db", vectors)
    store.build_index(stored.table, min_rows=1000)
    new = rng.standard_normal((1, 32)).astype(np.float32)
    store.append(
        tmp_path / "db", store.IMAGES, store.images_rows(["id99999"], ["/new.png"], [None], "clip_tiny", "random", new)
    )
    stored = store.open_store(tmp_path / "db")
    assert stored.index_name == "exact scan"  # the index is for the previous version: Lance answers
    assert store.search(stored.table, new[0], k=1)["id"][0] == "id99999"
    assert store.build_index(stored.table, min_rows=1000).startswith("IVF-Flat index on 2,001 rows")
    assert store.search(stored.table, new[0], k=1)["id"][0] == "id99999" and stored.index_name == "IVF-Flat"


def test_opened_for_its_name_a_dataset_leaves_its_index_on_disk_and_columns_share_the_loaded_copy(tmp_path):
    stored = make_store(tmp_path / "db", clustered_vectors(3000, 64, seed=4))
    store.build_index(stored.table, min_rows=1000)
    store._KNN.clear()  # a new server process: nothing in memory
    light = store.open_store(tmp_path / "db", index=False)
    assert light.rows == 3000 and not store._KNN
    opened = store.open_store(tmp_path / "db")
    assert list(store._KNN) == [opened.table.uri]
    paths = store.read_arrow_column(opened.table, "path")
    loaded = store._KNN[opened.table.uri].meta.column("path").chunk(0)
    assert paths.buffers()[2].address == loaded.buffers()[2].address  # the index's copy, not a second one
    assert paths.to_pylist() == store.read_arrow_column(light.table, "path").to_pylist()  # read: the same paths


def test_the_index_gives_back_the_unit_vectors_it_holds_at_any_row_offsets(tmp_path):
    """`KnnIndex.vectors` (the heat maps of Patch Search read a stored index's vectors from it): exact and IVF-Flat,
    also after a round trip through the index's files."""
    data = clustered_vectors(6_000, 32, 0)
    rows = np.array([5_999, 0, 17, 17, 4_096])
    for min_rows in (10**9, 1_000):  # exact, then IVF-Flat
        knn = vector_index.build([data[:2_500], data[2_500:]], 32, 1, min_rows)
        assert knn.info.exact == (min_rows > len(data))
        np.testing.assert_allclose(knn.vectors(rows), vector_index.unit_rows(data[rows]), rtol=0, atol=1e-6)
        vector_index.save(knn, tmp_path, f"v{min_rows}")
        again = vector_index.load(tmp_path, 1, f"v{min_rows}")
        np.testing.assert_allclose(again.vectors(rows), vector_index.unit_rows(data[rows]), rtol=0, atol=1e-6)
