import numpy as np
import pytest

from core.analysis.duplicates import bucketed_pairs, exact_pairs, group_pairs


def _planted(n: int = 20_000, dim: int = 64, copies: int = 300, seed: int = 0):
    """Random rows (pairwise cosine ≈ 0 ± 0.13) with `copies` rows replaced by noisy copies of others
    (cosine ≈ 0.98); returns the vectors and the planted pairs (i < j)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    rows = rng.choice(n, 2 * copies, replace=False)
    sources, targets = rows[:copies], rows[copies:]
    x[targets] = x[sources] + 0.2 * rng.standard_normal((copies, dim)).astype(np.float32)
    return x, {(min(a, b), max(a, b)) for a, b in zip(sources.tolist(), targets.tolist(), strict=True)}


def test_exact_pairs_find_exactly_the_planted_pairs_best_first():
    x, planted = _planted(n=3000, copies=40)
    pairs, sims = exact_pairs(x, 0.9, block=512)
    assert {tuple(p) for p in pairs.tolist()} == planted
    assert np.all(pairs[:, 0] < pairs[:, 1]) and np.all(np.diff(sims) <= 0)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    np.testing.assert_allclose(sims, np.sum(unit[pairs[:, 0]] * unit[pairs[:, 1]], axis=1), atol=1e-5)


@pytest.fixture(scope="module")
def planted():
    x, pairs = _planted()
    return x, pairs, exact_pairs(x, 0.9)


@pytest.mark.parametrize("buckets", [1, 64, 141])
def test_bucketed_pairs_equal_the_exact_pairs_on_planted_duplicates(planted, buckets):
    """Isotropic random rows are the hard case for buckets (no cluster structure): three probes still find all."""
    x, planted, (exact, exact_sims) = planted
    pairs, sims = bucketed_pairs(x, 0.9, buckets=buckets)
    assert {tuple(p) for p in exact.tolist()} == planted
    assert {tuple(p) for p in pairs.tolist()} == planted  # full recall, no false pair, no repeat
    assert len(pairs) == len(planted)
    np.testing.assert_allclose(np.sort(sims), np.sort(exact_sims), atol=1e-5)


def test_bucketed_pairs_report_progress_to_the_end():
    calls = []
    x, _ = _planted(n=5_000, copies=10)
    bucketed_pairs(x, 0.9, progress=lambda fraction, message: calls.append(fraction))
    assert calls and calls[-1] == 1.0 and calls == sorted(calls)


def test_group_pairs_joins_chains_and_orders_by_size():
    pairs = np.array([[0, 1], [1, 2], [5, 7], [8, 9], [9, 3]])
    groups = group_pairs(pairs, 10)
    assert [g.tolist() for g in groups] == [[0, 1, 2], [3, 8, 9], [5, 7]]
    assert group_pairs(np.zeros((0, 2), np.int64), 4) == []
