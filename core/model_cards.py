"""Model cards: one row per registry entry, for the Models page and the README's table.

`python -m core.model_cards` prints the README's table (parameter counts from the real architectures, built on the
meta device); a test keeps README.md equal to it.
"""

from __future__ import annotations

from functools import cache

from core.models import count_parameters, family
from core.registry import get, list_models
from core.weights import locate

README_START, README_END = "<!-- model table: python -m core.model_cards -->", "<!-- end of model table -->"


@cache
def _params(name: str) -> int:
    return count_parameters(get(name))


def model_cards(include_tiny: bool = True, with_status: bool = True) -> list[dict]:
    """Rows: model, family, architecture id, input, patch, embedding dim, parameters, weights, what it can do,
    licence and access, status."""
    rows = []
    for spec in list_models(include_tiny=include_tiny):
        described = family(spec.family)
        row = {
            "model": spec.name,
            "title": spec.title,
            "family": described.title,
            "upstream": spec.arch,
            "input (px)": spec.input_size,
            "patch (px)": spec.patch_size,
            "embedding dim": spec.embed_dim,
            "registers": spec.registers,
            "parameters (M)": round(_params(spec.name) / 1e6, 1),
            "weights": ", ".join(spec.weight_options),
            "can": ", ".join(sorted(described.can)),
            "licence / access": described.notes,
        }
        if with_status:
            row["status"] = locate(spec.name).label
        rows.append(row)
    return rows


def markdown_table(rows: list[dict]) -> str:
    """The README's model table: one line per model."""
    columns = [
        "model",
        "family",
        "upstream",
        "input (px)",
        "patch (px)",
        "embedding dim",
        "registers",
        "parameters (M)",
        "weights",
        "can",
        "licence / access",
    ]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [f"`{row[c]}`" if c in ("model", "upstream") else str(row[c]) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def readme_table() -> str:
    return markdown_table(model_cards(with_status=False))


if __name__ == "__main__":
    print(readme_table())
