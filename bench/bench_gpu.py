"""Our fast path against the upstream default, timed in the same run on the same random weights (issue #6).

    .venv/bin/python -m bench.bench_gpu [--quick] [--peak-tflops 790] [--only dinov2,e2e] [--compile MODE]

Upstream = the adapter as built, fp32, upstream attention and CPU preprocessing. Ours = `apply_fast_paths`
plus the engine's dtype (bf16 autocast on CUDA, fp32 on CPU). For every case: images/s (or ms), achieved
TFLOP/s and % of peak (FLOPs counted once per image with torch.utils.flop_counter on the upstream model),
the ratio ours/upstream, and the accuracy guard (embedding cosine ≥ 0.999, SAM mask-logit correlation ≥ 0.99).

On CUDA: DINOv2 S/B/L/g at 224 and 448, CLIP B/32 and L/14, SAM B/H encoders, SAM set_image and click latency,
end to end 50,000 PNG-encoded 32×32 images with CLIP-B/32 (decode, resize, encode), LDA on 50,000 × 768.
Without CUDA: the same code on the tiny models and smaller data, as a smoke run; GPU figures are then pending. Results go to docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import datetime
import io
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from bench.bench_projection import make_data
from core.analysis.lda import compute_lda
from core.models import build_adapter
from core.models.fast import apply_fast_paths, fill_rel_pos
from core.models.sam import SamPrompt
from core.registry import get


@dataclass(frozen=True)
class Case:
    model: str
    sizes: tuple[int, ...]  # encoder input sides
    batch: int


GPU_CASES = (
    *(Case(f"dinov2_{s}", (224, 448), b) for s, b in (("small", 256), ("base", 128), ("large", 64), ("giant", 32))),
    Case("clip_vit_b32", (224,), 512),
    Case("clip_vit_l14", (224,), 64),
    Case("sam_vit_b", (1024,), 8),
    Case("sam_vit_h", (1024,), 4),
)
CPU_CASES = (Case("dinov2_tiny", (56, 112), 8), Case("clip_tiny", (64,), 8), Case("sam_tiny", (256,), 2))


@dataclass
class Row:
    case: str
    unit: str  # "img/s" (higher is better) or "ms" (lower is better)
    upstream: float
    ours: float
    flops: float | None = None  # per image
    guard: str = ""

    def speedup(self) -> float:
        return self.ours / self.upstream if self.unit == "img/s" else self.upstream / self.ours

    def render(self, peak: float | None) -> str:
        line = f"{self.case:<28} {self.upstream:>10.1f} {self.ours:>10.1f} {self.unit:<5} ×{self.speedup():>6.2f}"
        if self.flops and self.unit == "img/s":
            up, ours = (self.flops * rate / 1e12 for rate in (self.upstream, self.ours))
            line += f"  {up:7.2f} → {ours:7.2f} TFLOP/s"
            if peak:
                line += f" ({100 * up / peak:4.1f} → {100 * ours / peak:4.1f} % of peak)"
        return f"{line}  {self.guard}"


# ---- timing helpers -------------------------------------------------------------------------------
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rate(fn: Callable[[], object], items: int, device: torch.device, seconds: float) -> float:
    """Items per second of `fn` (which handles `items` items), after two warm-up calls, over ≥ `seconds`."""
    for _ in range(2):
        fn()
    sync(device)
    calls, start = 0, time.perf_counter()
    while calls < 2 or time.perf_counter() - start < seconds:
        fn()
        calls += 1
        sync(device)  # per call: keeps the host from queueing unboundedly ahead
    return calls * items / (time.perf_counter() - start)


def median_ms(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def flops_per_item(fn: Callable[[torch.Tensor], object], x: torch.Tensor) -> float:
    """FLOPs per item of `fn`. nn.MultiheadAttention's fused fast path is one op the counter cannot see into
    (CLIP-B/32 would count 5.9 instead of 8.7 GFLOP), so it is off while counting."""
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            fn(x)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return counter.get_total_flops() / len(x)


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return torch.nn.functional.cosine_similarity(a.float().flatten(1), b.float().flatten(1)).min().item()


# ---- encoders, SAM latency ------------------------------------------------------------------------
def encoder(adapter) -> Callable[[torch.Tensor], torch.Tensor]:
    """(B, 3, S, S) pixels on the device → the family's output (the engine's heavy step, without preprocessing)."""
    family, module = adapter.spec.family, adapter.module
    if family == "dinov2":
        return lambda x: module(pixel_values=x).pooler_output
    if family == "clip":
        return module.encode_image
    return module.image_encoder


def bench_model(case: Case, device: torch.device, args) -> list[Row]:
    spec = get(case.model)
    adapter = build_adapter(spec, "random", None, device)
    if spec.family == "sam":
        fill_rel_pos(adapter.module)  # zero at random init: the rel-pos path would go unmeasured
    forward = encoder(adapter)
    fast_dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    inputs = {s: torch.randn(case.batch, 3, s, s, device=device) for s in case.sizes}
    flops = {s: flops_per_item(forward, x[:1]) for s, x in inputs.items()}
    sam_inputs = sam_latency_inputs(adapter) if spec.family == "sam" else None

    def measure(autocast) -> tuple[dict, dict, dict | None]:
        with torch.inference_mode(), autocast:
            rates = {s: rate(lambda x=x: forward(x), len(x), device, args.seconds) for s, x in inputs.items()}
            outputs = {s: forward(x[:2]).float() for s, x in inputs.items()}
            latency = sam_latency(adapter, *sam_inputs, device, args.repeats) if sam_inputs else None
        return rates, outputs, latency

    upstream = measure(nullcontext())
    apply_fast_paths(adapter, device, args.compile)
    ours = measure(torch.autocast(device.type, dtype=fast_dtype, enabled=fast_dtype != torch.float32))
    rows = [
        Row(
            f"{case.model} @{s} b{case.batch}",
            "img/s",
            upstream[0][s],
            ours[0][s],
            flops[s],
            f"cos {cosine(upstream[1][s], ours[1][s]):.5f}",
        )
        for s in case.sizes
    ]
    if sam_inputs:
        (up_embed, up_click, up_out), (embed, click, out) = upstream[2], ours[2]
        features = cosine(torch.from_numpy(up_out[0].features[None]), torch.from_numpy(out[0].features[None]))
        corr = min(
            np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(up_out[1].logits, out[1].logits, strict=True)
        )
        rows.append(Row(f"{case.model} set_image", "ms", up_embed, embed, guard=f"cos {features:.5f}"))
        rows.append(Row(f"{case.model} click", "ms", up_click, click, guard=f"logit corr {corr:.5f}"))
    return rows


def sam_latency_inputs(adapter) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 768 × 1024 photo-sized image (longest side resized to the encoder's input) and one positive click."""
    rng = np.random.default_rng(0)
    side = adapter.module.image_encoder.img_size
    image = rng.integers(0, 256, (side * 3 // 4, side, 3), dtype=np.uint8)
    return image, np.array([[side // 2, side // 3]]), np.array([1])


def sam_latency(adapter, image, points, labels, device, repeats: int):
    """(set_image ms, click ms, (embedding, prediction)): what a user waits for, numpy conversions included."""
    embed_ms = median_ms(lambda: adapter.image_embedding(image), device, max(3, repeats // 10))
    embedding = adapter.image_embedding(image)
    prompt = SamPrompt(points, labels)
    click_ms = median_ms(lambda: adapter.predict(embedding, prompt), device, repeats)
    return embed_ms, click_ms, (embedding, adapter.predict(embedding, prompt))


# ---- end to end: PNG bytes → embeddings -----------------------------------------------------------
def make_pngs(n: int, side: int = 32) -> list[bytes]:
    """`n` PNG-encoded side × side RGB images (smooth colour blobs plus noise, like small photos)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:side, :side] / side
    out = []
    for _ in range(n):
        a, b, c = rng.uniform(0, 255, size=(3, 3))
        image = a * xx[..., None] + b * yy[..., None] + c * (xx * yy)[..., None] / 2
        image = np.clip(image + rng.normal(0, 12, image.shape), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


def decode(chunk: list[bytes]) -> list[np.ndarray]:
    return [np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in chunk]


def chunks(items: list, size: int) -> Iterator[list]:
    return (items[i : i + size] for i in range(0, len(items), size))


def bench_end_to_end(model: str, n: int, n_upstream: int, batch: int, device: torch.device, args) -> Row:
    """Upstream: decode, open_clip's CPU transform, fp32 encode, in sequence. Ours: decoding in a thread pool
    overlapping the device, uint8 upload, resize on the device, bf16 encode. Rates over the whole run."""
    pngs = make_pngs(n)
    adapter = build_adapter(get(model), "random", None, device)
    fast_dtype = torch.bfloat16 if device.type == "cuda" else torch.float32

    def run(data: list[bytes], autocast, pool: ThreadPoolExecutor | None) -> torch.Tensor:
        decoded = pool.map(decode, chunks(data, batch)) if pool else map(decode, chunks(data, batch))
        with torch.inference_mode(), autocast:
            return torch.cat([adapter.embed(images).float() for images in decoded])

    start = time.perf_counter()
    reference = run(pngs[:n_upstream], nullcontext(), None)
    sync(device)
    upstream = n_upstream / (time.perf_counter() - start)
    apply_fast_paths(adapter, device, args.compile)
    with ThreadPoolExecutor(args.workers) as pool:
        run(pngs[:batch], nullcontext(), pool)  # warm-up
        start = time.perf_counter()
        ours = run(pngs, torch.autocast(device.type, dtype=fast_dtype, enabled=device.type == "cuda"), pool)
        sync(device)
        seconds = time.perf_counter() - start
    guard = f"cos {cosine(reference, ours[:n_upstream]):.5f}; ours {n:,} images in {seconds:.2f} s"
    return Row(f"e2e {model} {n:,}×32² b{batch}", "img/s", upstream, n / seconds, guard=guard)


def bench_lda(n: int, dim: int, device: torch.device) -> Row:
    """Upstream: scikit-learn's eigen solver with Ledoit-Wolf shrinkage (what projection.LDAMethod runs), on
    the CPU. Ours: core.analysis.lda on the device, float64. Fit and transform of all points, once each."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    X, y = make_data(n, dim)
    start = time.perf_counter()
    expected = LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto", n_components=9).fit(X, y).transform(X)
    upstream = time.perf_counter() - start
    compute_lda(X[:1000], y[:1000], 9, device)  # warm-up: solver libraries load on first use
    sync(device)
    start = time.perf_counter()
    got = compute_lda(X, y, 9, device).transform(X)
    ours = time.perf_counter() - start
    corr = min(abs(np.corrcoef(a, b)[0, 1]) for a, b in zip(expected.T, got.T, strict=True))
    return Row(f"LDA {n:,}×{dim}, 10 classes", "ms", 1000 * upstream, 1000 * ours, guard=f"|corr| {corr:.5f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short timing windows, 5,000 images end to end")
    parser.add_argument("--peak-tflops", type=float, default=790.0, help="H100 SXM bf16 dense: 790")
    parser.add_argument("--only", default="", help="comma-separated substrings of case names to run")
    parser.add_argument("--compile", default=None, help="torch.compile mode for ours (off by default)")
    parser.add_argument("--workers", type=int, default=8, help="decode threads, end to end")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    args.seconds = (0.5 if args.quick else 2.0) if cuda else 0.2
    args.repeats = 50 if cuda else 5
    cases = GPU_CASES if cuda else CPU_CASES
    wanted = [w for w in args.only.split(",") if w]
    keep = (lambda name: any(w in name for w in wanted)) if wanted else (lambda name: True)
    name = (
        torch.cuda.get_device_name(device) if cuda else f"CPU {platform.machine()}, {torch.get_num_threads()} threads"
    )
    print(f"{name}, torch {torch.__version__}, {datetime.date.today()}, compile={args.compile}")
    if not cuda:
        print("No CUDA device: smoke run on the tiny models (fp32 both sides). GPU figures are pending.")
    print(f"{'case':<28} {'upstream':>10} {'ours':>10} {'unit':<5} {'ratio':>7}")
    peak = args.peak_tflops if cuda else None
    for case in cases:
        if keep(case.model):
            for row in bench_model(case, device, args):
                print(row.render(peak), flush=True)
    if keep("e2e"):
        n = (5_000 if args.quick else 50_000) if cuda else 256
        model, batch = ("clip_vit_b32", 1024) if cuda else ("clip_tiny", 64)
        print(bench_end_to_end(model, n, min(n, 5_000), batch, device, args).render(peak), flush=True)
    if keep("lda"):
        print(bench_lda(50_000 if cuda else 5_000, 768 if cuda else 128, device).render(peak), flush=True)


if __name__ == "__main__":
    main()
