"""A ViT layer's attention split into named token groups (CLS, registers, patches), and the maps read from it.

Token order is the transformers ViTs' (and the dinov2 repository's): CLS, then R register tokens, then the h×w
patches row by row. Attention rows are queries, columns keys; each row sums to 1 over all T = 1 + R + h·w keys.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AttentionMaps:
    """One layer's attention of N images with H heads on an h×w patch grid and 1 + R prefix tokens (CLS, registers).

    cls: (N, H, h, w) the CLS token's attention to each patch (the DINO papers' maps).
    cls_prefix: (N, H, 1 + R) the CLS token's attention to itself and to each register.
    patches: (N, H, h·w, h·w) each patch's attention (row) to each patch (column).
    patch_prefix: (N, H, h·w, 1 + R) each patch's attention to CLS and to each register.
    """

    cls: np.ndarray
    cls_prefix: np.ndarray
    patches: np.ndarray
    patch_prefix: np.ndarray

    @property
    def grid(self) -> tuple[int, int]:
        return self.cls.shape[-2], self.cls.shape[-1]

    @property
    def heads(self) -> int:
        return self.cls.shape[1]

    @property
    def registers(self) -> int:
        return self.cls_prefix.shape[-1] - 1


def split_attention(weights: np.ndarray, prefix: int, grid: tuple[int, int]) -> AttentionMaps:
    """(N, H, T, T) attention with `prefix` = 1 + R leading tokens and an h×w `grid` → `AttentionMaps`."""
    h, w = grid
    if weights.ndim != 4 or weights.shape[-1] != weights.shape[-2] or weights.shape[-1] != prefix + h * w:
        raise ValueError(f"attention of shape {weights.shape} is not (N, H, T, T) with T = {prefix} + {h}×{w}")
    n, heads = weights.shape[:2]
    return AttentionMaps(
        cls=weights[:, :, 0, prefix:].reshape(n, heads, h, w),
        cls_prefix=weights[:, :, 0, :prefix],
        patches=weights[:, :, prefix:, prefix:],
        patch_prefix=weights[:, :, prefix:, :prefix],
    )


def from_patch(maps: AttentionMaps, image: int, patch: int) -> np.ndarray:
    """(H, h, w) the attention of patch `patch` (row-major index) of image `image` to every patch."""
    return maps.patches[image, :, patch].reshape(maps.heads, *maps.grid)


def register_share(prefix_row: np.ndarray) -> np.ndarray:
    """(..., 1 + R) attention to CLS and registers → (...) the share that goes to the registers (0 without any)."""
    return prefix_row[..., 1:].sum(-1)


def peak_ratio(heat: np.ndarray) -> float:
    """The largest value of an (h, w) map over its median: high where a few patches take most of the attention."""
    return float(heat.max() / max(float(np.median(heat)), 1e-12))
