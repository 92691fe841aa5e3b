"""Model cards: one row per registry entry, for the Models page and the README."""

from __future__ import annotations

from functools import cache

from core.models import count_parameters
from core.registry import get, list_models
from core.weights import locate


@cache
def _params(name: str) -> int:
    return count_parameters(get(name))


def model_cards(include_tiny: bool = True, with_status: bool = True) -> list[dict]:
    """Rows: model, family, architecture id, input, patch, embedding dim, parameters, weights, status."""
    rows = []
    for spec in list_models(include_tiny=include_tiny):
        row = {
            "model": spec.name,
            "title": spec.title,
            "family": spec.family,
            "upstream": spec.arch,
            "input (px)": spec.input_size,
            "patch (px)": spec.patch_size,
            "embedding dim": spec.embed_dim,
            "parameters (M)": round(_params(spec.name) / 1e6, 1),
            "weights": ", ".join(spec.weight_options),
        }
        if with_status:
            row["status"] = locate(spec.name).label
        rows.append(row)
    return rows
