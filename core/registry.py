"""Model registry: one `ModelSpec` per model; architecture and weights are separate axes.

A model is named by a reference string ``name`` or ``name@weights`` (for example
``clip_vit_b32@laion2b_s34b_b79k`` or ``dinov2_small@random``). ``random`` always means the same
architecture with seeded random-init weights; tiny test models only have ``random``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

RANDOM = "random"


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint file fetched by URL and verified by SHA-256 (SAM: `core.weights.UrlCheckpoint`)."""

    filename: str
    sha256: str
    size: int


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str  # its descriptor: core.models.family(family)
    arch: str  # upstream architecture id: open_clip name, HF repo id, SAM registry key, or timm model name
    title: str
    input_size: int  # side of the square model input, pixels
    patch_size: int
    embed_dim: int  # dimension of `Engine.embed` for this model
    weights: tuple[str, ...] = ()  # pretrained tags, first is the default; empty = random only
    checkpoint: Checkpoint | None = None
    registers: int = 0
    tiny: bool = False
    config: dict = field(default_factory=dict, compare=False, hash=False)  # tiny-model dims

    @property
    def default_weights(self) -> str:
        return self.weights[0] if self.weights else RANDOM

    @property
    def weight_options(self) -> tuple[str, ...]:
        return (*self.weights, RANDOM)


def _clip(name: str, arch: str, title: str, patch: int, dim: int, tags: tuple[str, ...]) -> ModelSpec:
    return ModelSpec(name, "clip", arch, title, 224, patch, dim, tags)


def _dinov2(size: str, dim: int, registers: bool = False) -> ModelSpec:
    repo = f"facebook/dinov2-with-registers-{size}" if registers else f"facebook/dinov2-{size}"
    letter = {"small": "S", "base": "B", "large": "L", "giant": "g"}[size]
    name = f"dinov2_{size}_reg" if registers else f"dinov2_{size}"
    title = f"DINOv2 ViT-{letter}/14" + (" + registers" if registers else "")
    return ModelSpec(name, "dinov2", repo, title, 224, 14, dim, ("hf",), registers=4 * registers)


def _dinov3(size: str, letter: str, hub: str, dim: int) -> ModelSpec:
    """A DINOv3 ViT pretrained on LVD-1689M: patch 16, 4 register tokens always (no twin without them)."""
    repo = f"facebook/dinov3-{hub}-pretrain-lvd1689m"
    return ModelSpec(
        f"dinov3_{size}", "dinov3", repo, f"DINOv3 ViT-{letter}/16", 224, 16, dim, ("lvd1689m",), registers=4
    )


def _timm(name: str, arch: str, title: str, patch: int, dim: int) -> ModelSpec:
    """An ImageNet-supervised baseline from timm; `patch` is the ViT patch or the CNN's total stride."""
    return ModelSpec(name, "timm", arch, title, 224, patch, dim, ("in1k",))


def _siglip2(size: str, arch: str, title: str, input_size: int, patch: int, dim: int) -> ModelSpec:
    """A fixed-resolution SigLIP 2 checkpoint (transformers `SiglipModel`; the NaFlex ones are a different class)."""
    return ModelSpec(f"siglip2_{size}", "siglip2", arch, title, input_size, patch, dim, ("hf",))


def _sam(kind: str, title: str, checkpoint: Checkpoint) -> ModelSpec:
    return ModelSpec(f"sam_{kind}", "sam", kind, title, 1024, 16, 256, ("meta",), checkpoint)


def _detector(name: str, family: str, arch: str, title: str, size: int, patch: int, dim: int) -> ModelSpec:
    """A text-prompted detector: `size` is the model's input side (Grounding DINO: the shortest edge), `dim` its
    query/embedding width."""
    return ModelSpec(name, family, arch, title, size, patch, dim, ("hf",))


def _sam2(size: str, title: str) -> ModelSpec:
    """A SAM 2.1 image model from the hub (`facebook/sam2.1-hiera-<size>`, transformers weights)."""
    name = f"sam2_hiera_{size.replace('-', '_')}"
    return ModelSpec(name, "sam2", f"facebook/sam2.1-hiera-{size}", title, 1024, 16, 256, ("hf",))


def _sam2_video(size: str, title: str) -> ModelSpec:
    """SAM 2.1 as a video tracker: the hub repo serves images and video alike."""
    name = f"sam2_video_hiera_{size.replace('-', '_')}"
    return ModelSpec(name, "sam2_video", f"facebook/sam2.1-hiera-{size}", title, 1024, 16, 256, ("hf",))


