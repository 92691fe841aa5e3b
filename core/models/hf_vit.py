"""What DINOv2 and DINOv3 adapters share: a transformers ViT whose tokens are [CLS, registers…, patch grid].

A family adapter subclasses `TokenGridViT`, builds its `module` and gives `pixels(images, size)` (its own
preprocessing); the base reads the CLS token, patch grids of any layer and every layer at once. The family files
keep what differs: the model classes, the configs, the weights and the image processor.
"""

from __future__ import annotations

import numpy as np
import torch

from core.models.fast import module_dtype
from core.models.vit_attention import layer_attention
from core.registry import ModelSpec


class TokenGridViT:
    """`module(pixel_values, output_hidden_states)` returns `last_hidden_state` (after the final LayerNorm),
    `pooler_output` (the normalised CLS token) and `hidden_states` (embeddings, then the raw output of each block)."""

    def __init__(self, spec: ModelSpec, weights: str, module: torch.nn.Module):
        self.spec, self.weights, self.module = spec, weights, module
        self.num_layers = module.config.num_hidden_layers
        self.registers = getattr(module.config, "num_register_tokens", 0)  # of the loaded model, not just the spec

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def pixels(self, images: list[np.ndarray], size: int | None = None) -> torch.Tensor:
        """HWC uint8 RGB → (B, 3, S, S) normalised: the model's eval transform (size None) or a square `size`."""
        raise NotImplementedError

    def embed(self, images: list[np.ndarray]) -> torch.Tensor:
        """Normalised CLS token, (B, D)."""
        return self.module(pixel_values=self._input(images)).pooler_output

    def patch_tokens(self, images: list[np.ndarray], size: int, layer: int | None = None) -> torch.Tensor:
        """(B, h, w, D) patch tokens of an image resized to `size`×`size` (a multiple of the patch).

        layer None: the last layer after the final LayerNorm (what the DINO papers' PCA pictures use);
        layer k in 1..num_layers: the raw output of block k. CLS and register tokens are dropped.
        """
        if layer is not None and not 1 <= layer <= self.num_layers:
            raise ValueError(f"layer must be in 1..{self.num_layers}, got {layer}")
        out = self._forward(images, size, hidden_states=layer is not None)
        return self._grid(out.last_hidden_state if layer is None else out.hidden_states[layer], size)

    def layer_tokens(self, images: list[np.ndarray], size: int) -> torch.Tensor:
        """(L, B, h, w, D) raw patch tokens of every block 1..L from one forward pass (`patch_tokens(layer=k)`
        for each k)."""
        out = self._forward(images, size, hidden_states=True)
        return torch.stack([self._grid(tokens, size) for tokens in out.hidden_states[1:]])

    def attentions(self, images: list[np.ndarray], size: int, layer: int) -> torch.Tensor:
        """(B, heads, T, T) softmax attention of block `layer` (1..num_layers) at `size`×`size`, from the model's own
        eager attention path; tokens CLS, registers, patches (`core.models.attention_groups.split_attention`)."""
        if size % self.spec.patch_size:
            raise ValueError(f"size must be a multiple of {self.spec.patch_size}, got {size}")
        return layer_attention(self.module, self._input(images, size), layer)

    def _forward(self, images: list[np.ndarray], size: int, hidden_states: bool):
        if size % self.spec.patch_size:
            raise ValueError(f"size must be a multiple of {self.spec.patch_size}, got {size}")
        return self.module(pixel_values=self._input(images, size), output_hidden_states=hidden_states)

    def _input(self, images: list[np.ndarray], size: int | None = None) -> torch.Tensor:
        """`pixels` on the model's device, in its dtype (bf16 weights on CPUs with native bf16: `fast.cpu_bf16`)."""
        return self.pixels(images, size).to(self.device, module_dtype(self.module))

    def _grid(self, tokens: torch.Tensor, size: int) -> torch.Tensor:
        """(B, T, D) tokens [CLS, registers…, patches] → (B, h, w, D) patch tokens, row-major."""
        grid = size // self.spec.patch_size
        return tokens[:, 1 + self.registers :].reshape(len(tokens), grid, grid, -1)
