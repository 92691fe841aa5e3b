"""Streamlit widgets. Each takes numpy arrays or core results and owns its session_state keys."""
