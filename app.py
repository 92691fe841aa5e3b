"""VFM Lens: router only. Shared sidebar and banner, then the chosen page."""

from pathlib import Path

import streamlit as st

from components.router import ensure_router, show_signs_of_work

ensure_router()  # first, so that no URL runs a page without this router and no legacy page list is painted
ICON = (
    Path(__file__).parent / "components" / "assets" / "icon.svg"
)  # shipped: an offline first paint fetches no icon font
st.set_page_config(page_title="VFM Lens", page_icon=str(ICON), layout="wide")
show_signs_of_work()

page = st.navigation(
    {  # every page in view (expanded): grouped so that 16 pages read as four short lists
        "Your images": [
            st.Page("pages/upload.py", title="Upload", icon=":material/upload:", default=True),
            st.Page("pages/stored.py", title="Stored datasets", icon=":material/database:"),
        ],
        "Look inside": [
            st.Page("pages/pca_foreground.py", title="PCA Foreground", icon=":material/palette:"),
            st.Page("pages/embedding_scatter.py", title="Embedding Scatter", icon=":material/scatter_plot:"),
            st.Page("pages/patch_matching.py", title="Patch Matching", icon=":material/join:"),
            st.Page("pages/patch_search.py", title="Patch Search", icon=":material/pageview:"),
            st.Page("pages/zero_shot.py", title="Zero-shot", icon=":material/label:"),
            st.Page("pages/search.py", title="Search", icon=":material/image_search:"),
            st.Page("pages/compare.py", title="Compare models", icon=":material/leaderboard:"),
        ],
        "Segment": [
            st.Page("pages/segment.py", title="Segment", icon=":material/content_cut:"),
            st.Page("pages/text_masks.py", title="Text masks", icon=":material/format_shapes:"),
            st.Page("pages/evaluate.py", title="Measure segmentation", icon=":material/rule:"),
            st.Page("pages/video.py", title="Video tracking", icon=":material/movie:"),
        ],
        "Live and models": [
            st.Page("pages/live.py", title="Live camera", icon=":material/videocam:"),
            st.Page("pages/models.py", title="Models", icon=":material/model_training:"),
        ],
    },
    expanded=True,
)
# The navigation and the signs of work are in place before the first (slow) import of the models' code.
from components.presenter import apply_presenter  # noqa: E402
from components.sidebar import show_random_banner, show_sidebar  # noqa: E402

show_random_banner(show_sidebar())
apply_presenter()
page.run()
