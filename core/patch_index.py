"""Patch search: the patch tokens of a set of images in one k-NN index, so a patch (or the mean of a region) finds
the most similar patches across the whole set. Pure: no streamlit.

Two ways to get one:
- in this process, from tokens already computed (`build_patch_index`): the dashboard's working set;
- `python -m core.batch patches SOURCE OUT --model dinov2_small` (Ray Data like `embed`, resumable, bad files
  listed), then `open_patch_index(OUT)`. OUT is a LanceDB folder (reached through `core.store`):
    patches   one row per image: id, path, label, model, weights, size (model input, px), patch (px), grid_h, grid_w,
              pool, foreground, rows / cols (list<int16>: the top-left model patch of each stored vector),
              tokens (list<float32>: the n × D vectors, row-major)
    skipped   files that could not be decoded, with the reason (as for `embed`)
    patches.faiss, patches.json   the k-NN index over every stored vector, in storage order (`core.vector_index`)

What is stored of an image's (h, w, D) tokens (`patch_vectors`): every patch, or only its foreground patches by the
PC1 rule of PCA Foreground (`core.analysis.pca.compute_foreground` on that image alone), optionally averaged over
2 × 2 windows (`pool`; a window at the edge averages the patches it has; with the foreground rule a window is kept
when at least half of its patches are foreground). Rows and columns are always in the model's patch grid, so a hit
is drawn the same way at any pool.

Similarity is cosine. Below `INDEX_MIN_ROWS` vectors the index is an exact scan: the hits are the brute-force
top-k. Above, an IVF-Flat calibrated for recall@20 ≥ `TARGET_RECALL` on stored rows (the issue asks ≥ 0.9;
see bench/bench_patch_search.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from core import store, vector_index
from core.analysis.matching import patch_box
from core.analysis.pca import compute_foreground

PATCHES = "patches"  # the table, and the name of its index files (patches.faiss, patches.json)
SETTINGS_FILE = "patch_settings.json"
INDEX_MIN_ROWS = 20_000  # vectors; below this the index is an exact scan
K = 20  # recall@K is what the IVF-Flat is calibrated for
# calibration goal for recall@20 on stored rows: the issue asks ≥ 0.9 on fresh queries; 0.97 (the image index's)
# needed nprobe 128 and a 53 ms p50 on 2.56M hard synthetic vectors here (bench/bench_patch_search.py)
TARGET_RECALL = 0.95
OVERFETCH = 8  # one result per image: first ask for k × this many patches


@dataclass(frozen=True)
class PatchSettings:
    """What a patch index holds: whose tokens, at what input size, which patches."""

    model: str  # "name@weights" as loaded (weights "random" when they were unavailable)
    size: int  # square model input, px
    patch: int  # model patch side, px (from the registry: never assumed)
    pool: int = 1  # 1: every patch; 2: 2 × 2 windows averaged
    foreground: bool = False  # only the PC1-foreground patches of each image

    def describe(self) -> str:
        what = "foreground patches" if self.foreground else "all patches"
        pooled = f", averaged over {self.pool} × {self.pool}" if self.pool > 1 else ""
        return f"{self.model} at {self.size} px ({self.patch} px patches): {what}{pooled}"


@dataclass(frozen=True)
class ImagePatches:
    """The vectors kept of one image: `vectors` (n, D) float32, the top-left model patch of each (`rows`, `cols`)."""

    grid: tuple[int, int]  # the model's patch grid (h, w)
    rows: np.ndarray  # (n,) int16
    cols: np.ndarray  # (n,) int16
    vectors: np.ndarray  # (n, D) float32


def patch_vectors(tokens: np.ndarray, pool: int = 1, foreground: bool = False) -> ImagePatches:
    """One image's (h, w, D) tokens → the vectors a patch index stores (see the module's docstring)."""
    h, w, _ = tokens.shape
    keep = foreground_mask(tokens) if foreground else np.ones((h, w), bool)
    tokens = np.asarray(tokens, dtype=np.float32)
    if pool > 1:
        tokens, keep = _pool(tokens, pool), _pool(keep[..., None].astype(np.float32), pool)[..., 0] >= 0.5
    rows, cols = np.nonzero(keep)
    return ImagePatches((h, w), (rows * pool).astype(np.int16), (cols * pool).astype(np.int16), tokens[rows, cols])


def foreground_mask(tokens: np.ndarray) -> np.ndarray:
    """(h, w) bool: the PC1 foreground of this one image, as PCA Foreground computes it; all True when PC1 has no
    split (constant scores)."""
    try:
        return compute_foreground(np.asarray(tokens)[None]).mask[0]
    except ValueError:
        return np.ones(tokens.shape[:2], bool)


def _pool(values: np.ndarray, pool: int) -> np.ndarray:
    """(h, w, C) → (⌈h/pool⌉, ⌈w/pool⌉, C) window means; an edge window averages the cells it has."""
    h, w, c = values.shape
    ph, pw = -h % pool, -w % pool
    padded = np.pad(values, ((0, ph), (0, pw), (0, 0)))
    counts = np.pad(np.ones((h, w, 1), np.float32), ((0, ph), (0, pw), (0, 0)))
    shape = (padded.shape[0] // pool, pool, padded.shape[1] // pool, pool)
    sums = padded.reshape(*shape, c).sum(axis=(1, 3))
    return (sums / counts.reshape(*shape, 1).sum(axis=(1, 3))).astype(values.dtype)


# ---- the index --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Hit:
    image: int  # the image's position in the index
    row: int  # top-left model patch of the matched vector
    col: int
    cosine: float


@dataclass
class PatchIndex:
    """Every stored vector of a set of images, searchable. Vector i belongs to image `image[i]`; an image's vectors
    are contiguous, from `starts[j]` to `starts[j + 1]`."""

    settings: PatchSettings
    knn: vector_index.KnnIndex
    names: list[str]  # per image: file name or path
    labels: list[str | None]
    grids: np.ndarray  # (I, 2) int: each image's model patch grid
    starts: np.ndarray  # (I + 1,) int64
    rows: np.ndarray  # (M,) int16
    cols: np.ndarray  # (M,) int16
    paths: list[str] | None = None  # stored index: the image files
    vectors: np.ndarray | None = None  # in-process index: (M, D) float32, for the heat maps
    folder: Path | None = None  # stored index: where the tokens are read back for the heat maps
    _selectors: dict = field(default_factory=dict, repr=False)

    @property
    def image(self) -> np.ndarray:
        """(M,) int: the image of each vector."""
        return np.repeat(np.arange(len(self.names)), np.diff(self.starts))

    @property
    def classes(self) -> list[str]:
        return sorted({label for label in self.labels if label is not None})

    def describe(self) -> str:
        return (
            f"{len(self.names):,} images, {int(self.starts[-1]):,} patch vectors — {self.settings.describe()}; "
            f"{self.knn.info.describe()}"
        )

    def allowed(self, classes: Iterable[str]) -> tuple[vector_index.faiss.IDSelector, int]:
        """The selector of the vectors of images in `classes` and how many they are (kept: building one scans every
        vector)."""
        chosen = tuple(sorted(classes))
        if chosen not in self._selectors:
            per_image = np.isin(np.asarray(self.labels, dtype=object), list(chosen))
            rows = np.repeat(per_image, np.diff(self.starts))
            self._selectors[chosen] = (vector_index.selector(rows), int(rows.sum()))
        return self._selectors[chosen]

    def image_vectors(self, image: int) -> np.ndarray:
        """(n, D) float32: the stored vectors of one image (from memory, or read back from the patches table)."""
        return self.images_vectors([image])[0]

    def images_vectors(self, images: Sequence[int]) -> list[np.ndarray]:
        """The stored vectors of each of `images`, (n_j, D) float32 each; a stored index reads them in one go."""
        if self.vectors is not None:
            return [self.vectors[self.starts[j] : self.starts[j + 1]] for j in images]
        got = store.read_rows(store.open_table(self.folder, PATCHES), images, ["tokens"])["tokens"]
        return [np.asarray(got[i].values, dtype=np.float32).reshape(-1, self.knn.info.dim) for i in range(len(images))]

    def unit_vectors(self, images: Sequence[int]) -> list[np.ndarray]:
        """`images_vectors` as unit rows (what cosines are taken of). A stored index's come from its k-NN index,
        which holds them (of this table's version, ids = row offsets): 20 images × 256 patches in ~1 ms, where
        reading the tokens back from the table took ~35 ms, plus ~56 ms to open it at 10,000 images."""
        if self.vectors is not None:
            return [vector_index.unit_rows(v) for v in self.images_vectors(images)]
        spans = [np.arange(self.starts[j], self.starts[j + 1]) for j in images]
        flat = self.knn.vectors(np.concatenate(spans)) if spans else np.zeros((0, self.knn.info.dim), np.float32)
        return np.split(flat, np.cumsum([len(span) for span in spans])[:-1])


def build_patch_index(
    tokens: Sequence[np.ndarray],
    names: Sequence[str],
    labels: Sequence[str | None],
    settings: PatchSettings,
    min_rows: int = INDEX_MIN_ROWS,
) -> PatchIndex:
    """An in-memory patch index of images given as (h, w, D) token grids (one per image, any grid)."""
    kept = [patch_vectors(t, settings.pool, settings.foreground) for t in tokens]
    vectors = np.concatenate([p.vectors for p in kept]) if kept else np.zeros((0, 1), np.float32)
    if not len(vectors):
        raise ValueError("No patches to index: the images gave no (foreground) patches.")
    knn = vector_index.build([vectors], vectors.shape[1], 0, min_rows, k=K, target=TARGET_RECALL)
    return PatchIndex(
        settings,
        knn,
        list(names),
        list(labels),
        np.asarray([p.grid for p in kept], dtype=np.int64).reshape(-1, 2),
        np.concatenate([[0], np.cumsum([len(p.vectors) for p in kept])]).astype(np.int64),
        np.concatenate([p.rows for p in kept]),
        np.concatenate([p.cols for p in kept]),
        vectors=vector_index.unit_rows(vectors),
    )


def search_patches(
    index: PatchIndex, query: np.ndarray, k: int, one_per_image: bool = False, classes: Iterable[str] | None = None
) -> list[Hit]:
    """The `k` stored patches most cosine-similar to `query` (D,), best first; `one_per_image`: only the best patch
    of each image; `classes`: only images of these classes. Asks again with more candidates and more lists probed
    until k hits are found or everything allowed was scanned, so a filter never returns fewer hits than exist."""
    allowed, total = (None, int(index.starts[-1])) if classes is None else index.allowed(classes)
    if not total:
        return []
    fetch, widen = k * (OVERFETCH if one_per_image else 1), 1
    while True:
        sims, ids = index.knn.search(np.asarray(query, np.float32)[None], max(1, min(fetch, total)), allowed, widen)
        hits = _hits(index, sims[0], ids[0], k, one_per_image)
        scanned = index.knn.probes_all or index.knn.info.nprobe * widen >= index.knn.info.lists
        if len(hits) >= k or (fetch >= total and scanned):
            return hits
        fetch, widen = fetch * 4, widen * 4


def _hits(index: PatchIndex, sims: np.ndarray, ids: np.ndarray, k: int, one_per_image: bool) -> list[Hit]:
    found = ids >= 0
    sims, ids = sims[found], ids[found]
    images = np.searchsorted(index.starts, ids, side="right") - 1
    if one_per_image:
        _, first = np.unique(images, return_index=True)  # ids come best first: an image's first is its best
        keep = np.sort(first)
        sims, ids, images = sims[keep], ids[keep], images[keep]
    return [
        Hit(int(m), int(index.rows[i]), int(index.cols[i]), float(s))
        for m, i, s in zip(images[:k], ids[:k], sims[:k], strict=True)
    ]


def query_cells(picked: Iterable[tuple[int, int]], grid: tuple[int, int], pool: int) -> list[tuple[int, int]]:
    """The patches whose mean token is the query: the picked ones; with a pooled index every patch of the windows
    they fall in (one picked patch then queries with exactly the vector the index stores for its window)."""
    cells = set()
    for row, col in picked:
        r0, c0 = row // pool * pool, col // pool * pool
        cells |= {(r, c) for r in range(r0, min(r0 + pool, grid[0])) for c in range(c0, min(c0 + pool, grid[1]))}
    return sorted(cells)


def heat(index: PatchIndex, image: int, query: np.ndarray) -> np.ndarray:
    """(h, w) float32: cosine of `query` to each stored vector of `image`, over the patches it covers; NaN where
    nothing is stored (background patches of a foreground-only index)."""
    return heats(index, [image], query)[0]


def heats(index: PatchIndex, images: Sequence[int], query: np.ndarray) -> list[np.ndarray]:
    """`heat` of each of `images`, their vectors read in one go."""
    unit, p, out = vector_index.unit_rows(query)[0], index.settings.pool, []
    for image, vectors in zip(images, index.unit_vectors(images), strict=True):
        grid = np.full([int(v) for v in index.grids[image]], np.nan, np.float32)
        sl = slice(index.starts[image], index.starts[image + 1])
        rows, cols, values = index.rows[sl].astype(np.int64), index.cols[sl].astype(np.int64), vectors @ unit
        for dr in range(p):  # a pooled vector covers its p × p window (cut at the grid's edge)
            for dc in range(p):
                inside = (rows + dr < grid.shape[0]) & (cols + dc < grid.shape[1])
                grid[rows[inside] + dr, cols[inside] + dc] = values[inside]
        out.append(grid)
    return out


def hits_table(index: PatchIndex, hits: Sequence[Hit]) -> list[dict]:
    """CSV rows: image (name or path), class, row, col (the model's patch grid), cosine."""
    return [
        {
            "image": (index.paths or index.names)[h.image],
            "class": index.labels[h.image],
            "row": h.row,
            "col": h.col,
            "cosine": round(h.cosine, 6),
        }
        for h in hits
    ]


# ---- a stored patch index (`python -m core.batch patches`) -------------------------------------------
def patches_schema() -> pa.Schema:
    described = [field for field in store.images_schema(1) if field.name != "vector"]  # id, path, label, model, weights
    return pa.schema(
        [
            *described,
            ("size", pa.int32()),
            ("patch", pa.int32()),
            ("grid_h", pa.int32()),
            ("grid_w", pa.int32()),
            ("pool", pa.int32()),
            ("foreground", pa.bool_()),
            ("rows", pa.list_(pa.int16())),
            ("cols", pa.list_(pa.int16())),
            ("tokens", pa.list_(pa.float32())),
        ]
    )


def patches_rows(meta: dict[str, Sequence], settings: PatchSettings, kept: Sequence[ImagePatches]) -> pa.Table:
    """Rows of the patches table: `meta` holds id, path, label, model, weights (one entry per image)."""
    n = len(kept)
    labels = [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in meta["label"]]
    columns = {
        **{c: [str(v) for v in meta[c]] for c in ("id", "path", "model", "weights")},
        "label": labels,
        "size": [settings.size] * n,
        "patch": [settings.patch] * n,
        "grid_h": [p.grid[0] for p in kept],
        "grid_w": [p.grid[1] for p in kept],
        "pool": [settings.pool] * n,
        "foreground": [settings.foreground] * n,
        "rows": [p.rows for p in kept],
        "cols": [p.cols for p in kept],
        "tokens": [np.asarray(p.vectors, np.float32).reshape(-1) for p in kept],
    }
    return pa.table({name: columns[name] for name in patches_schema().names}, schema=patches_schema())


def stored_ids(out: str | Path) -> set[str]:
    """Ids already in the patches or skipped table of `out`."""
    return store.stored_ids(out, (PATCHES, store.SKIPPED))


def check_settings(out: str | Path, settings: PatchSettings) -> None:
    """A patch index holds one model's tokens at one size and one choice of patches: refuse to append others;
    record them for a new one."""
    file = Path(out) / SETTINGS_FILE
    if file.exists():
        held = PatchSettings(**json.loads(file.read_text()))
        if held != settings:
            raise ValueError(f"{out} holds {held.describe()}; write {settings.describe()} to another folder")
        return
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(asdict(settings)))


def build_stored_index(out: str | Path, min_rows: int = INDEX_MIN_ROWS) -> str:
    """Compact the patches table, then build and save the k-NN index of every stored vector; returns what was built."""
    table = store.open_table(out, PATCHES)
    table.optimize()
    dim = _dim(table)
    blocks = (_flat_tokens(b, dim) for b in store.iter_batches(table, ["tokens"], 256))
    knn = vector_index.build(blocks, dim, table.version, min_rows, k=K, target=TARGET_RECALL)
    vector_index.save(knn, out, PATCHES)
    return knn.info.describe()


def _dim(table) -> int:
    """The vectors' dimension: tokens per stored patch of the first image that kept any (all may keep none)."""
    for batch in store.iter_batches(table, ["rows", "tokens"], 256):
        counts = pc.list_value_length(batch.column("rows")).to_numpy(zero_copy_only=False)
        if counts.any():
            first = int(np.flatnonzero(counts)[0])
            return len(batch.column("tokens")[first]) // int(counts[first])
    raise ValueError("No image of this patch index kept any patch.")


def _flat_tokens(batch: pa.RecordBatch, dim: int) -> np.ndarray:
    return batch.column("tokens").flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, dim)


