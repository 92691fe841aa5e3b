"""The DINOv2 "PCA foreground" recipe on patch tokens, plus token norms.

1. A 1-component PCA fitted jointly over every patch of every image; Otsu splits its scores into two
   sides and `foreground_sign` decides which side is the foreground.
2. A 3-component PCA fitted only on foreground patches (jointly, so the same part gets the same colour
   in every image), shown as RGB.

Tokens are (N, h, w, D) float arrays (N images, an h × w patch grid, D channels), as returned by
`Engine.patch_tokens`. PCA is a centred eigendecomposition in numpy; each component's sign is fixed
(largest-|loading| entry positive) so results never flip between runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from skimage.filters import threshold_otsu

MIN_RGB_TOKENS = 4  # 3 centred components need at least 4 points to all carry variance
MAD_TO_SIGMA = 1.4826  # MAD × this estimates the standard deviation of a normal distribution


@dataclass
class PC1Result:
    scores: np.ndarray  # (N, h, w) float32 projection of each patch on the first component
    component: np.ndarray  # (D,) float32 unit vector, largest-|loading| entry positive
    mean: np.ndarray  # (D,) float32 mean token the projection is centred on
    explained_variance_ratio: float  # share of the total variance along the component


@dataclass
class Foreground:
    scores: np.ndarray  # (N, h, w) float32 first-component scores
    threshold: float  # the split applied to the scores (Otsu unless one was given)
    sign: int  # +1: foreground is scores > threshold; -1: foreground is scores <= threshold
    mask: np.ndarray  # (N, h, w) bool, True on foreground patches


@dataclass
class RGBProjection:
    rgb: np.ndarray  # (N, h, w, 3) float32 in [0, 1]; background patches are 0
    components: np.ndarray  # (3, D) float32 unit rows, fitted on foreground tokens only
    mean: np.ndarray  # (D,) float32 mean foreground token
    explained_variance_ratio: np.ndarray  # (3,) float32 share of the foreground variance per component


def compute_pc1(tokens: np.ndarray) -> PC1Result:
    """First principal component of all patches of all images, (N, h, w, D) float → `PC1Result`."""
    _check_tokens(tokens)
    flat = tokens.reshape(-1, tokens.shape[-1])
    components, mean, ratio = _pca(flat, 1)
    scores = (flat.astype(np.float32) - mean) @ components[0]
    return PC1Result(scores.reshape(tokens.shape[:3]), components[0], mean, float(ratio[0]))


def otsu_threshold(values: np.ndarray) -> float:
    """Otsu threshold of any-shaped finite float values (256-bin histogram)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0 or not np.isfinite(values).all():
        raise ValueError("Otsu needs a non-empty set of finite values.")
    if values.min() == values.max():
        raise ValueError("All values are equal, so there is nothing to threshold.")
    return float(threshold_otsu(values))


def foreground_sign(scores: np.ndarray, threshold: float) -> int:
    """Which side of `threshold` is foreground in (N, h, w) scores: +1 above it, -1 at or below it.

    Two cues, equally weighted: the foreground is the minority side (share of all patches) and the side
    less present on the image border (share of the border patches of every image). The side "above"
    is the foreground when the average of its two shares is below one half; ties go to +1. The border
    cue keeps a large central object right even when it covers more than half of the image.
    """
    if scores.ndim != 3:
        raise ValueError(f"scores must be (N, h, w), got shape {scores.shape}")
    above = scores > threshold
    share_all = above.mean()
    share_border = above[:, _border(scores.shape[1:])].mean()
    return 1 if (share_all + share_border) / 2 <= 0.5 else -1


def compute_foreground(tokens: np.ndarray, threshold: float | None = None, flip: bool = False) -> Foreground:
    """Foreground mask of (N, h, w, D) tokens from the PC1 scores; see `split_foreground`."""
    return split_foreground(compute_pc1(tokens).scores, threshold, flip)


def split_foreground(scores: np.ndarray, threshold: float | None = None, flip: bool = False) -> Foreground:
    """Foreground mask of (N, h, w) PC1 scores at `threshold` (Otsu unless one is given).

    The side is picked by `foreground_sign` at the Otsu threshold, whatever `threshold` is, so moving the
    threshold grows or shrinks the foreground and never silently swaps sides. `flip` swaps the side, giving
    exactly the complementary mask.
    """
    otsu = otsu_threshold(scores)
    threshold = otsu if threshold is None else float(threshold)
    sign = foreground_sign(scores, otsu) * (-1 if flip else 1)
    mask = scores > threshold if sign > 0 else scores <= threshold
    return Foreground(scores, threshold, sign, mask)


