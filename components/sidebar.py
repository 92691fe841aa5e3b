"""The shared sidebar: device, one model per role with its weights, and the random-weights banner.

A role is what pages need a model for; any family that can do it is offered (`core.models.Can`)."""

from __future__ import annotations

from collections.abc import Iterable

import streamlit as st

from components.presenter import presenter_switch
from components.state import chosen_model, chosen_weights, get_engine
from core import config, registry
from core.models import Can, can, families, family
from core.models.fast import cpu_bf16_on
from core.weights import WeightsStatus

# picked here; the timm baselines are offered on the Compare page
ROLES = {
    "text": ("Image–text model", Can.TEXT),
    "dense": ("Dense features", Can.PATCHES),
    "segment": ("Segmenter", Can.PROMPTS),
}
TEXT, DENSE, SEGMENT = ROLES


def _tiny() -> bool:
    return config.profile() == "tiny"


def default_model(role: str) -> str:
    """A role's default: the first preferred model that can do it (a lecture pack's models), else the default model
    of the first family that can (its tiny one in the tiny profile); for a family name, that family's default."""
    offered = {s.name for s in offered_models(role)}
    preferred = [name for name in (m.partition("@")[0] for m in config.preferred_models()) if name in offered]
    if preferred:
        return preferred[0]
    described = next(f for f in families() if ROLES[role][1] in f.can) if role in ROLES else family(role)
    return described.tiny if _tiny() else described.default


def offered_models(role: str) -> list[registry.ModelSpec]:
    """The models for `role` (or of a family) to choose from: the tiny test models only in the tiny profile."""
    specs = registry.list_models(include_tiny=_tiny())
    if role not in ROLES:
        return [s for s in specs if s.family == role]
    return [s for s in specs if can(s, ROLES[role][1])]


def selected_model(role: str) -> str:
    """The ``name@weights`` the user chose for `role` (the default before the sidebar ran)."""
    name = chosen_model(role).get(default_model(role))
    if name not in {s.name for s in offered_models(role)}:
        name = default_model(role)
    spec = registry.get(name)
    packed = {ref.partition("@")[0]: ref.partition("@")[2] for ref in config.preferred_models()}
    weights = chosen_weights(role).get(packed.get(name) or spec.default_weights)
    return f"{name}@{weights if weights in spec.weight_options else spec.default_weights}"


def _missing(model: str) -> bool:
    """True when `model` (``name@weights``) asks for pretrained weights that are not here: random ones run."""
    ref = registry.parse(model)
    return ref.weights != registry.RANDOM and get_engine().weights_status(ref).is_random


def _weights_title(name: str, weights: str) -> str:
    """A weights option as the picker shows it: a tag whose weights are missing says that it runs random."""
    return f"{weights} (not found: random weights)" if _missing(f"{name}@{weights}") else weights


def model_label(model: str) -> str:
    """The model's display name for pickers, tables and messages; missing weights say that random ones run."""
    ref = registry.parse(model)
    if _missing(model):
        return f"{ref.spec.title} ({ref.weights} not found: random weights)"
    return registry.display_name(ref)


def _model_picker(role: str) -> WeightsStatus:
    names = [s.name for s in offered_models(role)]
    name = st.selectbox(
        ROLES[role][0],
        names,
        index=names.index(default_model(role)),
        format_func=lambda n: registry.get(n).title,
        key=chosen_model(role).key,
    )
    spec = registry.get(name)
    if len(spec.weight_options) > 1:
        st.selectbox(
            f"{ROLES[role][0]} weights",
            spec.weight_options,
            format_func=lambda weights: _weights_title(name, weights),
            key=chosen_weights(role).key,
            label_visibility="collapsed",
        )
    status = get_engine().weights_status(selected_model(role))
    icon = {"pretrained": ":material/verified:", "local": ":material/folder:", "random": ":material/casino:"}[
        status.label
    ]
    st.caption(f"{icon} weights: **{status.label}** — {status.message}")
    return status


def show_sidebar() -> list[WeightsStatus]:
    """Render the sidebar; returns the weights status of the chosen model of each role."""
    engine = get_engine()
    with st.sidebar:
        presenter_switch()
        precision = str(engine.dtype).removeprefix("torch.")
        if engine.device.type == "cpu" and cpu_bf16_on():
            precision += "; full-size image towers in bf16"  # this CPU multiplies bf16 natively
        st.markdown(f"**Device:** `{engine.device.type}` ({precision})")
        statuses = [_model_picker(role) for role in ROLES]
        if engine.notices:
            st.caption(f":material/memory: {engine.notices[-1]}")
    return statuses


def random_models(models: Iterable[str]) -> list[str]:
    """Display names of `models` (``name@weights``) that run with random weights (asked for, or not found)."""
    engine = get_engine()
    return [model_label(m) for m in dict.fromkeys(models) if engine.weights_status(m).is_random]


def random_note(models: Iterable[str], meaning: str = "") -> None:
    """A warning naming the models a page or view runs (beyond the banner's sidebar choice) with random weights.

    `meaning` says what random weights do to this particular result; the default is the banner's sentence.
    """
    random = random_models(models)
    if random:
        st.warning(
            f"**Random weights here:** {', '.join(random)}. "
            + (meaning or "Their outputs show the architecture at work, not what the model learned."),
            icon=":material/casino:",
        )


def show_random_banner(statuses: list[WeightsStatus]) -> None:
    """A visible banner on every page when any chosen model has random weights."""
    random = [s.ref.spec.title for s in statuses if s.is_random]
    if random:
        st.warning(
            f"**Random weights:** {', '.join(random)}. Their outputs show the architecture at work, "
            "not what the model learned. See the sidebar for how to get the real weights.",
            icon=":material/casino:",
        )