def open_patch_index(folder: str | Path) -> PatchIndex:
    """The patch index stored in `folder`; ValueError (one sentence) when there is none, or its k-NN index is
    missing or older than its table."""
    folder = Path(folder)
    table = store.open_table(folder, PATCHES) if folder.is_dir() else None
    if table is None or not table.count_rows():
        raise ValueError(
            f"{folder} holds no patch index; make one with `python -m core.batch patches SOURCE {folder}`."
        )
    knn = vector_index.load(folder, table.version, PATCHES)
    if knn is None:
        raise ValueError(
            f"The k-NN index of {folder} is missing or older than its table: `python -m core.batch index {folder}`."
        )
    columns = ["path", "label", "model", "weights", "size", "patch", "grid_h", "grid_w", "pool", "foreground"]
    meta = pa.Table.from_batches(list(store.iter_batches(table, [*columns, "rows", "cols"]))).combine_chunks()
    first = {c: meta[c][0].as_py() for c in columns}
    settings = PatchSettings(
        f"{first['model']}@{first['weights']}", first["size"], first["patch"], first["pool"], first["foreground"]
    )
    counts = pc.list_value_length(meta["rows"]).to_numpy(zero_copy_only=False)
    paths = meta["path"].to_pylist()
    return PatchIndex(
        settings,
        knn,
        [Path(p).name for p in paths],
        meta["label"].to_pylist(),
        np.stack([meta["grid_h"].to_numpy(), meta["grid_w"].to_numpy()], axis=1).astype(np.int64),
        np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        meta["rows"].combine_chunks().flatten().to_numpy().astype(np.int16),
        meta["cols"].combine_chunks().flatten().to_numpy().astype(np.int16),
        paths=paths,
        folder=folder,
    )


