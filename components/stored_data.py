"""Stored datasets read once per server: the datasets found under the data roots, opened tables, their columns,
projections, near-duplicate reports, alignments and thumbnails read from disk (all `st.cache_*`). Views and pages
import these; none of them draws a widget (a long read shows a progress bar)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import streamlit as st

from core import config, registry, store, store_reports
from core.analysis.imaging import fit
from core.analysis.scale import fit_on_sample, project_batches
from core.data import ImageError, within

THUMB = 112
METHOD_TITLES = {"pca": "PCA", "lda": "LDA", "umap": "UMAP"}


# ---- finding and opening ----------------------------------------------------------------------
@st.cache_resource(show_spinner="Opening the stored dataset…", max_entries=8)
def opened(path: str) -> store.StoredDataset:
    """The stored dataset at `path`, opened once per server."""
    return store.open_store(path)


@st.cache_data(show_spinner=False, ttl=60)
def _found(roots: tuple[str, ...]) -> list[str]:
    return [str(p) for p in store.find_stores([Path(r) for r in roots])]


def found_stores() -> list[str]:
    """Folders of the stored datasets under the data roots (looked for again after a minute)."""
    return _found(tuple(map(str, config.data_roots())))


def forget_found() -> None:
    """Look for stored datasets again on the next `found_stores` (one was just written)."""
    _found.clear()


@st.cache_data(show_spinner=False, ttl=60, max_entries=1024)
def store_name(path: str) -> str:
    """A found dataset as its folder under its data root, then its model (opened apart from `opened`'s few)."""
    inside = within(path, config.data_roots())
    name = str(inside[0].relative_to(inside[1])) if inside else path
    try:
        return f"{name} · {registry.display_name(store.open_store(path, index=False).ref)}"
    except (ValueError, OSError, KeyError):  # not readable now: the folder alone, opening it says why
        return name


def titles(paths: list[str]) -> list[str]:
    """Each dataset's model; the folder is added where two datasets hold the same model."""
    names = [registry.display_name(opened(p).ref) for p in paths]
    return [f"{t} · {Path(p).name}" if names.count(t) > 1 else t for t, p in zip(names, paths, strict=True)]


# ---- columns and derived tables -----------------------------------------------------------------
# Whole-dataset columns and coordinates are shared read-only (st.cache_resource), not copied: st.cache_data would
# keep a pickled copy and unpickle a fresh one on every run (a million paths: ~130 MB and ~0.2 s each time), and a
# new array each run would also make the big map rebuild its payload on every page run.
def _frozen(values: np.ndarray) -> np.ndarray:
    values.flags.writeable = False
    return values


@st.cache_resource(show_spinner=False, max_entries=8)
def labels_of(path: str) -> np.ndarray:
    """Every row's label (None where unlabeled), read once per dataset; shared, read-only. One str object per
    distinct label (a million rows: 8 MB, not 60)."""
    column = store.read_arrow_column(opened(path).table, "label").dictionary_encode()
    names = np.array([*column.dictionary.to_pylist(), None], dtype=object)
    return _frozen(names[column.indices.fill_null(len(column.dictionary)).to_numpy()])


@st.cache_resource(show_spinner=False, max_entries=8)
def paths_of(path: str) -> pa.Array:
    """Every row's image path (an Arrow string array: `paths[i].as_py()`, `paths.take(rows).to_pylist()`), read
    once per dataset, shared: the k-NN index's own copy when it is loaded (a million paths as Python strings would
    take ~130 MB more)."""
    return store.read_arrow_column(opened(path).table, "path")


@st.cache_resource(show_spinner=False, max_entries=8)
def projection(path: str, method: str, sample: int) -> tuple[np.ndarray, tuple[str, ...]]:
    """(N, 2) float32 coordinates of every row (shared, read-only), by `method` fitted on `sample` random rows, and
    notes on the fit."""
    stored = opened(path)
    offsets = store.sample_offsets(stored.rows, sample)
    rows = store.read_rows(stored.table, offsets, ("label", "vector"))
    labels = rows["label"].to_numpy(zero_copy_only=False) if method == "lda" else None
    bar = st.progress(0.0, text=f"{METHOD_TITLES[method]} fitted on {len(offsets):,} rows")
    projector = fit_on_sample(store.vectors_of(rows), method, labels)
    update = lambda done, total: bar.progress(done / total, text=f"Projecting {done:,} / {total:,} rows")  # noqa: E731
    coords = project_batches(projector, store.iter_vectors(stored.table), stored.rows, update)
    bar.empty()
    notes = (f"Fitted on a random sample of {len(offsets):,} of {stored.rows:,} rows (seed 0).", *projector.notes)
    return _frozen(np.asarray(coords, np.float32)), notes


@st.cache_data(show_spinner="Comparing rows…", max_entries=8)
def near_duplicates(path: str, threshold: float, max_rows: int):
    """(groups, the pairs table, rows examined, the search method) at cosine ≥ `threshold`."""
    bar = st.progress(0.0, text="Finding near-duplicates")
    report, table, examined = store_reports.find_near_duplicates(
        opened(path), threshold, max_rows, progress=lambda fraction, message: bar.progress(fraction, message)
    )
    bar.empty()
    return len(report.groups), table, examined, report.method


@st.cache_data(show_spinner="Matching the images across datasets…", max_entries=8)
def aligned(paths: tuple[str, ...], per_class: int) -> store_reports.AlignedRows:
    """A per-class sample of the labeled images every dataset of `paths` holds, matched by path."""
    return store_reports.align_stores([opened(p) for p in paths], per_class)


# ---- images -----------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=4096)
def stored_thumbnail(path: str, side: int = THUMB) -> np.ndarray | None:
    """The stored image at `path` fitted in `side` px, read once (cached); None when it cannot be read."""
    try:
        return fit(store.load_stored_image(path, config.data_roots()), side)
    except (ImageError, OSError):
        return None


def missing_tile(side: int) -> np.ndarray:
    """A grey square standing in for a stored image that cannot be read (moved, or outside the data roots)."""
    return np.full((side, side, 3), 200, np.uint8)
