"""Near-duplicate pairs among embeddings: every pair of rows with cosine similarity ≥ a threshold.

- `exact_pairs`: all N² pairs, a block of rows at a time: exact, for up to ~10⁵ rows.
- `bucketed_pairs`: the seed's curation step at a million rows and more. Rows are bucketed by spherical k-means
  (centroids fitted on a sample); each row is compared exactly with the rows of its `probes` nearest buckets, so
  the cost is about N² · probes / buckets instead of N². Two near-duplicates (cosine ≥ 0.9) almost always share
  their nearest centroid; a pair split across buckets is still found when one lies in the other's second-nearest
  bucket. Every pair reported is a true pair (its cosine is computed exactly); only recall can fall short, and the
  tests check it against `exact_pairs` on planted duplicates. On isotropic random vectors (the worst case: no
  cluster structure, every row near a bucket border) four probes found 99.3 % of planted pairs at 200k × 384
  (`bench.bench_duplicates`); real embeddings are clustered.
- `group_pairs`: connected groups of rows linked by pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.analysis.retrieval import normalize

PROBES = 4  # nearest buckets each row is compared within


def exact_pairs(vectors: np.ndarray, threshold: float, block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """((P, 2) int64 pairs i < j, (P,) float32 cosine) of every pair of rows of `vectors` (N, D) at ≥ `threshold`."""
    unit = normalize(vectors)
    pairs, sims = [], []
    for start in range(0, len(unit), block):
        scores = unit[start : start + block] @ unit.T
        i, j = np.nonzero(scores >= threshold)
        keep = j > i + start
        pairs.append(np.column_stack([i[keep] + start, j[keep]]))
        sims.append(scores[i[keep], j[keep]])
    return _sorted(pairs, sims)


def bucketed_pairs(
    vectors: np.ndarray,
    threshold: float,
    buckets: int | None = None,
    probes: int = PROBES,
    sample: int = 20_000,
    seed: int = 0,
    progress=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Like `exact_pairs`, comparing each row only with the rows of its `probes` nearest k-means buckets
    (default √N buckets, fitted on `sample` rows). `progress(fraction, message)` is called per bucket group."""
    from sklearn.cluster import MiniBatchKMeans

    unit = normalize(vectors)
    n = len(unit)
    buckets = int(buckets or default_buckets(n))
    probes = min(probes, buckets)
    rng = np.random.default_rng(seed)
    fit_rows = unit[np.sort(rng.choice(n, min(n, max(sample, buckets * 20)), replace=False))]
    kmeans = MiniBatchKMeans(buckets, random_state=seed, n_init=1, batch_size=4096).fit(fit_rows)
    centroids = normalize(kmeans.cluster_centers_)
    nearest = np.empty((n, probes), np.int64)
    for start in range(0, n, 65_536):
        scores = unit[start : start + 65_536] @ centroids.T
        top = (
            np.argpartition(-scores, probes - 1, axis=1)[:, :probes]
            if probes < buckets
            else np.tile(np.arange(buckets), (len(scores), 1))
        )
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)  # nearest first: column 0 is home
        nearest[start : start + 65_536] = np.take_along_axis(top, order, axis=1)
    home = nearest[:, 0]
    home_order = np.argsort(home, kind="stable")
    home_bounds = np.searchsorted(home[home_order], np.arange(buckets + 1))
    probe_rows = np.repeat(np.arange(n), probes)
    probe_bucket = nearest.ravel()
    probe_order = np.argsort(probe_bucket, kind="stable")
    probe_bounds = np.searchsorted(probe_bucket[probe_order], np.arange(buckets + 1))
    pairs, sims = [], []
    for b in range(buckets):
        rows = home_order[home_bounds[b] : home_bounds[b + 1]]  # rows whose nearest bucket is b
        others = probe_rows[probe_order[probe_bounds[b] : probe_bounds[b + 1]]]  # rows that probe bucket b
        if rows.size and others.size:
            scores = unit[rows] @ unit[others].T
            i, j = np.nonzero(scores >= threshold)
            a, c = rows[i], others[j]
            keep = a != c
            pairs.append(np.column_stack([np.minimum(a, c)[keep], np.maximum(a, c)[keep]]))
            sims.append(scores[i[keep], j[keep]])
        if progress is not None and (b % 64 == 0 or b == buckets - 1):
            progress((b + 1) / buckets, f"Comparing within {buckets:,} buckets")
    found, similarity = _sorted(pairs, sims)
    if not len(found):
        return found, similarity
    _, first = np.unique(found, axis=0, return_index=True)  # a pair seen from both of its rows' buckets
    first = np.sort(first)
    return found[first], similarity[first]


