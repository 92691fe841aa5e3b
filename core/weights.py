"""Where a model's weights come from: local folder → library cache → download (when online).

`locate` is fast (file checks and one 2 s network probe, never a download) and says in one
sentence what will happen. `fetch` downloads into the libraries' caches (``make weights``).

Local folder layout (``$VFM_LENS_WEIGHTS``):
  dinov2_small/                   a transformers `save_pretrained` folder (config.json + weights)
  clip_vit_b32-openai.safetensors an open_clip checkpoint (.safetensors, .bin or .pt)
  sam_vit_b_01ec64.pth            the official SAM checkpoint, under its own file name
  timm_vit_b16.safetensors        a timm checkpoint (the hub's model.safetensors, renamed)

Each family's descriptor (`core.models.family(name).weights`) names one of the sources below; this module is the
one door to the hub and the checkpoint URLs.
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


class WeightsUnavailable(RuntimeError):
    """The weights cannot be had now (gated, offline, missing); the message says what to do, in one sentence."""


def _hub_file(repo: str, filename: str) -> str | None:
    from huggingface_hub import try_to_load_from_cache

    hit = try_to_load_from_cache(repo, filename)
    return hit if isinstance(hit, str) else None


def gated_message(repo: str, local: str = "$VFM_LENS_WEIGHTS") -> str:
    """What a gated repo takes: the licence page, a login and `make weights`, or a local copy at `local`."""
    return (
        f"{repo} is gated on the hub: accept its licence at https://huggingface.co/{repo}, sign in with "
        f"`hf auth login`, then run `make weights`; or put a copy in {local}."
    )


def _hub_download(download, repo: str, gated: bool, local: str = "$VFM_LENS_WEIGHTS", **options) -> str:
    """`download(repo, **options)` (a huggingface_hub function); gated and missing repos said in one sentence."""
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        return download(repo, **options)
    except GatedRepoError:
        raise WeightsUnavailable(gated_message(repo, local)) from None
    except RepositoryNotFoundError:
        why = gated_message(repo, local) if gated else f"{repo} is not on the Hugging Face hub (or is private)."
        raise WeightsUnavailable(why) from None


@dataclass(frozen=True)
class HubSnapshot:
    """A transformers `save_pretrained` repo on the hub (`spec.arch`); local copy: ``$VFM_LENS_WEIGHTS/<name>/``."""

    files: tuple[str, ...] = ("config.json", "model.safetensors")
    gated: bool = False  # the hub asks users to accept a licence before downloading
    host: str = "huggingface.co"

    def local(self, ref: ModelRef, root: Path) -> list[Path]:
        return [root / ref.spec.name]

    def cached(self, ref: ModelRef) -> str | None:
        hits = [_hub_file(ref.spec.arch, name) for name in self.files]
        return str(Path(hits[-1]).parent) if all(hits) else None

    def fetch(self, ref: ModelRef) -> str:
        from huggingface_hub import snapshot_download

        repo, local = ref.spec.arch, self.local_hint(ref)
        return _hub_download(snapshot_download, repo, self.gated, local, allow_patterns=list(self.files))

    def local_hint(self, ref: ModelRef) -> str:
        return f"$VFM_LENS_WEIGHTS/{ref.spec.name}/ (a transformers save_pretrained folder)"

    def advice(self, ref: ModelRef) -> str:
        """Said after "weights are not on this machine": what else it takes to get them."""
        return f" {gated_message(ref.spec.arch, self.local_hint(ref))}" if self.gated else ""


@dataclass(frozen=True)
class HubFile:
    """One checkpoint file in the hub repo `prefix` + `spec.arch` (timm: ``timm/<arch>``); local copy
    ``$VFM_LENS_WEIGHTS/<name>.safetensors``."""

    prefix: str
    filename: str = "model.safetensors"
    host: str = "huggingface.co"

    def repo(self, ref: ModelRef) -> str:
        return f"{self.prefix}{ref.spec.arch}"

    def local(self, ref: ModelRef, root: Path) -> list[Path]:
        return [root / f"{ref.spec.name}.safetensors"]

    def cached(self, ref: ModelRef) -> str | None:
        return _hub_file(self.repo(ref), self.filename)

    def fetch(self, ref: ModelRef) -> str:
        from huggingface_hub import hf_hub_download

        return _hub_download(hf_hub_download, self.repo(ref), False, filename=self.filename)

    def advice(self, ref: ModelRef) -> str:
        return ""


@dataclass(frozen=True)
class OpenClipHub:
    """The hub checkpoint of an open_clip pretrained tag; local copy ``$VFM_LENS_WEIGHTS/<name>-<tag>.safetensors``
    (or .bin, .pt)."""

    host: str = "huggingface.co"

    @staticmethod
    def hub(ref: ModelRef) -> tuple[str, list[str]]:
        import open_clip

        hub = open_clip.get_pretrained_cfg(ref.spec.arch, ref.weights)["hf_hub"]
        repo, filename = hub.rstrip("/"), ""
        if not hub.endswith("/"):
            repo, filename = hub.rsplit("/", 1)
        return repo, [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]

    def local(self, ref: ModelRef, root: Path) -> list[Path]:
        return [root / f"{ref.spec.name}-{ref.weights}{ext}" for ext in (".safetensors", ".bin", ".pt")]

    def cached(self, ref: ModelRef) -> str | None:
        repo, names = self.hub(ref)
        return next((hit for name in names if (hit := _hub_file(repo, name))), None)

    def fetch(self, ref: ModelRef) -> str:
        from huggingface_hub import hf_hub_download

        repo, names = self.hub(ref)
        errors = []
        for name in names:
            try:
                return _hub_download(hf_hub_download, repo, False, filename=name)
            except Exception as exc:  # noqa: BLE001 - try the next file name, report all
                errors.append(f"{name}: {exc}")
        raise FileNotFoundError(f"{ref}: no checkpoint in {repo} ({'; '.join(errors)})")

    def advice(self, ref: ModelRef) -> str:
        return ""


@dataclass(frozen=True)
class UrlCheckpoint:
    """The file `spec.checkpoint` at `base_url`, verified by SHA-256 (SAM); local copy ``$VFM_LENS_WEIGHTS/<file>``."""

    base_url: str
    host: str

    def local(self, ref: ModelRef, root: Path) -> list[Path]:
        return [root / ref.spec.checkpoint.filename] if ref.spec.checkpoint else []

    def cache_path(self, ref: ModelRef) -> Path:
        assert ref.spec.checkpoint is not None
        return config.cache_dir() / "checkpoints" / ref.spec.checkpoint.filename

    def cached(self, ref: ModelRef) -> str | None:
        path = self.cache_path(ref)
        return str(path) if path.exists() else None

    def fetch(self, ref: ModelRef) -> str:
        ckpt = ref.spec.checkpoint
        assert ckpt is not None
        target = self.cache_path(ref)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".part")
        urllib.request.urlretrieve(self.base_url + ckpt.filename, partial)
        if (found := sha256_of(partial)) != ckpt.sha256:
            partial.unlink(missing_ok=True)
            raise ValueError(f"{ckpt.filename}: checksum mismatch (got {found[:12]}…, expected {ckpt.sha256[:12]}…)")
        partial.replace(target)  # atomic: a killed download never leaves a file that looks complete
        return str(target)

    def advice(self, ref: ModelRef) -> str:
        return ""


def source_of(ref: ModelRef):
    """The weights source of `ref`'s family (its descriptor says where its weights live)."""
    from core.models import family

    return family(ref.spec.family).weights


