import numpy as np
import streamlit as st

from pages.common import ModelChoice, dataset, model_key, picked, receptive_maps, sidebar
from pixelcnn.errors import PixelCNNError
from pixelcnn.figures import field_figure
from pixelcnn.model import PRESETS

sidebar()
st.title("Receptive field")
st.markdown(
    "Which input pixels does the conditional $p(x_{r,c}^{ch} \\mid x_{<(r,c)})$ depend on? The map shows "
    "$|\\partial \\log p / \\partial x|$, the maximum over input channels, averaged over a few input images. "
    "Everything at and after the target in raster order must be zero; the wedge up and to the right that "
    "stays dark is PixelCNN's **blind spot**."
)

c1, c2, c3 = st.columns(3)
row = c1.slider("Row", 0, 27, 14, key="rf_row")
col = c2.slider("Column", 0, 27, 14, key="rf_col")
channel = c3.select_slider("Channel", options=[0, 1, 2], value=0, key="rf_channel",
                           format_func=lambda c: ("0 (red)", "1 (green)", "2 (blue)")[c])

c4, c5, c6 = st.columns(3)
source = c4.radio("Weights", ["random initialisation", "model picked in the sidebar"], key="rf_source")
if source == "random initialisation":
    preset = c4.selectbox("Preset", list(PRESETS), index=list(PRESETS).index("paper"), key="rf_preset")
    init_seed = int(c4.number_input("Init seed", 0, 10**6, 0, key="rf_init_seed"))
    choice = ModelChoice("random", preset=preset, seed=init_seed, label=f"random weights ({preset}, seed {init_seed})")
else:
    choice = picked()
binary = c5.toggle("Binary (nonzero or not)", key="rf_binary")
log_scale = c5.toggle("Log scale", value=True, key="rf_log", disabled=binary)
overlay = c6.toggle("Outline the analytic field", value=True, key="rf_overlay",
                    help="Every pixel that can influence the target at all, from kernel sizes and masks alone.")
data = dataset()
inputs = c6.radio("Input images", ["test images", "random noise"] if data is not None else ["random noise"],
                  key="rf_inputs")

try:
    field, analytic = receptive_maps(model_key(choice), choice, row, col, channel, inputs)
except PixelCNNError as err:
    st.error(str(err))
    st.stop()
st.plotly_chart(field_figure(field, row, col, binary=binary, log=log_scale and not binary,
                             analytic=analytic if overlay else None), key="rf_heatmap")
measured = int((field > 0).sum())
agree = "equal to" if np.array_equal(field > 0, analytic) else "different from"
st.caption(f"{choice.label}: {measured} input pixels with a nonzero gradient; the masks allow "
           f"{int(analytic.sum())}, so the measured field is {agree} the analytic one.")
