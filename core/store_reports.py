"""Reports over stored datasets, read through `core.store` (which alone opens Lance): the labeled rows several
datasets share (for comparing their models), and near-duplicate pairs among a dataset's rows. Pure: no streamlit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from core.analysis.duplicates import DuplicateReport, compute_near_duplicates, near_duplicate_table
from core.datasets import pick_per_class
from core.store import StoredDataset, iter_batches, read_column, read_rows, sample_offsets, vectors_of


# ---- several datasets ---------------------------------------------------------------------------
@dataclass(frozen=True)
class AlignedRows:
    """Labeled images that several stored datasets all hold (matched by path), sampled per class.

    Row n of `labels` and of every `vectors[i]` ((N, D_i) float32, from the i-th store) is the image `paths[n]`."""

    paths: np.ndarray  # (N,) str
    labels: np.ndarray  # (N,) str, the first store's labels
    vectors: list[np.ndarray]
    shared: int  # labeled images every store holds, before sampling
    classes: int
    per_class: int
    seed: int
    sources: tuple[str, ...]  # the stores' folders, in the order of `vectors`

    def describe(self) -> str:
        """One sentence: how many images of how many classes are used, and whether that is a sample."""
        n = len(self.paths)
        if n == self.shared:
            return f"Using all {n:,} labeled images the datasets share ({self.classes} classes); no subsampling."
        return (
            f"Using {n:,} of the {self.shared:,} labeled images the datasets share: at most {self.per_class} per "
            f"class, {self.classes} classes (random sample, seed {self.seed})."
        )


def align_stores(stores: Sequence[StoredDataset], per_class: int, seed: int = 0) -> AlignedRows:
    """The rows of every store for the labeled images they all hold (inner join on `path`, labels from the first
    store), at most `per_class` per class at random. ValueError when they share no labeled image or < 2 classes."""
    frame = None
    for i, stored in enumerate(stores):
        part = pd.DataFrame({c: read_column(stored.table, c) for c in (["path", "label"] if i == 0 else ["path"])})
        part = part.assign(**{f"row{i}": np.arange(len(part))}).drop_duplicates("path")
        frame = part if frame is None else frame.merge(part, on="path")
    if frame is None:
        raise ValueError("choose at least one stored dataset")
    frame = frame[frame["label"].notna()].sort_values("path", kind="stable")
    if frame.empty:
        raise ValueError("the chosen stored datasets share no labeled image (images are matched by path)")
    classes = int(frame["label"].nunique())
    if classes < 2:
        only = frame["label"].iloc[0]
        raise ValueError(
            f"the labeled images the chosen datasets share are all of one class ({only}); need two or more"
        )
    keep = frame.iloc[pick_per_class(frame["label"].to_numpy(), per_class, seed)]
    vectors = [vectors_of(read_rows(s.table, keep[f"row{i}"], ("vector",))) for i, s in enumerate(stores)]
    labels = keep["label"].to_numpy().astype(str)
    paths = keep["path"].to_numpy().astype(str)
    sources = tuple(str(s.path) for s in stores)
    return AlignedRows(paths, labels, vectors, len(frame), classes, per_class, seed, sources)


# ---- near duplicates --------------------------------------------------------------------------
def find_near_duplicates(
    store: StoredDataset, threshold: float = 0.95, max_rows: int = 2_000_000, seed: int = 0, progress=None
) -> tuple[DuplicateReport, pd.DataFrame, int]:
    """Near-duplicates among all rows, or a stated random sample of `max_rows` of them (see
    `compute_near_duplicates` for how pairs are searched). Returns (report, table of pairs, rows examined)."""
    offsets = sample_offsets(store.rows, max_rows, seed)
    if len(offsets) == store.rows:
        data = pa.Table.from_batches(list(iter_batches(store.table, ("id", "path", "vector"))))
    else:
        data = read_rows(store.table, offsets, ("id", "path", "vector"))
    report = compute_near_duplicates(vectors_of(data), threshold, progress=progress)
    ids, paths = (data[c].to_numpy(zero_copy_only=False) for c in ("id", "path"))
    return report, near_duplicate_table(report, ids, paths), len(offsets)
