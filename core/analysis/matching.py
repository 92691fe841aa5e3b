"""DINOv2 patch matching between two images: cosine similarity of patch tokens, computed once per pair.

Conventions:
- A patch grid is (h, w) = (rows, cols); patch `index` = row * w + col (row-major, as `reshape(-1, D)`).
- Pixel coordinates are (X, Y) in pixels of the ORIGINAL image, X right, Y down, origin at the top-left
  corner; the patch grid covers the whole image (DINOv2 tokens come from a square resize of it), so a patch
  spans W / w pixels across and H / h pixels down, whatever the image's aspect ratio.
- Boxes are XYXY floats, (x0, y0) inclusive, (x1, y1) exclusive.

"Embed once, click many": `compute_similarity` builds the full (h*w, h2*w2) cosine matrix; a click only reads
one row of it (`similarity_map`, `top_matches`).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

import numpy as np

from core.analysis.imaging import blend, colorize, resize_map

Grid = tuple[int, int]  # (h, w) patch rows, patch cols
Size = tuple[int, int]  # (H, W) image height, width in pixels


@dataclass(frozen=True)
class PatchSimilarity:
    """Cosine similarity of every patch of A to every patch of B, plus what Euclidean distances need.

    cosine: (h*w, h2*w2) float32, read-only; row i is patch i of A against all patches of B.
    tokens_a, tokens_b: (h*w, D), (h2*w2, D) float32 raw (un-normalised) tokens, read-only.
    grid_a, grid_b: (h, w) and (h2, w2).
    """

    cosine: np.ndarray
    tokens_a: np.ndarray
    tokens_b: np.ndarray
    grid_a: Grid
    grid_b: Grid


@dataclass(frozen=True)
class Match:
    """One patch of A paired with one patch of B: flat indices, (row, col) in each grid, similarity, distance."""

    index_a: int
    index_b: int
    row_a: int
    col_a: int
    row_b: int
    col_b: int
    cosine: float
    euclidean: float  # L2 distance between the raw (un-normalised) tokens


def compute_similarity(tokens_a: np.ndarray, tokens_b: np.ndarray, eps: float = 1e-12) -> PatchSimilarity:
    """(h, w, D) and (h2, w2, D) patch tokens → PatchSimilarity with the (h*w, h2*w2) float32 cosine matrix.

    A zero token has cosine 0 with everything.
    """
    if tokens_a.ndim != 3 or tokens_b.ndim != 3 or tokens_a.shape[-1] != tokens_b.shape[-1]:
        raise ValueError(f"expected (h, w, D) tokens with the same D, got {tokens_a.shape} and {tokens_b.shape}")
    flat_a = _flat(tokens_a)
    flat_b = _flat(tokens_b)
    cosine = _unit(flat_a, eps) @ _unit(flat_b, eps).T
    cosine.flags.writeable = False
    grid_a = (tokens_a.shape[0], tokens_a.shape[1])
    grid_b = (tokens_b.shape[0], tokens_b.shape[1])
    return PatchSimilarity(cosine, flat_a, flat_b, grid_a, grid_b)


def _flat(tokens: np.ndarray) -> np.ndarray:
    flat = np.array(tokens.reshape(-1, tokens.shape[-1]), dtype=np.float32)  # a copy: callers can't change it
    flat.flags.writeable = False
    return flat


def _unit(flat: np.ndarray, eps: float) -> np.ndarray:
    return flat / np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), eps)


def similarity_map(sim: PatchSimilarity, patch_index: int) -> np.ndarray:
    """(h2, w2) float32 (a writable copy): cosine of patch `patch_index` of A to every patch of B."""
    _check_index(patch_index, sim.cosine.shape[0])
    return sim.cosine[patch_index].reshape(sim.grid_b).copy()


def top_matches(sim: PatchSimilarity, patch_index: int, k: int = 5) -> list[Match]:
    """The `k` patches of B most similar (cosine) to patch `patch_index` of A, best first (ties: lower index)."""
    _check_index(patch_index, sim.cosine.shape[0])
    row = sim.cosine[patch_index]
    k = max(0, min(k, row.size))
    if k == 0:
        return []
    candidates = np.argpartition(-row, k - 1)[:k] if k < row.size else np.arange(row.size)
    best = candidates[np.lexsort((candidates, -row[candidates]))]
    return _matches(sim, np.full(k, patch_index), best)


def compute_mutual_matches(
    sim: PatchSimilarity, top_n: int | None = None, mask_a: np.ndarray | None = None, mask_b: np.ndarray | None = None
) -> list[Match]:
    """Mutual nearest neighbours (i's best in B is j and j's best in A is i), by cosine, best first.

    mask_a, mask_b: (h, w) and (h2, w2) bool foreground masks on the patch grids; when given, only patches
    inside them take part (nearest neighbours are searched within the masks). At most `top_n` matches.
    """
    if top_n is not None and top_n < 0:
        raise ValueError(f"top_n must be >= 0, got {top_n}")
    rows = _masked(mask_a, sim.grid_a)
    cols = _masked(mask_b, sim.grid_b)
    if rows.size == 0 or cols.size == 0:
        return []
    sub = sim.cosine[np.ix_(rows, cols)]
    best_b = sub.argmax(axis=1)
    best_a = sub.argmax(axis=0)
    mutual = np.flatnonzero(best_a[best_b] == np.arange(rows.size))
    ia, ib = rows[mutual], cols[best_b[mutual]]
    order = np.lexsort((ia, -sim.cosine[ia, ib]))[:top_n]
    return _matches(sim, ia[order], ib[order])


def _masked(mask: np.ndarray | None, grid: Grid) -> np.ndarray:
    """Flat indices of the patches inside `mask` (all patches when None)."""
    if mask is None:
        return np.arange(grid[0] * grid[1])
    if mask.shape != grid:
        raise ValueError(f"mask shape {mask.shape} does not match the patch grid {grid}")
    return np.flatnonzero(mask.astype(bool))


def _matches(sim: PatchSimilarity, ia: np.ndarray, ib: np.ndarray) -> list[Match]:
    cosine = sim.cosine[ia, ib]
    euclidean = np.linalg.norm(sim.tokens_a[ia] - sim.tokens_b[ib], axis=1)
    w_a, w_b = sim.grid_a[1], sim.grid_b[1]
    return [
        Match(int(a), int(b), int(a) // w_a, int(a) % w_a, int(b) // w_b, int(b) % w_b, float(c), float(d))
        for a, b, c, d in zip(ia, ib, cosine, euclidean, strict=True)
    ]


def _check_index(patch_index: int, n: int) -> None:
    if not 0 <= patch_index < n:
        raise IndexError(f"patch index {patch_index} out of range for {n} patches")


def pixel_to_patch(x: float, y: float, image_size: Size, grid: Grid) -> tuple[int, int, int]:
    """(X, Y) click in image pixels → (row, col, index) of the patch under it; outside clicks clamp to the border."""
    (height, width), (h, w) = image_size, grid
    col = min(max(math.floor(x * w / width), 0), w - 1)
    row = min(max(math.floor(y * h / height), 0), h - 1)
    return row, col, row * w + col


def small_image_note(image_sizes: list[Size], grid: int) -> str | None:
    """One sentence when an image has fewer pixels a side than the `grid`×`grid` patch grid it is cut into (each
    patch then sees less than one of its pixels), else None. `image_sizes` are (H, W)."""
    small = [(h, w) for h, w in image_sizes if min(h, w) < grid]
    if not small:
        return None
    h, w = small[0]
    return (
        f"A {w}×{h} px image has fewer pixels than the {grid}×{grid} patch grid, so each patch sees less than one "
        "of its pixels: pick a smaller input size or a larger image."
    )


def patch_box(row: int, col: int, image_size: Size, grid: Grid) -> tuple[float, float, float, float]:
    """XYXY box of patch (row, col) in image pixels: (x0, y0) inclusive, (x1, y1) exclusive."""
    (height, width), (h, w) = image_size, grid
    return col * width / w, row * height / h, (col + 1) * width / w, (row + 1) * height / h


def patch_center(row: int, col: int, image_size: Size, grid: Grid) -> tuple[float, float]:
    """(X, Y) centre of patch (row, col) in image pixels."""
    x0, y0, x1, y1 = patch_box(row, col, image_size, grid)
    return (x0 + x1) / 2, (y0 + y1) / 2


def matches_table(
    matches: list[Match], image_size_a: Size, image_size_b: Size, grid_a: Grid, grid_b: Grid
) -> list[dict]:
    """One row per match for CSV export: rank (1-based), indices, (row, col) and patch-centre (X, Y) in each image."""
    rows = []
    for rank, m in enumerate(matches, start=1):
        x_a, y_a = patch_center(m.row_a, m.col_a, image_size_a, grid_a)
        x_b, y_b = patch_center(m.row_b, m.col_b, image_size_b, grid_b)
        rows.append(
            {
                "rank": rank,
                "index_a": m.index_a,
                "index_b": m.index_b,
                "row_a": m.row_a,
                "col_a": m.col_a,
                "row_b": m.row_b,
                "col_b": m.col_b,
                "x_a": x_a,
                "y_a": y_a,
                "x_b": x_b,
                "y_b": y_b,
                "cosine": m.cosine,
                "euclidean": m.euclidean,
            }
        )
    return rows


def patch_crops(image: np.ndarray, grid: Grid, indices: list[int]) -> list[np.ndarray]:
    """HWC uint8 image → one HWC uint8 crop (a copy, at least 1×1 pixel) per flat patch index, in order."""
    height, width = image.shape[:2]
    crops = []
    for index in indices:
        _check_index(index, grid[0] * grid[1])
        x0, y0, x1, y1 = patch_box(index // grid[1], index % grid[1], (height, width), grid)
        c0, r0 = min(round(x0), width - 1), min(round(y0), height - 1)
        crops.append(image[r0 : max(round(y1), r0 + 1), c0 : max(round(x1), c0 + 1)].copy())
    return crops


def matches_csv(rows: list[dict]) -> str:
    """`matches_table` rows → CSV text with a header line (empty string for no rows)."""
    if not rows:
        return ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def overlay_similarity(image: np.ndarray, sim_map: np.ndarray, alpha: float, scale: str = "Viridis") -> np.ndarray:
    """HWC uint8 image under its (h, w) cosine map: bilinear resize, colours from the map's min to max, opacity alpha."""
    heat = resize_map(sim_map, image.shape[:2])
    return blend(image, colorize(heat, scale, float(sim_map.min()), float(sim_map.max())), alpha)


def outline_patches(
    image: np.ndarray, grid: Grid, indices: list[int], colors: np.ndarray, thickness: int = 2
) -> np.ndarray:
    """HWC uint8 copy of `image` with a box of `colors[i]` ((n, 3) uint8) drawn just inside patch `indices[i]`.

    Later boxes are drawn over earlier ones, so pass the most important patch last.
    """
    out = image.copy()
    height, width = image.shape[:2]
    for index, color in zip(indices, colors, strict=True):
        _check_index(index, grid[0] * grid[1])
        x0, y0, x1, y1 = patch_box(index // grid[1], index % grid[1], (height, width), grid)
        c0, r0 = min(round(x0), width - 1), min(round(y0), height - 1)
        c1, r1 = max(round(x1), c0 + 1), max(round(y1), r0 + 1)
        t = max(1, min(thickness, (c1 - c0 + 1) // 2, (r1 - r0 + 1) // 2))
        for rows, cols in (
            (slice(r0, r0 + t), slice(c0, c1)),
            (slice(r1 - t, r1), slice(c0, c1)),
            (slice(r0, r1), slice(c0, c0 + t)),
            (slice(r0, r1), slice(c1 - t, c1)),
        ):
            out[rows, cols, :3] = color
    return out