# ---- where a hit's pictures come from (the browser draws them: components/patch_hits.js) ----------------------
@dataclass(frozen=True)
class HitLayout:
    """A hit's two pictures in an image shown at (height, width) px. Boxes are XYXY ints, end exclusive.

    crop: the matched patches with one patch of context around them (image px), shown `crop_size` (height, width)
    px by nearest neighbour, the matched patches outlined at `crop_box` (crop px) with bars `crop_line` px thick;
    heat: the whole image shrunk to `heat_size` (height, width) under the cosine heat map of its patches
    (`matching.overlay_similarity`'s picture), the matched patches outlined at `heat_box` with `heat_line` px."""

    crop: tuple[int, int, int, int]
    crop_box: tuple[int, int, int, int]
    crop_line: int
    crop_size: tuple[int, int]
    heat_size: tuple[int, int]
    heat_box: tuple[int, int, int, int]
    heat_line: int


def hit_box(image_size: tuple[int, int], grid: tuple[int, int], row: int, col: int, span: int) -> tuple[int, ...]:
    """XYXY pixel box (ints, end exclusive) of the `span` × `span` patches from (row, col), clipped to the grid."""
    x0, y0, _, _ = patch_box(row, col, image_size, grid)
    _, _, x1, y1 = patch_box(min(row + span, grid[0]) - 1, min(col + span, grid[1]) - 1, image_size, grid)
    return round(x0), round(y0), max(round(x1), round(x0) + 1), max(round(y1), round(y0) + 1)


