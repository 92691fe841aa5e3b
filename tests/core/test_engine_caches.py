"""The engine's caches: LRU order, SAM embeddings rebuilt from the cache with the right height and width (#22),
cache hits keyed by the digests items carry (#24)."""

from __future__ import annotations

import numpy as np
import pytest

from core import engine as engine_module
from core.cache import EmbeddingCache
from core.engine import Engine, _MemoryLRU, image_hash
from core.models.sam import SamPrompt


def test_memory_lru_evicts_the_least_recently_used_entry():
    lru = _MemoryLRU(max_bytes=2)
    lru.put("a", 1, 1)
    lru.put("b", 2, 1)
    assert lru.get("a") == 1  # "a" is now the most recently used
    lru.put("c", 3, 1)
    assert lru.get("b") is None
    assert lru.get("a") == 1 and lru.get("c") == 3


def test_a_cached_sam_embedding_keeps_height_and_width(tmp_path):
    """A portrait and a landscape image, each embedded fresh and then again from the cache."""
    engine = Engine(device="cpu", cache=EmbeddingCache(tmp_path))
    rng = np.random.default_rng(0)
    for shape in ((40, 90, 3), (90, 40, 3)):
        image = rng.integers(0, 256, size=shape, dtype=np.uint8)
        fresh = engine.sam_embedding(image, "sam_tiny")
        again = engine.sam_embedding(image, "sam_tiny")
        side = engine.model("sam_tiny").adapter.module.image_encoder.img_size
        long, short = max(shape[:2]), min(shape[:2])
        expected_input = (side, int(short * side / long + 0.5))
        if shape[0] < shape[1]:
            expected_input = expected_input[::-1]
        for embedding in (fresh, again):
            assert tuple(embedding.original_size) == shape[:2]
            assert tuple(embedding.input_size) == expected_input
        point = np.array([[shape[1] * 0.7, shape[0] * 0.3]])
        first = engine.sam_predict(fresh, "sam_tiny", SamPrompt(point, np.array([1])))
        second = engine.sam_predict(again, "sam_tiny", SamPrompt(point, np.array([1])))
        np.testing.assert_array_equal(first.masks, second.masks)


def test_a_cache_hit_with_the_items_digests_reads_no_pixels(monkeypatch, images):
    fresh = Engine(device="cpu", cache=None)
    digests = [image_hash(im) for im in images]  # what ImageItem.digest carries
    first = fresh.embed(images, "dinov2_tiny", digests=digests)
    np.testing.assert_array_equal(fresh.embed(images, "dinov2_tiny"), first)  # the same cache keys as by pixels
    monkeypatch.setattr(engine_module, "image_hash", lambda _: pytest.fail("hashed the pixels again"))
    monkeypatch.setattr(fresh.model("dinov2_tiny").adapter, "embed", lambda _: pytest.fail("recomputed"))
    np.testing.assert_array_equal(fresh.embed(images, "dinov2_tiny", digests=digests), first)
    with pytest.raises(ValueError, match="2 digests for 3 images"):
        fresh.embed(images, "dinov2_tiny", digests=digests[:2])