def default_buckets(rows: int) -> int:
    """√rows k-means buckets: as many buckets as rows per bucket."""
    return max(1, round(np.sqrt(rows)))


def _sorted(pairs: list[np.ndarray], sims: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    pair_arr = np.concatenate(pairs).astype(np.int64) if pairs else np.zeros((0, 2), np.int64)
    sim_arr = np.concatenate(sims).astype(np.float32) if sims else np.zeros(0, np.float32)
    order = np.argsort(-sim_arr, kind="stable")
    return pair_arr[order], sim_arr[order]


def group_pairs(pairs: np.ndarray, n: int) -> list[np.ndarray]:
    """Connected groups (sorted (G,) int64, G ≥ 2) of the rows 0..n-1 linked by `pairs`, largest first."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    sizes = np.bincount(component)
    rows = np.argsort(component, kind="stable")  # rows of each component together, in increasing order
    starts = np.concatenate([[0], np.cumsum(sizes)])
    return [rows[starts[c] : starts[c + 1]] for c in np.argsort(-sizes, kind="stable") if sizes[c] >= 2]


# ---- reports --------------------------------------------------------------------------
@dataclass(frozen=True)
class DuplicateReport:
    """Pairs (i, j, similarity) with i < j rows of the input, best first, and groups: connected rows of size ≥ 2."""

    pairs: np.ndarray  # (P, 2) int64
    similarity: np.ndarray  # (P,) float32
    groups: list[np.ndarray]  # each a sorted (G,) int64, largest group first
    threshold: float
    method: str = "exact: every pair compared"  # how the pairs were searched, for the report


EXACT_DUPLICATE_ROWS = 50_000  # up to this many rows, every pair is compared; beyond, bucketed (all rows still)


def compute_near_duplicates(
    vectors: np.ndarray,
    threshold: float = 0.95,
    block: int = 2048,
    exact_rows: int = EXACT_DUPLICATE_ROWS,
    progress=None,
) -> DuplicateReport:
    """Every pair of rows of `vectors` (N, D) with cosine ≥ `threshold`: exactly (all pairs, `block` rows at a time)
    up to `exact_rows` rows, else within k-means buckets (`core.analysis.duplicates.bucketed_pairs`)."""
    if len(vectors) <= exact_rows:
        pairs, sims = exact_pairs(vectors, threshold, block)
        method = "exact: every pair compared"
    else:
        pairs, sims = bucketed_pairs(vectors, threshold, progress=progress)
        method = f"each row compared with the rows of its {PROBES} nearest of {default_buckets(len(vectors)):,} k-means buckets"
    return DuplicateReport(pairs, sims, group_pairs(pairs, len(vectors)), float(threshold), method)


def near_duplicate_table(report: DuplicateReport, ids: np.ndarray, paths: np.ndarray) -> pd.DataFrame:
    """One row per pair, exportable as CSV: group, similarity, and both images' id and path."""
    group_of = {int(r): g for g, rows in enumerate(report.groups) for r in rows}
    a, b = report.pairs[:, 0], report.pairs[:, 1]
    return pd.DataFrame(
        {
            "group": [group_of[int(i)] for i in a],
            "similarity": np.round(report.similarity, 4),
            "id_a": ids[a],
            "path_a": paths[a],
            "id_b": ids[b],
            "path_b": paths[b],
        }
    )
