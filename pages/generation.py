import streamlit as st

from pages.common.compute import as_name, shared_result
from pages.common.picker import model_key, picked_model_or_stop, sidebar
from pages.common.presentation import presentation
from pixelcnn.errors import PixelCNNError
from pixelcnn.explain.pixels import record_generation
from pixelcnn.serve.player import player_height, player_html

sidebar()
st.title("How a sample is drawn")
st.markdown(
    "A PixelCNN draws an image one value at a time, in raster order: each pixel from the distribution the "
    "network computes from the pixels already drawn (an rgb model draws a pixel's red, then green, then "
    "blue). Scrub or play from the empty canvas to the finished sample: the red square is the pixel being "
    "drawn, the blue region the pixels it may depend on (its analytic receptive field, blind spot "
    "included), and the bars the distribution it is drawn from, the drawn value outlined."
)
model, choice = picked_model_or_stop()
c1, c2 = st.columns(2)
seed = int(c1.number_input("Seed", 0, 10**6, 0, key="generation_seed"))
temperature = float(c2.number_input("Temperature", 0.05, 5.0, 1.0, step=0.1, key="generation_temperature"))


def record() -> str:
    with st.spinner("Drawing a sample step by step..."):
        return player_html(record_generation(model, seed=seed, temperature=temperature), large=presentation())


try:
    html = shared_result(("generation", model_key(choice), seed, temperature, presentation()), record)
except PixelCNNError as err:
    st.error(str(err))
    st.stop()
st.iframe(html, height=player_height(presentation()))
st.caption(f"Model: {as_name(choice.label)}, seed {seed}, temperature {temperature:g}. The same seed and temperature "
           f"draw this image first, however many are drawn: `python -m pixelcnn sample --seed {seed}` and the "
           "Samples page show it top left (each image has random numbers of its own, from the seed and its place).")
