"""Lecture packs: one file holding the chosen models' weights, a folder of images and their precomputed results, so
that another machine opens them offline and the first click is answered at once.

    make lecture-pack MODELS="dinov2_small sam_vit_b" IMAGES=folder PACK=lecture.vfmpack   (on a connected machine)
    make run PACK=lecture.vfmpack                                                          (in the hall, offline)

A pack is an uncompressed tar (weights are incompressible; reading stays fast):
  manifest.json   models (``name@weights`` actually packed; "random" when the weights were not available), images,
                  what was precomputed, when and by which version
  weights/        the weights in the local-folder layout of `core.weights` (`VFM_LENS_WEIGHTS`)
  images/         the image files as given (class subfolders kept: they are the labels)
  cache/          the engine's on-disk cache (`VFM_LENS_CACHE`), filled by the engine itself: SAM image embeddings,
                  patch tokens, image embeddings, keyed by image content and the weights loaded

Opening a pack extracts it once (next to the cache, keyed by the pack's size and date) and gives the environment
the app runs with: that weights folder and cache, offline, the pack's images as the starting working set and its
models as the sidebar's defaults.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core import config
from core.registry import RANDOM, parse

SUFFIX = ".vfmpack"
FORMAT = 1  # the pack layout this code writes and reads
Progress = Callable[[str, int, int], None]  # (what, done, total)


@dataclass(frozen=True)
class PackSummary:
    path: Path
    models: list[str]  # name@weights as packed
    images: int
    skipped: int
    bytes: int
    seconds: float

    def describe(self) -> str:
        return (
            f"{self.path}: {self.images} images ({self.skipped} skipped), models {', '.join(self.models)}, "
            f"{self.bytes / 2**20:.1f} MiB, built in {self.seconds:.1f} s"
        )


def _copy_weights(model: str, weights_root: Path) -> str:
    """Copy `model`'s weights into `weights_root` in the local-folder layout; returns ``name@weights`` as packed
    (``@random`` when there are no weights to pack: the pack then says so, and the hall runs random weights)."""
    from core.weights import fetch, locate, source_of

    status = locate(model)
    ref = status.ref
    path = fetch(ref) if status.source == "download" else status.path
    if path is None:  # random weights asked for, or not available here
        return f"{ref.spec.name}@{RANDOM}"
    source = Path(path)
    candidates = source_of(ref).local(ref, weights_root)
    target = next((c for c in candidates if source.is_dir() or c.suffix == source.suffix), candidates[0])
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)
    else:
        shutil.copy2(source, target)
    return str(ref)


def _precompute(engine, models: list[str], images: list, progress: Progress | None) -> list[str]:
    """Fill the engine's cache with what the pages ask for first; returns what was computed, in words."""
    from core.models import Can, can

    arrays = [item.image for item in images]
    done = []
    for model in models:
        spec = parse(model).spec
        steps = ["SAM image embeddings" if can(spec, Can.PROMPTS) else "image embeddings"]
        steps += ["patch tokens"] if can(spec, Can.PATCHES) else []
        for what in steps:
            label = f"{spec.title}: {what}"

            def report(finished: int, total: int, label: str = label) -> None:
                if progress:
                    progress(label, finished, total)

            if what == "SAM image embeddings":
                for i, array in enumerate(arrays):
                    report(i, len(arrays))
                    engine.sam_embedding(array, model)
                report(len(arrays), len(arrays))
            elif what == "image embeddings":
                engine.embed(arrays, model, report)
            else:
                engine.patch_tokens(arrays, model, progress=report)
            done.append(f"{label} of {len(arrays)} images")
    return done


