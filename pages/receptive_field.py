import numpy as np
import streamlit as st

from pages.common.compute import as_name, receptive_maps
from pages.common.data import dataset
from pages.common.navigation import number_input_in_address
from pages.common.picker import comparison_options, model_for, model_key, picked, sidebar
from pages.common.presentation import plot, presentation
from pixelcnn.errors import PixelCNNError
from pixelcnn.explain.receptive import analytic_field
from pixelcnn.figures import field_figure, field_image, npy_bytes, png_bytes

COLOURS = ("0 (red)", "1 (green)", "2 (blue)")
PRESENTED_HEIGHT = 400  # before presentation's 1.3x: the first map whole at 1280x720
DEFAULT_MODELS = ["paper (random weights)", "rgb (random weights)", "gated (random weights)"]

sidebar()
# In presentation mode the first map fits a 1280x720 screen: the text folds away beside the title, the
# controls join the pixel's sliders in the sidebar, beside every map.
present = presentation()
heading, about = st.columns([3, 2], vertical_alignment="bottom") if present else (st, st)
heading.title("Receptive field")
(about.expander("What the maps show") if present else about).markdown(
    "Which input pixels does the conditional $p(x_{r,c}^{ch} \\mid \\dots)$ depend on? Each map shows "
    "$|\\partial \\log p / \\partial x|$, the maximum over input channels, averaged over a few input images. "
    "Everything after the target in raster order must be zero. **paper**: the wedge up and to the right "
    "that stays dark is PixelCNN's *blind spot*. **rgb**: green and blue also see the earlier colours of "
    "their own pixel. **gated**: two stacks, no blind spot."
)

c1, c2, c3 = [st.sidebar] * 3 if present else st.columns(3)
if present:
    st.sidebar.subheader("Target of the receptive field")
row = c1.slider("Row", 0, 27, 14, key="rf_row", bind="query-params")
col = c2.slider("Column", 0, 27, 14, key="rf_col", bind="query-params")
channel = c3.select_slider("Channel", options=[0, 1, 2], value=0, key="rf_channel", bind="query-params",
                           format_func=lambda c: COLOURS[c])

sidebar_pick = picked()
controls = st.sidebar if present else st
seed = int(number_input_in_address(controls, "Seed of the random weights", 0, 2**31 - 1,
                                   sidebar_pick.seed if sidebar_pick.kind == "random" else 0, key="rf_seed",
                                   help="Another initialisation: the field's shape stays (the masks set it), its "
                                        "strengths change."))
options = comparison_options(trained_first=False, random_seed=seed)
if sidebar_pick.kind == "checkpoint" and sidebar_pick.label in options:
    controls.caption(f"The sidebar's model, {as_name(sidebar_pick.label)}, is among the choices: add it to see "
                     f"what its training made of the field its masks allow.")
chosen = controls.multiselect("Models side by side (up to three)", list(options),
                              default=[m for m in DEFAULT_MODELS if m in options], max_selections=3, key="rf_models",
                              bind="query-params",
                              help="Random weights show what the masks allow; trained weights show what the model uses.")
c4, c5, c6 = [st.sidebar] * 3 if present else st.columns(3)
binary = c4.toggle("Binary (nonzero or not)", key="rf_binary")
log_scale = c4.toggle("Log scale", value=True, key="rf_log", disabled=binary)
overlay = c5.toggle("Outline the analytic field", value=True, key="rf_overlay",
                    help="Every pixel that can influence the target at all, from kernel sizes and masks alone.")
inputs = c6.radio("Input images", ["test images", "random noise"] if dataset() is not None else ["random noise"],
                  key="rf_inputs", horizontal=True)
if not chosen:
    st.info("Pick one to three models to compare.")
    st.stop()

models = {}
places = [st.container() for _ in chosen] if present else st.columns(len(chosen))  # one large map a row
for column, label in zip(places, chosen):
    choice = options[label]
    if not present:  # presented, the name sits on the legend's line: one heading less above the map
        column.subheader(as_name(label))
    try:
        field, analytic = receptive_maps(model_key(choice), choice, row, col, channel, inputs)
        models[label] = model_for(choice)
    except PixelCNNError as err:
        column.error(str(err))
        continue
    figure = field_figure(field, row, col, binary=binary, log=log_scale and not binary,
                          analytic=analytic if overlay else None)
    if not present:
        figure.update_layout(height=420 if len(chosen) > 1 else 520)
    else:  # as wide as the map needs (a full-width plot left the square map a third of it), as tall as fits
        figure.update_layout(width=600, height=PRESENTED_HEIGHT, margin_t=50, legend_x=1, legend_xanchor="right",
                             title={"text": as_name(label), "x": 0, "xanchor": "left", "y": 1, "yanchor": "top",
                                    "yref": "container"})
    plot(column, figure, key=f"rf_heatmap_{label}", **({"width": "content"} if present else {}))
    agree = "equal to" if np.array_equal(field > 0, analytic) else "different from"
    column.caption(f"{int((field > 0).sum())} input pixels with a nonzero gradient; the masks allow "
                   f"{int(analytic.sum())}, so the measured field is {agree} the analytic one.")
    name = f"field-{label.split(' ')[0]}-{row}-{col}-{channel}"
    d1, d2 = column.columns(2)
    d1.download_button("PNG", png_bytes(field_image(field, row, col, scale=10, binary=binary,
                                                    log=log_scale and not binary)),
                       file_name=f"{name}.png", mime="image/png", key=f"rf_png_{label}",
                       help="The map as shown, 10 px a pixel, the target outlined in red: the deliverable's image.")
    d2.download_button(".npy", npy_bytes(field.astype(np.float32)), file_name=f"{name}.npy",
                       mime="application/octet-stream", key=f"rf_npy_{label}",
                       help="|gradient| max over channels, float32 (28, 28), as `receptive-field --npy` writes it.")

st.header("How the field grows, layer by layer")
depth_max = max((m.config.n_blocks for m in models.values()), default=0)
if depth_max == 0:
    depth = 0
    st.caption("These models have no layers after the first: the field below is the first layer's alone.")
else:
    depth = st.slider("Layers after the first", 0, depth_max, min(3, depth_max), key="rf_depth",
                      help="The first layer alone (0), then each residual block (paper, rgb) or gated layer (gated).")
for column, (label, model) in zip(st.columns(max(len(models), 1)), models.items()):
    used = min(depth, model.config.n_blocks)
    field = analytic_field(model.config, row, col, n_blocks=used, channel=channel)
    column.image(field_image(field, row, col, scale=8, binary=True),
                 caption=f"{as_name(label)}: first layer + {used} → {int(field.sum())} pixels can influence the target")
