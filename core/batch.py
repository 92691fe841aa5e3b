"""Embed a large image collection with Ray Data into a stored (Lance) dataset; resumable.

    python -m core.batch embed SOURCE OUT --model dinov2_small [--address ADDR] [--batch-size N] [--num-cpus N]
    python -m core.batch export OUT FILE.parquet        # every row, vector as a fixed-size list column
    python -m core.batch index OUT [--min-rows N]       # (re)build the vector index (or a patch index's)
    python -m core.batch patches SOURCE OUT --model dinov2_small [--size PX] [--pool 2] [--foreground] [Ray options]

SOURCE is a folder (class-subfolder layout gives labels, as on the Upload page) or a .parquet/.csv list with a
`path` column and an optional `label` column (relative paths are taken from the list's folder).
OUT is a LanceDB folder (layout in `core.store`).

Pipeline: the list of files → Ray Data → decode tasks (`core.data.load_image`; a file that fails becomes a
`skipped` row with the reason, the run goes on) → `map_batches` over `Embedder`, a callable class holding an
`Engine` (the dashboard's model building, preprocessing and forward pass; one actor per GPU with
`num_gpus=1`, CPU actors otherwise) → the driver appends each finished block to Lance in one commit. Both
stages live in `core.batch_stages`, which a Ray worker imports without torch, Lance or scikit-learn.
`embed_in_process` runs the same steps without Ray, on the caller's engine: the dashboard's "Store the working
set", which first writes the images as PNGs with a manifest (`write_image_folder`).

`patches` is the same run with another stage and table: `PatchEmbedder` keeps each image's patch tokens (all, or
the PC1-foreground ones, optionally pooled 2 × 2) in OUT's `patches` table, and the k-NN index over every patch
vector is built at the end (`core.patch_index`). A run is a `Target` (which ids are done, whose rows it holds, how
finished rows are written, what is built at the end); everything else is shared.

Ids: the BLAKE2b-128 hex of the absolute, resolved path (`path_id`). A rerun skips every id already in the
`images` or `skipped` table before reading a byte, so after a kill it embeds only what is missing; a Lance
commit is atomic, so a kill loses at most the blocks in flight and never writes half a block. Moving the
dataset changes its ids (it is embedded again); identical files under two paths are two rows, which the
near-duplicate report (`core.store_reports.find_near_duplicates`) finds.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import hashlib
import logging
import os
import re
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
from PIL import Image

from core import patch_index, store
from core.batch_stages import Embedder, PatchEmbedder, _object_array, decode_batch
from core.data import image_hash, list_image_files
from core.registry import parse
from core.text import count

if TYPE_CHECKING:
    from core.engine import Engine, Progress

log = logging.getLogger(__name__)
FLUSH_ROWS = 2048  # rows per Lance commit (each commit is one small fragment; compacted at the end)
ENV_PREFIXES = ("VFM_LENS_", "HF_", "TRANSFORMERS_", "TORCH_HOME")
_OUT_LOCKS: dict[str, threading.Lock] = {}  # one per stored dataset written in this process (dict.setdefault is atomic)


def path_id(path: str | Path) -> str:
    """The stored id of an image file: BLAKE2b-128 hex of its absolute, resolved path."""
    return hashlib.blake2b(str(Path(path).resolve()).encode(), digest_size=16).hexdigest()


# ---- the list of files ------------------------------------------------------------------------
def load_manifest(source: str | Path) -> pa.Table:
    """id, path (absolute), label (str or null) of every image of a folder or of a .parquet/.csv list."""
    source = Path(source)
    if source.is_dir():
        files = list_image_files(source)
        paths, labels = [str(f.resolve()) for f, _ in files], [label for _, label in files]
    elif source.suffix.lower() in (".parquet", ".csv"):
        listed = pq.read_table(source) if source.suffix.lower() == ".parquet" else pcsv.read_csv(source)
        if "path" not in listed.column_names:
            raise ValueError(f"{source} needs a 'path' column (found {', '.join(listed.column_names)})")
        paths = [str((source.parent / p).resolve()) for p in listed["path"].to_pylist()]
        raw = listed["label"].to_pylist() if "label" in listed.column_names else [None] * len(paths)
        labels = [None if v is None else str(v) for v in raw]
    else:
        raise ValueError(f"{source} is neither a folder nor a .parquet/.csv list of image paths")
    ids = [path_id(p) for p in paths]
    table = pa.table({"id": ids, "path": paths, "label": pa.array(labels, pa.string())})
    _, first = np.unique(np.asarray(ids), return_index=True)
    return table.take(np.sort(first))  # a path listed twice is embedded once


# ---- the run ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class RunSummary:
    listed: int  # images in SOURCE
    already: int  # already in OUT, not redone
    embedded: int  # embedded and stored by this run
    skipped: int  # failed to decode in this run (listed in the skipped table)
    seconds: float
    index: str  # what `store.build_index` did
    startup_seconds: float = 0.0  # until the first block came back (Ray start-up, model load in each actor)

    def describe(self) -> str:
        """One line: what was listed, found stored, embedded and skipped, how fast, and the index."""
        rates = f"{self.images_per_second:.1f} images/s"
        if self.startup_seconds:
            rates += f"; {self.steady_images_per_second:.1f} after {self.startup_seconds:.0f} s start-up"
        return (
            f"{count(self.listed, 'image')} listed, {self.already:,} already stored, {self.embedded:,} embedded, "
            f"{self.skipped:,} skipped in {self.seconds:.1f} s ({rates}); {self.index}"
        )

    @property
    def images_per_second(self) -> float:
        return (self.embedded + self.skipped) / max(self.seconds, 1e-9)

    @property
    def steady_images_per_second(self) -> float:
        """Throughput after start-up (the rate a long run approaches)."""
        return (self.embedded + self.skipped) / max(self.seconds - self.startup_seconds, 1e-9)


@dataclasses.dataclass(frozen=True)
class Target:
    """What a run writes into OUT: the ids already done, a check before anything is written (whose rows OUT holds),
    how the decoded rows of finished batches are written, and what is built at the end (an index; a description)."""

    stored_ids: Callable[[str | Path], set[str]]
    check: Callable[[str | Path, str], None]  # (out, model ref)
    write: Callable[[str | Path, dict, np.ndarray], None]  # (out, finished batches merged, positions that decoded)
    finish: Callable[[str | Path, int], str]  # (out, index_min_rows)


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Join the cluster at `address`, or start Ray on this machine; this repository's code and VFM_LENS_* settings go along."""
    import ray
    from ray.data import DataContext

    if ray.is_initialized():
        return
    # Ray starts its processes with fork + exec, which lancedb's fork warning does not concern
    warnings.filterwarnings("ignore", message="lancedb fork support")
    env = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES)}
    runtime_env: dict = {"env_vars": env}
    if address:  # remote workers need the code too; a local cluster shares this folder
        root = Path(__file__).resolve().parents[1]
        runtime_env |= {"working_dir": str(root), "excludes": [".venv", ".git", "test-artifacts", "data", "*.lance"]}
    ray.init(
        address=address,
        num_cpus=None if address else num_cpus,
        include_dashboard=False,
        runtime_env=runtime_env,
        log_to_driver=False,
        logging_level=logging.ERROR,  # Ray's notes (token authentication on, ...) stay out of a newcomer's terminal
        # Ray starts its workers at nice 15: on a machine that does anything else (the dashboard, a browser, other
        # jobs) the decode tasks and the model's actor then get a sliver of the CPU, while the direct path runs at 0
        _system_config=None if address else {"worker_niceness": 0},
    )
    DataContext.get_current().enable_progress_bars = False  # ours (tqdm, images/s) is the one shown


