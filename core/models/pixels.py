"""Eval preprocessing straight from HWC uint8 arrays: shortest-side resize, centre crop, normalise — on CPU too.

The upstream transforms (open_clip's and timm's torchvision `Compose`, DINOv2's image processor) turn each array
into a PIL image and resize the full-resolution picture with PIL. `EvalRecipe.pixels` follows the same recipe on
the array itself with torch's uint8 antialiased resize (channels-last, both passes rounded to uint8 as PIL does):
no copy into PIL and several times faster on large photos. The resampling differs from PIL's by rounding only
(pixels within a few levels, embeddings cosine ≥ 0.9999 on photos; tests/core/test_pixels.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torchvision import transforms as T

_MODES = {T.InterpolationMode.BICUBIC: "bicubic", T.InterpolationMode.BILINEAR: "bilinear"}
_PASS_THROUGH = ("MaybeConvertMode", "MaybeToTensor", "ToTensor")  # RGB arrays: nothing to convert


@dataclass(frozen=True)
class EvalRecipe:
    resize: int  # the shortest side after resizing
    crop: int  # the centre crop's side
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    mode: str = "bicubic"
    floor_crop: bool = False  # the crop's offset (size - crop) / 2 rounded down (transformers), else rounded

    def pixels(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """HWC uint8 RGB → (B, 3, crop, crop) float32, normalised."""
        out = torch.empty(len(images), 3, self.crop, self.crop)
        for i, image in enumerate(images):
            out[i] = self._crop(self._resized(image))
        mean, std = torch.tensor(self.mean).view(1, 3, 1, 1), torch.tensor(self.std).view(1, 3, 1, 1)
        return out.div_(255).sub_(mean).div_(std)

    def _resized(self, image: np.ndarray) -> torch.Tensor:
        """(1, 3, h, w) uint8, channels-last, the shortest side `resize` (torchvision's size rule)."""
        h, w = image.shape[:2]
        short, long = (h, w) if h <= w else (w, h)
        size = (self.resize, int(self.resize * long / short))
        return resize_uint8(image, size if h <= w else size[::-1], self.mode)

    def _crop(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        offset = (lambda d: d // 2) if self.floor_crop else (lambda d: int(round(d / 2.0)))
        top, left = offset(h - self.crop), offset(w - self.crop)
        return x[0, :, top : top + self.crop, left : left + self.crop]


def resize_uint8(image: np.ndarray, size: tuple[int, int], mode: str = "bicubic") -> torch.Tensor:
    """HWC uint8 RGB resized to `size` (H, W), antialiased, as (1, 3, H, W) uint8 in channels-last memory (a view
    of `image` when the size is unchanged). `.permute(0, 2, 3, 1)[0].numpy()` gives HWC back without a copy."""
    x = torch.from_numpy(np.require(image, np.uint8, "W")).permute(2, 0, 1)[None]  # a view: no copy
    if tuple(size) == image.shape[:2]:
        return x
    return F.interpolate(x, size=tuple(size), mode=mode, antialias=True, align_corners=False)


def recipe_of(transform: T.Compose) -> EvalRecipe | None:
    """The recipe of a torchvision eval `Compose` of Resize(int) → CenterCrop → (to tensor) → Normalize, as
    open_clip ("shortest" resize mode) and timm build them; None for anything else (keep the upstream one)."""
    steps = [t for t in transform.transforms if type(t).__name__ not in _PASS_THROUGH]
    if [type(t) for t in steps] != [T.Resize, T.CenterCrop, T.Normalize]:
        return None
    resize, crop, normalize = steps
    size = resize.size if isinstance(resize.size, int) else resize.size[0] if len(resize.size) == 1 else None
    crop_h, crop_w = crop.size
    if size is None or resize.max_size or crop_h != crop_w or resize.interpolation not in _MODES:
        return None
    return EvalRecipe(size, crop_h, _triple(normalize.mean), _triple(normalize.std), _MODES[resize.interpolation])


def _triple(values) -> tuple[float, float, float]:
    return tuple(float(v) for v in (values.tolist() if isinstance(values, torch.Tensor) else values))
