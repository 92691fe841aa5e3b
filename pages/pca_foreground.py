"""PCA Foreground (DINOv2)."""

import streamlit as st

st.title("PCA Foreground")
st.info("DINOv2 patch-token PCA: foreground threshold on PC1, then an RGB PCA of the foreground. Built in issue #3.")
