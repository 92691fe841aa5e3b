"""Showing a working set: thumbnail grid, class counts, skipped files, what the latest load added."""

from __future__ import annotations

import time

import numpy as np
import streamlit as st

from components.state import get_working_set, last_load, set_working_set, uploader_generation
from core.analysis.imaging import letterbox
from core.data import ImageItem, ImageSet, Merged, load_files
from core.text import count


@st.cache_data(show_spinner=False, max_entries=2048)
def thumbnail(image: np.ndarray, side: int) -> np.ndarray:
    """The image letterboxed in a `side`-px square: every tile of a grid has the same size, whatever its shape."""
    return letterbox(image, side)


def _caption(item: ImageItem, side: int) -> str:
    """Name and class; the real size too when the tile misleads about it (a tiny image blown up, or a thin strip)."""
    h, w = item.image.shape[:2]
    text = f"{item.name} [{item.label}]" if item.label else item.name
    return f"{text} · {w}×{h} px" if 4 * max(h, w) <= side or max(h, w) > 8 * min(h, w) else text


def show_summary(images: ImageSet) -> None:
    counts = images.class_counts()
    cols = st.columns(3)
    cols[0].metric("Images", len(images.items))
    cols[1].metric("Classes", len(counts) if counts else "—")
    cols[2].metric("Skipped files", len(images.skipped))
    if not images.items:
        return
    if not counts:
        st.caption(
            "No labels: none of these images came in a class folder. A zip or server folder with one subfolder "
            "per class (cats/1.jpg, dogs/2.jpg) gives labels; classes from several uploads add up."
        )
        return
    if images.unlabeled:
        st.caption(
            f"{count(images.unlabeled, 'unlabeled image')} (not in a class folder): pages that need classes use "
            f"the {count(len(images.items) - images.unlabeled, 'labeled one')} only."
        )
    if len(counts) == 1:
        st.warning(
            f"One class so far ({next(iter(counts))}). Embedding Scatter and Compare need at least two: upload "
            "another class folder (classes from several uploads add up)."
        )
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
        caption=[_caption(it, side) for it in chunk],
        width=side,
    )
    notes = [(it.name, it.note) for it in images.items if it.note]
    if notes:
        with st.expander(f"{count(len(notes), 'image')} adjusted on load"):
            st.dataframe({"file": [n for n, _ in notes], "what was done": [w for _, w in notes]}, hide_index=True)


def show_skipped(images: ImageSet) -> None:
    if images.skipped:
        st.warning(f"{count(len(images.skipped), 'file')} skipped:")
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


def uploader(label: str, key: str) -> list:
    """A multi-file uploader that `clear_uploader(key)` empties: Streamlit cannot reset an uploader's value, so
    each clearing gives the widget a new key (`key`, then `key_1`, `key_2`, …) and it comes back empty."""
    generation = uploader_generation(key).get(0)
    return st.file_uploader(label, accept_multiple_files=True, key=f"{key}_{generation}" if generation else key) or []


def clear_uploader(key: str) -> None:
    generation = uploader_generation(key)
    generation.set(generation.get(0) + 1)


def add_to_working_set(new: ImageSet) -> Merged:
    """`new` merged into this session's working set (images already there are not added twice)."""
    merged = get_working_set().merge(new)
    set_working_set(merged.images)
    return merged


def _added_text(new: ImageSet, merged: Merged | None = None) -> str:
    """One sentence on what a load did: "Added 3 images, 2 already present, skipped 1 file." """
    added = len(new.items) if merged is None else merged.added
    rest = []
    if merged is not None and merged.present:
        rest.append(f"{merged.present} already present")
        if merged.labeled:
            rest.append(f"{merged.labeled} of them took their class from this upload")
    if new.skipped:
        rest.append(f"skipped {count(len(new.skipped), 'file')}")
    head = f"Added {count(added, 'image')}" if added else "Nothing new"
    return head + ((", " if added else ": ") + ", ".join(rest) if rest else "") + "."


def show_added(new: ImageSet, merged: Merged | None = None) -> None:
    """What one load did, in one box: green when it added images, amber when nothing new, red when nothing was read;
    then the files it skipped and why. Without `merged`, the load replaced the working set."""
    if not new.items:
        st.error(
            f"No image could be read: {count(len(new.skipped), 'file')} skipped."
            if new.skipped
            else "No images were found."
        )
    elif merged is None or merged.added:
        st.success(_added_text(new, merged))
    else:
        st.warning(_added_text(new, merged))
    show_skipped(new)


def camera_snapshot(key: str) -> ImageSet | None:
    """A photo from the camera as a one-image set, once per shot (None until one is taken). The browser asks for
    the camera only after the user switches it on; after each shot the widget comes back empty for the next one."""
    if not st.toggle("Take a photo with the camera", key=f"{key}_camera_on"):
        return None
    generation = uploader_generation(f"{key}_camera").get(0)
    shot = st.camera_input("Camera", key=f"{key}_camera_{generation}", label_visibility="collapsed")
    if shot is None:
        return None
    clear_uploader(f"{key}_camera")  # the next run shows a fresh camera: the same shot is never added twice
    return load_files([(f"camera-{time.strftime('%H%M%S')}.jpg", shot.getvalue())])


def quick_add(key: str) -> None:
    """An uploader and the camera in an expander that add images to the working set (the Upload page has every
    option)."""
    with st.container(key=f"{key}_quick_add"), st.expander("Add images here"):  # presenter mode hides it by key
        uploads = uploader("Images or a zip", key=f"{key}_files")
        if st.button("Add to the working set", disabled=not uploads, key=f"{key}_add"):
            with st.spinner(f"Reading {count(len(uploads), 'file')}…"):
                new = load_files((f.name, f.getvalue()) for f in uploads)
            last_load(key).set((new, add_to_working_set(new)))
            clear_uploader(f"{key}_files")
            st.rerun()
        if (shot := camera_snapshot(key)) is not None:
            last_load(key).set((shot, add_to_working_set(shot)))
            st.rerun()
        if last_load(key).present:
            show_added(*last_load(key).get())
