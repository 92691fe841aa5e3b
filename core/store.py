"""Stored embedding datasets: a LanceDB folder written by `core.batch`, read back in batches, searched
through its k-NN index. The one module that opens Lance (reports over stored datasets, core.store_reports, read
through it). Pure: no streamlit.

Layout of a stored dataset (one LanceDB database folder):
  images   id (str), path (str), label (str | null), model (str), weights (str),
           vector (fixed_size_list<float32>[D]: `Engine.embed` output, unnormalised)
  skipped  id, path, reason, model — files that could not be decoded, with the reason
  knn.faiss, knn.json   the k-NN index of `images` (`core.vector_index`), built for one table version
Similarity is cosine everywhere; Lance reports cosine *distance* (1 - cosine), turned back into similarity here.
"""

from __future__ import annotations

import functools
import os
import threading
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import lancedb
import numpy as np
import pandas as pd
import pyarrow as pa

from core import vector_index
from core.data import browser_copy, browser_ready_size, confine, load_image

IMAGES, SKIPPED = "images", "skipped"
LANCE_TABLE_MARK = "_versions"  # every Lance table folder holds its manifests here
INDEX_MIN_ROWS = 20_000  # below this the k-NN index is an exact in-memory scan (a few ms); from here an IVF-Flat
REFINE_FACTOR = 10  # Lance IVF_PQ (datasets indexed before knn.faiss): candidates re-ranked exactly, k × this many
NPROBES = 32
KNN_KEEP = 2  # loaded k-NN indexes kept in memory (one 1M × 384 dataset: 1.5 GB)
READ_BATCH = 65_536
TAKE_BATCH = 16_384  # rows of vectors read at a time by `iter_vectors`
META_COLUMNS = ["id", "path", "label"]


def images_schema(dim: int) -> pa.Schema:
    return pa.schema(
        [
            ("id", pa.string()),
            ("path", pa.string()),
            ("label", pa.string()),
            ("model", pa.string()),
            ("weights", pa.string()),
            ("vector", pa.list_(pa.float32(), dim)),
        ]
    )


SKIPPED_SCHEMA = pa.schema(
    [("id", pa.string()), ("path", pa.string()), ("reason", pa.string()), ("model", pa.string())]
)


def vector_array(vectors: np.ndarray) -> pa.FixedSizeListArray:
    """(N, D) float → a Lance/Arrow fixed-size list column of float32."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), vectors.shape[1])


def vectors_of(data: pa.Table | pa.RecordBatch, column: str = "vector") -> np.ndarray:
    """The (N, D) float32 array of a fixed-size list column."""
    col = data.column(column)
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    dim = col.type.list_size
    return col.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(-1, dim)


def images_rows(
    ids: Sequence[str],
    paths: Sequence[str],
    labels: Sequence[str | None],
    model: str,
    weights: str,
    vectors: np.ndarray,
) -> pa.Table:
    """Rows of the images table (one model and weights for all), vectors (N, D)."""
    n = len(ids)
    columns = {
        "id": pa.array([str(i) for i in ids], pa.string()),
        "path": pa.array([str(p) for p in paths], pa.string()),
        "label": pa.array([None if v is None else str(v) for v in labels], pa.string()),
        "model": pa.array([model] * n, pa.string()),
        "weights": pa.array([weights] * n, pa.string()),
        "vector": vector_array(vectors),
    }
    return pa.table(columns, schema=images_schema(vectors.shape[1]))


def append(path: str | Path, name: str, rows: pa.Table) -> None:
    """Append `rows` to table `name` of the stored dataset at `path` (created on first use) in one atomic commit."""
    db = connect(path)
    if name in table_names(db):
        db.open_table(name).add(rows)
    else:
        db.create_table(name, rows)


def stored_ids(path: str | Path, tables: Sequence[str] = (IMAGES, SKIPPED)) -> set[str]:
    """Ids already in the `tables` (the images and skipped tables) of the dataset at `path` (none when it does not
    exist yet)."""
    db = connect(path)
    names = table_names(db)
    return {i for name in tables if name in names for i in read_column(db.open_table(name), "id")}


def open_table(path: str | Path, name: str) -> lancedb.table.Table | None:
    """Table `name` of the dataset at `path` (e.g. a patch index's `patches`); None when there is none."""
    db = connect(path)
    return db.open_table(name) if name in table_names(db) else None


def skipped_rows(path: str | Path) -> pa.Table | None:
    """path and reason of every file that could not be decoded; None when nothing was ever skipped."""
    db = connect(path)
    return db.open_table(SKIPPED).to_arrow().select(["path", "reason"]) if SKIPPED in table_names(db) else None


def compact_and_index(path: str | Path, min_rows: int = INDEX_MIN_ROWS) -> str:
    """Compact the images table's per-commit fragments, then `build_index`; returns what was built."""
    table = connect(path).open_table(IMAGES)
    table.optimize()
    return build_index(table, min_rows)


# ---- opening --------------------------------------------------------------------------------
@dataclass
class StoredDataset:
    """An opened stored dataset. `table` is the LanceDB images table; `skipped` may be None."""

    path: Path
    table: lancedb.table.Table
    skipped: lancedb.table.Table | None
    rows: int
    model: str  # ``name`` of the registry model
    weights: str  # the weights actually used ("random" when they were unavailable)
    dim: int

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.weights}"

    @property
    def index_name(self) -> str:
        """What answers a search: "IVF-Flat" (the k-NN index), "exact scan", or "IVF_PQ" (Lance, an older dataset)."""
        loaded = _loaded_index(self.table)
        if loaded is not None:
            return "exact scan" if loaded.knn.info.exact else "IVF-Flat"
        return "IVF_PQ" if self.table.list_indices() else "exact scan"


