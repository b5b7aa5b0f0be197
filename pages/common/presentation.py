"""Presentation mode for a projector: larger text, plots and images (the sidebar's toggle, or ?present=true)."""

from __future__ import annotations

from typing import Any

import streamlit as st

PRESENT_KEY = "present"


PRESENT_STATE = "presentation_on"  # outlives the widget's own state across page switches


PRESENTATION_CSS = """<style>
html { font-size: 21px !important; }
[data-testid="stMainBlockContainer"] { max-width: 100% !important; padding: 3rem 2.5rem 2.5rem !important; }
[data-testid="stImage"] img { image-rendering: pixelated; min-width: min(100%, 540px); }
</style>"""


PRESENTATION_FONT = 19  # px, plot text; 12 by default, small from the back of a hall


def presentation() -> bool:
    """Whether this session shows the presentation scale (the sidebar's toggle, or ``?present=true``)."""
    return bool(st.session_state.get(PRESENT_STATE))


def plot(where: Any, figure: Any, **kwargs: Any) -> Any:
    """``where.plotly_chart(figure, **kwargs)``, its text enlarged in presentation mode."""
    if presentation():  # every text by name: Streamlit's plotly theme sets the axes' own sizes, under 19 px
        size = PRESENTATION_FONT
        figure.update_layout(font={"size": size}, legend_font_size=size, title_font_size=size + 3,
                             height=int((figure.layout.height or 450) * 1.3))
        if figure.layout.width:
            figure.update_layout(width=int(figure.layout.width * 1.3))
        figure.update_xaxes(tickfont_size=size, title_font_size=size)
        figure.update_yaxes(tickfont_size=size, title_font_size=size)
        figure.update_traces(colorbar={"tickfont": {"size": size}, "title": {"font": {"size": size}}},
                             selector=lambda trace: "colorbar" in trace)
        figure.update_coloraxes(colorbar_tickfont_size=size)
    return where.plotly_chart(figure, **kwargs)
