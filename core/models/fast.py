"""Fast paths for the adapters: SDPA attention everywhere, resize and normalise on the device, optional compile.

`apply_fast_paths(adapter, device)` changes a built adapter in place and returns what it did (`FastPaths`).
The engine calls it after `build_adapter` on CUDA, and for SAM on CPU too; nothing in it is CUDA-only, so CPU
tests run the same code. On a CPU with native bf16 (`native_bf16`), a full-size SAM's image encoder runs under
bf16 autocast, and the embedding families' image towers (CLIP, SigLIP 2, DINOv2, DINOv3, timm) hold bf16 weights
(`cpu_bf16`, applied by the engine on every CPU load; VFM_LENS_CPU_BF16=0 turns it off). The tiny test models stay
fp32, equal to upstream.

Attention, per family:
- SAM: the image encoder's `Attention` (windowed and global) computes softmax(q·kᵀ·s + B)·v by hand, B being
  the decomposed relative-position bias. `SdpaRelPosAttention` builds B as an additive mask and calls
  `F.scaled_dot_product_attention`, as segment-anything-fast did. The mask decoder's attention goes through
  SDPA too, and the decoder returns float32, so `SamPredictor.predict` can convert to numpy under bf16 autocast.
- DINOv2: transformers' attention is switched to "sdpa" when it is not already (it is by default).
- CLIP: open_clip's `nn.MultiheadAttention(need_weights=False)` already runs SDPA (the fused native MHA kernel
  without autocast, `F.scaled_dot_product_attention` under autocast); nothing to change.
- timm: attention modules with a `fused_attn` switch get it turned on.

Preprocessing: uint8 is uploaded (4× fewer bytes than float32, pinned and non-blocking on CUDA), then resized
and normalised on the device — DINOv2's square-resize path (`pixels(images, size)`), CLIP when every image is
square (open_clip's shortest-side resize + centre crop is then a plain resize), SAM's longest-side resize.

torch.compile is off by default: pass `compile_mode` or set VFM_LENS_COMPILE (e.g. "max-autotune"). It compiles
the encoder in place (`nn.Module.compile`, state-dict keys unchanged). The first call per input shape is slow
(minutes for large models); inductor's on-disk cache (TORCHINDUCTOR_CACHE_DIR, by default
VFM_LENS_CACHE/inductor) makes later server starts fast.
"""

from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from segment_anything.modeling import MaskDecoder
from segment_anything.modeling import image_encoder as sam_encoder
from segment_anything.modeling import transformer as sam_transformer

from core import config


@dataclass(frozen=True)
class FastPaths:
    """What `apply_fast_paths` changed on one adapter."""

    attention: str  # how attention now runs
    preprocess: str  # where resize and normalise run, and for which inputs
    compiled: str | None  # torch.compile mode, None when not compiled


def apply_fast_paths(adapter, device: torch.device | str, compile_mode: str | None = None) -> FastPaths:
    """Route `adapter`'s attention through SDPA and its preprocessing onto `device` (its family's hook); idempotent."""
    if getattr(adapter, "fast_paths", None) is not None:
        return adapter.fast_paths
    from core.models import family

    described = family(adapter.spec.family)
    device = torch.device(device)
    attention, preprocess = described.fast_paths(adapter, device) if described.fast_paths else ("unchanged", "cpu")
    compile_mode = compile_mode or os.environ.get("VFM_LENS_COMPILE") or None
    if compile_mode:
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(config.cache_dir() / "inductor"))
        described.compile_target(adapter.module).compile(mode=compile_mode, dynamic=None)
    adapter.fast_paths = FastPaths(attention, preprocess, compile_mode)
    return adapter.fast_paths


# ---- the families' hooks: (adapter, device) → (how attention runs, where preprocessing runs) ---------------------
def sam_fast_paths(adapter, device: torch.device) -> tuple[str, str]:
    attention = f"sdpa + rel-pos mask ({_sam_sdpa(adapter.module)} modules)"
    preprocess = adapter.preprocess_on(device)  # the adapter's own on-device path
    if device.type == "cpu" and native_bf16() and not adapter.spec.tiny:  # test models: exactly upstream's
        adapter.encoder_dtype = torch.bfloat16
        attention += "; image encoder in bf16 (CPU autocast)"
    return attention, preprocess


def transformers_fast_paths(adapter, device: torch.device) -> tuple[str, str]:
    """A transformers ViT with a `pixels(images, size)` square-resize path (DINOv2, DINOv3)."""
    return sdpa_attention(adapter.module), _square_preprocess_on(adapter, device)


def clip_fast_paths(adapter, device: torch.device) -> tuple[str, str]:
    return "sdpa (open_clip nn.MultiheadAttention, unchanged)", _clip_preprocess_on(adapter, device)