@contextlib.contextmanager
def native_stderr_to_ray_logs() -> Iterator[Path]:
    """While inside, file descriptor 2 goes to a file in Ray's session log folder (yielded) and Python's
    `sys.stderr` (the progress bar, our messages, tracebacks) stays where it was.

    Ray's C++ core writes its ERROR lines straight to descriptor 2, including notes that are not failures (an
    actor whose constructor arguments sit in the object store); no setting sends them to its log file only. Ray
    Data's console notes (plan, progress) follow them there: its handler writes to descriptor 2 too."""
    path = _ray_logs_dir() / "driver-stderr.log"
    sys.stderr.flush()
    saved = os.dup(2)
    python_stderr, terminal = sys.stderr, os.fdopen(saved, "w", buffering=1, encoding="utf-8", errors="replace")
    with open(path, "ab") as log_file:
        os.dup2(log_file.fileno(), 2)
        sys.stderr = terminal
        try:
            yield path
        finally:
            terminal.flush()
            os.dup2(saved, 2)
            sys.stderr = python_stderr
            terminal.close()


def _ray_logs_dir() -> Path:
    """This driver's Ray session log folder (a temporary folder when connected through Ray Client)."""
    import tempfile

    import ray

    node = ray._private.worker._global_node
    folder = Path(node.get_logs_dir_path()) if node is not None else Path(tempfile.gettempdir()) / "vfm-lens-ray"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _plan_actors(actors: int | None) -> tuple[dict, int, str, int | None]:
    """(map_batches resources, actors, device, torch threads) for the cluster Ray is connected to."""
    import ray

    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), float(resources.get("CPU", 1))
    if gpus:
        n = actors or gpus
        return {"num_gpus": 1, "num_cpus": 1}, n, "cuda", None
    n = actors or max(1, int(cpus) - 1)  # leave a core for decoding
    per_actor = max(0.25, (cpus - 0.5) / n)  # decode tasks ask for 0.25: actors can never starve them
    return {"num_cpus": per_actor}, n, "cpu", max(1, round(cpus / n))


