"""Patch Matching (DINOv2)."""

import streamlit as st

st.title("Patch Matching")
st.info("Click a patch in image A, see where it lives in image B. Built in issue #5.")
