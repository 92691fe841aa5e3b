"""Turn expected failures into one clear message on the page; the app and its state carry on."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

log = logging.getLogger("vfm_lens")


@contextmanager
def user_errors(what: str) -> Iterator[None]:
    """Show `what` failed and why, instead of a stack trace. Unexpected errors are logged in full."""
    try:
        yield
    except (ValueError, OSError, KeyError) as exc:  # bad input, missing files, unknown names
        st.error(f"{what} failed: {exc}")
    except MemoryError:
        st.error(f"{what} failed: not enough memory. Try fewer or smaller images.")
    except Exception as exc:  # noqa: BLE001 - last resort, keep the session alive
        log.exception("%s failed", what)
        st.error(f"{what} failed unexpectedly ({type(exc).__name__}: {exc}). Your other results are kept.")
