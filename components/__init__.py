"""Streamlit widgets. Each takes numpy arrays or core results and owns its session_state keys."""

from components.router import ensure_router

ensure_router()  # a page's own URL opened first after start-up still runs the app's router (components/router.py)
