"""The shared sidebar: device, one model per family with its weights, and the random-weights banner."""

from __future__ import annotations

from collections.abc import Iterable

import streamlit as st

from components.state import get_engine
from core import config, registry
from core.weights import WeightsStatus

FAMILIES = {"clip": "CLIP", "dinov2": "DINOv2", "sam": "SAM"}  # picked here; timm baselines on the Compare page
_DEFAULTS = {"clip": "clip_vit_b32", "dinov2": "dinov2_small", "sam": "sam_vit_b", "timm": "timm_vit_b16"}
_TINY = {"clip": "clip_tiny", "dinov2": "dinov2_tiny", "sam": "sam_tiny", "timm": "timm_tiny"}


def default_model(family: str) -> str:
    return (_TINY if config.profile() == "tiny" else _DEFAULTS)[family]


def offered_models(family: str) -> list[registry.ModelSpec]:
    """The models of `family` to choose from: the tiny test models only in the tiny profile (tests, demos)."""
    return registry.list_models(family, include_tiny=config.profile() == "tiny")


def selected_model(family: str) -> str:
    """The ``name@weights`` the user chose for `family` (the default before the sidebar ran)."""
    name = st.session_state.get(f"sidebar_{family}_model", default_model(family))
    spec = registry.get(name)
    weights = st.session_state.get(f"sidebar_{family}_weights", spec.default_weights)
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


def _model_picker(family: str) -> WeightsStatus:
    names = [s.name for s in offered_models(family)]
    name = st.selectbox(
        FAMILIES[family],
        names,
        index=names.index(default_model(family)),
        format_func=lambda n: registry.get(n).title,
        key=f"sidebar_{family}_model",
    )
    spec = registry.get(name)
    if len(spec.weight_options) > 1:
        st.selectbox(
            f"{FAMILIES[family]} weights",
            spec.weight_options,
            format_func=lambda weights: _weights_title(name, weights),
            key=f"sidebar_{family}_weights",
            label_visibility="collapsed",
        )
    status = get_engine().weights_status(selected_model(family))
    icon = {"pretrained": ":material/verified:", "local": ":material/folder:", "random": ":material/casino:"}[
        status.label
    ]
    st.caption(f"{icon} weights: **{status.label}** — {status.message}")
    return status


def show_sidebar() -> list[WeightsStatus]:
    """Render the sidebar; returns the weights status of the chosen model of each family."""
    engine = get_engine()
    with st.sidebar:
        st.markdown(f"**Device:** `{engine.device.type}` ({str(engine.dtype).removeprefix('torch.')})")
        statuses = [_model_picker(family) for family in FAMILIES]
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
