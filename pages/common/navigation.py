"""The page list, lecture mode, and the hand-over that makes every page run through the entry script."""

from __future__ import annotations

import os
import sys
import threading

import streamlit as st


def lecture_mode() -> bool:
    """Read-only mode for serving a room: ``streamlit run streamlit_app.py -- --lecture``
    or ``PIXELCNN_LECTURE_MODE=1``. It hides training and uploads."""
    env = os.environ.get("PIXELCNN_LECTURE_MODE", "").strip().lower()
    return "--lecture" in sys.argv[1:] or env in ("1", "true", "yes", "on")




_HANDED_OVER = "_handed_to_entry_script"
_this_run = threading.local()  # the script thread of the current run: did it start in streamlit_app.py?


def app_pages() -> list:
    """The dashboard's pages, in order (in lecture mode the Train page shows the runs read-only)."""
    pages = [
        st.Page("pages/overview.py", title="Overview", icon=":material/school:", default=True),
        st.Page("pages/data.py", title="Data", icon=":material/dataset:"),
        st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("pages/samples.py", title="Samples", icon=":material/grid_view:"),
        st.Page("pages/bits.py", title="Where the bits go", icon=":material/local_fire_department:"),
        st.Page("pages/generation.py", title="How a sample is drawn", icon=":material/draw:"),
        st.Page("pages/compression.py", title="Bits are bytes", icon=":material/compress:"),
        st.Page("pages/receptive_field.py", title="Receptive field", icon=":material/center_focus_strong:"),
        st.Page("pages/models.py", title="Models", icon=":material/leaderboard:"),
    ]
    return pages


def entered_through_the_entry_script() -> None:
    """Called by ``streamlit_app.py`` before it runs the page: this run went through the entry script."""
    _this_run.entered = True


def through_the_entry_script() -> None:
    """Make every page run through ``streamlit_app.py`` and its ``st.navigation``, deep links included.

    Streamlit treats a ``pages/`` folder beside the entry script as a legacy
    multipage app until some script has called ``st.navigation``. So when the
    first request after a server start is a link to a page (say ``/samples``),
    that page runs alone: every file in ``pages/`` is listed and lecture mode is
    not applied. Such a page calls the public ``st.navigation`` with the app's
    own page list, which ends the legacy mode for the server, and reruns: the
    rerun lands on the same page (the URL path is the same), through the entry
    script. Once per session at most: ``AppTest`` restores the legacy mode
    before every run, and a rerun there would swallow the widget event (a
    button's click) that started the run.
    """
    entered = getattr(_this_run, "entered", False)
    _this_run.entered = False
    if not entered and not st.session_state.get(_HANDED_OVER):
        st.session_state[_HANDED_OVER] = True
        st.navigation(app_pages(), position="hidden")
        st.rerun()
