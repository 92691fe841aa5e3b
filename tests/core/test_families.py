"""Every family's descriptor tells the truth: what it says it can do, its tiny model's adapter does; every role of
the sidebar offers only models that can do what the role's pages need, and every family that can."""

import pytest
import torch

from core import registry
from core.models import Can, build_adapter, families, family, family_names

# what each capability promises: the adapter's methods and attributes the engine and pages call
NEEDS = {
    Can.EMBED: ("embed",),
    Can.PATCHES: ("patch_tokens", "layer_tokens", "num_layers", "pixels"),
    Can.TEXT: ("embed_text", "zero_shot_rule"),
    Can.DENSE_TEXT: ("patch_embeddings",),
    Can.PROMPTS: ("image_embedding", "embedding_from", "predict", "auto_masks"),
    Can.ATTENTION: ("attentions",),
    Can.DETECT: ("raw", "detections"),
}


@pytest.mark.parametrize("name", family_names())
def test_a_family_can_do_what_it_says(name):
    described = family(name)
    assert described.name == name and described.can, name
    tiny = registry.get(described.tiny)
    assert tiny.tiny and tiny.family == name and registry.get(described.default).family == name
    adapter = build_adapter(tiny, "random", None, torch.device("cpu"))
    for capability in described.can:
        if capability == Can.EMBED and Can.PROMPTS in described.can:
            continue  # a promptable model's image embedding is the spatial mean of its SAM embedding (the engine's)
        missing = [attr for attr in NEEDS.get(capability, ()) if not hasattr(adapter, attr)]
        assert not missing, f"{name} says it can do {capability} but its adapter lacks {missing}"


def test_each_role_offers_exactly_the_models_that_can_do_it(monkeypatch):
    from components import sidebar

    monkeypatch.setenv("VFM_LENS_PROFILE", "tiny")
    for role, (_, capability) in sidebar.ROLES.items():
        offered = sidebar.offered_models(role)
        assert offered and all(capability in family(s.family).can for s in offered), role
        able = {f.name for f in families() if capability in f.can}
        assert {s.family for s in offered} == able, role
        assert sidebar.default_model(role) in {s.name for s in offered}
