"""Embedding Scatter."""

import streamlit as st

st.title("Embedding Scatter")
st.info("Embeddings of a labeled dataset projected with LDA, PCA, UMAP or t-SNE, with accuracy. Built in issue #4.")
