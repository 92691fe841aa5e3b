"""Upload: build the working set every other page uses."""

from collections.abc import Callable

import streamlit as st

from components.errors import user_errors
from components.images import (
    add_to_working_set,
    camera_snapshot,
    clear_uploader,
    show_added,
    show_summary,
    show_thumbnails,
    uploader,
)
from components.state import get_working_set, last_load, set_working_set
from core import config
from core.data import ImageSet, load_digits_set, load_files, load_folder, load_samples, prepare_roots
from core.text import count

LAST = last_load("upload")  # (what the latest action read, how it merged) — only the latest action is reported

st.title("Upload")
st.caption(
    "Images, a zip (class subfolders become labels) or a server folder. The working set stays while you move between "
    "pages; an image already in it is not added twice."
)
replace = st.toggle("Replace the working set (otherwise add to it)", value=False, key="upload_replace")


def _take(what: str, load: Callable[[], ImageSet]) -> bool:
    """Run one load and keep its result for the report below; False when it failed (the error is shown)."""
    LAST.pop()  # an earlier action's report must not stand under this one's error
    with user_errors(what), st.spinner(f"{what}…"):
        new = load()
        if replace:
            set_working_set(new)
        LAST.set((new, None if replace else add_to_working_set(new)))
        return True
    return False


files_tab, camera_tab, folder_tab, builtin_tab = st.tabs(
    ["Files or zip", "Camera", "Server folder", "Built-in samples"]
)
with files_tab:
    uploads = uploader("Images or a zip", key="upload_files")
    if st.button("Add uploaded files", disabled=not uploads, key="upload_add"):
        if _take(f"Reading {count(len(uploads), 'file')}", lambda: load_files((f.name, f.getvalue()) for f in uploads)):
            clear_uploader("upload_files")
            st.rerun()
with camera_tab:
    if (shot := camera_snapshot("upload")) is not None:
        _take("Adding the photo", lambda: shot)
        st.rerun()
with folder_tab:
    roots = prepare_roots(config.data_roots())
    st.markdown(
        "Datasets on the server (the machine running this app) go under "
        + " or ".join(f"`{root}`" + ("" if root.is_dir() else " (missing)") for root in roots)
        + ": one subfolder per class with its images inside (`pets/cats/1.jpg`, `pets/dogs/2.jpg` → two "
        "classes), or a folder of loose images (no labels). Set `VFM_LENS_DATA_ROOTS` to allow other folders."
    )
    folder = st.text_input(
        "Folder on the server",
        key="upload_folder",
        placeholder=str(roots[0] / "pets"),
        help=f"Allowed under: {', '.join(map(str, roots))} (VFM_LENS_DATA_ROOTS)",
    )
    if st.button("Load folder", disabled=not folder, key="upload_load_folder"):
        _take("Reading the folder", lambda: load_folder(folder, roots))
with builtin_tab:
    left, right = st.columns(2)
    if left.button("Sample photos (7)", key="upload_samples"):
        _take("Loading the sample photos", load_samples)
    per_class = right.slider("Digits per class", 5, 100, 30, key="upload_digits_n")
    if right.button(f"Digits, labeled ({10 * per_class})", key="upload_digits"):
        _take("Loading the digits", lambda: load_digits_set(per_class))

if st.button("Clear the working set", key="upload_clear"):
    set_working_set(ImageSet())
    LAST.pop()

if LAST.present:
    show_added(*LAST.get())
images = get_working_set()
show_summary(images)
show_thumbnails(images, key="upload_grid")