def timm_fast_paths(adapter, device: torch.device) -> tuple[str, str]:
    return f"sdpa ({_fused_attn_on(adapter.module)} fused_attn switches)", "cpu"


def cpu_bf16(adapter) -> str | None:
    """On a CPU with native bf16 (`native_bf16`), a full-size model's image tower (its family's `bf16_tower`) in
    bf16 weights; the adapter feeds it pixels of its dtype and the engine reads float32 back. Says what it did, or
    None (another CPU, a tiny test model, a family without a tower, or VFM_LENS_CPU_BF16=0).

    Measured on a 2-core EPYC (AVX512-BF16), 40 images at 224 px: CLIP ViT-B/32 2.10 s → 1.06 s, DINOv2-S
    3.54 s → 2.09 s; embeddings' cosine to fp32 ≥ 0.9999 (`tests/core/test_fast.py`). bf16 autocast was slower
    than fp32 for these (2.64 s for CLIP: it casts weights and activations at every op); SAM's encoder, with 4,096
    tokens an image, gains from autocast instead (`sam_fast_paths`).
    """
    from core.models import family

    tower = family(adapter.spec.family).bf16_tower
    if tower is None or adapter.spec.tiny or not cpu_bf16_on():
        return None
    tower(adapter).to(torch.bfloat16)
    return "image tower in bf16 weights (CPU with native bf16)"


def cpu_bf16_on() -> bool:
    """Whether full-size image towers load in bf16 on this machine's CPU (`cpu_bf16`)."""
    return native_bf16() and os.environ.get("VFM_LENS_CPU_BF16") != "0"


def module_dtype(module: torch.nn.Module) -> torch.dtype:
    """The dtype of `module`'s first floating-point parameter (what its input pixels must be); float32 if none."""
    return next((p.dtype for p in module.parameters() if p.is_floating_point()), torch.float32)


@cache
def native_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices natively (AVX512-BF16 or AMX): there bf16 halves SAM's encoder
    time (2.1× on a 2-core EPYC, mask-logit correlation 0.99994 with fp32). Elsewhere bf16 is emulated, slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


# ---- attention ------------------------------------------------------------------------------------
class SdpaRelPosAttention(sam_encoder.Attention):
    """SAM image-encoder attention with SDPA; same parameters, same result as upstream up to rounding."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, _ = x.shape
        q, k, v = self.qkv(x).reshape(B, H * W, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        bias = rel_pos_bias(q, self.rel_pos_h, self.rel_pos_w, (H, W)) if self.use_rel_pos else None
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # default scale head_dim**-0.5 == self.scale
        return self.proj(x.transpose(1, 2).reshape(B, H, W, -1))


def rel_pos_bias(
    q: torch.Tensor, rel_pos_h: torch.Tensor, rel_pos_w: torch.Tensor, size: tuple[int, int]
) -> torch.Tensor:
    """Upstream `add_decomposed_rel_pos` as an additive mask: q (B, heads, H·W, C) → (B, heads, H·W, H·W).

    The terms use the unscaled q, as upstream does. On CUDA the rows are padded to a multiple of 8 elements
    (and sliced back), so the memory-efficient SDPA kernel takes the mask without copying it.
    """
    h, w = size
    r_q = q.unflatten(2, (h, w))  # (B, heads, h, w, C)
    rel_h = torch.einsum("bnhwc,hkc->bnhwk", r_q, sam_encoder.get_rel_pos(h, h, rel_pos_h).to(q.dtype))
    rel_w = torch.einsum("bnhwc,wkc->bnhwk", r_q, sam_encoder.get_rel_pos(w, w, rel_pos_w).to(q.dtype))
    bias = (rel_h[..., :, None] + rel_w[..., None, :]).flatten(-2).flatten(2, 3).to(q.dtype)
    if q.is_cuda and (h * w) % 8:
        bias = F.pad(bias, (0, -(h * w) % 8))[..., : h * w]
    return bias


class SdpaTokenAttention(sam_transformer.Attention):
    """SAM mask-decoder attention (tokens ↔ image) with SDPA."""

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        q = self._separate_heads(self.q_proj(q), self.num_heads)
        k = self._separate_heads(self.k_proj(k), self.num_heads)
        v = self._separate_heads(self.v_proj(v), self.num_heads)
        return self.out_proj(self._recombine_heads(F.scaled_dot_product_attention(q, k, v)))


class Float32MaskDecoder(MaskDecoder):
    """MaskDecoder whose outputs are float32 whatever the autocast dtype (SamPredictor calls `.numpy()` on them)."""

    def forward(self, *args, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
        masks, iou = super().forward(*args, **kwargs)
        return masks.float(), iou.float()


def _sam_sdpa(sam: torch.nn.Module) -> int:
    """Swap the classes of SAM's attention modules and mask decoder (parameters untouched); count swapped."""
    swaps = {
        sam_encoder.Attention: SdpaRelPosAttention,
        sam_transformer.Attention: SdpaTokenAttention,
        MaskDecoder: Float32MaskDecoder,
    }
    count = 0
    for module in sam.modules():
        if type(module) in swaps:
            module.__class__ = swaps[type(module)]
            count += type(module) is not Float32MaskDecoder
    return count


