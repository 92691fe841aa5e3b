"""Live camera analysis (#21): colours fixed across frames and equal to PCA Foreground's on the fitted frame, the
reference patch most similar to itself, honest frame counts, a blank frame said rather than raised."""

import numpy as np
import pytest

from core.analysis.pca import compute_foreground, compute_rgb_pca
from core.engine import Engine
from core.live import LiveAnalysis, LiveSettings, LiveStats, apply_basis, fit_basis, patch_similarity


def _tokens(seed: int = 0, h: int = 6, w: int = 8, d: int = 16) -> np.ndarray:
    rng = np.random.default_rng(seed)
    tokens = rng.normal(size=(h, w, d)).astype(np.float32)
    tokens[2:5, 3:7] += 4 * rng.normal(size=d).astype(np.float32)  # a planted object
    return tokens


def test_on_the_fitted_frame_the_colours_are_pca_foregrounds():
    tokens = _tokens()
    foreground = compute_foreground(tokens[None])
    expected = compute_rgb_pca(tokens[None], foreground.mask).rgb[0]
    np.testing.assert_allclose(apply_basis(tokens, fit_basis(tokens)), expected, atol=1e-5)


def test_later_frames_keep_the_colours_of_the_reference():
    """The same patch content gets the same colour in a later frame where everything else changed."""
    reference = _tokens(0)
    basis = fit_basis(reference)
    later = _tokens(1)
    later[0, 0] = reference[3, 4]  # an object patch of the reference, elsewhere in a new frame
    np.testing.assert_allclose(apply_basis(later, basis)[0, 0], apply_basis(reference, basis)[3, 4], atol=1e-6)


def test_the_reference_patch_is_most_similar_to_itself():
    tokens = _tokens()
    similarity = patch_similarity(tokens, tokens[1, 2])
    assert np.unravel_index(similarity.argmax(), similarity.shape) == (1, 2)
    assert similarity[1, 2] == pytest.approx(1.0, abs=1e-6)


def test_stats_count_dropped_frames_and_frames_per_second(monkeypatch):
    clock = iter(np.arange(0, 10, 0.5))
    monkeypatch.setattr("core.live.time.monotonic", lambda: next(clock))
    stats = LiveStats()
    for received in (1, 3, 2, 1):
        stats.record(received, 0.2)
    snapshot = stats.snapshot()
    assert (snapshot["received"], snapshot["shown"], snapshot["dropped"]) == (7, 4, 3)
    assert snapshot["fps"] == pytest.approx(2.0) and snapshot["latency_ms"] == pytest.approx(200.0)


def test_a_stream_through_the_engine_with_a_tiny_dinov2():
    engine = Engine(device="cpu", cache=None)
    live = LiveAnalysis(engine, LiveSettings("dinov2_tiny", 56))
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    out = live.process(frame, received=2)
    assert out.shape == frame.shape and out.dtype == np.uint8 and not np.array_equal(out, frame)
    assert live.stats.snapshot()["dropped"] == 1 and live.error is None
    assert engine.cache is None and not engine._memory._items  # camera frames are never cached
    live.update(LiveSettings("dinov2_tiny", 56, mode="similarity", patch=(0.0, 0.0)))
    assert live.process(frame).shape == frame.shape
    blank = live.process(np.zeros_like(frame))  # a covered lens: the model's tokens are all equal
    assert blank.shape == frame.shape