def embed_dataset(
    source: str | Path,
    out: str | Path,
    model: str,
    batch_size: int = 64,
    actors: int | None = None,
    flush_rows: int = FLUSH_ROWS,
    index_min_rows: int = store.INDEX_MIN_ROWS,
    progress: bool = True,
) -> RunSummary:
    """Embed every image of `source` not yet in `out` with Ray Data (Ray must be initialised: `init_ray`)."""

    def on_ray(todo: pa.Table, ref: str) -> Iterable[dict]:
        return _ray_batches(todo, ref, batch_size, actors)

    with _tqdm_progress(progress) as bar:
        return _embed(source, out, model, on_ray, flush_rows, index_min_rows, bar)


def patches_dataset(
    source: str | Path,
    out: str | Path,
    model: str,
    size: int | None = None,
    pool: int = 1,
    foreground: bool = False,
    batch_size: int = 64,
    actors: int | None = None,
    flush_rows: int = FLUSH_ROWS,
    index_min_rows: int = patch_index.INDEX_MIN_ROWS,
    progress: bool = True,
) -> RunSummary:
    """The patch index of every image of `source` not yet in `out` (`core.patch_index`), with Ray Data as
    `embed_dataset` (Ray must be initialised). `size`: model input px (default: the model's own)."""
    settings = patch_settings(model, size, pool, foreground)
    stage = {"size": settings.size, "pool": pool, "foreground": foreground}

    def on_ray(todo: pa.Table, ref: str) -> Iterable[dict]:
        return _ray_batches(todo, ref, batch_size, actors, PatchEmbedder, stage)

    with _tqdm_progress(progress) as bar:
        return _embed(source, out, model, on_ray, flush_rows, index_min_rows, bar, _patch_target(settings))


def patch_settings(model: str, size: int | None, pool: int, foreground: bool) -> patch_index.PatchSettings:
    """The settings of a patch index of `model`; ValueError for a model without patch tokens or a size that is not a
    whole number of its patches."""
    from core.models import Can, can

    ref = parse(model)
    spec = ref.spec
    if not can(spec, Can.PATCHES):
        raise ValueError(f"{spec.title} gives no patch tokens; a patch index needs a model that does (e.g. DINOv2)")
    size = size or spec.input_size
    if size % spec.patch_size or pool not in (1, 2):
        raise ValueError(f"--size must be a multiple of {spec.patch_size} px and --pool 1 or 2 (got {size}, {pool})")
    return patch_index.PatchSettings(str(ref), size, spec.patch_size, pool, foreground)


def _patch_target(settings: patch_index.PatchSettings) -> Target:
    def write(out: str | Path, merged: dict, good: np.ndarray) -> None:
        kept = []
        for i in good:
            rows = np.asarray(merged["rows"][i], np.int16)
            vectors = np.asarray(merged["vectors"][i], np.float32).reshape(len(rows), -1 if len(rows) else 0)
            grid = (int(merged["grid"][i][0]), int(merged["grid"][i][1]))
            kept.append(patch_index.ImagePatches(grid, rows, np.asarray(merged["cols"][i], np.int16), vectors))
        meta = {k: merged[k][good] for k in ("id", "path", "label", "model", "weights")}
        store.append(out, patch_index.PATCHES, patch_index.patches_rows(meta, settings, kept))

    def check(out: str | Path, ref: str) -> None:
        patch_index.check_settings(out, settings)

    return Target(patch_index.stored_ids, check, write, patch_index.build_stored_index)


