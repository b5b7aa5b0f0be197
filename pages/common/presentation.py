"""Presentation mode for a projector: larger text, plots and images (the sidebar's toggle, or ?present=true)."""

from __future__ import annotations

from typing import Any

import streamlit as st

PRESENT_KEY = "present"


PRESENT_STATE = "presentation_on"  # outlives the widget's own state across page switches


PRESENTATION_CSS = """<style>
html { font-size: 21px !important; }
[data-testid="stMainBlockContainer"] { max-width: 100% !important; padding-left: 2.5rem; padding-right: 2.5rem; }
[data-testid="stImage"] img { image-rendering: pixelated; min-width: min(100%, 540px); }
</style>"""


PRESENTATION_FONT = 19  # px, plot text; 12 by default, small from the back of a hall


def presentation() -> bool:
    """Whether this session shows the presentation scale (the sidebar's toggle, or ``?present=true``)."""
    return bool(st.session_state.get(PRESENT_STATE))


def plot(where: Any, figure: Any, **kwargs: Any) -> Any:
    """``where.plotly_chart(figure, **kwargs)``, its text enlarged in presentation mode."""
    if presentation():
        figure.update_layout(font={"size": PRESENTATION_FONT}, height=int((figure.layout.height or 450) * 1.3))
    return where.plotly_chart(figure, **kwargs)