def compute_rgb_pca(tokens: np.ndarray, mask: np.ndarray) -> RGBProjection:
    """Foreground parts as colours: 3-component PCA fitted on the (N, h, w) bool `mask` patches jointly.

    Every patch is projected; each component is min-max scaled to [0, 1] over the foreground patches
    (and clipped), and background patches are set to 0.
    """
    _check_tokens(tokens)
    if mask.shape != tokens.shape[:3]:
        raise ValueError(f"mask shape {mask.shape} does not match the token grid {tokens.shape[:3]}")
    mask = mask.astype(bool)
    count = int(mask.sum())
    if count < MIN_RGB_TOKENS:
        raise ValueError(
            f"Only {count} foreground patch(es); the colour PCA needs at least {MIN_RGB_TOKENS}. "
            "Move the threshold to take in more patches, or flip the foreground."
        )
    components, mean, ratio = _pca(tokens[mask], 3)
    projected = (tokens.reshape(-1, tokens.shape[-1]).astype(np.float32) - mean) @ components.T
    projected = projected.reshape(*tokens.shape[:3], 3)
    low, high = projected[mask].min(axis=0), projected[mask].max(axis=0)
    rgb = np.clip((projected - low) / np.maximum(high - low, 1e-12), 0.0, 1.0)
    rgb[~mask] = 0.0
    return RGBProjection(rgb.astype(np.float32), components, mean, ratio)


def compute_token_norms(layer_tokens: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """L2 norm of every token: (L, h, w, D) array or a list of L (h, w, D) arrays → (L, h, w) float32."""
    stacked = np.stack([np.asarray(t, dtype=np.float32) for t in layer_tokens])
    if stacked.ndim != 4:
        raise ValueError(f"layer tokens must be (L, h, w, D), got shape {stacked.shape}")
    return np.linalg.norm(stacked, axis=-1)


def flag_high_norm(norms: np.ndarray, k: float = 5.0) -> np.ndarray:
    """(L, h, w) norms → (L, h, w) bool, True on high-norm outlier tokens, judged per layer.

    A token is an outlier when its norm exceeds its layer's median by more than `k` robust standard
    deviations (1.4826 × the median absolute deviation), i.e. its robust z-score is above `k`. Median
    and MAD ignore the few outliers themselves, unlike a mean and standard deviation.
    """
    if norms.ndim != 3:
        raise ValueError(f"norms must be (L, h, w), got shape {norms.shape}")
    median = np.median(norms, axis=(1, 2), keepdims=True)
    mad = np.median(np.abs(norms - median), axis=(1, 2), keepdims=True)
    return norms - median > k * MAD_TO_SIGMA * mad


def _pca(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-k PCA of (M, D) rows → components (k, D) float32 with fixed signs, mean (D,), variance ratio (k,)."""
    x = x.astype(np.float32)
    mean = x.mean(axis=0)
    centred = x - mean
    if len(x) >= x.shape[1]:
        variances, vectors = np.linalg.eigh((centred.T @ centred).astype(np.float64))
        variances, components = variances[::-1], vectors[:, ::-1].T
    else:  # fewer rows than channels: the thin SVD is cheaper
        _, singular, components = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
        variances = singular**2
    total = float(np.clip(variances, 0, None).sum())
    if total <= (1e-6 * float(np.abs(x).max())) ** 2 * x.size:  # float32 rounding noise at most
        raise ValueError("All tokens are (nearly) equal, so there is no variance to analyse.")
    components = components[:k]
    rows = np.arange(len(components))
    components = components * np.sign(components[rows, np.abs(components).argmax(axis=1)])[:, None]
    ratio = np.clip(variances[:k], 0, None) / total
    return components.astype(np.float32), mean, ratio.astype(np.float32)


def _border(shape: tuple[int, int]) -> np.ndarray:
    """(h, w) bool, True on the outermost ring of the patch grid."""
    border = np.ones(shape, dtype=bool)
    border[1:-1, 1:-1] = False
    return border


def _check_tokens(tokens: np.ndarray) -> None:
    if tokens.ndim != 4:
        raise ValueError(f"tokens must be (N, h, w, D), got shape {tokens.shape}")
    if tokens.size == 0:
        raise ValueError("tokens are empty")
    if not np.isfinite(tokens).all():
        raise ValueError("tokens contain NaN or infinite values")
