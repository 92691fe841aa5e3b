import pytest

from core import registry
from core.model_cards import model_cards


def test_references_pick_architecture_and_weights_separately():
    assert str(registry.parse("clip_vit_b32")) == "clip_vit_b32@openai"
    assert str(registry.parse("clip_vit_b32@laion2b_s34b_b79k")) == "clip_vit_b32@laion2b_s34b_b79k"
    assert str(registry.parse("dinov2_giant_reg@random")) == "dinov2_giant_reg@random"
    assert str(registry.parse("sam_tiny")) == "sam_tiny@random"
    with pytest.raises(ValueError, match="no weights"):
        registry.parse("dinov2_small@openai")
    with pytest.raises(KeyError, match="Unknown model"):
        registry.parse("dinov4_small")


def test_every_family_has_real_models_and_a_tiny_one():
    for family, real in (
        ("clip", {"clip_vit_b32", "clip_vit_l14"}),
        ("sam", {"sam_vit_b", "sam_vit_l", "sam_vit_h"}),
        ("dinov2", {f"dinov2_{s}{r}" for s in ("small", "base", "large", "giant") for r in ("", "_reg")}),
        ("dinov3", {f"dinov3_{s}" for s in ("small", "small_plus", "base", "large", "huge_plus", "7b")}),
    ):
        names = {s.name for s in registry.list_models(family)}
        assert real <= names and any(registry.get(n).tiny for n in names)
    assert all(s.checkpoint and len(s.checkpoint.sha256) == 64 for s in registry.list_models("sam", include_tiny=False))


def test_model_cards_match_the_published_sizes():
    cards = {row["model"]: row for row in model_cards(with_status=False)}
    assert cards["clip_vit_b32"]["embedding dim"] == 512 and 150 < cards["clip_vit_b32"]["parameters (M)"] < 153
    assert cards["dinov2_giant"]["embedding dim"] == 1536 and 1100 < cards["dinov2_giant"]["parameters (M)"] < 1150
    assert cards["sam_vit_h"]["embedding dim"] == 256 and 630 < cards["sam_vit_h"]["parameters (M)"] < 645
    assert cards["dinov2_small"]["patch (px)"] == 14 and cards["clip_vit_b32"]["patch (px)"] == 32


def test_register_variants_pair_a_dinov2_model_with_its_twin_and_leave_others_alone():
    assert registry.register_variants("dinov2_tiny@random") == ("dinov2_tiny@random", "dinov2_tiny_reg@random")
    assert registry.register_variants("dinov2_tiny_reg@random") == ("dinov2_tiny@random", "dinov2_tiny_reg@random")
    assert registry.register_variants("dinov2_small_reg") == ("dinov2_small@hf", "dinov2_small_reg@hf")
    assert registry.register_variants("dinov3_small") == ("dinov3_small@lvd1689m",)  # registers always, no twin
    assert registry.register_variants("dinov3_tiny") == ("dinov3_tiny@random",)
    assert registry.register_variants("clip_tiny") == ("clip_tiny@random",)


def test_display_name_shows_weights_except_for_tiny_test_models():
    assert registry.display_name("clip_vit_b32") == "CLIP ViT-B/32 (openai)"
    assert registry.display_name("dinov2_small@random") == "DINOv2 ViT-S/14 (random)"
    assert registry.display_name("sam_tiny") == "SAM tiny (test)"


def test_the_readme_lists_every_model_as_the_registry_has_it():
    """README.md's model table is `python -m core.model_cards` (regenerate it when a model or family changes)."""
    from pathlib import Path

    from core.model_cards import README_END, README_START, readme_table

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert readme.split(README_START)[1].split(README_END)[0].strip() == readme_table()