def embed_in_process(
    source: str | Path,
    out: str | Path,
    model: str,
    engine: Engine,
    batch_size: int = 16,
    progress: Progress | None = None,
    index_min_rows: int = store.INDEX_MIN_ROWS,
) -> RunSummary:
    """`embed_dataset` in this process with `engine` (its cache included) and no Ray: for a working set. Runs into
    the same `out` take turns (two sessions storing the same set would otherwise both embed and append it)."""

    def here(todo: pa.Table, ref: str) -> Iterable[dict]:
        embedder = Embedder.using(engine, ref)
        for start in range(0, todo.num_rows, batch_size):
            rows = todo.slice(start, batch_size)
            yield embedder(decode_batch({c: rows[c].to_numpy(zero_copy_only=False) for c in rows.column_names}))

    with _OUT_LOCKS.setdefault(str(Path(out).resolve()), threading.Lock()):
        summary = _embed(source, out, model, here, FLUSH_ROWS, index_min_rows, progress)
    return dataclasses.replace(summary, startup_seconds=0.0)  # no cluster to start: the rate is the steady one


def _embed(
    source: str | Path,
    out: str | Path,
    model: str,
    batches_of: Callable[[pa.Table, str], Iterable[dict]],
    flush_rows: int,
    index_min_rows: int,
    progress: Progress | None,
    target: Target | None = None,
) -> RunSummary:
    """The run: list `source`, leave out what `out` holds, store what `batches_of(rows to do, model)` yields."""
    start = time.perf_counter()
    target = target or IMAGES_TARGET
    ref = str(parse(model))
    manifest = load_manifest(source)
    done = target.stored_ids(out)
    todo = manifest.filter(pa.array([i not in done for i in manifest["id"].to_pylist()], pa.bool_()))
    target.check(out, ref)
    embedded = skipped = 0
    first = 0.0
    if todo.num_rows:
        batches = batches_of(todo, ref)
        embedded, skipped, first = _write(batches, out, todo.num_rows, flush_rows, progress, target.write)
        first = first - start if first else 0.0
    index = "index unchanged"
    if embedded:
        index = target.finish(out, index_min_rows)
    skipped_rows = store.skipped_rows(out)
    if skipped_rows is not None:  # OUT/skipped.csv: every file that could not be decoded and why
        pcsv.write_csv(skipped_rows, Path(out) / "skipped.csv")
    already = manifest.num_rows - todo.num_rows
    return RunSummary(manifest.num_rows, already, embedded, skipped, time.perf_counter() - start, index, first)


def _ray_batches(
    todo: pa.Table, ref: str, batch_size: int, actors: int | None, stage: type = Embedder, settings: dict | None = None
) -> Iterable[dict]:
    """Decode tasks, then `stage` actors (`Embedder`, given `settings` too), over Ray Data; finished numpy batches as
    they come."""
    import ray

    resources, n_actors, device, threads = _plan_actors(actors)
    # rows per block, made here (a Ray repartition would need a free CPU): four model batches, so a decode task holds
    # 64 decoded photos at batch 16 (Ray measured 0.64 GiB a decode worker; 256-row blocks: 1.1 GiB) and the first
    # rows reach Lance after 4 batches, not 16
    step = batch_size * 4
    ds = ray.data.from_arrow([todo.slice(i, step) for i in range(0, todo.num_rows, step)])
    ds = ds.map_batches(decode_batch, batch_format="numpy", num_cpus=0.25)
    ds = ds.map_batches(
        stage,
        fn_constructor_kwargs={"model": ref, "device": device, "threads": threads, "batch_size": batch_size}
        | (settings or {}),
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=n_actors),
        **resources,
    )
    return ds.iter_batches(batch_size=None, batch_format="numpy")


@contextlib.contextmanager
def _tqdm_progress(enabled: bool) -> Iterator[Progress | None]:
    """A terminal progress bar (images/s) as a (done, total) callback; None when not `enabled`."""
    if not enabled:
        yield None
        return
    from tqdm import tqdm

    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        bar = bar or tqdm(total=total, unit="img", desc="embedding", smoothing=0.1)
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        if bar is not None:
            bar.close()


def _check_model(out: str | Path, ref: str) -> None:
    """A stored dataset holds one model's embeddings: refuse to append another's."""
    try:
        existing = store.open_store(out)
    except ValueError:
        return
    if existing.model != parse(ref).spec.name:
        raise ValueError(f"{out} holds {existing.ref} embeddings; write {ref} to another folder")


