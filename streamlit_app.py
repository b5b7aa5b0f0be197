"""The dashboard's entry point: page config and navigation; each page draws the shared sidebar.

Run it with ``streamlit run streamlit_app.py``.
"""

import streamlit as st

from pages.common import lecture_mode
from pixelcnn.runtime import prepare_cpu

st.set_page_config(page_title="PixelCNN on colored MNIST", page_icon=":material/grid_on:", layout="wide")
prepare_cpu(interactive=True)  # in every script run: the denormal flush is per thread

pages = [
    st.Page("pages/overview.py", title="Overview", icon=":material/school:", default=True),
    st.Page("pages/data.py", title="Data", icon=":material/dataset:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/samples.py", title="Samples", icon=":material/grid_view:"),
    st.Page("pages/receptive_field.py", title="Receptive field", icon=":material/center_focus_strong:"),
    st.Page("pages/models.py", title="Models", icon=":material/leaderboard:"),
]
if lecture_mode():
    pages = [page for page in pages if page.title != "Train"]
st.navigation(pages).run()
