"""Words for counts in messages: "1 image", "3 images"."""

from __future__ import annotations


def count(n: int, noun: str, plural: str | None = None) -> str:
    """`n` and `noun`, the noun in the plural unless n is 1: count(1, "file") → "1 file", count(2, "patch", "patches")."""
    return f"{n:,} {noun if n == 1 else (plural or noun + 's')}"
