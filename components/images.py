"""Showing a working set: thumbnail grid, class counts, skipped files."""

from __future__ import annotations

import numpy as np
import streamlit as st
from PIL import Image

from components.state import get_working_set, set_working_set
from core.data import ImageSet, load_files


@st.cache_data(show_spinner=False, max_entries=2048)
def thumbnail(image: np.ndarray, side: int) -> np.ndarray:
    thumb = Image.fromarray(image)
    thumb.thumbnail((side, side))
    return np.asarray(thumb)


def show_summary(images: ImageSet) -> None:
    counts = images.class_counts()
    cols = st.columns(3)
    cols[0].metric("Images", len(images.items))
    cols[1].metric("Classes", len(counts) if counts else "—")
    cols[2].metric("Skipped files", len(images.skipped))
    if len(counts) == 1:
        st.warning(
            f"Only one class ({next(iter(counts))}). Embedding Scatter needs at least two classes to separate: "
            "add another class folder."
        )
    elif not counts and images.items:
        st.caption("No labels. For Embedding Scatter, load a zip or folder with one subfolder per class.")
    if counts:
        st.dataframe(
            {"class": list(counts), "images": list(counts.values())},
            hide_index=True,
            height=min(400, 36 * (len(counts) + 1)),
        )


def show_thumbnails(images: ImageSet, key: str, side: int = 112, per_page: int = 48) -> None:
    """A paged grid of thumbnails captioned with name (and class)."""
    n = len(images.items)
    if not n:
        st.info("The working set is empty. Upload images or load the built-in samples.")
        return
    pages = (n + per_page - 1) // per_page
    page = st.number_input("Page", 1, pages, 1, key=f"{key}_page") if pages > 1 else 1
    chunk = images.items[(page - 1) * per_page : page * per_page]
    st.image(
        [thumbnail(it.image, side) for it in chunk],
        caption=[f"{it.name} [{it.label}]" if it.label else it.name for it in chunk],
        width=side,
    )
    notes = [(it.name, it.note) for it in images.items if it.note]
    if notes:
        with st.expander(f"{len(notes)} images were adjusted on load"):
            st.dataframe({"file": [n for n, _ in notes], "what was done": [w for _, w in notes]}, hide_index=True)


def show_skipped(images: ImageSet) -> None:
    if images.skipped:
        st.warning(f"{len(images.skipped)} files were skipped.")
        st.dataframe(
            {"file": [s.name for s in images.skipped], "reason": [s.reason for s in images.skipped]},
            hide_index=True,
            width="stretch",
        )


def pick_image(images: ImageSet, label: str, key: str, index: int = 0) -> int:
    """Select one image of the working set by name; returns its index."""
    names = images.names
    return st.selectbox(
        label, range(len(names)), index=min(index, len(names) - 1), format_func=lambda i: names[i], key=key
    )


def quick_add(key: str) -> None:
    """An uploader in an expander that adds images to the working set (the Upload page has every option)."""
    with st.expander("Add images here"):
        uploads = st.file_uploader("Images or a zip", accept_multiple_files=True, key=f"{key}_files")
        if st.button("Add to the working set", disabled=not uploads, key=f"{key}_add"):
            new = load_files((f.name, f.getvalue()) for f in uploads)
            set_working_set(get_working_set().extend(new))
            st.success(f"Added {len(new.items)} images.")
            show_skipped(new)
