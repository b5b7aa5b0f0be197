import time
from pathlib import Path

import numpy as np
import streamlit as st

from pages.common import (ModelChoice, comparison_options, dataset, events_of, model_for, model_key,
                          picked_model_or_stop, shared_memo, sidebar)
from pixelcnn.errors import PixelCNNError
from pixelcnn.figures import image_grid, png_bytes, upscale
from pixelcnn.results import recorded_test_bits_per_dim
from pixelcnn.sampling import sample

sidebar()
st.title("Samples")
model, choice = picked_model_or_stop()
memo = shared_memo()

c1, c2, c3, c4 = st.columns(4)
n = int(c1.number_input("Samples", 1, 100, 100, key="samples_n"))
seed = int(c2.number_input("Seed", 0, 10**6, 0, key="samples_seed"))
temperature = float(c3.number_input("Temperature", 0.05, 5.0, 1.0, step=0.1, key="samples_temperature"))
method = c4.selectbox("Method", ["cached", "naive"], key="samples_method",
                      help="cached: each layer keeps its activations and computes one new pixel per step. "
                           "naive: one full forward pass per pixel, 784 of them.")
if method == "naive":
    st.warning("The naive sampler runs the whole network once per pixel: for the paper model and 100 samples "
               "that is several minutes on 2 CPU cores. Try a few samples, or compare with cached.")
others = {label: other for label, other in comparison_options().items() if model_key(other) != model_key(choice)}
compare = st.selectbox("Compare side by side with", ["nothing"] + list(others), key="samples_compare",
                       help="The same seed, number and temperature, drawn from a second model.")
st.caption(f"Model: {choice.label}. Change it in the sidebar.")


def score_label(of: ModelChoice) -> str:
    """The test bits/dim recorded for a model, as shown above its samples."""
    if of.kind == "random":
        return "untrained"
    folder = Path(of.path).parent
    value = recorded_test_bits_per_dim(folder, events_of(folder))
    return "test bits/dim not measured" if value is None else f"test {value:.4f} bits/dim"


def show_samples(where, shown_model, shown_choice: ModelChoice) -> None:
    """Draw (or fetch from the shared memo) the grid of one model into ``where``."""

    def draw() -> dict:
        """The samples with their PNGs encoded once, so every session showing them only sends bytes."""
        bar = where.progress(0.0, text=f"{method} sampling")
        start = time.perf_counter()
        images = sample(shown_model, n, seed=seed, temperature=temperature, method=method,
                        progress=lambda f: bar.progress(f, text=f"{method} sampling: {f:.0%}"))
        seconds = time.perf_counter() - start
        bar.empty()
        grid = image_grid(images)
        return {"seconds": seconds, "png": png_bytes(grid), "png_large": png_bytes(upscale(grid, 3))}

    key = ("samples", model_key(shown_choice), n, seed, temperature, method)
    result = memo.get(key)
    button_key = f"samples_draw_{shown_choice.label}"
    if result is None and (method == "cached" or where.button("Draw samples", type="primary", key=button_key)):
        try:
            result, _ = memo.get_or_compute(key, draw)
        except PixelCNNError as err:
            where.error(str(err))
            return
    if result is not None:
        where.image(result["png_large"],
                    caption=f"{n} samples ({method}, seed {seed}, temperature {temperature:g}) "
                            f"in {result['seconds']:.2f} s")
        where.download_button("Download PNG", result["png"], file_name=f"samples-seed{seed}.png",
                              mime="image/png", key=f"samples_download_{shown_choice.label}")


if compare == "nothing":
    show_samples(st, model, choice)
else:
    other_choice = others[compare]
    left, right = st.columns(2)
    for where, shown_choice in ((left, choice), (right, other_choice)):
        where.subheader(shown_choice.label)
        where.markdown(f"**{score_label(shown_choice)}**")
        try:
            shown_model = model if shown_choice is choice else model_for(shown_choice)
        except PixelCNNError as err:
            where.error(str(err))
            continue
        show_samples(where, shown_model, shown_choice)

st.header("Image completion")
data = dataset()
if data is None:
    st.info("Completion needs the test images: open the Data page to fetch MNIST.")
    st.stop()
c1, c2, c3 = st.columns(3)
index = int(c1.number_input("Test image", 0, len(data["test"]) - 1, 0, key="complete_index"))
rows = int(c2.slider("Rows kept from the top", 0, 27, 14, key="complete_rows"))
count = int(c3.number_input("Completions", 1, 10, 5, key="complete_count"))
original = data["test"][index]
known = np.zeros(original.shape[:2], dtype=bool)
known[:rows] = True
ckey = ("complete", model_key(choice), index, rows, count, seed, temperature)


def complete() -> np.ndarray:
    bar = st.progress(0.0, text="completing")
    completions = sample(model, count, seed=seed, temperature=temperature, prefix=(original, known),
                         progress=lambda f: bar.progress(f, text=f"completing: {f:.0%}"))
    bar.empty()
    return completions


completions = memo.get(ckey)
if completions is None and st.button("Complete", key="complete_go"):
    try:
        completions, _ = memo.get_or_compute(ckey, complete)
    except PixelCNNError as err:
        st.error(str(err))
        st.stop()
masked = original.copy()
masked[~known] = 0
shown = [original, masked] + list(completions if completions is not None else [])
st.image(upscale(image_grid(np.stack(shown), ncols=len(shown)), 4),
         caption="original, the kept rows, then the completions")
