"""Small image utilities shared by the analyses: resizing patch-grid maps, colour maps, blending, PNG."""

from __future__ import annotations

import base64
import functools
import io

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from plotly.colors import hex_to_rgb, sample_colorscale, sequential


def resize_map(values: np.ndarray, size: tuple[int, int], nearest: bool = False) -> np.ndarray:
    """(h, w) or (h, w, C) float map → (H, W[, C]) float32 at `size` = (H, W); bilinear or nearest."""
    arr = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))
    chw = arr[None, None] if arr.ndim == 2 else arr.permute(2, 0, 1)[None]
    mode = {"mode": "nearest"} if nearest else {"mode": "bilinear", "align_corners": False}
    out = F.interpolate(chw, size=size, **mode)[0]
    return (out[0] if arr.ndim == 2 else out.permute(1, 2, 0)).numpy()


def colorize(
    values: np.ndarray, scale: str = "Viridis", vmin: float | None = None, vmax: float | None = None
) -> np.ndarray:
    """(H, W) float → (H, W, 3) uint8 through a plotly colour scale (256-entry lookup table)."""
    lo = float(np.nanmin(values)) if vmin is None else vmin
    hi = float(np.nanmax(values)) if vmax is None else vmax
    lut = colour_table(scale)
    idx = np.clip((values - lo) / max(hi - lo, 1e-12) * 255, 0, 255).astype(np.uint8)
    return lut[idx]


@functools.cache  # 4–11 ms a call here: once per scale, not once per heat map
def colour_table(scale: str) -> np.ndarray:
    """(256, 3) uint8: the plotly colour scale `scale` sampled at 256 levels (read-only)."""
    colors = sample_colorscale(getattr(sequential, scale), np.linspace(0, 1, 256), colortype="rgb")
    lut = np.array([[float(c) for c in s[4:-1].split(",")] for s in colors]).round().astype(np.uint8)
    lut.flags.writeable = False
    return lut


def palette(n: int) -> np.ndarray:
    """(n, 3) uint8 distinct colours for classes, masks and objects."""
    from plotly.colors import qualitative

    base = qualitative.Plotly + qualitative.D3 + qualitative.Alphabet
    return np.array([hex_to_rgb(base[i % len(base)]) for i in range(n)], dtype=np.uint8)


def blend(image: np.ndarray, overlay: np.ndarray, alpha: float, where: np.ndarray | None = None) -> np.ndarray:
    """HWC uint8 image with an HWC uint8 overlay at opacity `alpha`, only where the (H, W) bool mask is set."""
    mixed = image.astype(np.float32) * (1 - alpha) + overlay.astype(np.float32) * alpha
    if where is not None:
        mixed = np.where(where[..., None], mixed, image)
    return mixed.round().astype(np.uint8)


def to_jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """HWC uint8 RGB → JPEG bytes: for pictures sent to the browser on every click (~10× faster than PNG)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def data_url(encoded: bytes, kind: str = "jpeg") -> str:
    """Encoded image bytes (`to_jpeg`, `to_png`) → a data URL, for pictures handed to the browser inline."""
    return f"data:image/{kind};base64," + base64.b64encode(encoded).decode()


def to_png(image: np.ndarray) -> bytes:
    """HWC uint8 (RGB or RGBA) or HW bool/uint8 → PNG bytes."""
    arr = image.astype(np.uint8) * 255 if image.dtype == bool else image
    buffer = io.BytesIO()
    Image.fromarray(arr).save(buffer, format="PNG")
    return buffer.getvalue()


def sprite_sheet(images: list[np.ndarray], side: int, background: int = 240) -> tuple[np.ndarray, int]:
    """HWC uint8 images → one grid image of `side`-px tiles (each image fitted, aspect kept, centred on a grey
    `background`) and its number of columns. Tile i sits at row i // columns, column i % columns: one picture to
    send to the browser instead of thousands of small ones."""
    columns = max(1, int(np.ceil(np.sqrt(len(images)))))
    rows = max(1, -(-len(images) // columns))
    sheet = np.full((rows * side, columns * side, 3), background, np.uint8)
    for i, image in enumerate(images):
        top, left = (i // columns) * side, (i % columns) * side
        sheet[top : top + side, left : left + side] = letterbox(image, side, background, enlarge=False)
    return sheet, columns


def fit(image: np.ndarray, side: int) -> np.ndarray:
    """HWC uint8 (or gray HW) scaled down, aspect kept, so that its longest side is at most `side` px; a smaller
    image comes back as it is."""
    thumb = Image.fromarray(image)
    thumb.thumbnail((side, side))
    return np.asarray(thumb)


def letterbox(image: np.ndarray, side: int, background: int = 240, enlarge: bool = True) -> np.ndarray:
    """HWC uint8 (RGB, or gray HW) → a `side`×`side` RGB tile: the image fitted inside, aspect kept, centred on grey.

    Larger images are scaled down; smaller ones (with `enlarge`) are scaled up by a whole factor, nearest
    neighbour, so a 1×1 image becomes one flat square and never a blur. A 1×4000 strip stays a 1-px line."""
    rgb = np.asarray(Image.fromarray(image).convert("RGB"))
    factor = side // max(rgb.shape[:2])
    if enlarge and factor > 1:
        rgb = rgb.repeat(factor, axis=0).repeat(factor, axis=1)
    tile = fit(rgb, side)
    box = np.full((side, side, 3), background, np.uint8)
    height, width = tile.shape[:2]
    top, left = (side - height) // 2, (side - width) // 2
    box[top : top + height, left : left + width] = tile
    return box
