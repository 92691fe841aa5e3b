"""The k-NN hot path of a stored dataset: an in-memory faiss index beside its Lance table, persisted in the
dataset folder. Lance stays the store of record; only `core.store` calls this module.

Vectors are L2-normalised, so inner product is cosine similarity. Below `min_rows` rows the index is an exact
flat scan; from there an IVF-Flat: k-means lists (√N of them), and a query scans only its `nprobe` nearest
lists. The vectors in the lists are kept exact, so the similarities returned are exact; only the candidate set is
approximate. `nprobe` is calibrated at build time on the data itself: the smallest that finds ≥ `TARGET_RECALL` of
the exact 10 nearest neighbours of sampled stored rows (the measured recall is kept and reported).

Why faiss rather than our own code: its scan is SIMD inner products over each list's contiguous array with a
k-selection heap and no temporaries — numpy needs a (probe rows × D) copy per query and a full sort, and Lance
answers the same query with ≥ 3.5 ms of fixed cost per call.

Files in the dataset folder: `knn.faiss` (the index) and `knn.json` (the table version it was built from, rows,
kind, lists, nprobe, recall). An index whose version is not the table's is not used (`core.store` falls back to
Lance) until it is rebuilt (`python -m core.batch index OUT`). A patch index (`core.patch_index`) is the same kind
of index over patch tokens, saved under another name (`patches.faiss`, `patches.json`) and calibrated at k = 20;
its searches may keep only some rows (`allowed`: a class filter), widening the probe until k rows are found.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np

INDEX_FILE, INFO_FILE = "knn.faiss", "knn.json"
TARGET_RECALL = 0.97  # calibration goal for recall@10 (a margin above the 0.95 promised in docs/PERFORMANCE.md)
PROBES = (4, 8, 16, 32, 64, 128, 256, 512)  # nprobe candidates tried in order during calibration
# lists = √N / this; 2 halved the build arithmetic but doubled the rows a probe scans (1M: p50 1.0 → 2.5 ms)
LISTS_PER_SQRT = 1
TRAIN_PER_LIST = 40  # k-means training rows per list (faiss warns below 39)
TRAIN_ITERATIONS = 10  # k-means rounds (faiss's default 25 costs 2.5× as much for lists that shift little after 10)
CALIBRATION_QUERIES = 100
K = 10


@dataclass(frozen=True)
class IndexInfo:
    """What `knn.json` holds: the table version the index was built from and how it searches."""

    version: int
    rows: int
    dim: int
    lists: int  # 0: an exact flat scan
    nprobe: int
    recall: float  # measured recall@k at `nprobe` on sampled stored rows (1.0 for an exact scan)
    k: int = K  # what the recall was measured at

    @property
    def exact(self) -> bool:
        return self.lists == 0

    def describe(self) -> str:
        if self.exact:
            return f"exact in-memory index on {self.rows:,} rows (faiss flat, cosine)"
        return (
            f"IVF-Flat index on {self.rows:,} rows ({self.lists:,} lists, {self.nprobe} probed a query; "
            f"recall@{self.k} {self.recall:.3f} on sampled rows)"
        )


_DIRECT_MAP_LOCK = threading.Lock()


@dataclass(frozen=True)
class KnnIndex:
    index: faiss.Index
    info: IndexInfo

    def search(
        self, queries: np.ndarray, k: int, allowed: faiss.IDSelector | None = None, widen: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """(Q, D) float queries → (similarities (Q, k) float32, row offsets (Q, k) int64, -1 where fewer rows).

        `allowed`: only these rows (see `selector`); `widen`: probe this many times the calibrated lists (a filter
        that keeps few rows leaves fewer than k in the calibrated lists)."""
        q = unit_rows(queries)
        if self.info.exact:
            return self.index.search(q, k, params=faiss.SearchParameters(sel=allowed) if allowed else None)
        nprobe = min(self.info.lists, self.info.nprobe * widen)
        return self.index.search(q, k, params=faiss.SearchParametersIVF(nprobe=nprobe, sel=allowed))

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """(n, D) float32: the stored (unit) vectors at row offsets `rows`, read back from the index itself (an
        IVF index gets its id → list map on first use: 8 bytes a row)."""
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        if not self.info.exact:
            with _DIRECT_MAP_LOCK:
                ivf = faiss.extract_index_ivf(self.index)
                if ivf.direct_map.type == faiss.DirectMap.NoMap:
                    ivf.make_direct_map()
        return self.index.reconstruct_batch(rows)

    @property
    def probes_all(self) -> bool:
        """True when a search already scans every list (exact index, or calibrated to all lists)."""
        return self.info.exact or self.info.nprobe >= self.info.lists


def selector(rows: np.ndarray) -> faiss.IDSelector:
    """The rows whose (N,) bool `rows` entry is True, for `KnnIndex.search(allowed=...)` (the bitmap is kept
    alive by the selector)."""
    bitmap = np.packbits(np.asarray(rows, dtype=bool), bitorder="little")
    chosen = faiss.IDSelectorBitmap(len(rows), faiss.swig_ptr(bitmap))
    chosen.bitmap_array = bitmap  # the C++ selector reads this buffer: it lives as long as the selector
    return chosen


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """(N, D) float32 C-contiguous copy with unit rows (a zero row stays zero)."""
    v = np.array(vectors, dtype=np.float32, ndmin=2, order="C", copy=True)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return np.divide(v, norms, out=v, where=norms > 0)


def build(
    blocks: Iterable[np.ndarray],
    dim: int,
    version: int,
    min_rows: int,
    seed: int = 0,
    k: int = K,
    target: float = TARGET_RECALL,
) -> KnnIndex:
    """The index of every row of `blocks` ((B, D) float, in storage order: faiss ids are row offsets); an IVF-Flat
    is calibrated for recall@`k` ≥ `target`."""
    data = [unit_rows(b) for b in blocks]
    rows = sum(len(b) for b in data)
    if rows < min_rows:
        index = faiss.IndexFlatIP(dim)
        _add(index, data)
        return KnnIndex(index, IndexInfo(version, rows, dim, 0, 0, 1.0, k))
    lists = max(1, round(math.sqrt(rows) / LISTS_PER_SQRT))
    index = faiss.index_factory(dim, f"IVF{lists},Flat", faiss.METRIC_INNER_PRODUCT)
    index.cp.niter = TRAIN_ITERATIONS
    rng = np.random.default_rng(seed)
    index.train(_sample(data, rows, lists * TRAIN_PER_LIST, rng))
    queries = _sample(data, rows, CALIBRATION_QUERIES, rng)
    truth = _add(index, data, queries, k)
    nprobe, recall = _calibrate(index, queries, truth, lists, k, target)
    return KnnIndex(index, IndexInfo(version, rows, dim, lists, nprobe, recall, k))


def _add(index: faiss.Index, data: list[np.ndarray], queries: np.ndarray | None = None, k: int = K) -> np.ndarray:
    """Add the blocks in order, dropping each once added (peak memory: the blocks, not twice them). Returns the
    exact top-(k + 1) row offsets of each of `queries`, best first (one matrix product a block), (Q, k + 1) int64."""
    queries = np.zeros((0, index.d), np.float32) if queries is None else queries
    best, ids = np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
    while data:
        block, offset = data.pop(0), index.ntotal
        index.add(block)
        best = np.hstack([best, queries @ block.T])
        ids = np.hstack([ids, np.broadcast_to(offset + np.arange(len(block)), (len(queries), len(block)))])
        keep = np.argpartition(-best, min(k, best.shape[1] - 1), axis=1)[:, : k + 1]
        best, ids = np.take_along_axis(best, keep, 1), np.take_along_axis(ids, keep, 1)
    return np.take_along_axis(ids, np.argsort(-best, axis=1, kind="stable"), 1)


def _sample(data: list[np.ndarray], rows: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """`size` distinct rows at random (all when fewer) from the blocks, as one (size, D) array."""
    picked = np.sort(rng.choice(rows, size=min(size, rows), replace=False))
    starts = np.cumsum([0] + [len(b) for b in data])
    block = np.searchsorted(starts, picked, side="right") - 1
    return np.stack([data[b][i - starts[b]] for b, i in zip(block, picked, strict=True)])


def _calibrate(
    index: faiss.IndexIVF, queries: np.ndarray, truth: np.ndarray, lists: int, k: int, target: float
) -> tuple[int, float]:
    """The smallest nprobe whose recall@k (the query row itself left out) reaches `target`, and that recall."""
    recall = 1.0
    for nprobe in (*(p for p in PROBES if p < lists), lists):
        _, found = index.search(queries, k + 1, params=faiss.SearchParametersIVF(nprobe=nprobe))
        recall = recall_at(found[:, 1:], truth[:, 1:])
        if recall >= target:
            return nprobe, recall
    return lists, recall


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each row of `truth` (Q, k) ids that the same row of `found` holds."""
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found.tolist(), truth.tolist(), strict=True)]))


