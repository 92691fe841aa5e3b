"""Live camera analysis without Streamlit: PCA colours and patch similarity on each frame, with fixed colours
across frames and honest counts of frames shown, dropped and the model's latency.

Colours must not flicker: PCA's components flip sign and reorder from frame to frame, so the colour basis
(the PC1 foreground split and the three colour components with their ranges) is fitted once, on a chosen frame,
and every later frame is projected onto it. "Refit" takes the next frame as the new reference.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
from PIL import Image

from core.analysis.pca import compute_pc1, compute_rgb_pca, split_foreground


@dataclass(frozen=True)
class ColourBasis:
    """PCA Foreground's colouring, frozen: PC1 split, then three colour components scaled to the fitted range."""

    pc1: np.ndarray  # (D,)
    pc1_mean: np.ndarray  # (D,)
    threshold: float
    sign: int
    components: np.ndarray  # (3, D)
    mean: np.ndarray  # (D,)
    low: np.ndarray  # (3,)
    high: np.ndarray  # (3,)


def fit_basis(tokens: np.ndarray) -> ColourBasis:
    """The colour basis of one frame's (h, w, D) tokens, as PCA Foreground computes its colours."""
    pc1 = compute_pc1(tokens[None])
    foreground = split_foreground(pc1.scores)
    rgb = compute_rgb_pca(tokens[None], foreground.mask)
    projected = (tokens[foreground.mask[0]].astype(np.float32) - rgb.mean) @ rgb.components.T
    return ColourBasis(
        pc1.component,
        pc1.mean,
        foreground.threshold,
        foreground.sign,
        rgb.components,
        rgb.mean,
        projected.min(axis=0),
        projected.max(axis=0),
    )


def apply_basis(tokens: np.ndarray, basis: ColourBasis) -> np.ndarray:
    """(h, w, D) tokens → (h, w, 3) float32 colours in [0, 1] on the basis; background patches black."""
    flat = tokens.reshape(-1, tokens.shape[-1]).astype(np.float32)
    scores = (flat - basis.pc1_mean) @ basis.pc1
    foreground = scores > basis.threshold if basis.sign > 0 else scores <= basis.threshold
    colours = np.clip(
        ((flat - basis.mean) @ basis.components.T - basis.low) / np.maximum(basis.high - basis.low, 1e-12), 0, 1
    )
    colours[~foreground] = 0.0
    return colours.reshape(*tokens.shape[:2], 3).astype(np.float32)


def patch_similarity(tokens: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(h, w) cosine similarity of every patch token to the (D,) reference token."""
    flat = tokens.reshape(-1, tokens.shape[-1]).astype(np.float32)
    unit = flat / np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-12)
    ref = reference.astype(np.float32) / max(float(np.linalg.norm(reference)), 1e-12)
    return (unit @ ref).reshape(tokens.shape[:2])


def heat_colours(values: np.ndarray) -> np.ndarray:
    """(h, w) values in [-1, 1] → (h, w, 3) float32 colours: dark blue (low) through red to yellow (high)."""
    t = np.clip((values + 1) / 2, 0, 1)[..., None]
    low, mid, high = np.array([0.05, 0.05, 0.35]), np.array([0.85, 0.1, 0.1]), np.array([1.0, 0.95, 0.2])
    return np.where(t < 0.5, low + (mid - low) * (t * 2), mid + (high - mid) * (t * 2 - 1)).astype(np.float32)


def overlay(frame: np.ndarray, colours: np.ndarray, alpha: float) -> np.ndarray:
    """HWC uint8 frame with (h, w, 3) [0, 1] patch colours upsampled (nearest: each patch a square) on top."""
    h, w = frame.shape[:2]
    grid = Image.fromarray((colours * 255).astype(np.uint8)).resize((w, h), Image.Resampling.NEAREST)
    return (frame * (1 - alpha) + np.asarray(grid) * alpha).astype(np.uint8)


class LiveStats:
    """Thread-safe counts: frames received and shown (per second over the last 3 s), dropped, model latency."""

    WINDOW_S = 3.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.received = self.processed = self.dropped = 0
        self._shown: deque[float] = deque()
        self._latency_ms: deque[float] = deque(maxlen=20)

    def record(self, received: int, latency_s: float) -> None:
        """One processed frame after `received` arrived since the last one (the others were dropped)."""
        now = time.monotonic()
        with self._lock:
            self.received += received
            self.processed += 1
            self.dropped += received - 1
            self._shown.append(now)
            while self._shown and now - self._shown[0] > self.WINDOW_S:
                self._shown.popleft()
            self._latency_ms.append(latency_s * 1e3)

    def snapshot(self) -> dict:
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._shown if now - t <= self.WINDOW_S]
            fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 and recent[-1] > recent[0] else 0.0
            latency = float(np.median(self._latency_ms)) if self._latency_ms else None
            return {
                "fps": fps,
                "latency_ms": latency,
                "received": self.received,
                "shown": self.processed,
                "dropped": self.dropped,
            }


@dataclass
class LiveSettings:
    model: str
    size: int
    mode: str = "pca"  # "pca": PCA colours; "similarity": similarity to the reference patch
    alpha: float = 0.6
    patch: tuple[float, float] = (0.5, 0.5)  # the reference patch, as fractions of width and height


class LiveAnalysis:
    """What the camera stream calls per frame (from its worker thread); the page changes `settings` and asks for
    a refit from the script thread."""

    def __init__(self, engine, settings: LiveSettings) -> None:
        self.engine, self.settings = engine, settings
        self.stats = LiveStats()
        self._lock = threading.Lock()
        self._basis: ColourBasis | None = None
        self._reference: np.ndarray | None = None
        self.error: str | None = None

    def update(self, settings: LiveSettings) -> None:
        with self._lock:
            if (settings.model, settings.size) != (self.settings.model, self.settings.size):
                self._basis = self._reference = None  # another model or grid: fit again
            self.settings = settings

    def refit(self) -> None:
        """Take the next frame as the new reference (colour basis and reference patch)."""
        with self._lock:
            self._basis = self._reference = None

    def process(self, frame: np.ndarray, received: int = 1) -> np.ndarray:
        """HWC uint8 RGB frame → the frame with the analysis on top; `received` counts the frames this one stands
        for (the newest of them; the rest were dropped)."""
        started = time.perf_counter()
        with self._lock:
            settings = self.settings
        try:
            tokens = self.engine.frame_patch_tokens(frame, settings.model, settings.size)
            colours = self._colours(tokens, settings)
            self.error = None
        except ValueError as exc:  # e.g. a uniform frame (lens covered): say it, keep streaming
            self.error = str(exc)
            return frame
        self.stats.record(received, time.perf_counter() - started)
        return overlay(frame, colours, settings.alpha)

    def _colours(self, tokens: np.ndarray, settings: LiveSettings) -> np.ndarray:
        with self._lock:
            if settings.mode == "pca":
                if self._basis is None:
                    self._basis = fit_basis(tokens)
                basis = self._basis
            else:
                if self._reference is None:
                    h, w = tokens.shape[:2]
                    row = min(int(settings.patch[1] * h), h - 1)
                    col = min(int(settings.patch[0] * w), w - 1)
                    self._reference = tokens[row, col].copy()
                reference = self._reference
        if settings.mode == "pca":
            return apply_basis(tokens, basis)
        return heat_colours(patch_similarity(tokens, reference))