def hit_layout(
    image_size: tuple[int, int], grid: tuple[int, int], hit: Hit, span: int, heat_width: int, crop_height: int
) -> HitLayout:
    """The layout of `hit` (its `span` × `span` patches from row, col of `grid`) in an image of `image_size` (height,
    width) px: the heat picture `heat_width` px wide at most, the crop enlarged or shrunk to `crop_height` px tall."""
    height, width = image_size
    box = hit_box(image_size, grid, hit.row, hit.col, span)
    crop = hit_box(image_size, grid, max(hit.row - 1, 0), max(hit.col - 1, 0), span + 2)
    crop_h, crop_w = crop[3] - crop[1], crop[2] - crop[0]
    heat_size = (max(1, round(height * heat_width / width)), heat_width) if width > heat_width else (height, width)
    heat_box = hit_box(heat_size, grid, hit.row, hit.col, span)
    return HitLayout(
        crop=crop,
        crop_box=(box[0] - crop[0], box[1] - crop[1], box[2] - crop[0], box[3] - crop[1]),
        crop_line=_thickness(image_size, box),
        crop_size=(crop_height, max(1, round(crop_w * crop_height / crop_h))),
        heat_size=heat_size,
        heat_box=heat_box,
        heat_line=_thickness(heat_size, heat_box),
    )


def _thickness(size: tuple[int, int], box: tuple[int, ...]) -> int:
    x0, y0, x1, y1 = box
    return max(1, min(max(size) // 150, (x1 - x0) // 3, (y1 - y0) // 3))