def _write(
    batches: Iterable[dict],
    out: str | Path,
    total: int,
    flush_rows: int,
    progress: Progress | None,
    write: Callable[[str | Path, dict, np.ndarray], None],
) -> tuple[int, int, float]:
    """Append finished rows to Lance, one commit per `flush_rows`; returns (embedded, skipped, first block's time)."""
    progress = progress or (lambda done, total: None)
    pending: list[dict] = []
    counts = [0, 0]
    first = 0.0
    finished = 0
    progress(0, total)
    for batch in batches:
        first = first or time.perf_counter()
        pending.append(batch)
        finished += len(batch["id"])
        progress(finished, total)
        if sum(len(b["id"]) for b in pending) >= flush_rows:
            _commit(out, pending, counts, write)
            pending = []
            _die_if_asked(counts[0])
    _commit(out, pending, counts, write)
    return counts[0], counts[1], first


def _die_if_asked(stored: int) -> None:
    """Tests only: VFM_LENS_BATCH_KILL_AFTER=N kills this process (SIGKILL) once N rows are stored, a
    deterministic stand-in for a user's kill in the middle of a run."""
    limit = os.environ.get("VFM_LENS_BATCH_KILL_AFTER")
    if limit and stored >= int(limit):
        os.kill(os.getpid(), signal.SIGKILL)


def _commit(
    out: str | Path, batches: list[dict], counts: list[int], write: Callable[[str | Path, dict, np.ndarray], None]
) -> None:
    if not batches:
        return
    merged = {k: _concat([b[k] for b in batches]) for k in batches[0]}
    failed = np.asarray([bool(e) for e in merged["error"]], dtype=bool)
    good, bad = np.flatnonzero(~failed), np.flatnonzero(failed)
    if bad.size:  # skipped rows first: a kill between the two commits redoes the good rows, never loses a reason
        columns = {k: merged[src][bad].astype(str) for k, src in (("id", "id"), ("path", "path"), ("reason", "error"))}
        store.append(
            out,
            store.SKIPPED,
            pa.table({**columns, "model": merged["model"][bad].astype(str)}, schema=store.SKIPPED_SCHEMA),
        )
    if good.size:
        write(out, merged, good)
    counts[0] += good.size
    counts[1] += bad.size


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    """One column of several batches; ragged columns (a list of arrays per row, which Ray may hand back as one
    regular array when every row has the same length) become an object array of rows."""
    try:
        return np.concatenate(parts)
    except ValueError:
        return _object_array([row for part in parts for row in part])


def _write_images(out: str | Path, merged: dict, good: np.ndarray) -> None:
    labels = [None if v is None or (isinstance(v, float) and np.isnan(v)) else v for v in merged["label"][good]]
    rows = store.images_rows(
        merged["id"][good],
        merged["path"][good],
        labels,
        str(merged["model"][0]),
        str(merged["weights"][0]),
        np.asarray(merged["vector"], dtype=np.float32)[good],
    )
    store.append(out, store.IMAGES, rows)


IMAGES_TARGET = Target(store.stored_ids, _check_model, _write_images, store.compact_and_index)


# ---- images held in memory (a dashboard working set) -------------------------------------------------
def image_set_folder(
    root: str | Path, images: Sequence[np.ndarray], names: Sequence[str], labels: Sequence[str | None]
) -> Path:
    """`root`/working_set_<digest>: one folder per content (images, names, labels), so storing the same set again
    finds it stored, and another set never mixes with it."""
    digest = hashlib.blake2b(digest_size=5)
    for image, name, label in zip(images, names, labels, strict=True):
        digest.update(f"{image_hash(image)}|{name}|{label}\n".encode())
    return Path(root) / f"working_set_{digest.hexdigest()}"


def write_image_folder(
    folder: str | Path,
    images: Sequence[np.ndarray],
    names: Sequence[str],
    labels: Sequence[str | None],
    progress: Progress | None = None,
) -> Path:
    """Each image (HWC uint8 RGB) as a lossless PNG in `folder`/images, and `folder`/manifest.parquet listing them
    with their labels: a SOURCE for `embed_*` that keeps every label, one class or none. Returns the manifest.
    A file already written is kept; each is written whole or not at all (renamed into place)."""
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    files = []
    for i, (image, name) in enumerate(zip(images, names, strict=True)):
        stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(name).stem)[:40].strip("_") or "image"
        file = folder / "images" / f"{i:05d}_{stem}.png"
        if not file.exists():
            partial = file.with_suffix(".part")
            Image.fromarray(image).save(partial, format="PNG")
            os.replace(partial, file)
        files.append(f"images/{file.name}")
        if progress:
            progress(i + 1, len(images))
    manifest = folder / "manifest.parquet"
    pq.write_table(pa.table({"path": files, "label": pa.array(list(labels), pa.string())}), manifest)
    return manifest


