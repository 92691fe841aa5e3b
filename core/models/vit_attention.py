"""One layer's softmax attention from a transformers ViT's own eager attention path (DINOv2, DINOv3, any HF ViT).

transformers picks its attention function from `module.config._attn_implementation` on every forward; the
engine runs these models with "sdpa", which returns no weights. `layer_attention` switches the module to
"eager" for one forward and back afterwards (`eager_attention`), and takes the weights of the chosen block only
from a forward hook on its attention module: `output_attentions=True` would keep every block's (B, heads, T, T),
gigabytes for a large model at a large size.

Thread safety: the switch changes the shared module. The engine calls this under the model's own lock, which every
other forward on that module also holds (`Engine._forward`), so no other thread ever sees the eager setting; the
previous implementation is restored in a `finally`. (A separate eager copy of the module would double its memory.)

The attention modules are found through transformers' own output-recording table (`_can_record_outputs`), so
any model that can return `attentions` works: DINOv2, DINOv2 with registers, DINOv3 ViT.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


def attention_modules(module: torch.nn.Module) -> list[torch.nn.Module]:
    """The attention module of every block, in order (block k is item k - 1)."""
    recorded = getattr(module, "_can_record_outputs", None) or {}
    kind = recorded.get("attentions")
    kind = getattr(kind, "target_class", kind)  # an OutputRecorder or the class itself
    if not isinstance(kind, type):
        raise ValueError(f"{type(module).__name__} does not say which of its modules compute attention")
    return [m for m in module.modules() if isinstance(m, kind)]


@contextmanager
def eager_attention(module: torch.nn.Module) -> Iterator[None]:
    """`module` runs transformers' eager attention (which returns its weights) inside, its previous one after.

    The caller holds the lock every other forward on `module` holds (see the module docstring)."""
    before = module.config._attn_implementation
    if before != "eager":
        module.set_attn_implementation("eager")
    try:
        yield
    finally:
        if module.config._attn_implementation != before:
            module.set_attn_implementation(before)


def layer_attention(module: torch.nn.Module, pixel_values: torch.Tensor, layer: int) -> torch.Tensor:
    """(B, heads, T, T) float32 softmax attention of block `layer` (1..L), queries along dim 2, keys along dim 3.

    T counts every token: CLS, then register tokens, then the patches row by row (`core.models.attention_groups` splits
    them). One forward pass under the eager attention path; only this block's weights are kept.
    """
    blocks = attention_modules(module)
    if not 1 <= layer <= len(blocks):
        raise ValueError(f"layer must be in 1..{len(blocks)}, got {layer}")
    caught: list[torch.Tensor] = []

    def keep(_module, _inputs, outputs) -> None:
        caught.append(outputs[1])

    hook = blocks[layer - 1].register_forward_hook(keep)
    try:
        with eager_attention(module):
            module(pixel_values=pixel_values)
    finally:
        hook.remove()
    if not caught or caught[0] is None:
        raise RuntimeError(f"{type(module).__name__}'s attention returned no weights on the eager path")
    return caught[0].float()
