"""core.batch on a local Ray (num_cpus=2) with tiny models: Ray equals the engine, corrupt files are listed,
a killed run resumes without embedding anything twice, Lance and Parquet keep ids, labels and vectors."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from core import batch, store
from tests.scale.conftest import write_images

ROOT = Path(__file__).resolve().parents[2]
N_IMAGES = 2000  # the number, 32×32 each
MODEL = "dinov2_tiny"


@pytest.fixture(scope="module")
def embedded(tmp_path_factory, local_ray):
    source = tmp_path_factory.mktemp("source")
    images = write_images(source, N_IMAGES)
    (source / "cats" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (source / "dogs" / "empty.jpg").write_bytes(b"")
    out = tmp_path_factory.mktemp("stored") / "db"
    summary = batch.embed_dataset(source, out, MODEL, batch_size=64, actors=1, progress=False)
    return source, out, images, summary


@pytest.mark.slow
def test_ray_embeddings_equal_the_engines_direct_embed(embedded, engine):
    _, out, images, summary = embedded
    assert (summary.listed, summary.embedded, summary.skipped, summary.already) == (N_IMAGES + 2, N_IMAGES, 2, 0)
    stored = store.open_store(out)
    data = store.read_rows(stored.table, range(stored.rows))
    paths = data["path"].to_pylist()
    assert sorted(paths) == sorted(images) and stored.model == MODEL and stored.weights == "random"
    expected = engine.embed([images[p] for p in paths], MODEL)
    np.testing.assert_allclose(store.vectors_of(data), expected, rtol=1e-4, atol=1e-5)


def test_corrupt_files_are_skipped_and_listed_with_the_reason(embedded):
    source, out, _, _ = embedded
    skipped = store.open_store(out).skipped.to_arrow().to_pylist()
    reasons = {Path(r["path"]).name: r["reason"] for r in skipped}
    assert set(reasons) == {"broken.png", "empty.jpg"}
    assert reasons["empty.jpg"] == "the file is empty"
    assert reasons["broken.png"].startswith("truncated or corrupt")
    assert "broken.png" in (out / "skipped.csv").read_text()


def test_lance_and_parquet_round_trip_keep_ids_labels_and_vectors(embedded, tmp_path):
    source, out, images, _ = embedded
    stored = store.open_store(out)
    data = store.read_rows(stored.table, range(stored.rows))
    rows = data.to_pylist()
    assert all(r["id"] == batch.path_id(r["path"]) for r in rows)
    assert all(r["label"] == Path(r["path"]).parent.name for r in rows)
    assert len({r["id"] for r in rows}) == N_IMAGES
    blocks = np.concatenate(list(store.iter_vectors(stored.table, batch_size=300)))
    np.testing.assert_array_equal(blocks, store.vectors_of(data))
    assert batch.export_parquet(out, tmp_path / "x.parquet") == N_IMAGES
    exported = pq.read_table(tmp_path / "x.parquet")
    assert exported["id"].to_pylist() == data["id"].to_pylist()
    np.testing.assert_array_equal(store.vectors_of(exported), blocks)


def test_a_rerun_embeds_nothing_and_another_model_is_refused(embedded):
    source, out, _, _ = embedded
    again = batch.embed_dataset(source, out, MODEL, progress=False)
    assert (again.already, again.embedded, again.skipped) == (N_IMAGES + 2, 0, 0)
    with pytest.raises(ValueError, match="holds dinov2_tiny"):
        batch.embed_dataset(source, out, "clip_tiny", progress=False)


def test_a_csv_list_with_relative_paths_and_labels(tmp_path):
    images = write_images(tmp_path / "imgs", 4)
    rel = [Path(p).relative_to(tmp_path) for p in images]
    (tmp_path / "list.csv").write_text("path,label\n" + "".join(f"{p},L{i}\n" for i, p in enumerate(rel)))
    manifest = batch.load_manifest(tmp_path / "list.csv")
    assert manifest["path"].to_pylist() == list(images) and manifest["label"].to_pylist() == ["L0", "L1", "L2", "L3"]


@pytest.mark.slow
def test_killed_in_the_middle_then_rerun_every_image_is_embedded_exactly_once(tmp_path):
    n = 600
    images = write_images(tmp_path / "src", n, seed=1)
    out = tmp_path / "db"
    command = [sys.executable, "-m", "core.batch", "embed", str(tmp_path / "src"), str(out), "--model", MODEL]
    command += ["--num-cpus", "2", "--actors", "1", "--batch-size", "8", "--flush-rows", "16"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen(  # it kills itself with SIGKILL once 48 rows are stored
        command,
        cwd=ROOT,
        env={**env, "VFM_LENS_BATCH_KILL_AFTER": "48"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    first.wait(timeout=240)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(first.pid, signal.SIGKILL)  # and its Ray workers
    stored = _rows(out)
    assert first.returncode == -signal.SIGKILL
    assert 0 < stored < n, f"the first run was to be killed in the middle (stored {stored} of {n})"
    before = _rows(out)

    rerun = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"{before:,} already stored, {n - before:,} embedded" in rerun.stdout
    ids = store.read_column(store.open_store(out).table, "id")
    assert len(ids) == n and len(set(ids)) == n
    assert set(ids) == {batch.path_id(p) for p in images}


def _rows(out: Path) -> int:
    try:
        return store.open_store(out).rows
    except (ValueError, OSError, RuntimeError):
        return 0


def test_images_in_memory_are_written_then_embedded_in_process_like_the_engine(tmp_path, engine):
    rng = np.random.default_rng(2)
    images = [rng.integers(0, 256, (24, 20 + 4 * i, 3), dtype=np.uint8) for i in range(4)]
    labels = ["cats", "cats", None, "cats"]  # a single class is a label; an unlabelled image stays unlabelled
    names = ["a/x.jpg", "ü b.png", "", "x"]
    folder = batch.image_set_folder(tmp_path, images, names, labels)
    assert folder == batch.image_set_folder(tmp_path, [im.copy() for im in images], names, labels)
    assert folder != batch.image_set_folder(tmp_path, images, names, ["dogs", "cats", None, "cats"])
    steps = []
    manifest = batch.write_image_folder(folder, images, names, labels, lambda done, total: steps.append((done, total)))
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]
    summary = batch.embed_in_process(manifest, folder / "db.lance", MODEL, engine)
    assert (summary.listed, summary.embedded, summary.skipped, summary.startup_seconds) == (4, 4, 0, 0.0)
    data = store.read_rows(store.open_store(folder / "db.lance").table, range(4))
    assert data["label"].to_pylist() == labels
    files = [Path(p).name for p in data["path"].to_pylist()]
    assert files == ["00000_x.png", "00001_b.png", "00002_image.png", "00003_x.png"]
    np.testing.assert_allclose(store.vectors_of(data), engine.embed(images, MODEL), rtol=1e-4, atol=1e-5)
    again = batch.embed_in_process(
        batch.write_image_folder(folder, images, names, labels), folder / "db.lance", MODEL, engine
    )
    assert (again.already, again.embedded) == (4, 0)


def test_two_sessions_storing_the_same_images_at_once_store_each_image_once(tmp_path, engine):
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(6)]
    names, labels = [f"{i}.png" for i in range(6)], [None] * 6
    folder = batch.image_set_folder(tmp_path, images, names, labels)
    manifest = batch.write_image_folder(folder, images, names, labels)
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda _: batch.embed_in_process(manifest, folder / "db.lance", MODEL, engine), range(2)))
    assert sorted(r.embedded for r in runs) == [0, 6]
    ids = store.read_column(store.open_store(folder / "db.lance").table, "id")
    assert len(ids) == len(set(ids)) == 6
