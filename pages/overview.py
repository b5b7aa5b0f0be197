import streamlit as st

from pages.common.compute import as_name
from pages.common.picker import picked, sidebar
from pages.common.presentation import plot
from pixelcnn.figures import mask_figure
from pixelcnn.models import PRESETS, architecture_table, kernel_mask, kind_of

sidebar()
st.title("PixelCNN on colored MNIST")
st.markdown(
    "PixelCNN (van den Oord et al., *Pixel Recurrent Neural Networks*, 2016) models an image as a product of "
    "conditionals: pixels in raster order, each given all the pixels before it. A stack of **masked "
    "convolutions** computes every conditional in one forward pass during training, and sampling draws "
    "pixels one at a time. Here each image is 28x28 with 3 channels, each channel a value in {0, 1, 2, 3}."
)
st.latex(r"p(\mathbf{x}) = \prod_{i=1}^{784} \prod_{c \in \{R,G,B\}} p\left(x_i^{c} \mid \mathbf{x}_{<i}\right)")
st.markdown(
    "The three channels of a pixel are independent given the earlier pixels. Each conditional is a 4-way "
    "softmax, and the loss is reported in **bits per dimension**, the mean negative log-likelihood over "
    "all 28 x 28 x 3 values in bits: a model that always answers *uniform* scores exactly 2.0."
)
st.latex(r"\text{bits/dim} = -\frac{1}{784 \cdot 3} \sum_{i,c} \log_2 p\left(x_i^{c} \mid \mathbf{x}_{<i}\right)")

st.header("Architecture (Table 1 of the paper)")
preset = st.segmented_control("Preset", list(PRESETS), default="paper", key="overview_preset") or "paper"
config = PRESETS[preset]
table = architecture_table(config)
# A static table: its text wraps to the screen, so on a phone it does not scroll inside itself as a grid does.
st.table([{**row, "parameters": f"{row['parameters']:,}"} for row in table], hide_index=True)
total = sum(row["parameters"] for row in table)
st.caption(f"{total:,} parameters.")
st.markdown(kind_of(config).describe(config))

st.header("Masks A and B")
left, right, text = st.columns([1, 1, 2])
plot(left, mask_figure(kernel_mask(7, "A").numpy(), "7x7, type A"), key="mask_a")
plot(right, mask_figure(kernel_mask(3, "B").numpy(), "3x3, type B"), key="mask_b")
text.markdown(
    "Yellow taps are the ones a kernel may use; the red square is the pixel being predicted. "
    "**Type A**, only in the first layer, hides the current pixel itself, so the prediction of a pixel "
    "never sees its own value. **Type B**, in every later layer, may use the current position, because "
    "there it only holds features computed from earlier pixels. Stacking 3x3 type B kernels grows the "
    "field up and to the left, but never reaches the region up and to the right: the **blind spot**, "
    "which the *Receptive field* page shows."
)

st.header("Where to start")
st.markdown(
    f"- **Data**: 100 colored digits and how their values are distributed.\n"
    f"- **Samples**: 100 digits drawn from the model picked in the sidebar (now: {as_name(picked().label)}).\n"
    "- **Train**: launch a short run and watch the loss fall live; it keeps running if you switch pages.\n"
    "- **Where the bits go**: which pixels of a digit cost the bits, the distribution the model predicts at "
    "any pixel, and which digit a conditional model reads it as.\n"
    "- **How a sample is drawn**: play a sample from the empty canvas, pixel by pixel, with the distribution "
    "each value is drawn from.\n"
    "- **Bits are bytes**: compress a digit with the model into a file of about its -log2 p(x) bits, then "
    "decode it in front of the room.\n"
    "- **Receptive field**: move the sliders and watch which pixels a conditional depends on.\n"
    "- **Models**: compare the shipped and trained models' curves and test bits/dim."
)
