"""Eval preprocessing on the arrays (core.models.pixels) against the upstream transforms it replaces.

Tolerance: torch's uint8 antialiased resize and PIL's round differently, so a pixel may differ by one level
(of 255) from open_clip's and timm's PIL path; DINOv2's processor resizes with torch, so it matches to float error.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from core.models.dinov2 import _processor
from core.models.pixels import EvalRecipe, recipe_of


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (N, D) arrays."""
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def levels(ours: torch.Tensor, theirs: torch.Tensor, std) -> torch.Tensor:
    """|difference| of two normalised pixel batches in levels of 255."""
    return ((ours - theirs) * torch.as_tensor(std).view(-1, 3, 1, 1) * 255).abs()


def photos() -> list[np.ndarray]:
    """Photos and noise: landscape, portrait, square, a thin strip (upscaled), odd crop offsets."""
    import skimage.data

    astronaut = Image.fromarray(skimage.data.astronaut())
    noise = np.random.default_rng(0).integers(0, 256, (33, 200, 3), dtype=np.uint8)
    return [
        np.asarray(astronaut.resize((1500, 1100))),
        np.asarray(astronaut.resize((700, 1001))),
        skimage.data.chelsea(),
        skimage.data.coffee()[:, :400],
        noise,
    ]


@pytest.mark.parametrize("size", [64, 224])
def test_open_clip_and_timm_style_recipes_match_their_pil_transforms(size):
    for interpolation, resize in ((T.InterpolationMode.BICUBIC, size), (T.InterpolationMode.BILINEAR, size + 7)):
        mean, std = (0.48, 0.46, 0.41), (0.27, 0.26, 0.28)
        upstream = T.Compose(
            [T.Resize(resize, interpolation), T.CenterCrop(size), T.ToTensor(), T.Normalize(mean, std)]
        )
        recipe = recipe_of(upstream)
        assert recipe == EvalRecipe(resize, size, mean, std, interpolation.value)
        for image in photos():
            diff = levels(recipe.pixels([image]), upstream(Image.fromarray(image))[None], std)
            assert diff.max() <= 1.001 and diff.mean() < 0.05, (image.shape, diff.max(), diff.mean())


def test_the_dinov2_recipe_matches_the_transformers_processor():
    recipe = EvalRecipe(round(56 * 256 / 224), 56, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), "bicubic", True)
    for image in photos():
        theirs = _processor(56, crop=True)(images=[image.copy()], return_tensors="pt")["pixel_values"]
        assert levels(recipe.pixels([image]), theirs, (0.229, 0.224, 0.225)).max() < 1e-3, image.shape


def test_other_transforms_keep_the_upstream_path():
    assert recipe_of(T.Compose([T.Resize((64, 64)), T.ToTensor(), T.Normalize((0.5,) * 3, (0.5,) * 3)])) is None
    assert recipe_of(T.Compose([T.Resize(64, max_size=80), T.CenterCrop(64), T.Normalize((0,) * 3, (1,) * 3)])) is None
    nearest = T.Resize(64, T.InterpolationMode.NEAREST)
    assert recipe_of(T.Compose([nearest, T.CenterCrop(64), T.Normalize((0,) * 3, (1,) * 3)])) is None


def test_read_only_images_are_read_without_a_warning():
    image = photos()[2]
    image.flags.writeable = False
    recipe = EvalRecipe(64, 64, (0.5,) * 3, (0.5,) * 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert recipe.pixels([image]).shape == (1, 3, 64, 64)