# ---- export -----------------------------------------------------------------------------------
def export_parquet(out: str | Path, dest: str | Path, batch_size: int = store.READ_BATCH) -> int:
    """Every stored row to one Parquet file (vector as fixed_size_list<float32>); returns the row count."""
    table = store.open_store(out).table
    rows = 0
    with pq.ParquetWriter(str(dest), table.schema) as writer:
        for batch in store.iter_batches(table, table.schema.names, batch_size):
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


# ---- command line -----------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.batch", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    embed = _run_arguments(sub.add_parser("embed", help="embed SOURCE into the stored dataset OUT (resumable)"))
    embed.add_argument("--index-min-rows", type=int, default=store.INDEX_MIN_ROWS)
    patches = _run_arguments(sub.add_parser("patches", help="store the patch tokens of SOURCE in the patch index OUT"))
    patches.add_argument("--size", type=int, help="model input in px, a multiple of the patch (default: the model's)")
    patches.add_argument("--pool", type=int, default=1, choices=(1, 2), help="2: average 2 × 2 patches into one")
    patches.add_argument("--foreground", action="store_true", help="keep only the PC1-foreground patches")
    patches.add_argument("--index-min-rows", type=int, default=patch_index.INDEX_MIN_ROWS)
    export = sub.add_parser("export", help="write every stored row to a Parquet file")
    export.add_argument("out")
    export.add_argument("dest")
    index = sub.add_parser("index", help="(re)build the vector index of OUT (a stored dataset or a patch index)")
    index.add_argument("out")
    index.add_argument("--min-rows", type=int)
    args = parser.parse_args(argv)

    if args.command == "export":
        print(f"wrote {export_parquet(args.out, args.dest):,} rows to {args.dest}")
    elif args.command == "index" and store.open_table(args.out, patch_index.PATCHES) is not None:
        print(patch_index.build_stored_index(args.out, args.min_rows or patch_index.INDEX_MIN_ROWS))
    elif args.command == "index":
        print(store.build_index(store.open_store(args.out).table, args.min_rows or store.INDEX_MIN_ROWS))
    else:
        options = (args.batch_size, args.actors, args.flush_rows, args.index_min_rows)
        if args.command == "embed":
            run = functools.partial(embed_dataset, args.source, args.out, args.model, *options)
        else:
            try:
                patch_settings(args.model, args.size, args.pool, args.foreground)  # refused before Ray starts
            except ValueError as exc:
                parser.error(str(exc))
            settings = (args.size, args.pool, args.foreground)
            run = functools.partial(patches_dataset, args.source, args.out, args.model, *settings, *options)
        return _run_on_ray(args, run)
    return 0


def _run_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """SOURCE, OUT, the model and the Ray options of a run (`embed`, `patches`)."""
    parser.add_argument("source")
    parser.add_argument("out")
    parser.add_argument("--model", default="dinov2_small", help="registry name, optionally @weights")
    parser.add_argument("--address", help="join this Ray cluster (e.g. ray://head:10001 or auto); default: local")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-cpus", type=int, help="CPUs for the local Ray (default: all)")
    parser.add_argument("--actors", type=int, help="embedding actors (default: one per GPU, else CPUs - 1)")
    parser.add_argument("--flush-rows", type=int, default=FLUSH_ROWS, help="rows per Lance commit")
    return parser


def _run_on_ray(args: argparse.Namespace, run: Callable[[], RunSummary]) -> int:
    """Start (or join) Ray, run, print the summary; a refusal (another model or settings in OUT) is one line."""
    init_ray(args.address, args.num_cpus)
    with native_stderr_to_ray_logs() as ray_log:
        try:
            s = run()
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except BaseException:
            print(f"Ray's own messages for this run: {ray_log}", file=sys.stderr)
            raise
    skipped_csv = Path(args.out) / "skipped.csv"
    print(s.describe() + (f"; unreadable files are listed in {skipped_csv}" if skipped_csv.exists() else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