def _version() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def build_pack(models: list[str], images: str | Path, out: str | Path, progress: Progress | None = None) -> PackSummary:
    """Write a pack of `models` (``name`` or ``name@weights``) and the images under folder `images` to `out`."""
    from core.cache import EmbeddingCache
    from core.data import load_folder
    from core.engine import Engine

    started = time.perf_counter()
    folder = Path(images).expanduser().resolve()
    loaded = load_folder(folder, [folder])
    if not loaded.items:
        raise ValueError(f"No image could be read under {folder} ({len(loaded.skipped)} files skipped).")
    out = Path(out).expanduser()
    with tempfile.TemporaryDirectory(prefix="vfm-pack-") as tmp:
        stage = Path(tmp)
        (stage / "weights").mkdir()
        packed = [_copy_weights(m, stage / "weights") for m in models]
        shutil.copytree(folder, stage / "images", ignore=shutil.ignore_patterns(".*"))
        engine = Engine(cache=EmbeddingCache(stage / "cache" / "embeddings", config.cache_size_bytes()))
        computed = _precompute(engine, packed, loaded.items, progress)
        engine.cache.close()
        manifest = {
            "format": FORMAT,
            "models": packed,
            "images": len(loaded.items),
            "skipped": [f"{s.name}: {s.reason}" for s in loaded.skipped],
            "precomputed": computed,
            "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "version": _version(),
        }
        (stage / "manifest.json").write_text(json.dumps(manifest, indent=2))
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".part")
        with tarfile.open(partial, "w") as tar:
            for name in ("manifest.json", "weights", "images", "cache"):
                tar.add(stage / name, arcname=name)
        partial.replace(out)  # a killed build never leaves a file that looks complete
    return PackSummary(
        out, packed, len(loaded.items), len(loaded.skipped), out.stat().st_size, time.perf_counter() - started
    )


def read_manifest(pack: str | Path) -> dict:
    """The pack's manifest; a clear error for a file that is no pack, or a pack of another format."""
    try:
        with tarfile.open(pack) as tar:
            member = tar.extractfile("manifest.json")
            manifest = json.loads(member.read()) if member is not None else None
    except (tarfile.TarError, KeyError, json.JSONDecodeError):
        manifest = None
    if not isinstance(manifest, dict) or "models" not in manifest:
        raise ValueError(f"{pack} is not a lecture pack (no readable manifest.json).")
    if manifest.get("format") != FORMAT:
        raise ValueError(
            f"{pack} is a lecture pack of format {manifest.get('format')!r}, made by another version of VFM Lens "
            f"(version {manifest.get('version', 'unknown')}); this one reads format {FORMAT}: build the pack again."
        )
    return manifest


def open_pack(pack: str | Path, into: Path | None = None) -> dict[str, str]:
    """Extract `pack` (once) and return the environment the app runs it with."""
    pack = Path(pack).expanduser().resolve()
    if not pack.is_file():
        raise FileNotFoundError(f"No lecture pack at {pack}.")
    manifest = read_manifest(pack)
    stat = pack.stat()
    root = (into or config.cache_dir() / "packs") / f"{pack.stem}-{stat.st_size}-{int(stat.st_mtime)}"
    if not (root / "manifest.json").exists():
        partial = root.with_name(root.name + ".part")
        shutil.rmtree(partial, ignore_errors=True)
        with tarfile.open(pack) as tar:
            tar.extractall(partial, filter="data")  # the "data" filter refuses links and paths out of the folder
        partial.replace(root)
    return {
        "VFM_LENS_WEIGHTS": str(root / "weights"),
        "VFM_LENS_CACHE": str(root / "cache"),
        "VFM_LENS_OFFLINE": "1",
        "VFM_LENS_START_IMAGES": str(root / "images"),
        "VFM_LENS_MODELS": " ".join(manifest["models"]),
    }


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m core.lecture_pack", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="write a pack")
    build.add_argument("--models", nargs="+", required=True, help="model names, optionally name@weights")
    build.add_argument("--images", required=True, help="a folder of images (class subfolders become labels)")
    build.add_argument("--out", required=True, help=f"the pack file to write (…{SUFFIX})")
    opener = sub.add_parser("open", help="extract a pack and print the shell exports that run the app with it")
    opener.add_argument("pack")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except (ValueError, FileNotFoundError) as exc:  # a bad pack or folder: one line, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args) -> int:
    if args.command == "build":

        def say(what: str, done: int, total: int) -> None:
            print(f"  {what}: {done}/{total}", flush=True)

        print(build_pack(args.models, args.images, args.out, say).describe())
    else:
        for key, value in open_pack(args.pack).items():
            print(f"export {key}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