def connect(path: str | Path) -> lancedb.DBConnection:
    return lancedb.connect(str(path))


def table_names(db: lancedb.DBConnection) -> list[str]:
    listed = db.list_tables()
    return list(getattr(listed, "tables", listed))


def open_store(path: str | Path, index: bool = True) -> StoredDataset:
    """Open the stored dataset at `path`; ValueError when it is not one (or is empty). `index=False` leaves its k-NN
    index on disk until a search (a name in a list need not load 1.5 GB for a million 384-D rows)."""
    path = Path(path)
    db = connect(path)
    names = table_names(db)
    if IMAGES not in names:
        raise ValueError(f"{path} holds no stored embeddings (no '{IMAGES}' table); make one with core.batch embed")
    table = db.open_table(IMAGES)
    skipped = db.open_table(SKIPPED) if SKIPPED in names else None
    rows = table.count_rows()
    if not rows:
        raise ValueError(f"{path} has an empty '{IMAGES}' table")
    first = table.search().select(["model", "weights"]).limit(1).to_arrow()
    dim = table.schema.field("vector").type.list_size
    if index:
        _loaded_index(table)  # the k-NN index is read now, not on the first search
    return StoredDataset(path, table, skipped, rows, first["model"][0].as_py(), first["weights"][0].as_py(), dim)


def find_stores(roots: Sequence[Path], max_depth: int = 3) -> list[Path]:
    """Resolved folders at most `max_depth` levels below `roots` (a root itself is level 0) that hold a stored
    dataset (an ``images.lance`` table), sorted. A dataset folder may itself end in ``.lance`` (the README's
    ``data/photos.lance``). Its tables, any other Lance table (a folder with ``_versions``), hidden folders and
    symlinks are not entered, so the walk stays cheap next to millions of files."""
    found: set[Path] = set()

    def walk(folder: str, depth: int) -> None:
        try:
            with os.scandir(folder) as listing:
                folders = [e for e in listing if e.is_dir(follow_symlinks=False)]
        except OSError:  # gone, or not readable: nothing to offer there
            return
        names = {e.name for e in folders}
        if LANCE_TABLE_MARK in names:  # a Lance table: its data files, never a dataset
            return
        is_store = f"{IMAGES}.lance" in names
        if is_store:
            found.add(Path(folder).resolve())
        if depth < max_depth:
            for entry in folders:
                table = is_store and entry.name.endswith(".lance")  # one of this dataset's tables
                if not table and not entry.name.startswith("."):
                    walk(entry.path, depth + 1)

    for root in roots:
        walk(str(Path(root).expanduser()), 0)
    return sorted(found)


