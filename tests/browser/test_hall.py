"""bench.bench_hall's protocol client against a real server: 2 sessions × 2 clicks, each gets its own masks back.

No browser (the client speaks Streamlit's websocket protocol itself), so it is marked slow, not browser; it lives
here to share the browser tests' server. Not timed: it keeps the client from rotting when Streamlit or the
Segment page changes.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
from concurrent.futures import ThreadPoolExecutor

import pytest

from bench import bench_hall
from tests import corpus

pytestmark = pytest.mark.slow


def _args(**overrides) -> argparse.Namespace:
    args = dict(clicks=2, period=0.5, duration=60.0, shared_image=False, side=48, timeout=60.0, setup_timeout=120.0)
    return argparse.Namespace(**{**args, "deadline": 120.0, **overrides})


def test_each_session_gets_its_own_masks(server):
    # in a thread of its own: the session's Playwright keeps an event loop running in this one
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(asyncio.run, bench_hall.hall(server, 2, _args())).result()
    assert result["errors"] == []
    assert result["clicks_answered"] == 4, result  # 2 sessions × 2 clicks, every one answered and checked
    assert result["lost_masks"] == [] and result["leaks"] == []
    assert result["distinct_widgets"] == 2  # each session's prompt widget is keyed by its own image


def test_a_leak_is_seen():
    """The leak check itself: two sessions whose overlays were swapped are both reported."""
    students = bench_hall.make_students(2, 1, shared_image=False, side=48)
    for student, other in zip(students, students[::-1], strict=True):
        student.background = "data:image/png;base64," + base64.b64encode(corpus.encode(other.image)).decode()
    assert len(bench_hall.leaks(students)) == 2
    students[0].background, students[1].background = students[1].background, students[0].background
    assert bench_hall.leaks(students) == []
