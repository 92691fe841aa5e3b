"""Persistent, size-bounded, process-safe cache of numpy arrays on disk (diskcache + a checksum).

diskcache commits an entry in one SQLite transaction after its value file is written, so a process
killed mid-write leaves no entry. The checksum stored with every value also catches a value file
damaged later (truncated, overwritten): such an entry is dropped and reads as a miss.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import diskcache
import numpy as np

_DIGEST = 16


@dataclass(frozen=True)
class CacheKey:
    """What a cached array depends on. `model` is ``name@weights`` of the weights actually loaded."""

    image_hash: str
    model: str
    kind: str  # "embed", "patch_tokens", "sam_embedding"
    layer: int | None = None
    size: int | None = None

    def __str__(self) -> str:
        return f"v1|{self.kind}|{self.model}|{self.image_hash}|{self.layer}|{self.size}"


def _pack(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    payload = buffer.getvalue()
    return hashlib.blake2b(payload, digest_size=_DIGEST).digest() + payload


def _unpack(blob: bytes) -> np.ndarray | None:
    digest, payload = blob[:_DIGEST], blob[_DIGEST:]
    if hashlib.blake2b(payload, digest_size=_DIGEST).digest() != digest:
        return None
    return np.load(io.BytesIO(payload), allow_pickle=False)


class EmbeddingCache:
    def __init__(self, directory: str | Path, size_limit_bytes: int = 4 * 2**30):
        self.directory = Path(directory)
        # each write evicts least-recently-used entries (up to 10 at a time) while over the bound
        self._store = diskcache.Cache(
            str(self.directory), size_limit=size_limit_bytes, eviction_policy="least-recently-used"
        )

    def get(self, key: CacheKey) -> np.ndarray | None:
        try:
            blob = self._store.get(str(key), default=None, read=False)
        except OSError:  # value file gone or unreadable
            blob = None
        array = _unpack(blob) if isinstance(blob, bytes) else None
        if blob is not None and array is None:
            self._store.delete(str(key))  # damaged: drop it, the caller recomputes
        return array

    def set(self, key: CacheKey, array: np.ndarray) -> None:
        self._store.set(str(key), _pack(np.ascontiguousarray(array)))

    def __len__(self) -> int:
        return len(self._store)

    @property
    def volume_bytes(self) -> int:
        return self._store.volume()

    def clear(self) -> None:
        self._store.clear()

    def close(self) -> None:
        self._store.close()
