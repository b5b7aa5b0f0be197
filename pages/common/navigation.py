"""The page list, lecture mode, the hand-over that makes every page run through the entry script, and the
number inputs a link can set (read from the address, checked)."""

from __future__ import annotations

import math
import os
import sys
import threading
from typing import Any

import streamlit as st

from pixelcnn.serve.estimate import SPEED_PROBE
from pixelcnn.serve.uploads import bound_upload_store


def lecture_mode() -> bool:
    """Read-only mode for serving a room: ``streamlit run streamlit_app.py -- --lecture``
    or ``PIXELCNN_LECTURE_MODE=1``. It hides training and uploads."""
    env = os.environ.get("PIXELCNN_LECTURE_MODE", "").strip().lower()
    return "--lecture" in sys.argv[1:] or env in ("1", "true", "yes", "on")


def prepare_server() -> None:
    """What the server does once it serves: bound what it keeps of uploaded files
    (``pixelcnn.serve.uploads``; nothing at all in lecture mode, where no page takes an upload), and, where
    runs can be started, measure the training speed in the background, so the Train page's estimate is there
    when it is first opened. Called by the entry script in every run; a no-op outside a server (``AppTest``)."""
    from streamlit import runtime

    if runtime.exists():
        bound_upload_store(runtime.get_instance().uploaded_file_mgr, lambda: not lecture_mode())
        if not lecture_mode():
            SPEED_PROBE.start_once()


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


def address_number(key: str, low: float, high: float, default: float, integer: bool) -> float:
    """The number the address holds under ``key`` if it is one this widget can take (finite, an integer where
    one is asked for, within [low, high]), else ``default``: text, infinities, NaN and 400-digit numbers fall
    back quietly, before any widget reads them."""
    raw = st.query_params.get(key)
    try:
        value = float(raw) if raw is not None else None
    except (TypeError, ValueError, OverflowError):
        value = None
    if value is None or not math.isfinite(value) or not low <= value <= high or (integer and value != int(value)):
        return default
    return int(value) if integer else value


def number_input_in_address(where: Any, label: str, low: float, high: float, default: float, *, key: str,
                            **kwargs: Any) -> float:
    """``where.number_input`` whose value a link can set and the address keeps (``?key=value``, left out at
    the default). Streamlit's own binding (``bind="query-params"``) raises on an infinite or 400-digit number
    in the address, so this one reads the address itself, checked by :func:`address_number`."""
    integer = all(isinstance(v, int) for v in (low, high, default))
    if key not in st.session_state:
        st.session_state[key] = address_number(key, low, high, default, integer)
    value = where.number_input(label, low, high, key=key, **kwargs)
    if value == default:
        st.query_params.pop(key, None)
    else:
        st.query_params[key] = str(value)
    return value
