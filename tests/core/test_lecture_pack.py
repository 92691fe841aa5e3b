"""Lecture packs (#21): one file with weights, images and precomputed results; opened elsewhere, the engine finds
every precomputed result in the pack's cache and computes nothing again."""

import io
import tarfile

import numpy as np
import pytest

from core import lecture_pack
from core.data import load_folder
from core.engine import Engine
from tests import corpus


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    for i, label in enumerate(["cats", "cats", "dogs"]):
        (folder / label).mkdir(parents=True, exist_ok=True)
        (folder / label / f"{i}.png").write_bytes(corpus.encode(corpus.rgb(80, 60, seed=i)))
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_a_pack_opened_elsewhere_answers_from_its_own_cache(photos, tmp_path, monkeypatch):
    monkeypatch.setenv("VFM_LENS_OFFLINE", "1")
    monkeypatch.setenv("VFM_LENS_CACHE", str(tmp_path / "builder-cache"))
    summary = lecture_pack.build_pack(["sam_tiny", "dinov2_tiny"], photos, tmp_path / "hall.vfmpack")
    assert summary.images == 3 and summary.skipped == 1
    assert summary.models == ["sam_tiny@random", "dinov2_tiny@random"]
    manifest = lecture_pack.read_manifest(summary.path)
    assert manifest["models"] == summary.models and len(manifest["precomputed"]) == 3

    monkeypatch.setattr("core.weights.fetch", lambda *a: pytest.fail("a download was attempted"))
    monkeypatch.setattr("core.weights.online", lambda *a, **k: pytest.fail("the network was probed"))
    env = lecture_pack.open_pack(summary.path, into=tmp_path / "hall")  # another machine: another folder
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert env["VFM_LENS_OFFLINE"] == "1" and env["VFM_LENS_MODELS"] == "sam_tiny@random dinov2_tiny@random"
    images = load_folder(env["VFM_LENS_START_IMAGES"], [tmp_path / "hall"])
    assert sorted(images.labels) == ["cats", "cats", "dogs"]

    engine = Engine.from_config()
    for name in ("sam_tiny", "dinov2_tiny"):
        adapter = engine.model(name).adapter
        for method in ("image_embedding", "embed", "patch_tokens"):
            if hasattr(adapter, method):
                monkeypatch.setattr(adapter, method, lambda *a, **k: pytest.fail("computed again"))
    arrays = [item.image for item in images.items]
    embedding = engine.sam_embedding(arrays[0], "sam_tiny")
    assert embedding.features.shape[0] == 32
    assert engine.patch_tokens(arrays, "dinov2_tiny").shape[:3] == (3, 4, 4)
    assert engine.embed(arrays, "dinov2_tiny").shape == (3, 32)


def test_opening_twice_extracts_once_and_a_hostile_member_is_refused(photos, tmp_path, monkeypatch):
    monkeypatch.setenv("VFM_LENS_OFFLINE", "1")
    monkeypatch.setenv("VFM_LENS_CACHE", str(tmp_path / "c"))
    pack = lecture_pack.build_pack(["clip_tiny"], photos, tmp_path / "p.vfmpack").path
    first = lecture_pack.open_pack(pack, into=tmp_path / "x")
    marker = tmp_path / "x" / next(p.name for p in (tmp_path / "x").iterdir()) / "marker"
    marker.write_text("kept")
    assert lecture_pack.open_pack(pack, into=tmp_path / "x") == first and marker.exists()

    hostile = tmp_path / "hostile.vfmpack"
    with tarfile.open(hostile, "w") as tar:
        for name, data in (("manifest.json", b'{"format": 1, "models": []}'), ("../escape.txt", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(tarfile.OutsideDestinationError):
        lecture_pack.open_pack(hostile, into=tmp_path / "y")
    assert not (tmp_path / "escape.txt").exists()


def test_a_file_that_is_no_pack_or_a_pack_of_another_format_is_said(tmp_path):
    (tmp_path / "notes.vfmpack").write_text("not a tar file")
    with pytest.raises(ValueError, match="is not a lecture pack"):
        lecture_pack.open_pack(tmp_path / "notes.vfmpack", into=tmp_path / "x")
    newer = tmp_path / "newer.vfmpack"
    with tarfile.open(newer, "w") as tar:
        data = b'{"format": 2, "models": [], "version": "abc123"}'
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ValueError, match="format 2, made by another version of VFM Lens"):
        lecture_pack.open_pack(newer, into=tmp_path / "x")


def test_local_weights_are_packed_in_the_local_folder_layout(tmp_path, monkeypatch):
    weights = tmp_path / "weights"
    (weights / "dinov2_small").mkdir(parents=True)
    (weights / "dinov2_small" / "config.json").write_text("{}")
    (weights / "sam_vit_b_01ec64.pth").write_bytes(b"checkpoint")
    monkeypatch.setenv("VFM_LENS_WEIGHTS", str(weights))
    monkeypatch.setenv("VFM_LENS_OFFLINE", "1")
    target = tmp_path / "packed"
    target.mkdir()
    assert lecture_pack._copy_weights("dinov2_small", target) == "dinov2_small@hf"
    assert lecture_pack._copy_weights("sam_vit_b", target) == "sam_vit_b@meta"
    assert (target / "dinov2_small" / "config.json").exists() and (target / "sam_vit_b_01ec64.pth").read_bytes()
    assert lecture_pack._copy_weights("clip_vit_b32", target) == "clip_vit_b32@random"  # not here: said, not faked


def test_no_readable_image_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="No image could be read"):
        lecture_pack.build_pack(["clip_tiny"], tmp_path / "empty", tmp_path / "p.vfmpack")
    assert not np.any([p.suffix == ".vfmpack" for p in tmp_path.iterdir()])