def _local(ref: ModelRef) -> Path | None:
    root = config.weights_dir()
    if root is None or not root.is_dir():
        return None
    return next((p for p in source_of(ref).local(ref, root) if p.exists()), None)


def _cached(ref: ModelRef) -> str | None:
    return source_of(ref).cached(ref)


def locate(model: str | ModelRef) -> WeightsStatus:
    """Decide where `model`'s weights come from, without downloading anything."""
    ref = parse(model)
    spec = ref.spec
    if ref.weights == RANDOM:
        why = "tiny test model" if spec.tiny else "random weights were asked for"
        return WeightsStatus(ref, "random", None, f"{spec.title}: random weights ({why}).")
    if (local := _local(ref)) is not None:
        return WeightsStatus(ref, "local", str(local), f"{spec.title}: {ref.weights} weights from {local}.")
    source = source_of(ref)
    if (cached := _cached(ref)) is not None:
        return WeightsStatus(ref, "cache", cached, f"{spec.title}: {ref.weights} weights from the local cache.")
    if online(source.host):
        return WeightsStatus(ref, "download", None, f"{spec.title}: {ref.weights} weights will download on first use.")
    return WeightsStatus(
        ref,
        "unavailable",
        None,
        f"{spec.title} weights are not on this machine and the network is unreachable, so random weights are used: "
        f"run `make weights MODELS={spec.name}` on a connected machine, or put them in $VFM_LENS_WEIGHTS."
        + source.advice(ref),
    )


def unavailable(ref: ModelRef, why: str) -> WeightsStatus:
    """The status of weights that failed to download (gated, refused): random weights run, `why` says why."""
    return WeightsStatus(ref, "unavailable", None, f"{ref.spec.title}: random weights are used. {why}")


def sha256_of(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def fetch(model: str | ModelRef) -> str:
    """Download `model`'s weights into the cache (if not there yet) and return the path to load."""
    status = locate(model)
    if status.source in ("local", "cache"):
        return str(status.path)
    if status.is_random:
        raise ValueError(status.message)
    return source_of(status.ref).fetch(status.ref)


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
