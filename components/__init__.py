"""Streamlit widgets. Each takes numpy arrays or core results; the session-state keys it keeps live in `components.state`."""

from components.router import ensure_router

ensure_router()  # a page's own URL opened first after start-up still runs the app's router (components/router.py)
