"""Upload: build the working set every other page uses."""

import streamlit as st

from components.errors import user_errors
from components.images import show_skipped, show_summary, show_thumbnails
from components.state import get_working_set, set_working_set
from core import config
from core.data import ImageSet, load_digits_set, load_files, load_folder, load_samples

st.title("Upload")
st.caption(
    "Images, a zip (class subfolders become labels) or a server folder. The working set stays while you move between pages."
)

current = get_working_set()
replace = st.toggle("Replace the working set (otherwise add to it)", value=False, key="upload_replace")


def _take(new: ImageSet) -> None:
    merged = new if replace else current.extend(new)
    set_working_set(merged)
    st.session_state["upload_last"] = new


files_tab, folder_tab, builtin_tab = st.tabs(["Files or zip", "Server folder", "Built-in samples"])
with files_tab:
    uploads = st.file_uploader("Images or a zip", accept_multiple_files=True, key="upload_files")
    if st.button("Add uploaded files", disabled=not uploads, key="upload_add"):
        with user_errors("Reading the upload"), st.spinner("Reading files…"):
            _take(load_files((f.name, f.getvalue()) for f in uploads))
with folder_tab:
    roots = config.data_roots()
    folder = st.text_input(
        "Folder on the server (class-subfolder layout)",
        key="upload_folder",
        help=f"Allowed under: {', '.join(map(str, roots))} (VFM_LENS_DATA_ROOTS)",
    )
    if st.button("Load folder", disabled=not folder, key="upload_load_folder"):
        with user_errors("Loading the folder"), st.spinner("Reading folder…"):
            _take(load_folder(folder, roots))
with builtin_tab:
    left, right = st.columns(2)
    if left.button("Sample photos (7)", key="upload_samples"):
        _take(load_samples())
    per_class = right.slider("Digits per class", 5, 100, 30, key="upload_digits_n")
    if right.button(f"Digits, labeled ({10 * per_class})", key="upload_digits"):
        _take(load_digits_set(per_class))

if st.button("Clear the working set", key="upload_clear"):
    set_working_set(ImageSet())

images = get_working_set()
last = st.session_state.get("upload_last")
if last is not None:
    st.success(
        f"Read {len(last.items)} images" + (f", skipped {len(last.skipped)} files" if last.skipped else "") + "."
    )
    show_skipped(last)
show_summary(images)
show_thumbnails(images, key="upload_grid")
