"""Pairs for bench/bench_vs_upstream.py: VFM Lens's SAM path against plain `SamPredictor`, same process.

Every `pair_*` function prepares its inputs once and returns `(ours, plain)`: two callables without arguments, each
doing one round of the job and returning its wall time in seconds (lower is better). The runner calls them
alternately. Both sides use the same full-size random SAM ViT-B (seeded; the relative-position tables filled with
noise so the rel-pos path is exercised) on the same 2250 × 1500 photo (skimage's astronaut, resized):

  pair_sam_encode   one image embedding: our adapter as the engine loads it (`apply_fast_paths`: SDPA attention,
                    uint8 resize, the bf16 encoder where the CPU has native bf16), image hash included, against
                    `SamPredictor.set_image` on the upstream module. Run ≥ 3 rounds (SamPredictor: 13.7 s on 2 free cores).
  pair_sam_click    one click (a single point: SAM's three candidates) on an embedded image: `SAMAdapter.predict`
                    on the cached embedding, against `SamPredictor.predict` after its `set_image`. Run ≥ 5 rounds;
                    each call clicks the next of 20 fixed points, so the median over the rounds is the click p50.

`mask_guard()` is the accuracy check on the same weights: the correlation of our mask logits with SamPredictor's,
per candidate, over the 20 clicks (goal ≥ 0.999). Run the pairs here, alternately, medians and spread:

    .venv/bin/python -m bench.pairs_sam [--pairs sam_encode sam_click] [--repeats 3] [--clicks 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
from functools import cache

import numpy as np

from bench.pairs import Pair, timed

os.environ.setdefault("VFM_LENS_OFFLINE", "1")

import torch  # noqa: E402

SIZE = (1500, 2250)  # (H, W) of the photo, as in issue #24


@cache
def photo() -> np.ndarray:
    """(1500, 2250, 3) uint8 RGB: skimage's astronaut resized (bicubic)."""
    from PIL import Image
    from skimage import data

    return np.asarray(Image.fromarray(data.astronaut()).resize(SIZE[::-1], Image.Resampling.BICUBIC))


@cache
def contenders(model: str = "sam_vit_b"):
    """(our adapter with its fast paths, the upstream `Sam` module with the same weights)."""
    from segment_anything import sam_model_registry

    from core.models import build_adapter
    from core.models.fast import apply_fast_paths, fill_rel_pos
    from core.registry import get

    torch.manual_seed(0)
    adapter = build_adapter(get(model), "random", None, torch.device("cpu"))
    fill_rel_pos(adapter.module)
    plain = sam_model_registry[adapter.spec.arch](checkpoint=None).eval()
    plain.load_state_dict(adapter.module.state_dict())
    apply_fast_paths(adapter, "cpu")  # as `Engine._load` does for SAM
    return adapter, plain


def click_points(n: int = 20, seed: int = 0) -> np.ndarray:
    """(n, 2) float32 (X, Y) pixels inside the photo."""
    rng = np.random.default_rng(seed)
    return (rng.random((n, 2)) * np.array(SIZE[::-1])).astype(np.float32)


def _ours_encode(image: np.ndarray):
    from core.data import image_hash

    adapter, _ = contenders()
    with torch.inference_mode():  # as `Engine._forward` on CPU
        return adapter.image_embedding(image, image_hash(image))


def _ours_click(embedding, point: np.ndarray):
    from core.models.sam import SamPrompt

    adapter, _ = contenders()
    with torch.inference_mode(), torch.autocast("cpu", enabled=False):  # as `Engine.sam_predict`
        return adapter.predict(embedding, SamPrompt(point[None], np.array([1])))


def _plain_predictor(image: np.ndarray):
    from segment_anything import SamPredictor

    predictor = SamPredictor(contenders()[1])
    predictor.set_image(image)
    return predictor


def pair_sam_encode() -> Pair:
    image = photo()
    contenders()
    return timed(lambda: _ours_encode(image)), timed(lambda: _plain_predictor(image))


@cache
def encoded():
    """(our embedding of the photo, a SamPredictor with the photo set): once, for the click pair and the guard."""
    return _ours_encode(photo()), _plain_predictor(photo())


def pair_sam_click(clicks: int = 20) -> Pair:
    points = click_points(clicks)
    embedding, predictor = encoded()
    turn = {"ours": 0, "plain": 0}

    def ours() -> float:
        point = points[turn["ours"] % clicks]
        turn["ours"] += 1
        return timed(lambda: _ours_click(embedding, point))()

    def plain() -> float:
        point = points[turn["plain"] % clicks]
        turn["plain"] += 1
        return timed(lambda: predictor.predict(point[None], np.array([1]), multimask_output=True))()

    return ours, plain


def mask_guard(clicks: int = 20) -> float:
    """The lowest correlation of our mask logits with SamPredictor's, over `clicks` clicks × 3 candidates."""
    embedding, predictor = encoded()
    lowest = 1.0
    for point in click_points(clicks):
        ours = _ours_click(embedding, point).logits
        _, _, theirs = predictor.predict(point[None], np.array([1]), multimask_output=True)
        for a, b in zip(ours, theirs, strict=True):
            lowest = min(lowest, float(np.corrcoef(a.ravel(), b.ravel())[0, 1]))
    return lowest


PAIRS = {"sam_encode": pair_sam_encode, "sam_click": pair_sam_click}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=list(PAIRS))
    parser.add_argument("--repeats", type=int, default=3, help="rounds for the encode (clicks: --clicks)")
    parser.add_argument("--clicks", type=int, default=20, help="rounds for the click pair (≥ 5)")
    parser.add_argument("--no-guard", action="store_true", help="skip the mask-logit correlation check")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()}")
    print("fast paths:", contenders()[0].fast_paths)
    for name in args.pairs:
        ours, plain = PAIRS[name]()
        rounds = args.clicks if name == "sam_click" else args.repeats
        figures: dict[str, list[float]] = {"ours": [], "plain": []}
        for r in range(rounds):
            figures["ours"].append(ours())
            figures["plain"].append(plain())
            print(
                f"  {name} round {r + 1}/{rounds}: ours {figures['ours'][-1]:.4g} s, plain {figures['plain'][-1]:.4g} s"
            )
        med = {k: statistics.median(v) for k, v in figures.items()}
        spread = {k: f"{min(v):.4g}–{max(v):.4g}" for k, v in figures.items()}
        print(
            f"{name}: ours {med['ours']:.4g} s ({spread['ours']}), plain {med['plain']:.4g} s ({spread['plain']}), "
            f"plain/ours {med['plain'] / med['ours']:.2f}×"
        )
    if not args.no_guard:
        print(f"mask-logit correlation, lowest over {args.clicks} clicks × 3 candidates: {mask_guard(args.clicks):.5f}")


if __name__ == "__main__":
    main()
