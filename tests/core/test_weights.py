import hashlib
import socket
import threading

import pytest
import torch

from core import registry, weights
from core.models import build_adapter
from core.models import sam as sam_module


@pytest.fixture
def online_allowed(monkeypatch):
    monkeypatch.delenv("VFM_LENS_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    weights._probe_memo.clear()
    yield
    weights._probe_memo.clear()


def test_a_hanging_network_is_detected_as_offline_within_two_seconds(online_allowed, monkeypatch):
    """The probe runs in a thread that is waited on for at most 2 s; here it hangs (never returns)."""
    waits = []

    class HangingProbe(threading.Thread):
        def start(self) -> None:  # the connection attempt never comes back
            pass

        def join(self, timeout=None) -> None:
            waits.append(timeout)

    monkeypatch.setattr(weights.threading, "Thread", HangingProbe)
    status = weights.locate("dinov2_base")
    assert waits and all(t is not None and t <= 2.0 for t in waits)
    assert status.source == "unavailable" and status.is_random
    assert "network is unreachable" in status.message and "make weights" in status.message


def test_an_open_network_means_download_on_first_use(online_allowed, monkeypatch):
    class Conn:
        def close(self):
            pass

    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: Conn())
    assert weights.locate("sam_vit_l").source == "download"


def test_forced_offline_never_probes(monkeypatch):
    monkeypatch.setenv("VFM_LENS_OFFLINE", "1")
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: pytest.fail("probed"))
    assert weights.locate("clip_vit_b32").source == "unavailable"


def test_random_weights_and_tiny_models_need_no_files():
    assert weights.locate("dinov2_small@random").source == "random"
    status = weights.locate("sam_tiny")
    assert status.source == "random" and "tiny test model" in status.message


def test_local_folder_is_searched_first(tmp_path, monkeypatch):
    monkeypatch.setenv("VFM_LENS_WEIGHTS", str(tmp_path))
    (tmp_path / "sam_vit_b_01ec64.pth").write_bytes(b"x")
    (tmp_path / "clip_vit_b32-laion2b_s34b_b79k.safetensors").write_bytes(b"x")
    (tmp_path / "dinov2_small").mkdir()
    for model, name in (
        ("sam_vit_b", "sam_vit_b_01ec64.pth"),
        ("clip_vit_b32@laion2b_s34b_b79k", "clip_vit_b32-laion2b_s34b_b79k.safetensors"),
        ("dinov2_small", "dinov2_small"),
    ):
        status = weights.locate(model)
        assert status.source == "local" and status.path == str(tmp_path / name) and status.label == "local"
    assert weights.locate("clip_vit_b32@openai").source != "local"


def test_sam_checkpoint_loads_safely_from_a_file(tmp_path):
    spec = registry.get("sam_tiny")
    torch.manual_seed(1)
    original = sam_module.build_module(spec, None)
    path = tmp_path / "sam.pth"
    torch.save(original.state_dict(), path)
    adapter = build_adapter(spec, "local", str(path), torch.device("cpu"))
    for key, value in original.state_dict().items():
        assert torch.equal(adapter.module.state_dict()[key], value)


def test_a_sam_download_is_checked_by_sha256(tmp_path, monkeypatch, online_allowed):
    monkeypatch.setenv("VFM_LENS_CACHE", str(tmp_path))
    monkeypatch.setattr(weights, "online", lambda host="": True)
    payload = b"not the real checkpoint"
    monkeypatch.setattr(weights.urllib.request, "urlretrieve", lambda url, dest: open(dest, "wb").write(payload))
    with pytest.raises(ValueError, match="checksum mismatch"):
        weights.fetch("sam_vit_b")
    assert not list(tmp_path.rglob("*.pth")) and not list(tmp_path.rglob("*.part"))

    good = registry.Checkpoint("sam_vit_b_01ec64.pth", hashlib.sha256(payload).hexdigest(), len(payload))
    spec = registry.get("sam_vit_b")
    monkeypatch.setattr(
        registry, "_BY_NAME", {**registry._BY_NAME, "sam_vit_b": type(spec)(**{**spec.__dict__, "checkpoint": good})}
    )
    path = weights.fetch("sam_vit_b")
    assert open(path, "rb").read() == payload and weights.locate("sam_vit_b").source == "cache"


def test_prefetch_command_reports_each_model_and_fails_clearly_offline(capsys):
    assert weights.main(["dinov2_small", "sam_tiny"]) == 1
    out = capsys.readouterr().out
    assert "dinov2_small: FAILED" in out and "network is unreachable" in out
    assert "sam_tiny: FAILED" in out and "random weights" in out


def test_a_local_checkpoint_of_another_architecture_is_said_and_random_weights_run(tmp_path, monkeypatch):
    """A local folder or file that is not the model's architecture: one sentence, random weights, no stack trace."""
    from core.engine import Engine

    monkeypatch.setenv("VFM_LENS_WEIGHTS", str(tmp_path))
    tiny = build_adapter(registry.get("dinov2_tiny"), "random", None, torch.device("cpu"))
    tiny.module.save_pretrained(tmp_path / "dinov2_small")  # a tiny config where DINOv2-S belongs: loads, wrong size
    torch.save(sam_module.build_module(registry.get("sam_tiny"), None).state_dict(), tmp_path / "sam_vit_b_01ec64.pth")
    engine = Engine(device="cpu", cache=None)
    for name, params in (("dinov2_small", 22.1e6), ("sam_vit_b", 93.7e6)):
        loaded = engine.model(name)
        assert loaded.status.source == "unavailable" and loaded.status.is_random and loaded.adapter.weights == "random"
        assert "do not fit this architecture" in loaded.status.message and "\n" not in loaded.status.message
        assert abs(sum(p.numel() for p in loaded.adapter.module.parameters()) - params) < 0.1e6
        assert engine.weights_status(name).message == loaded.status.message  # the sidebar says the same
