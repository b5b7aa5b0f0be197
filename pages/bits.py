from pathlib import Path

import numpy as np
import streamlit as st

from pages.common.compute import as_name, bits_png, image_label_reading, image_log_probabilities
from pages.common.picker import (comparison_options, model_key, pick_image, picked_model_or_stop, selected_pixels,
                                 sidebar, test_label)
from pages.common.presentation import plot
from pixelcnn.errors import PixelCNNError
from pixelcnn.explain.pixels import bits_from, probabilities
from pixelcnn.explain.results import recorded_test_bits_per_dim
from pixelcnn.figures import COLOURS, distribution_figure, heat_scale_bar, label_bits_figure, pixel_picker_figure

sidebar()
st.title("Where the bits go")
st.markdown(
    "Bits/dim is an average. Here it is taken apart: every value of one image costs "
    "-log2 p(value | everything before it) bits, and the heat maps show where the model pays them. "
    "A well-trained model pays almost nothing for the background and most of its bits where a stroke "
    "*begins* or where its edge could go either way. Side by side, the cost of treating the three colours "
    "as independent (paper vs rgb) and of the blind spot (paper vs gated) shows up where it is paid."
)
model, choice = picked_model_or_stop()
image, source = pick_image("bits")
options = comparison_options()
others = [label for label, other in options.items() if model_key(other) != model_key(choice)]
default = [label for label in ("rgb (shipped)", "gated (shipped)") if label in others]
compared = st.multiselect("Side by side with (up to two)", others, default=default, max_selections=2,
                          key="bits_compare")
shown = [(choice.label, choice)] + [(label, options[label]) for label in compared]


def which_digit_view() -> None:
    """The conditional model's reading of the image under each label."""
    st.header("Which digit does the model think this is?")
    st.markdown(
        "This model is class-conditional: it scores the image under each label y, p(x | y), in one "
        "teacher-forced pass per label. Bayes' rule turns that into a digit classifier that was never trained "
        "to classify: p(y | x) is proportional to p(x | y) p(y), so the label under which the image costs the "
        "fewest bits is the answer (red, the tallest bar). Each bar is p(y | x); the bits/dim under y are "
        "written above it. The true label's bar is outlined."
    )
    try:
        reading = image_label_reading(model_key(choice), choice, image)
    except PixelCNNError as err:
        st.error(str(err))
    else:
        true = test_label(st.session_state.get("bits_picked"))
        answer = reading["answer"]
        verdict = "" if true is None else (" (right)" if answer == true else f" (wrong: it is a {true})")
        c1, c2 = st.columns([3, 2])
        plot(c1, label_bits_figure(reading["bits"], reading["posterior"], answer, true), key="bits_labels")
        c2.metric("The model's answer", f"{answer}{verdict}",
                  help="The label under which the image costs the fewest bits.")
        c2.caption(f"p(y = {answer} | x) = {reading['posterior'][answer]:.3f} (uniform prior); "
                   f"true label: {'unknown' if true is None else true}. A difference of d bits/dim between "
                   f"two labels is d x 2352 bits for the whole image, a factor of 2^(2352 d) in probability.")


# The heat maps come first on the page, the label reading under them; the reading is computed first (it is
# the quicker answer to a newly chosen image), into its place below.
heat_maps = st.container()
if model.config.classes:
    with st.container():
        which_digit_view()
log_probs = {}
for column, (label, shown_choice) in zip(heat_maps.columns(len(shown)), shown):
    column.subheader(as_name(label))
    try:
        log_probs[label] = logp = image_log_probabilities(model_key(shown_choice), shown_choice, image)
    except PixelCNNError as err:
        column.error(str(err))
        continue
    bits = bits_from(logp, image)
    test_set = None if st.session_state.get("bits_picked") is not None or shown_choice.kind != "checkpoint" \
        else recorded_test_bits_per_dim(Path(shown_choice.path).parent)
    column.metric(f"bits/dim of {as_name(source)}", f"{bits.mean():.4f}",
                  delta=None if test_set is None else f"{bits.mean() - test_set:+.4f} vs the test set's {test_set:.4f}",
                  delta_color="inverse", help="Your digit beside the 10,000 test images' mean: above it, the "
                                              "model finds your digit more surprising than the average test digit.")
    several = len(shown) > 1
    column.image(bits_png(bits, 6 if several else 8, ncols=2 if several else 4), width="stretch",
                 caption="bits per value: red, green, blue, and the three summed" + (" (2x2)" if several else ""))
    tops = ", ".join(f"{name} {top:.2f}" for name, top in zip(COLOURS + ("all three",),
                                                              [*bits.max(axis=(0, 1)), bits.sum(-1).max()]))
    column.image(heat_scale_bar(), width="stretch")
    column.caption(f"Colour scale, square-root spaced: black is 0 bits, white each panel's own maximum ({tops} "
                   f"bits).")
    per_channel = ", ".join(f"{name} {value:.3f}" for name, value in zip(COLOURS, bits.mean(axis=(0, 1))))
    column.caption(f"Per channel: {per_channel}. The costliest pixel: "
                   f"{tuple(int(v) for v in np.unravel_index(bits.sum(-1).argmax(), bits.shape[:2]))}, "
                   f"{bits.sum(-1).max():.2f} bits.")

st.header("What the model predicts at a pixel")
st.markdown(
    "Click a pixel of the image (or type its row and column). The bars are the model's three 4-way "
    "distributions at that pixel, each given only the pixels before it (and, for rgb, the earlier colours "
    "of the same pixel); the true value's bar is outlined. The temperature reshapes them as the sampler "
    "would: softmax(logits / T), sharper below 1, flatter above."
)
st.session_state.setdefault("bits_row", 7)
st.session_state.setdefault("bits_col", 12)
st.session_state.setdefault("bits_picker_version", 0)


def typed() -> None:
    """A typed row or column: a fresh picker, so that clicking the pixel clicked before counts again."""
    st.session_state.bits_picker_version += 1


picker_key = f"bits_picker_{st.session_state.bits_picker_version}"
clicked = selected_pixels(st.session_state.get(picker_key))  # the click that started this run, if any
if clicked and clicked[0] != st.session_state.get("bits_clicked"):  # a new click, not one already followed
    st.session_state.bits_clicked = clicked[0]
    st.session_state.bits_row, st.session_state.bits_col = clicked[0]
elif not clicked:
    st.session_state.bits_clicked = None
left, right = st.columns([2, 3])
with left:
    plot(st, pixel_picker_figure(image, marked=(st.session_state.bits_row, st.session_state.bits_col),
                                 height=380, drag=False),
         on_select="rerun", selection_mode="points", key=picker_key)
    c1, c2 = st.columns(2)
    row = int(c1.number_input("Row", 0, 27, key="bits_row", on_change=typed))
    col = int(c2.number_input("Column", 0, 27, key="bits_col", on_change=typed))
    temperature = st.slider("Temperature", 0.1, 3.0, 1.0, 0.05, key="bits_temperature")
with right:
    values = [int(v) for v in image[row, col]]
    for label, logp in log_probs.items():
        probs = probabilities(logp[row, col], temperature).tolist()
        bits = bits_from(logp, image)[row, col]
        plot(st, distribution_figure(probs, values, f"{label} at ({row}, {col}): true values {values}, "
                                                    f"{bits.sum():.2f} bits"),
             key=f"bits_bars_{label}")
