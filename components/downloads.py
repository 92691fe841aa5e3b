"""Download buttons: tables as CSV, pictures as PNG, arrays as NPZ, annotations as JSON (COCO). `where` is the column (or `st`) that holds the
button; a file given as a callable is built only when the button is clicked."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from functools import partial

import numpy as np
import pandas as pd
import streamlit as st

from core.analysis.imaging import to_png

ICON = ":material/download:"


def download_csv(
    table: pd.DataFrame | str, file_name: str, key: str, label: str = "Download CSV", where=st, **options
) -> None:
    """A table (or CSV text) as a CSV file."""
    data = table.to_csv(index=False) if isinstance(table, pd.DataFrame) else table
    where.download_button(label, data, file_name, "text/csv", key=key, **{"icon": ICON} | options)


def download_png(
    image: np.ndarray | Callable[[], bytes], file_name: str, key: str, label: str = "Download PNG", where=st, **options
) -> None:
    """An HWC uint8 image (or a callable giving PNG bytes) as a PNG file."""
    data = image if callable(image) else to_png(image)
    where.download_button(label, data, file_name, "image/png", key=key, **{"icon": ICON} | options)


def download_npz(arrays: dict[str, object], file_name: str, key: str, where=st) -> None:
    """Named arrays as one compressed NPZ file, built on click, without a rerun; the help lists the names."""
    where.download_button(
        "Download arrays (NPZ)", partial(npz_bytes, arrays), file_name, "application/octet-stream", key=key,
        on_click="ignore", icon=ICON, help=", ".join(arrays),
    )  # fmt: skip


def npz_bytes(arrays: dict[str, object]) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def download_json(
    make: Callable[[], object], file_name: str, key: str, label: str = "Download JSON", where=st, **options
) -> None:
    """What `make()` returns (e.g. COCO annotations), as a JSON file built only when the button is clicked."""
    data = lambda: json.dumps(make())  # noqa: E731 - built on click
    where.download_button(
        label, data, file_name, "application/json", key=key, on_click="ignore", **{"icon": ICON} | options
    )


def download_file(
    make: Callable[[], bytes], file_name: str, mime: str, key: str, label: str, where=st, **options
) -> None:
    """The bytes `make()` returns (a video, a zip), built only when the button is clicked."""
    where.download_button(label, make, file_name, mime, key=key, on_click="ignore", **{"icon": ICON} | options)
