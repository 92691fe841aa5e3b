"""Shared fixtures. Tests run offline, on CPU, with tiny random-init models and a throwaway cache."""

import os
import tempfile

os.environ.setdefault("VFM_LENS_OFFLINE", "1")
os.environ["VFM_LENS_PROFILE"] = "tiny"
os.environ["VFM_LENS_CACHE"] = tempfile.mkdtemp(prefix="vfm-lens-test-cache-")
# numba's compiled UMAP code is the same for every run: keep it between test sessions (it holds no results)
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.dirname(__file__), "..", ".pytest_cache", "numba"))

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from core.cache import EmbeddingCache  # noqa: E402
from core.engine import Engine  # noqa: E402


@pytest.fixture(scope="session")
def engine(tmp_path_factory) -> Engine:
    return Engine(device="cpu", cache=EmbeddingCache(tmp_path_factory.mktemp("engine-cache")))


@pytest.fixture
def images() -> list[np.ndarray]:
    """Three HWC uint8 RGB images of different sizes and aspect ratios."""
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, size=s, dtype=np.uint8) for s in ((96, 128, 3), (120, 80, 3), (64, 64, 3))]


def pytest_collection_modifyitems(config, items):
    import torch

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA GPU")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)
