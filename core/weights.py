"""Where a model's weights come from: local folder → library cache → download (when online).

`locate` is fast (file checks and one 2 s network probe, never a download) and says in one
sentence what will happen. `fetch` downloads into the libraries' caches (``make weights``).

Local folder layout (``$VFM_LENS_WEIGHTS``):
  dinov2_small/                   a transformers `save_pretrained` folder (config.json + weights)
  clip_vit_b32-openai.safetensors an open_clip checkpoint (.safetensors, .bin or .pt)
  sam_vit_b_01ec64.pth            the official SAM checkpoint, under its own file name
  timm_vit_b16.safetensors        a timm checkpoint (the hub's model.safetensors, renamed)
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from core import config
from core.registry import RANDOM, ModelRef, parse

Source = Literal["local", "cache", "download", "random", "unavailable"]
_PROBE_TTL_S = 60.0
_probe_memo: dict[str, tuple[float, bool]] = {}


@dataclass(frozen=True)
class WeightsStatus:
    ref: ModelRef
    source: Source
    path: str | None  # file or folder to load from; None for random/download
    message: str

    @property
    def is_random(self) -> bool:
        return self.source in ("random", "unavailable")

    @property
    def label(self) -> str:
        """Short word for the sidebar: pretrained / local / random."""
        return {"local": "local", "cache": "pretrained", "download": "pretrained"}.get(self.source, "random")


def online(host: str = "huggingface.co", timeout_s: float = 2.0) -> bool:
    """True when a TCP connection to `host`:443 opens within `timeout_s` (DNS included)."""
    if config.offline_forced():
        return False
    memo = _probe_memo.get(host)
    if memo and time.monotonic() - memo[0] < _PROBE_TTL_S:
        return memo[1]
    result = [False]

    def probe() -> None:
        try:
            socket.create_connection((host, 443), timeout=timeout_s).close()
            result[0] = True
        except OSError:
            pass

    worker = threading.Thread(target=probe, daemon=True)
    worker.start()
    worker.join(timeout_s)  # a hung DNS lookup cannot hold us longer than this
    _probe_memo[host] = (time.monotonic(), result[0])
    return result[0]


def _local(ref: ModelRef) -> Path | None:
    root = config.weights_dir()
    if root is None or not root.is_dir():
        return None
    spec = ref.spec
    candidates = [root / spec.name]
    if spec.family == "clip":
        candidates = [root / f"{spec.name}-{ref.weights}{ext}" for ext in (".safetensors", ".bin", ".pt")]
    elif spec.family == "sam" and spec.checkpoint:
        candidates = [root / spec.checkpoint.filename]
    elif spec.family == "timm":
        candidates = [root / f"{spec.name}.safetensors"]
    return next((p for p in candidates if p.exists()), None)


def sam_cache_path(ref: ModelRef) -> Path:
    assert ref.spec.checkpoint is not None
    return config.cache_dir() / "checkpoints" / ref.spec.checkpoint.filename


def _clip_hub(ref: ModelRef) -> tuple[str, list[str]]:
    import open_clip

    hub = open_clip.get_pretrained_cfg(ref.spec.arch, ref.weights)["hf_hub"]
    repo, filename = hub.rstrip("/"), ""
    if not hub.endswith("/"):
        repo, filename = hub.rsplit("/", 1)
    names = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
    return repo, names


TIMM_FILE = "model.safetensors"


def timm_repo(ref: ModelRef) -> str:
    """The Hugging Face repo of a timm model's weights: ``timm/<arch>``."""
    return f"timm/{ref.spec.arch}"


