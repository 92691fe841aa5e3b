"""The engine: one per server, shared by every session and thread.

Calls are stateless: they take images (HWC uint8 RGB numpy arrays) and a model reference, and return
CPU numpy arrays. Results are keyed by image content hash and the weights actually loaded, kept in
a small in-memory LRU and in the persistent on-disk cache. There is never a shared "current image".
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from core import config
from core.cache import CacheKey, EmbeddingCache
from core.data import image_hash
from core.models import Adapter, Can, build_adapter, can, check_architecture, families, family
from core.models.attention_groups import AttentionMaps, split_attention
from core.models.detection import Detections, split_phrases
from core.models.fast import apply_fast_paths, cpu_bf16
from core.models.sam import AutoMaskParams, AutoMasks, SamEmbedding, SamPrediction, SamPrompt
from core.registry import ModelRef, parse
from core.weights import WeightsStatus, WeightsUnavailable, fetch, locate, unavailable

if TYPE_CHECKING:
    from core.models.paligemma import Answer
    from core.models.sam3 import ConceptMasks

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]  # (done, total)


def pick_device(preferred: str | None = None) -> torch.device:
    if preferred:
        return torch.device(preferred)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def run_batched(
    items: Sequence, fn: Callable[[Sequence], list], batch_size: int, progress: Progress | None = None
) -> list:
    """Apply `fn` to `items` in batches; on CUDA out-of-memory halve the batch and carry on."""
    out: list = []
    start = 0
    while start < len(items):
        chunk = items[start : start + batch_size]
        try:
            out.extend(fn(chunk))
        except torch.OutOfMemoryError:
            if batch_size == 1:
                raise
            batch_size = max(1, batch_size // 2)
            log.warning("out of memory: batch size reduced to %d", batch_size)
            _empty_cuda_cache()
            continue
        start += len(chunk)
        if progress:
            progress(start, len(items))
    return out


@dataclass
class LoadedModel:
    adapter: Adapter
    status: WeightsStatus
    lock: threading.Lock  # one forward at a time per model: bounded memory, no interleaving
    # SAM's light mask decoder has a lock of its own: a click never waits for another image's encoding (tens of
    # seconds on a CPU); each click builds its own predictor on the cached embedding, so nothing is shared
    decoder_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def key(self) -> str:
        """``name@weights`` of the weights actually loaded (``@random`` when they were unavailable)."""
        return f"{self.adapter.spec.name}@{self.adapter.weights}"


class _MemoryLRU:
    """A small thread-safe LRU of arrays, bounded in bytes."""

    def __init__(self, max_bytes: int):
        self.max_bytes, self._bytes = max_bytes, 0
        self._items: OrderedDict[str, tuple[object, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str):
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key][0]

    def put(self, key: str, value, nbytes: int) -> None:
        with self._lock:
            if key in self._items:
                return
            self._items[key] = (value, nbytes)
            self._bytes += nbytes
            while self._bytes > self.max_bytes and len(self._items) > 1:
                _, (_, size) = self._items.popitem(last=False)
                self._bytes -= size


class Engine:
    def __init__(
        self,
        device: str | None = None,
        cache: EmbeddingCache | None = None,
        batch_size: int | None = None,
        max_models: int = 4,
        memory_bytes: int = 1 << 30,
    ):
        self.device = pick_device(device)
        self.dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        self.cache = cache
        self.batch_size = batch_size or (64 if self.device.type == "cuda" else 8)
        self.max_models = max_models
        self._models: OrderedDict[str, LoadedModel] = OrderedDict()
        self._load_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._memory = _MemoryLRU(memory_bytes)
        self.notices: deque[str] = deque(maxlen=20)  # recent evictions, newest last, for the UI
        self.load_counts: Counter[str] = Counter()  # name@weights -> times built (1 unless evicted and reloaded)

    @classmethod
    def from_config(cls) -> Engine:
        """The server's engine, with the persistent cache where the environment says."""
        return cls(cache=EmbeddingCache(config.cache_dir() / "embeddings", config.cache_size_bytes()))

    # ---- models -----------------------------------------------------------------------------
    def weights_status(self, model: str | ModelRef) -> WeightsStatus:
        """Where `model`'s weights come from, without loading it (fast)."""
        ref = parse(model)
        with self._lock:
            loaded = self._models.get(str(ref))
        return loaded.status if loaded else locate(ref)

    def model(self, model: str | ModelRef) -> LoadedModel:
        """The loaded model, built on first use under a per-model lock (concurrent first use loads once)."""
        ref = parse(model)
        name = str(ref)
        with self._lock:
            if name in self._models:
                self._models.move_to_end(name)
                return self._models[name]
            load_lock = self._load_locks.setdefault(name, threading.Lock())
        with load_lock:
            with self._lock:
                if name in self._models:
                    return self._models[name]
            loaded = self._load_evicting(ref)
            with self._lock:
                self._models[name] = loaded
                self.load_counts[name] += 1
                while len(self._models) > self.max_models:
                    self._evict_oldest(f"more than {self.max_models} models in use")
            return loaded

    def num_layers(self, model: str | ModelRef) -> int:
        """Transformer blocks of a patch-token model (the valid `layer` values of `patch_tokens` are 1..this)."""
        return self._able(model, Can.PATCHES).adapter.num_layers

    def loaded_models(self) -> list[str]:
        """``name@weights`` of the models in memory, least recently used first."""
        with self._lock:
            return list(self._models)

    def _load_evicting(self, ref: ModelRef) -> LoadedModel:
        """Load `ref`; when the device runs out of memory, evict the least recently used model and retry."""
        while True:
            try:
                return self._load(ref)
            except torch.OutOfMemoryError:
                with self._lock:
                    if not self._models:
                        raise MemoryError(f"{ref.spec.title} does not fit in {self.device.type} memory.") from None
                    self._evict_oldest(f"{ref.spec.title} did not fit")
                _empty_cuda_cache()

    def _evict_oldest(self, reason: str) -> None:
        """Drop the least recently used model (caller holds ``self._lock``) and record why."""
        evicted, _ = self._models.popitem(last=False)
        self.notices.append(f"Unloaded {evicted} to free memory ({reason}); it reloads on next use.")
        log.info(self.notices[-1])

    def _load(self, ref: ModelRef) -> LoadedModel:
        status = locate(ref)
        path = status.path
        if status.source == "download":
            try:
                path = fetch(ref)
                status = locate(ref)
            except WeightsUnavailable as exc:  # gated or refused: random weights, and the message says why
                status, path = unavailable(ref, str(exc)), None
        weights = "random" if status.is_random else ref.weights
        try:
            adapter = build_adapter(ref.spec, weights, path, self.device)
            if path is not None and not ref.spec.tiny:
                check_architecture(ref.spec, adapter.module, path)
        except torch.OutOfMemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - a file that does not fit the architecture: said, random weights run
            if path is None:
                raise
            status = unavailable(ref, f"The weights at {path} do not fit this architecture ({_first_line(exc)}).")
            adapter = build_adapter(ref.spec, "random", None, self.device)
        if self.device.type == "cuda" or family(ref.spec.family).fast_on_cpu:
            apply_fast_paths(adapter, self.device)  # SDPA everywhere, on-device preprocessing, float32 outputs
        if self.device.type == "cpu":
            cpu_bf16(adapter)  # a full-size image tower in bf16 weights where the CPU multiplies bf16 natively
        return LoadedModel(adapter, status, threading.Lock())

    @contextmanager
    def _forward(self, loaded: LoadedModel) -> Iterator[None]:
        """Per-model lock, inference mode and (on CUDA) bf16 autocast around one forward pass."""
        autocast = torch.autocast("cuda", dtype=self.dtype) if self.device.type == "cuda" else nullcontext()
        with loaded.lock, torch.inference_mode(), autocast:
            yield

    # ---- cached, batched calls --------------------------------------------------------------
    def _cached(
        self,
        images: Sequence[np.ndarray],
        key: Callable[[str], CacheKey | list[CacheKey]],
        compute: Callable[[list[np.ndarray]], list[np.ndarray]],
        progress: Progress | None,
        digests: Sequence[str] | None = None,
    ) -> list[np.ndarray]:
        """`compute` on the images not cached yet, in batches; `digests[i]` is `image_hash(images[i])` when the
        caller already has it (an `ImageItem.digest`), so a cache hit reads no pixels."""
        if digests is not None and len(digests) != len(images):
            raise ValueError(f"{len(digests)} digests for {len(images)} images")
        keys = [key(d) for d in digests] if digests is not None else [key(image_hash(im)) for im in images]
        found = [self._lookup(k) for k in keys]
        missing = [i for i, value in enumerate(found) if value is None]
        done = len(images) - len(missing)
        if progress:
            progress(done, len(images))

        def step(batch: Sequence[int]) -> list[np.ndarray]:
            arrays = compute([images[i] for i in batch])
            for i, array in zip(batch, arrays, strict=True):
                self._store(keys[i], array)
                found[i] = array
            return arrays

        report = (lambda n, _total: progress(done + n, len(images))) if progress else None
        run_batched(missing, step, self.batch_size, report)
        return found

    def _lookup(self, key: CacheKey | list[CacheKey]) -> np.ndarray | None:
        """The cached array; for a list of keys, their arrays stacked (None unless every one is there)."""
        if isinstance(key, list):
            parts = [self._lookup(k) for k in key]
            return None if any(p is None for p in parts) else np.stack(parts)
        value = self._memory.get(str(key))
        if value is None and self.cache is not None:
            value = self.cache.get(key)
            if value is not None:
                self._memory.put(str(key), value, value.nbytes)
        return value

    def _store(self, key: CacheKey | list[CacheKey], array: np.ndarray) -> None:
        """Cache `array`; for a list of keys, its slices along the first axis, one per key."""
        if isinstance(key, list):
            for k, part in zip(key, array, strict=True):
                self._store(k, part.copy())  # a copy: a view would keep the whole stack alive
            return
        self._memory.put(str(key), array, array.nbytes)
        if self.cache is not None:
            self.cache.set(key, array)

    def embed(
        self,
        images: Sequence[np.ndarray],
        model: str | ModelRef,
        progress: Progress | None = None,
        digests: Sequence[str] | None = None,
    ) -> np.ndarray:
        """(N, D) float32 image embeddings: CLIP image embedding, DINOv2 CLS, a promptable model's spatial mean.

        `digests`: the images' `image_hash`es when known (`ImageItem.digest`, computed once per item)."""
        loaded = self._able(model, Can.EMBED)

        def compute(batch: list[np.ndarray]) -> list[np.ndarray]:
            if can(loaded.adapter.spec, Can.PROMPTS):  # the spatial mean of the image embedding is what gets cached
                return [self.sam_embedding(im, model).features.mean(axis=(1, 2)).astype(np.float32) for im in batch]
            with self._forward(loaded):
                return list(_to_numpy(loaded.adapter.embed(batch)))

        rows = self._cached(images, lambda h: CacheKey(h, loaded.key, "embed"), compute, progress, digests)
        return np.stack(rows) if rows else np.zeros((0, loaded.adapter.spec.embed_dim), np.float32)

    def patch_tokens(
        self,
        images: Sequence[np.ndarray],
        model: str | ModelRef,
        layer: int | None = None,
        size: int | None = None,
        progress: Progress | None = None,
    ) -> np.ndarray:
        """(N, h, w, D) float32 DINOv2 patch tokens; see `DINOv2Adapter.patch_tokens` for layer and size."""
        loaded = self._able(model, Can.PATCHES)
        size = size or loaded.adapter.spec.input_size

        def compute(batch: list[np.ndarray]) -> list[np.ndarray]:
            with self._forward(loaded):
                return list(_to_numpy(loaded.adapter.patch_tokens(batch, size, layer)))

        rows = self._cached(images, lambda h: CacheKey(h, loaded.key, "patch_tokens", layer, size), compute, progress)
        return np.stack(rows)

    def layer_tokens(
        self,
        images: Sequence[np.ndarray],
        model: str | ModelRef,
        size: int | None = None,
        progress: Progress | None = None,
    ) -> np.ndarray:
        """(L, N, h, w, D) float32 raw patch tokens of every DINOv2 block, one forward pass per batch of images.

        Each block is cached as `patch_tokens(layer=k)` caches it, so either call finds what the other computed.
        """
        loaded = self._able(model, Can.PATCHES)
        size = size or loaded.adapter.spec.input_size
        layers = range(1, loaded.adapter.num_layers + 1)

        def compute(batch: list[np.ndarray]) -> list[np.ndarray]:
            with self._forward(loaded):
                return list(_to_numpy(loaded.adapter.layer_tokens(batch, size)).swapaxes(0, 1))

        def keys(digest: str) -> list[CacheKey]:
            return [CacheKey(digest, loaded.key, "patch_tokens", k, size) for k in layers]

        return np.stack(self._cached(images, keys, compute, progress), axis=1)

    def attention_maps(
        self,
        images: Sequence[np.ndarray],
        model: str | ModelRef,
        layer: int | None = None,
        size: int | None = None,
        progress: Progress | None = None,
    ) -> AttentionMaps:
        """Block `layer`'s softmax attention (None: the last block) of N images at `size`, split into CLS, register
        and patch groups (`AttentionMaps`, float32). It comes from the model's own eager attention path, switched on
        under the model's lock and back to SDPA after (`core.models.vit_attention`), and is cached per image in
        float16 (attention lies in [0, 1]; on CUDA it is computed in bf16 anyway)."""
        loaded = self._able(model, Can.ATTENTION)
        spec = loaded.adapter.spec
        size, layer = size or spec.input_size, layer or loaded.adapter.num_layers

        def compute(batch: list[np.ndarray]) -> list[np.ndarray]:
            with self._forward(loaded):
                return list(loaded.adapter.attentions(batch, size, layer).half().cpu().numpy())

        rows = self._cached(images, lambda h: CacheKey(h, loaded.key, "attention", layer, size), compute, progress)
        grid = size // spec.patch_size
        return split_attention(np.stack(rows).astype(np.float32), 1 + spec.registers, (grid, grid))

    def video_model(self, model: str | ModelRef) -> LoadedModel:
        """A loaded SAM 2 video model: its adapter (`module`, `processor`) and its lock, which `core.video.VideoTracker`
        holds around each frame it runs (sessions interleave frame by frame; their state is their own)."""
        return self._able(model, Can.TRACK)

    def _able(self, model: str | ModelRef, what: Can) -> LoadedModel:
        """The loaded model, if its family can do `what` (a clear error otherwise, before anything is loaded)."""
        ref = parse(model)
        if not can(ref.spec, what):
            able = ", ".join(f.title for f in families() if what in f.can)
            raise ValueError(f"{what} come from {able} models, not {ref.spec.title}")
        return self.model(ref)

    def frame_patch_tokens(self, image: np.ndarray, model: str | ModelRef, size: int | None = None) -> np.ndarray:
        """(h, w, D) float32 last-layer patch tokens of one image, not cached: a camera frame is seen once."""
        loaded = self._able(model, Can.PATCHES)
        with self._forward(loaded):
            return _to_numpy(loaded.adapter.patch_tokens([image], size or loaded.adapter.spec.input_size))[0]

    def embed_text(self, texts: Sequence[str], model: str | ModelRef) -> np.ndarray:
        """(T, D) float32 CLIP text embeddings (unnormalised), cached by a hash of each text."""
        loaded = self._able(model, Can.TEXT)

        def compute(batch: list[np.ndarray]) -> list[np.ndarray]:
            with self._forward(loaded):
                return list(_to_numpy(loaded.adapter.embed_text([_array_text(a) for a in batch])))

        encoded = [_text_array(t) for t in texts]
        rows = self._cached(encoded, lambda h: CacheKey(h, loaded.key, "embed_text"), compute, None)
        return np.stack(rows) if rows else np.zeros((0, loaded.adapter.spec.embed_dim), np.float32)

    def zero_shot_rule(self, model: str | ModelRef):
        """How `model` turns image–class cosines into probabilities, a `core.analysis.retrieval.ZeroShotRule` (CLIP:
        softmax; SigLIP 2: per-class sigmoid). Its adapter says it: the engine needs no analysis code."""
        return self._able(model, Can.TEXT).adapter.zero_shot_rule()

    def tokenizer_note(self, model: str | ModelRef) -> str:
        """ "" when `model` tokenises text with its own tokenizer, else one sentence on the stand-in it uses."""
        return self._able(model, Can.TEXT).adapter.tokenizer_note

    def clip_patch_embeddings(self, image: np.ndarray, model: str | ModelRef, route: str = "final") -> np.ndarray:
        """(h, w, D) float32 CLIP patch tokens in the joint image-text space, the grid covering the whole image;
        `route` "maskclip" (MaskCLIP's value embeddings) or "final" (the last block's tokens): `CLIPAdapter`."""
        loaded = self._able(model, Can.DENSE_TEXT)

        def compute(batch: list[np.ndarray]) -> list[np.ndarray]:
            with self._forward(loaded):
                return list(_to_numpy(loaded.adapter.patch_embeddings(batch, route)))

        kind = "clip_patches" if route == "final" else f"clip_patches_{route}"  # the final route keeps its old key
        return self._cached([image], lambda h: CacheKey(h, loaded.key, kind), compute, None)[0]

    def detect(
        self,
        image: np.ndarray,
        phrases: str,
        model: str | ModelRef,
        box_threshold: float = 0.35,
        text_threshold: float = 0.25,
    ) -> Detections:
        """Boxes for `phrases` ("a dog. a red car.") on one HWC uint8 RGB image, by a `Can.DETECT` model, through
        its processor's own post-processing. The raw outputs are cached by image hash, phrases and weights, so
        moving a threshold only post-processes again."""
        loaded = self._able(model, Can.DETECT)
        queries = split_phrases(phrases)
        kind = f"detect_{hashlib.sha256(chr(31).join(queries).encode()).hexdigest()[:16]}"

        def compute(batch: list[np.ndarray]) -> list[np.ndarray]:
            with self._forward(loaded):
                return [_to_numpy(loaded.adapter.raw(im, queries)) for im in batch]

        raw = self._cached([image], lambda h: CacheKey(h, loaded.key, kind), compute, None)[0]
        return loaded.adapter.detections(raw, queries, image.shape[:2], box_threshold, text_threshold)

    def sam_embedding(self, image: np.ndarray, model: str | ModelRef = "sam_vit_b") -> SamEmbedding:
        """The SAM image embedding of one image, computed once and cached by image hash (which it carries)."""
        loaded = self._able(model, Can.PROMPTS)
        digest = image_hash(image)
        key = CacheKey(digest, loaded.key, "sam_embedding")
        features = self._lookup(key)
        if features is None:
            with self._forward(loaded):
                embedding = loaded.adapter.image_embedding(image, digest)
            self._store(key, embedding.cached)  # SAM: the features; SAM 2: with its high-res levels
            return embedding
        return loaded.adapter.embedding_from(features, image, digest)

    def sam_predict(self, embedding: SamEmbedding, model: str | ModelRef, prompt: SamPrompt) -> SamPrediction:
        """SAM's masks for `prompt` on an image embedding (three candidates or one: `SamPrompt.multimask`)."""
        loaded = self.model(model)
        no_autocast = torch.autocast(self.device.type, enabled=False)  # SAM's postprocessing converts to numpy
        with loaded.decoder_lock, torch.inference_mode(), no_autocast:
            return loaded.adapter.predict(embedding, prompt)

    def sam_auto_masks(
        self,
        image: np.ndarray,
        embedding: SamEmbedding,
        model: str | ModelRef,
        params: AutoMaskParams | None = None,
        progress: Progress | None = None,
    ) -> AutoMasks:
        """SAM's automatic mask generator on one image and its embedding (from `sam_embedding`: not encoded
        again), under the model lock; `progress(done, total)` counts batches of point prompts."""
        loaded = self.model(model)
        return loaded.adapter.auto_masks(image, embedding, params, loaded.lock, progress)

    def concept_masks(
        self,
        image: np.ndarray,
        phrase: str,
        model: str | ModelRef = "sam3",
        exemplar_box: np.ndarray | None = None,
        threshold: float = 0.5,
    ) -> ConceptMasks:
        """SAM 3's instances of `phrase` and/or of the concept in `exemplar_box` (XYXY pixels) on one HWC uint8 RGB
        image, scores above `threshold`, best first. The vision encoder runs once per image and weights: its FPN
        features stay in the in-memory LRU only (~110 MB at 1008 px: too big for the disk cache); each phrase or box
        then runs the text encoder, detector and mask decoder alone (`Sam3Adapter.concepts`)."""
        loaded = self._able(model, Can.CONCEPTS)
        key = str(CacheKey(image_hash(image), loaded.key, "sam3_fpn"))
        features = self._memory.get(key)
        if features is None:
            with self._forward(loaded):
                features = loaded.adapter.vision_features(image)
            self._memory.put(key, features, sum(level.nbytes for level in features))
        with self._forward(loaded):
            return loaded.adapter.concepts(features, image.shape[:2], phrase, exemplar_box, threshold)

    def generate(
        self,
        image: np.ndarray,
        prompt: str,
        model: str | ModelRef = "paligemma2_3b_224",
        max_new_tokens: int = 32,
        progress: Progress | None = None,
    ) -> Answer:
        """A vision-language model's greedy answer to `prompt` ("caption en", "detect cat ; dog") about one HWC uint8
        RGB image; `progress(done, max_new_tokens)` after each token. Answers are deterministic, so they are kept in
        the in-memory LRU by image hash, weights, prompt and token budget."""
        loaded = self._able(model, Can.CAPTION)
        key = f"generate|{loaded.key}|{image_hash(image)}|{max_new_tokens}|{prompt}"
        answer = self._memory.get(key)
        if answer is None:
            with self._forward(loaded):
                answer = loaded.adapter.generate(image, prompt, max_new_tokens, progress)
            self._memory.put(key, answer, answer.tokens.nbytes + len(key))
        return answer


def _first_line(exc: Exception) -> str:
    """The first line of an error, shortened: load_state_dict lists every mismatched key."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "…"


def _empty_cuda_cache() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _to_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.float().cpu().numpy()


def _text_array(text: str) -> np.ndarray:
    """A text as a uint8 array of its UTF-8 bytes, so it is cached (and hashed) like an image."""
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def _array_text(array: np.ndarray) -> str:
    return array.tobytes().decode("utf-8")
