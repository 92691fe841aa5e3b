"""CLIP text embeddings and projected patch tokens: equal to open_clip's own paths on the same random weights."""

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from core.engine import Engine

TOL = 1e-5


def _upstream(engine):
    model, _, _ = open_clip.create_model_and_transforms("vfm-lens-clip-tiny", pretrained=None)
    model.load_state_dict(engine.model("clip_tiny").adapter.module.state_dict())
    return model.eval()


def test_embed_text_equals_open_clip_encode_text(engine):
    texts = ["a photo of a cat.", "a drawing of a dog.", "naïve café ☕"]
    ours = engine.embed_text(texts, "clip_tiny")
    tokenizer = open_clip.get_tokenizer("vfm-lens-clip-tiny")
    with torch.no_grad():
        theirs = _upstream(engine).encode_text(tokenizer(texts))
    assert ours.shape == (3, 32) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs.numpy(), atol=TOL, rtol=TOL)
    assert engine.embed_text([], "clip_tiny").shape == (0, 32)


def test_text_embeddings_are_cached_by_text(engine, monkeypatch):
    first = engine.embed_text(["a cat", "a dog"], "clip_tiny")
    adapter = engine.model("clip_tiny").adapter
    seen = []
    real = adapter.embed_text
    monkeypatch.setattr(adapter, "embed_text", lambda texts: seen.append(list(texts)) or real(texts))
    again = engine.embed_text(["a dog", "a bird", "a cat"], "clip_tiny")
    assert seen == [["a bird"]]
    np.testing.assert_array_equal(again[[2, 0]], first)


def test_clip_patch_embeddings_are_open_clips_output_tokens_projected(engine, images):
    image = images[0]
    ours = engine.clip_patch_embeddings(image, "clip_tiny")
    upstream = _upstream(engine)
    upstream.visual.output_tokens = True
    squashed = Image.fromarray(image).resize((64, 64), Image.Resampling.BICUBIC)
    pixels = engine.model("clip_tiny").adapter.preprocess(squashed)[None]  # already square: no crop happens
    with torch.no_grad():
        pooled, tokens = upstream.visual(pixels)
        projected = (tokens @ upstream.visual.proj).reshape(4, 4, 32)
        # the CLS token goes through the same ln_post + proj: it is the image embedding of that pixel tensor
        upstream.visual.output_tokens = False
        np.testing.assert_allclose(pooled.numpy(), upstream.encode_image(pixels).numpy(), atol=TOL)
    assert ours.shape == (4, 4, 32) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, projected.numpy(), atol=1e-4)


def test_maskclip_tokens_are_the_last_block_attending_each_token_to_itself_only(engine, images):
    """MaskCLIP's value path (out_proj of v) is what the last attention block gives when each token may attend only
    to itself: softmax over one key is 1. Checked with open_clip's own block and a diagonal attention mask."""
    image = images[0]
    ours = engine.clip_patch_embeddings(image, "clip_tiny", route="maskclip")
    visual = _upstream(engine).visual
    squashed = Image.fromarray(image).resize((64, 64), Image.Resampling.BICUBIC)
    pixels = engine.model("clip_tiny").adapter.preprocess(squashed)[None]
    with torch.no_grad():
        x = visual._embeds(pixels)
        *blocks, last = visual.transformer.resblocks
        for block in blocks:
            x = block(x)
        tokens = x.shape[1]
        only_self = torch.full((tokens, tokens), float("-inf")).fill_diagonal_(0.0)
        attended = last.attention(last.ln_1(x), attn_mask=only_self)  # out_proj(softmax(...)·v) with one key each
        expected = (visual.ln_post(attended[:, 1:]) @ visual.proj).reshape(4, 4, 32)
    assert ours.shape == (4, 4, 32)
    np.testing.assert_allclose(ours, expected.numpy(), atol=1e-4)
    final = engine.clip_patch_embeddings(image, "clip_tiny", route="final")
    assert not np.allclose(ours, final, atol=1e-3)  # two routes, two caches
    with pytest.raises(ValueError, match="route"):
        engine.model("clip_tiny").adapter.patch_embeddings([image], "nope")


def test_text_calls_refuse_models_without_a_text_tower(images):
    fresh = Engine(device="cpu", cache=None)
    with pytest.raises(ValueError, match="CLIP"):
        fresh.embed_text(["a cat"], "dinov2_tiny")
    with pytest.raises(ValueError, match="CLIP"):
        fresh.clip_patch_embeddings(images[0], "timm_tiny")
