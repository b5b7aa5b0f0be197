"""The dashboard's entry point: page config, process settings and navigation. Each page draws the shared
sidebar itself with one call (``pages.common.picker.sidebar``: why, in its docstring).

Run it with ``streamlit run streamlit_app.py`` (``-- --lecture`` for lecture mode).
"""

import streamlit as st

from pages.common.navigation import app_pages, prepare_server, entered_through_the_entry_script
from pixelcnn.runtime import freeze_imported_objects, prepare_cpu

st.set_page_config(page_title="PixelCNN on colored MNIST", page_icon=":material/grid_on:", layout="wide")
prepare_cpu(interactive=True)  # in every script run: the denormal flush is per thread
freeze_imported_objects()  # once: Streamlit's collection after each run then skips torch's objects
prepare_server()
entered_through_the_entry_script()
st.navigation(app_pages()).run()
