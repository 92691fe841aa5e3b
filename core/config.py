"""Settings read from the environment, in one place.

VFM_LENS_CACHE       folder for the embedding cache and downloaded SAM checkpoints (~/.cache/vfm-lens)
VFM_LENS_CACHE_GB    size bound of the embedding cache in GiB (default 4)
VFM_LENS_WEIGHTS     a local weights folder, searched before the libraries' caches
VFM_LENS_OFFLINE     1: never try the network (lecture halls, CI)
VFM_LENS_PROFILE     "tiny": default to the tiny random-init models (tests, demos without weights)
VFM_LENS_DATA_ROOTS  os.pathsep-separated folders that server-folder datasets may come from
VFM_LENS_START_IMAGES a folder whose images are every new session's working set (a lecture pack's images)
VFM_LENS_MODELS      space-separated ``name@weights`` the sidebar offers first (a lecture pack's models)
"""

from __future__ import annotations

import os
from importlib.util import find_spec
from pathlib import Path


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    return _env_path("VFM_LENS_CACHE") or Path.home() / ".cache" / "vfm-lens"


def cache_size_bytes() -> int:
    return int(float(os.environ.get("VFM_LENS_CACHE_GB", "4")) * 2**30)


def weights_dir() -> Path | None:
    return _env_path("VFM_LENS_WEIGHTS")


def offline_forced() -> bool:
    return os.environ.get("VFM_LENS_OFFLINE", "") not in ("", "0") or os.environ.get("HF_HUB_OFFLINE", "") not in (
        "",
        "0",
    )


def profile() -> str:
    return os.environ.get("VFM_LENS_PROFILE", "default")


def data_roots() -> list[Path]:
    raw = os.environ.get("VFM_LENS_DATA_ROOTS", "")
    roots = [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]
    return roots or [Path.cwd() / "data"]


def start_images() -> Path | None:
    return _env_path("VFM_LENS_START_IMAGES")


def preferred_models() -> list[str]:
    return os.environ.get("VFM_LENS_MODELS", "").split()


def scale_extras_installed() -> bool:
    """Whether `make setup-scale` ran: LanceDB and datashader (stored datasets) can be imported."""
    return find_spec("lancedb") is not None and find_spec("datashader") is not None
