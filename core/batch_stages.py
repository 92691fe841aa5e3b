"""The stages of a batch-embedding run (`core.batch`): decoding and the model. A Ray worker imports the module of
its stage, so this one stays light — numpy and `core.data` at import; torch and the engine only inside
`Embedder` — and a decode worker starts in about a second instead of importing torch, Lance and scikit-learn
(~30 s on a busy 2-core machine)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from core.data import ImageError, load_image

if TYPE_CHECKING:
    from core.engine import Engine

_EMPTY = np.zeros((1, 1, 3), np.uint8)  # stands in for an image that failed to decode


def decode_batch(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Ray stage: add `image` (HWC uint8 RGB, a 1×1 stand-in on failure) and `error` ('' when decoded)."""
    images, errors = [], []
    for path in batch["path"]:
        try:
            image, error = load_image(str(path))[0], ""
        except (ImageError, OSError) as exc:
            image, error = _EMPTY, str(exc) or type(exc).__name__
        images.append(image)
        errors.append(error)
    out = dict(batch)
    out["image"] = _object_array(images)
    out["error"] = np.asarray(errors, dtype=object)
    return out


def _object_array(arrays: list[np.ndarray]) -> np.ndarray:
    holder = np.empty(len(arrays), dtype=object)
    holder[:] = arrays
    return holder


class Embedder:
    """Ray actor: an `Engine` on this worker's device, no cache; `Engine.embed` on the decoded rows of a batch."""

    def __init__(self, model: str, device: str, threads: int | None = None, batch_size: int | None = None):
        import torch

        from core.engine import Engine

        if threads:
            torch.set_num_threads(threads)
        self._use(Engine(device=device, cache=None, memory_bytes=0, batch_size=batch_size), model)

    @classmethod
    def using(cls, engine: Engine, model: str) -> Embedder:
        """An Embedder on an engine that exists (this process's, with its cache): for runs without Ray."""
        embedder = cls.__new__(cls)
        embedder._use(engine, model)
        return embedder

    def _use(self, engine: Engine, model: str) -> None:
        self.model = model
        self.engine = engine
        loaded = engine.model(model)  # load once, before the first batch
        self.name, self.weights = loaded.adapter.spec.name, loaded.adapter.weights
        self.dim = loaded.adapter.spec.embed_dim

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ok = np.asarray([not e for e in batch["error"]], dtype=bool)
        vectors = np.zeros((len(ok), self.dim), np.float32)
        if ok.any():
            vectors[ok] = self.engine.embed([batch["image"][i] for i in np.flatnonzero(ok)], self.model)
        n = len(ok)
        return {
            "id": batch["id"],
            "path": batch["path"],
            "label": batch["label"],
            "error": batch["error"],
            "model": np.full(n, self.name, dtype=object),
            "weights": np.full(n, self.weights, dtype=object),
            "vector": vectors,
        }


class PatchEmbedder(Embedder):
    """Ray actor for `core.batch patches`: the patch tokens of each decoded image at `size`, reduced to what the patch
    index stores (`core.patch_index.patch_vectors`: every patch or the foreground ones, optionally pooled)."""

    def __init__(self, model: str, device: str, threads: int | None = None, batch_size: int | None = None, **settings):
        super().__init__(model, device, threads, batch_size)
        self.settings = settings

    @classmethod
    def using(cls, engine: Engine, model: str, **settings) -> PatchEmbedder:
        embedder = super().using(engine, model)
        embedder.settings = settings
        return embedder

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from core.patch_index import patch_vectors  # the actor's import, beside torch: decode workers never pay it

        ok = [i for i, e in enumerate(batch["error"]) if not e]
        size, pool, foreground = self.settings["size"], self.settings["pool"], self.settings["foreground"]
        tokens = self.engine.patch_tokens([batch["image"][i] for i in ok], self.model, size=size) if ok else []
        kept = dict(zip(ok, (patch_vectors(t, pool, foreground) for t in tokens), strict=True))
        empty = np.zeros(0, np.int16)
        n = len(batch["error"])
        out = {k: batch[k] for k in ("id", "path", "label", "error")}
        out["model"] = np.full(n, self.name, dtype=object)
        out["weights"] = np.full(n, self.weights, dtype=object)
        out["grid"] = np.asarray([kept[i].grid if i in kept else (0, 0) for i in range(n)], np.int32).reshape(n, 2)
        for column, empty_value in (("rows", empty), ("cols", empty), ("vectors", np.zeros(0, np.float32))):
            values = [getattr(kept[i], column).reshape(-1) if i in kept else empty_value for i in range(n)]
            out[column] = _object_array(values)
        return out