# ---- reading ----------------------------------------------------------------------------------
def read_column(table: lancedb.table.Table, column: str) -> np.ndarray:
    """One scalar column of every row, in storage order (ids, paths or labels; labels may hold None)."""
    return read_arrow_column(table, column).to_numpy(zero_copy_only=False)


def read_arrow_column(table: lancedb.table.Table, column: str) -> pa.Array:
    """One scalar column of every row, in storage order, as one Arrow array: the k-NN index's own copy when this
    table handle has it loaded and it holds the column (META_COLUMNS: no scan, no second copy), else read."""
    loaded = _HANDLES.get(table)
    if loaded is not None and column in loaded.meta.column_names:
        return loaded.meta.column(column).chunk(0)  # one chunk (`_meta` combines them): not copied
    return table.search().select([column]).limit(None).to_arrow()[column].combine_chunks()


def iter_batches(
    table: lancedb.table.Table, columns: Sequence[str] = ("vector",), batch_size: int = READ_BATCH
) -> Iterator[pa.RecordBatch]:
    """Every row in storage order, `batch_size` rows at a time (constant memory at any table size)."""
    reader = table.search().select(list(columns)).limit(None).to_batches(batch_size)
    yield from reader


def iter_vectors(table: lancedb.table.Table, batch_size: int = READ_BATCH) -> Iterator[np.ndarray]:
    """(B, D) float32 vector blocks of every row, in storage order, B ≤ min(`batch_size`, TAKE_BATCH).

    Read a block of row offsets at a time: a scan of the whole column reads ahead, which held +0.8 GB at its peak
    for 1,000,000 × 384 vectors, against +0.4 GB this way (~0.5 s slower; bench/bench_bigmap.py --app)."""
    rows, size = table.count_rows(), max(1, min(batch_size, TAKE_BATCH))
    for start in range(0, rows, size):
        yield vectors_of(table.take_offsets(list(range(start, min(rows, start + size)))).select(["vector"]).to_arrow())


def read_rows(table: lancedb.table.Table, offsets: Sequence[int], columns: Sequence[str] = (*META_COLUMNS, "vector")):
    """The rows at `offsets` (storage order positions) as an Arrow table, in the order given."""
    offsets = [int(o) for o in offsets]
    if not offsets:
        return pa.table({c: pa.array([], table.schema.field(c).type) for c in columns})
    got = table.take_offsets(sorted(set(offsets))).select(list(columns)).to_arrow()
    where = {o: i for i, o in enumerate(sorted(set(offsets)))}
    return got.take([where[o] for o in offsets])


def sample_offsets(rows: int, size: int, seed: int = 0) -> np.ndarray:
    """Sorted random row offsets (without replacement), all rows when `size` ≥ `rows`."""
    if size >= rows:
        return np.arange(rows, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(rows, size=size, replace=False)).astype(np.int64)


# ---- index and search -------------------------------------------------------------------------
@dataclass(frozen=True)
class _Loaded:
    knn: vector_index.KnnIndex
    meta: pa.Table  # META_COLUMNS of every row, in storage order (the index's ids are row offsets)


_KNN: dict[str, _Loaded] = {}  # by table uri, the most recently loaded last
_KNN_LOCK = threading.Lock()
# table handle → its index, once checked against the handle's version. A handle's version changes only through
# writes on that handle, and every write here opens its own (`append`, `compact_and_index`); asking a handle for its
# version or uri hops to lancedb's event-loop thread (0.1–1 ms under load), too dear for every query.
_HANDLES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def build_index(table: lancedb.table.Table, min_rows: int = INDEX_MIN_ROWS) -> str:
    """Build the k-NN index of `table` (exact below `min_rows` rows, IVF-Flat from there), save it beside the table
    for its current version and keep it loaded; returns what was built."""
    knn = vector_index.build(iter_vectors(table), table.schema.field("vector").type.list_size, table.version, min_rows)
    vector_index.save(knn, _folder(table))
    with _KNN_LOCK:
        _HANDLES[table] = _keep(table.uri, _Loaded(knn, _meta(table)))
    return knn.info.describe()