_TINY_DINOV2 = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "patch_size": 14,
    "image_size": 56,
}

_TINY_SAM3 = {  # every sub-config shrunk; the FPN levels of a 112 px input are 32², 16², 8², 4²
    "vision_config": {
        "backbone_config": {
            "model_type": "sam3_vit_model",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 112,
            "patch_size": 14,
            "window_size": 4,
            "global_attn_indexes": [1],
            "pretrain_image_size": 56,
        },
        "fpn_hidden_size": 32,
        "backbone_feature_sizes": [[32, 32], [16, 16], [8, 8]],
    },
    "text_config": {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "projection_dim": 32,
        "vocab_size": 49408,  # CLIP's BPE vocabulary (the real tokenizer)
        "max_position_embeddings": 32,
    },
    "geometry_encoder_config": {
        "hidden_size": 32,
        "num_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "roi_size": 2,
    },
    "detr_encoder_config": {"hidden_size": 32, "num_layers": 1, "num_attention_heads": 2, "intermediate_size": 64},
    "detr_decoder_config": {
        "hidden_size": 32,
        "num_layers": 2,
        "num_queries": 10,
        "num_attention_heads": 2,
        "intermediate_size": 64,
    },
    "mask_decoder_config": {"hidden_size": 32, "num_attention_heads": 2},
}

_TINY_PALIGEMMA = {  # with its stand-in tokenizer's 512 text tokens (core.models.paligemma.offline_tokenizer)
    "text_vocab": 512,
    "vision": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2},
    "text": {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 16,
        "query_pre_attn_scalar": 16,
        "sliding_window": 64,
    },
}