def fill_rel_pos(sam: torch.nn.Module, std: float = 0.5, seed: int = 0) -> None:
    """Seeded noise in SAM's relative-position tables. Random init leaves them zero, which would hide the
    rel-pos mask from accuracy checks on random weights (tests, benchmarks)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in sam.named_parameters():
            if "rel_pos" in name:
                param.copy_(std * torch.randn(param.shape, generator=generator))


def sdpa_attention(model: torch.nn.Module) -> str:
    """transformers' attention switched to SDPA when it is not already (it is by default)."""
    if model.config._attn_implementation != "sdpa":
        model.set_attn_implementation("sdpa")
    return f"sdpa (transformers attn_implementation={model.config._attn_implementation!r})"


def _fused_attn_on(model: torch.nn.Module) -> int:
    switches = [m for m in model.modules() if hasattr(m, "fused_attn")]
    for module in switches:
        module.fused_attn = True
    return len(switches)


# ---- preprocessing on the device ------------------------------------------------------------------
def upload(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A numpy array onto `device` as is (uint8 stays uint8); pinned and non-blocking on CUDA."""
    with warnings.catch_warnings():  # read-only arrays (the working set's) are only read here
        warnings.filterwarnings("ignore", "The given NumPy array is not writable")
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    if device.type == "cuda":
        tensor = tensor.pin_memory()
    return tensor.to(device, non_blocking=True)


def resize_uint8_grid(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """(B, 3, H, W) float in 0..255 → (B, 3, *size), antialiased, as PIL and torch's uint8 CPU resize do it.

    Those resize width first, then height, rounding and clipping to uint8 after each pass; so does this
    (a single float pass differs by up to ~20 levels where bicubic overshoots, e.g. upsampled noise).
    """
    for step in ((x.shape[-2], size[1]), tuple(size)):
        if tuple(x.shape[-2:]) != step:
            x = F.interpolate(x, size=step, mode=mode, antialias=True, align_corners=False).round_().clamp_(0, 255)
    return x


def gpu_preprocess(
    images: Sequence[np.ndarray],
    size: int,
    mean: Sequence[float],
    std: Sequence[float],
    device: torch.device | str,
    mode: str = "bicubic",
) -> torch.Tensor:
    """HWC uint8 RGB images → (B, 3, size, size) float32 on `device`: square resize, /255, normalised.

    Runs of same-shape images go up as one uint8 batch. `mode` "bicubic" with antialias is the filter of
    torchvision's resize, which DINOv2's processor (resample=3) and open_clip (bicubic) use; "bilinear" works too.
    """
    device = torch.device(device)
    if not images:
        return torch.empty(0, 3, size, size, device=device)
    batches = []
    for _, run in itertools.groupby(images, key=lambda im: im.shape):
        x = upload(np.stack(list(run)), device).permute(0, 3, 1, 2).float()
        batches.append(resize_uint8_grid(x, (size, size), mode))
    x = torch.cat(batches)
    mean_t = torch.tensor(mean, device=device).view(1, 3, 1, 1) * 255
    std_t = torch.tensor(std, device=device).view(1, 3, 1, 1) * 255
    return (x - mean_t) / std_t


def _square_preprocess_on(adapter, device: torch.device) -> str:
    """`adapter.pixels(images, size)`'s square resize on `device`, with the adapter's `mean` and `std`."""
    cpu_pixels = adapter.pixels

    def pixels(images: list[np.ndarray], size: int | None = None) -> torch.Tensor:
        if size is None:  # the eval crop keeps the processor's own path
            return cpu_pixels(images)
        return gpu_preprocess(images, size, adapter.mean, adapter.std, device)

    adapter.pixels = pixels
    return f"{device.type}: square resize; eval crop on cpu"


def _clip_preprocess_on(adapter, device: torch.device) -> str:
    cfg = adapter.module.visual.preprocess_cfg
    if cfg["interpolation"] not in ("bicubic", "bilinear") or cfg["size"][0] != cfg["size"][1]:
        return "cpu"
    cpu_pixels = adapter.pixels

    def pixels(images: list[np.ndarray]) -> torch.Tensor:
        if any(im.shape[0] != im.shape[1] for im in images):
            return cpu_pixels(images)
        return gpu_preprocess(images, cfg["size"][0], cfg["mean"], cfg["std"], device, cfg["interpolation"])

    adapter.pixels = pixels
    return f"{device.type} when every image is square, else cpu"