def _cached(ref: ModelRef) -> str | None:
    from huggingface_hub import try_to_load_from_cache

    spec = ref.spec
    if spec.family == "sam":
        path = sam_cache_path(ref)
        return str(path) if path.exists() else None
    if spec.family == "dinov2":
        config_file = try_to_load_from_cache(spec.arch, "config.json")
        weights = try_to_load_from_cache(spec.arch, "model.safetensors")
        return str(Path(weights).parent) if isinstance(config_file, str) and isinstance(weights, str) else None
    if spec.family == "timm":
        hit = try_to_load_from_cache(timm_repo(ref), TIMM_FILE)
        return hit if isinstance(hit, str) else None
    repo, names = _clip_hub(ref)
    hits = [try_to_load_from_cache(repo, name) for name in names]
    return next((h for h in hits if isinstance(h, str)), None)


def _host(ref: ModelRef) -> str:
    return "dl.fbaipublicfiles.com" if ref.spec.family == "sam" else "huggingface.co"


def locate(model: str | ModelRef) -> WeightsStatus:
    """Decide where `model`'s weights come from, without downloading anything."""
    ref = parse(model)
    spec = ref.spec
    if ref.weights == RANDOM:
        why = "tiny test model" if spec.tiny else "random weights were asked for"
        return WeightsStatus(ref, "random", None, f"{spec.title}: random weights ({why}).")
    if (local := _local(ref)) is not None:
        return WeightsStatus(ref, "local", str(local), f"{spec.title}: {ref.weights} weights from {local}.")
    if (cached := _cached(ref)) is not None:
        return WeightsStatus(ref, "cache", cached, f"{spec.title}: {ref.weights} weights from the local cache.")
    if online(_host(ref)):
        return WeightsStatus(ref, "download", None, f"{spec.title}: {ref.weights} weights will download on first use.")
    return WeightsStatus(
        ref,
        "unavailable",
        None,
        f"{spec.title} weights are not on this machine and the network is unreachable, so random weights are used: "
        f"run `make weights MODELS={spec.name}` on a connected machine, or put them in $VFM_LENS_WEIGHTS.",
    )


def sha256_of(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _download_sam(ref: ModelRef) -> str:
    ckpt = ref.spec.checkpoint
    assert ckpt is not None
    target = sam_cache_path(ref)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    urllib.request.urlretrieve(ckpt.url, partial)
    if (found := sha256_of(partial)) != ckpt.sha256:
        partial.unlink(missing_ok=True)
        raise ValueError(f"{ckpt.filename}: checksum mismatch (got {found[:12]}…, expected {ckpt.sha256[:12]}…)")
    partial.replace(target)  # atomic: a killed download never leaves a file that looks complete
    return str(target)


def fetch(model: str | ModelRef) -> str:
    """Download `model`'s weights into the cache (if not there yet) and return the path to load."""
    status = locate(model)
    if status.source in ("local", "cache"):
        return str(status.path)
    if status.is_random:
        raise ValueError(status.message)
    ref = status.ref
    if ref.spec.family == "sam":
        return _download_sam(ref)
    if ref.spec.family == "dinov2":
        from huggingface_hub import snapshot_download

        return snapshot_download(ref.spec.arch, allow_patterns=["config.json", "model.safetensors"])
    from huggingface_hub import hf_hub_download

    if ref.spec.family == "timm":
        return hf_hub_download(timm_repo(ref), TIMM_FILE)
    repo, names = _clip_hub(ref)
    errors = []
    for name in names:
        try:
            return hf_hub_download(repo, name)
        except Exception as exc:  # noqa: BLE001 - try the next file name, report all
            errors.append(f"{name}: {exc}")
    raise FileNotFoundError(f"{ref}: no checkpoint in {repo} ({'; '.join(errors)})")


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m core.weights", description="Prefetch model weights into the cache."
    )
    parser.add_argument("models", nargs="+", help="model names, optionally name@weights (see the Models page)")
    args = parser.parse_args(argv)
    failed = 0
    for name in args.models:
        try:
            print(f"{name}: {fetch(name)}")
        except Exception as exc:  # noqa: BLE001 - a CLI reports each model and goes on
            failed += 1
            print(f"{name}: FAILED — {exc}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