# ---- files ------------------------------------------------------------------------------------
def save(knn: KnnIndex, folder: str | Path, name: str = "knn") -> None:
    """Write `<name>.faiss` and then `<name>.json` (each renamed into place: a reader never sees half a file)."""
    folder = Path(folder)
    partial = folder / f"{name}.faiss.part"
    faiss.write_index(knn.index, str(partial))
    os.replace(partial, folder / f"{name}.faiss")
    partial = folder / f"{name}.json.part"
    partial.write_text(json.dumps(asdict(knn.info)))
    os.replace(partial, folder / f"{name}.json")


def read_info(folder: str | Path, name: str = "knn") -> IndexInfo | None:
    """The saved index's description, None when there is none (or it is unreadable)."""
    try:
        return IndexInfo(**json.loads((Path(folder) / f"{name}.json").read_text()))
    except (OSError, ValueError, TypeError):
        return None


def load(folder: str | Path, version: int, name: str = "knn") -> KnnIndex | None:
    """The saved index if it was built from table version `version`, else None."""
    info = read_info(folder, name)
    if info is None or info.version != version:
        return None
    try:
        index = faiss.read_index(str(Path(folder) / f"{name}.faiss"))
    except RuntimeError:  # missing or damaged: Lance answers until it is rebuilt
        return None
    return KnnIndex(index, info) if index.ntotal == info.rows else None