_SPECS: tuple[ModelSpec, ...] = (
    _clip("clip_vit_b32", "ViT-B-32", "CLIP ViT-B/32", 32, 512, ("openai", "laion2b_s34b_b79k")),
    _clip("clip_vit_l14", "ViT-L-14", "CLIP ViT-L/14", 14, 768, ("openai", "laion2b_s32b_b82k")),
    _siglip2("base", "google/siglip2-base-patch16-224", "SigLIP 2 ViT-B/16 @224", 224, 16, 768),
    _siglip2("large", "google/siglip2-large-patch16-256", "SigLIP 2 ViT-L/16 @256", 256, 16, 1024),
    _siglip2("so400m", "google/siglip2-so400m-patch14-384", "SigLIP 2 So400m/14 @384", 384, 14, 1152),
    *(_dinov2(s, d) for s, d in (("small", 384), ("base", 768), ("large", 1024), ("giant", 1536))),
    *(_dinov2(s, d, True) for s, d in (("small", 384), ("base", 768), ("large", 1024), ("giant", 1536))),
    _dinov3("small", "S", "vits16", 384),
    _dinov3("small_plus", "S+", "vits16plus", 384),
    _dinov3("base", "B", "vitb16", 768),
    _dinov3("large", "L", "vitl16", 1024),
    _dinov3("huge_plus", "H+", "vith16plus", 1280),
    _dinov3("7b", "7B", "vit7b16", 4096),
    _sam(
        "vit_b",
        "SAM ViT-B",
        Checkpoint(
            "sam_vit_b_01ec64.pth", "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912", 375_042_383
        ),
    ),
    _sam(
        "vit_l",
        "SAM ViT-L",
        Checkpoint(
            "sam_vit_l_0b3195.pth", "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622", 1_249_524_607
        ),
    ),
    _sam(
        "vit_h",
        "SAM ViT-H",
        Checkpoint(
            "sam_vit_h_4b8939.pth", "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e", 2_564_550_879
        ),
    ),
    _sam2("tiny", "SAM 2.1 Hiera-T"),
    _sam2("small", "SAM 2.1 Hiera-S"),
    _sam2("base-plus", "SAM 2.1 Hiera-B+"),
    _sam2("large", "SAM 2.1 Hiera-L"),
    ModelSpec("edgetam", "edgetam", "yonigozlan/EdgeTAM-hf", "EdgeTAM", 1024, 16, 256, ("hf",)),
    ModelSpec("sam3", "sam3", "facebook/sam3", "SAM 3", 1008, 14, 256, ("hf",)),
    ModelSpec(
        "paligemma2_3b_224", "paligemma", "google/paligemma2-3b-pt-224", "PaliGemma 2 3B 224", 224, 14, 2304, ("hf",)
    ),
    ModelSpec(
        "paligemma2_3b_448", "paligemma", "google/paligemma2-3b-pt-448", "PaliGemma 2 3B 448", 448, 14, 2304, ("hf",)
    ),
    *(
        _sam2_video(s, f"SAM 2.1 Hiera-{t} (video)")
        for s, t in (("tiny", "T"), ("small", "S"), ("base-plus", "B+"), ("large", "L"))
    ),
    _timm("timm_vit_b16", "vit_base_patch16_224.augreg2_in21k_ft_in1k", "ViT-B/16 ImageNet (timm)", 16, 768),
    _timm("timm_convnext_tiny", "convnext_tiny.fb_in1k", "ConvNeXt-T ImageNet (timm)", 32, 768),
    _detector(
        "grounding_dino_tiny", "grounding_dino", "IDEA-Research/grounding-dino-tiny", "Grounding DINO-T", 800, 4, 256
    ),
    _detector(
        "grounding_dino_base", "grounding_dino", "IDEA-Research/grounding-dino-base", "Grounding DINO-B", 800, 4, 256
    ),
    _detector("owlv2_base", "owlv2", "google/owlv2-base-patch16-ensemble", "OWLv2 B/16 (ensemble)", 960, 16, 512),
    # Tiny random-init variants, built from the same library classes (offline use and tests).
    ModelSpec(
        "clip_tiny",
        "clip",
        "vfm-lens-clip-tiny",
        "CLIP tiny (test)",
        64,
        16,
        32,
        tiny=True,
        config={
            "embed_dim": 32,
            "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
            "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
        },
    ),
    ModelSpec(
        "siglip2_tiny",
        "siglip2",
        "vfm-lens-siglip2-tiny",
        "SigLIP 2 tiny (test)",
        64,
        16,
        32,
        tiny=True,
        config={
            "text_config": {
                "vocab_size": 512,
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "max_position_embeddings": 64,
            },
            "vision_config": {
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_hidden_layers": 2,
                "num_attention_heads": 2,
                "image_size": 64,
                "patch_size": 16,
            },
        },
    ),
    ModelSpec(
        "dinov2_tiny",
        "dinov2",
        "dinov2-tiny",
        "DINOv2 tiny (test)",
        56,
        14,
        32,
        tiny=True,
        config=_TINY_DINOV2,
    ),
    ModelSpec(
        "dinov2_tiny_reg",
        "dinov2",
        "dinov2-tiny-reg",
        "DINOv2 tiny + registers (test)",
        56,
        14,
        32,
        registers=4,
        tiny=True,
        config={**_TINY_DINOV2, "num_register_tokens": 4},
    ),
    ModelSpec(
        "dinov3_tiny",
        "dinov3",
        "dinov3-tiny",
        "DINOv3 tiny (test)",
        64,
        16,
        32,
        registers=4,
        tiny=True,
        config={
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "patch_size": 16,
            "num_register_tokens": 4,
            "image_size": 64,
        },
    ),
    ModelSpec(
        "timm_tiny",
        "timm",
        "vit_tiny_patch16_224",
        "timm ViT tiny (test)",
        64,
        16,
        32,
        tiny=True,
        config={"img_size": 64, "depth": 2, "embed_dim": 32, "num_heads": 2},
    ),
    ModelSpec(
        "sam_tiny",
        "sam",
        "sam-tiny",
        "SAM tiny (test)",
        256,
        16,
        32,
        tiny=True,
        config={
            "encoder_embed_dim": 32,
            "encoder_depth": 2,
            "encoder_num_heads": 2,
            "encoder_global_attn_indexes": (1,),
            "window_size": 4,
            "prompt_embed_dim": 32,
            "image_size": 256,
        },
    ),
    ModelSpec(
        "gdino_tiny",
        "grounding_dino",
        "grounding-dino-tiny-test",
        "Grounding DINO tiny (test)",
        128,
        4,
        32,
        tiny=True,
        config={
            "backbone_config": {
                "model_type": "swin",
                "embed_dim": 8,
                "depths": [1, 1, 1, 1],
                "num_heads": [1, 1, 1, 1],
                "window_size": 4,
                "image_size": 64,
                "out_indices": [2, 3, 4],
            },
            "text_config": {
                "model_type": "bert",
                "vocab_size": 128,
                "hidden_size": 16,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "intermediate_size": 32,
            },
            "d_model": 32,  # GroupNorm(32, d_model) needs a multiple of 32
            "encoder_layers": 1,
            "decoder_layers": 2,  # the tied box heads need a decoder layer beyond the first
            "encoder_ffn_dim": 32,
            "decoder_ffn_dim": 32,
            "encoder_attention_heads": 2,
            "decoder_attention_heads": 2,
            "encoder_n_points": 2,
            "decoder_n_points": 2,
            "num_queries": 12,
            "shortest_edge": 128,  # the image processor's resize: at 64 px a wide image's coarsest level is 1 pixel
            "longest_edge": 213,  # high, which GroupNorm(32, 32) rejects
        },
    ),
    ModelSpec(
        "owlv2_tiny",
        "owlv2",
        "owlv2-tiny-test",
        "OWLv2 tiny (test)",
        64,
        16,
        32,
        tiny=True,
        config={
            "text_config": {
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
            },
            "vision_config": {
                "image_size": 64,
                "patch_size": 16,
                "hidden_size": 32,
                "intermediate_size": 64,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
            },
            "projection_dim": 32,
        },
    ),
    ModelSpec(
        "sam2_tiny",
        "sam2",
        "sam2-tiny",
        "SAM 2 tiny (test)",
        256,
        16,
        32,
        tiny=True,
        config={"width": 16, "blocks": (1, 1, 2, 1), "global_blocks": (3,), "windows": (4, 4, 4, 4), "hidden": 32},
    ),
    ModelSpec(
        "edgetam_tiny",
        "edgetam",
        "edgetam-tiny",
        "EdgeTAM tiny (test)",
        256,
        16,
        32,
        tiny=True,
        config={"repvit_dims": (8, 16, 32, 64), "hidden": 32},
    ),
    ModelSpec(
        "sam3_tiny",
        "sam3",
        "sam3-tiny",
        "SAM 3 tiny (test)",
        112,
        14,
        32,
        tiny=True,
        config=_TINY_SAM3,
    ),
    ModelSpec(
        "paligemma_tiny",
        "paligemma",
        "paligemma-tiny",
        "PaliGemma tiny (test)",
        28,
        14,
        32,
        tiny=True,
        config=_TINY_PALIGEMMA,
    ),
    ModelSpec(
        "sam2_video_tiny",
        "sam2_video",
        "sam2-video-tiny",
        "SAM 2 video tiny (test)",
        64,
        16,
        128,
        tiny=True,
        config={
            "image_size": 64,
            "hidden_size": 128,  # two 64-channel memory tokens per object pointer, as the real 256 gives four
            "hiera": {
                "dim": 16,
                "heads": 1,
                "blocks": (1, 1, 2, 1),
                "global_blocks": (3,),  # not a stage's first block: that one pools its queries in windows
                "windows": (4, 2, 2, 1),
                "background": (2, 2),
            },
        },
    ),
)
_BY_NAME = {s.name: s for s in _SPECS}


