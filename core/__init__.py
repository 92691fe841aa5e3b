"""VFM Lens core: models, engine, cache, data and analyses. Never imports streamlit."""
