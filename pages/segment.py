"""Segment (SAM)."""

import streamlit as st

st.title("Segment")
st.info("Click-to-segment with SAM: points, boxes, multiple masks, automatic masks. Built in issue #10.")