def list_models(family: str | None = None, include_tiny: bool = True) -> list[ModelSpec]:
    return [s for s in _SPECS if (family is None or s.family == family) and (include_tiny or not s.tiny)]


def get(name: str) -> ModelSpec:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"Unknown model {name!r}; known: {', '.join(_BY_NAME)}") from None


@dataclass(frozen=True)
class ModelRef:
    """A spec plus the weights asked for. `str(ref)` is the ``name@weights`` form."""

    spec: ModelSpec
    weights: str

    def __str__(self) -> str:
        return f"{self.spec.name}@{self.weights}"


def parse(ref: str | ModelRef) -> ModelRef:
    """``"dinov2_small"`` → default weights; ``"clip_vit_b32@laion2b_s34b_b79k"`` → that tag."""
    if isinstance(ref, ModelRef):
        return ref
    name, _, weights = ref.partition("@")
    spec = get(name)
    weights = weights or spec.default_weights
    if weights not in spec.weight_options:
        raise ValueError(f"{spec.title} has no weights {weights!r}; choose from {', '.join(spec.weight_options)}")
    return ModelRef(spec, weights)


def register_variants(ref: str | ModelRef) -> tuple[str, ...]:
    """``name@weights`` of the model without and with registers, same weights, when it has a ``_reg`` twin (DINOv2,
    given either way); otherwise the model alone (DINOv3 always has registers, CLIP never)."""
    ref = parse(ref)
    base = ref.spec.name.removesuffix("_reg")
    if base not in _BY_NAME or f"{base}_reg" not in _BY_NAME:
        return (str(ref),)
    return str(parse(f"{base}@{ref.weights}")), str(parse(f"{base}_reg@{ref.weights}"))


def display_name(ref: str | ModelRef) -> str:
    """The model's title, with its weights unless it is a tiny test model (random only)."""
    ref = parse(ref)
    return ref.spec.title if ref.weights == RANDOM and ref.spec.tiny else f"{ref.spec.title} ({ref.weights})"
