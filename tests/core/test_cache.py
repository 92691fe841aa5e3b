import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from core.cache import CacheKey, EmbeddingCache

KEY = CacheKey("abc", "dinov2_tiny@random", "patch_tokens", layer=None, size=224)


def test_hit_and_miss(tmp_path):
    cache = EmbeddingCache(tmp_path)
    assert cache.get(KEY) is None
    value = np.arange(12, dtype=np.float32).reshape(3, 4)
    cache.set(KEY, value)
    np.testing.assert_array_equal(cache.get(KEY), value)
    assert cache.get(CacheKey("abc", "dinov2_tiny@random", "patch_tokens", layer=3, size=224)) is None
    assert cache.get(CacheKey("abc", "dinov2_small@hf", "patch_tokens", layer=None, size=224)) is None


def test_a_damaged_value_file_reads_as_a_miss_and_is_dropped(tmp_path):
    cache = EmbeddingCache(tmp_path)
    cache.set(
        KEY, np.random.default_rng(0).random((128, 128)).astype(np.float32)
    )  # 64 KiB: diskcache stores it as its own file
    value_files = [p for p in Path(tmp_path).rglob("*.val")]
    assert len(value_files) == 1
    data = value_files[0].read_bytes()
    value_files[0].write_bytes(data[: len(data) // 2])  # a partial write
    assert cache.get(KEY) is None
    assert len(cache) == 0


def test_a_process_killed_while_writing_leaves_a_cache_that_opens(tmp_path):
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"""
import numpy as np
from core.cache import CacheKey, EmbeddingCache
cache = EmbeddingCache({str(tmp_path)!r})
value = np.ones((512, 512), np.float32)
i = 0
while True:
    cache.set(CacheKey(str(i), "m@random", "embed"), value * i)
    i += 1
""",
        ],
        cwd=Path(__file__).resolve().parents[2],
    )
    time.sleep(3.0)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    cache = EmbeddingCache(tmp_path)
    assert len(cache) > 0
    for i in range(len(cache) + 2):  # every entry present is whole; the one being written is absent
        value = cache.get(CacheKey(str(i), "m@random", "embed"))
        assert value is None or (value.shape == (512, 512) and (value == i).all())
    cache.set(KEY, np.zeros(3, np.float32))
    assert cache.get(KEY) is not None


def test_size_bound_is_respected(tmp_path):
    limit, item = 4 * 2**20, 40 * 2**10  # room for ~100 entries of 40 KiB
    cache = EmbeddingCache(tmp_path, size_limit_bytes=limit)
    for i in range(300):
        cache.set(CacheKey(str(i), "m@random", "embed"), np.full(item // 4, i, np.float32))
    assert cache.volume_bytes <= limit + 10 * item
    assert 50 < len(cache) < 110
    assert all(cache.get(CacheKey(str(i), "m@random", "embed")) is not None for i in range(290, 300))  # newest kept
    assert cache.get(CacheKey("0", "m@random", "embed")) is None  # oldest evicted
