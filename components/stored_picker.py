"""The stored-dataset picker: one widget that every view opening a stored dataset shares (the Stored datasets page,
Search, Compare, Embedding Scatter), so that no view imports another."""

from __future__ import annotations

import streamlit as st

from components.state import store_choice, store_folder, store_note, store_to_open
from components.stored_data import found_stores, opened, store_name
from core import config, store
from core.data import confine


def pick_store(key: str) -> store.StoredDataset | None:
    """A dataset found under the data roots, or a typed folder there → the opened dataset (None until one is given).
    Errors raise for `user_errors`."""
    roots, found = config.data_roots(), found_stores()
    if opening := store_to_open(key).pop():  # just stored by `offer_new_store`
        store_choice(key).set(opening)
        store_folder(key).set("")
    if note := store_note(key).pop():
        st.success(note)
    chosen = st.selectbox(
        "Stored dataset",
        found,
        index=None,
        format_func=store_name,
        key=store_choice(key).key,
        placeholder=f"{len(found)} found under the data roots" if found else "None found under the data roots",
    )
    path = st.text_input(
        "…or its folder",
        key=store_folder(key).key,
        placeholder=str(roots[0] / "my_dataset.lance"),
        help="A folder written by `python -m core.batch embed SOURCE OUT`, inside "
        + ", ".join(map(str, roots))
        + " (VFM_LENS_DATA_ROOTS). Used instead of the choice above when given.",
    ).strip()
    if not (path or chosen):
        st.caption("Give the folder of a dataset embedded with `python -m core.batch embed`.")
        return None
    return opened(str(confine(path or chosen, roots)))