def _folder(table: lancedb.table.Table) -> Path:
    return Path(table.uri).parent


def _meta(table: lancedb.table.Table) -> pa.Table:
    return table.search().select(META_COLUMNS).limit(None).to_arrow().combine_chunks()


def _keep(key: str, loaded: _Loaded) -> _Loaded:
    _KNN.pop(key, None)
    _KNN[key] = loaded
    while len(_KNN) > KNN_KEEP:
        _KNN.pop(next(iter(_KNN)))
    return loaded


def _loaded_index(table: lancedb.table.Table) -> _Loaded | None:
    """The k-NN index built for the table's current version (from memory, else from its files), or None."""
    loaded = _HANDLES.get(table)
    if loaded is not None:
        return loaded
    key, version = table.uri, table.version
    with _KNN_LOCK:
        loaded = _KNN.get(key)
        if loaded is None or loaded.knn.info.version != version:
            knn = vector_index.load(_folder(table), version)
            loaded = None if knn is None else _keep(key, _Loaded(knn, _meta(table)))
        if loaded is not None:
            _HANDLES[table] = loaded
        return loaded


def search(
    table: lancedb.table.Table, query: np.ndarray, k: int = 10, columns: Sequence[str] = META_COLUMNS
) -> pd.DataFrame:
    """The `k` rows most cosine-similar to `query` (D,), best first: `columns` plus `similarity`.

    Through the k-NN index when one was built for the table's version, else through Lance (its IVF_PQ index with
    exact re-ranking when an older dataset has one, else an exact scan)."""
    loaded = _loaded_index(table)
    if loaded is None:
        return _search_lance(table, query, k, columns)
    similarity, offsets = loaded.knn.search(np.asarray(query, dtype=np.float32).reshape(1, -1), k)
    hit = offsets[0] >= 0
    offsets = offsets[0][hit]
    rows = loaded.meta if set(columns) <= set(META_COLUMNS) else None
    rows = rows.take(offsets) if rows is not None else read_rows(table, offsets, columns)
    return pd.DataFrame({**rows.select(list(columns)).to_pydict(), "similarity": similarity[0][hit]})


def _search_lance(table: lancedb.table.Table, query: np.ndarray, k: int, columns: Sequence[str]) -> pd.DataFrame:
    q = table.search(np.asarray(query, dtype=np.float32).reshape(-1), vector_column_name="vector")
    q = q.distance_type("cosine").limit(k).select([*columns, "_distance"])
    if table.list_indices():
        q = q.nprobes(NPROBES).refine_factor(REFINE_FACTOR)
    found = q.to_pandas()
    found["similarity"] = 1.0 - found.pop("_distance").astype(np.float32)
    return found.reset_index(drop=True)


# ---- images -----------------------------------------------------------------------------------
def load_stored_image(path: str, roots: Sequence[Path]) -> np.ndarray:
    """The stored image at `path` (HWC uint8 RGB), only if it lies inside one of `roots`; else ImageError."""
    return load_image(confine(path, roots, folder=False))[0]


def stored_browser_image(path: str, roots: Sequence[Path]) -> tuple[bytes, tuple[int, int]]:
    """The stored image at `path` (inside one of `roots`) as JPEG bytes for a browser to draw, and its (height,
    width): the file itself when the browser draws from it the pixels `load_image` gives (`browser_ready_size`:
    read, ~0.1 ms), else those pixels encoded, once per file version (the last 256 kept). ImageError, OSError."""
    file = confine(path, roots, folder=False)
    data = file.read_bytes()
    size = browser_ready_size(data)
    if size is not None:
        return data, size
    stat = file.stat()
    return _browser_copy(str(file), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=256)
def _browser_copy(path: str, mtime_ns: int, size: int) -> tuple[bytes, tuple[int, int]]:
    return browser_copy(load_image(path)[0])
