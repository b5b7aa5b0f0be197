import time
from pathlib import Path

import numpy as np
import streamlit as st

from pages.common.compute import as_name, digit_score_text, shared_memo, shared_result
from pages.common.data import events_of
from pages.common.navigation import lecture_mode, number_input_in_address
from pages.common.picker import (ModelChoice, comparison_options, model_for, model_key, pick_image,
                                 picked_model_or_stop, selected_pixels, sidebar)
from pages.common.presentation import plot
from pixelcnn.errors import PixelCNNError
from pixelcnn.explain.pixels import ERASE_SHAPES, complete, erase_mask
from pixelcnn.explain.results import (asked_for_text, best_asked_for, best_temperature, recorded_asked_for,
                                      recorded_temperature_scores, recorded_test_bits_per_dim, temperature_text)
from pixelcnn.figures import image_grid, npy_bytes, pixel_picker_figure, png_bytes, upscale
from pixelcnn.sampling import sample

DRAWN = "what I draw on the image"
COMPLETIONS_A_ROW = 4  # the original, the erased input, then completions: four a row, each a quarter of the column

sidebar()
st.title("Samples")
model, choice = picked_model_or_stop()
memo = shared_memo()

c1, c2, c3, c4 = st.columns(4)
n = int(c1.number_input("Samples", 1, 100, 100, key="samples_n"))
seed = int(number_input_in_address(c2, "Seed", 0, 10**6, 0, key="samples_seed"))
temperature = float(number_input_in_address(c3, "Temperature", 0.05, 5.0, 1.0, step=0.1, key="samples_temperature"))
method = c4.selectbox("Method", ["cached"] if lecture_mode() else ["cached", "naive"], key="samples_method",
                      help="cached: each layer keeps its activations and computes one new pixel per step. "
                           "naive: one full forward pass per pixel, 784 of them.")
scores = recorded_temperature_scores(Path(choice.path).parent) if choice.kind != "random" else {}
if scores:
    t1, t2 = st.columns([4, 1], vertical_alignment="center")
    t1.caption(temperature_text(scores))
    best_t = best_temperature(scores)
    t2.button(f"Sample at T = {best_t}", key="samples_best_temperature", on_click=st.session_state.update,
              kwargs={"samples_temperature": float(best_t)})
if method == "naive":
    st.warning("The naive sampler runs the whole network once per pixel: for the paper model and 100 samples "
               "that is several minutes on 2 CPU cores. Try a few samples, or compare with cached.")
ANY, PER_DIGIT = "any (no label)", "one row per digit"


def draw_best(digit: str, guidance: float, temperature: float) -> None:
    """Set the widgets to the guidance and temperature where ``report`` read the most asked-for digits."""
    st.session_state.update(samples_digit=digit, samples_guidance=guidance, samples_temperature=temperature)


classes = model.config.classes
digit, guidance, labels = ANY, 0.0, None
if classes:
    d1, d2 = st.columns(2)
    digit = d1.selectbox("Which digit", [ANY] + [str(d) for d in range(classes)] + [PER_DIGIT], key="samples_digit",
                         bind="query-params",
                         help="This model is class-conditional: it draws the digit asked for, or any digit when "
                              "shown no label.")
    guidance = float(d2.slider("Guidance", 0.0, 5.0, 0.0, 0.5, key="samples_guidance", disabled=digit == ANY,
                               bind="query-params",
                               help="Classifier-free guidance: every conditional's logits become cond + w (cond - "
                                    "uncond), uncond being the same model shown no label. 0 is plain conditional "
                                    "sampling; larger w draws the digit more legibly and less diversely."))
    if digit == PER_DIGIT:
        n = max(1, n // classes) * classes  # at most 100: a served model knows at most 100 labels
        labels = np.repeat(np.arange(classes), n // classes)
    elif digit != ANY:
        labels = np.full(n, int(digit))
    else:
        guidance = 0.0
    shares = recorded_asked_for(Path(choice.path).parent) if choice.kind != "random" else {}
    if shares:
        best_w, best_t = best_asked_for(shares)
        r1, r2 = st.columns([4, 1], vertical_alignment="center")
        r1.caption(asked_for_text(shares))
        r2.button(f"One row per digit at w = {best_w}, T = {best_t}", key="samples_best", on_click=draw_best,
                  args=(PER_DIGIT, float(best_w), float(best_t)))
others = {label: other for label, other in comparison_options().items() if model_key(other) != model_key(choice)}
compare = st.selectbox("Compare side by side with", ["nothing"] + list(others), key="samples_compare",
                       help="The same seed, number and temperature, drawn from a second model.")
st.caption(f"Model: {as_name(choice.label)}. Change it in the sidebar.")


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
        shown_labels = labels if shown_model.config.classes == classes else None
        images = sample(shown_model, n, seed=seed, temperature=temperature, method=method,
                        progress=lambda f: bar.progress(f, text=f"{method} sampling: {f:.0%}"),
                        labels=shown_labels, guidance=guidance if shown_labels is not None else 0.0)
        seconds = time.perf_counter() - start
        bar.empty()
        grid = image_grid(images, ncols=n // classes if digit == PER_DIGIT else 10)
        return {"seconds": seconds, "png": png_bytes(grid), "png_large": png_bytes(upscale(grid, 3)),
                "png_projector": png_bytes(upscale(grid, 8)), "npy": npy_bytes(images),
                "score": digit_score_text(images, shown_labels)}

    key = ("samples", model_key(shown_choice), n, seed, temperature, method, digit, guidance)
    result = memo.get(key)
    button_key = f"samples_draw_{shown_choice.label}"
    if result is None and (method == "cached" or where.button("Draw samples", type="primary", key=button_key)):
        try:
            result = shared_result(key, draw, where)
        except PixelCNNError as err:
            where.error(str(err))
            return
    if result is not None:
        asked = "" if digit == ANY else f", {'one row per digit' if digit == PER_DIGIT else 'digit ' + digit}, " \
                                        f"guidance {guidance:g}"
        where.markdown(result["score"])  # above the grid: the room reads it without scrolling past 100 digits
        where.image(result["png_large"],
                    caption=f"{n} samples ({method}, seed {seed}, temperature {temperature:g}{asked}) "
                            f"in {result['seconds']:.2f} s")
        d1, d2, d3 = where.columns(3)
        d1.download_button("PNG, 1 px a pixel", result["png"], file_name=f"samples-seed{seed}.png",
                           mime="image/png", key=f"samples_download_{shown_choice.label}")
        d2.download_button("PNG for slides (8x)", result["png_projector"], file_name=f"samples-seed{seed}-8x.png",
                           mime="image/png", key=f"samples_download_large_{shown_choice.label}")
        d3.download_button(".npy (n, 28, 28, 3) uint8", result["npy"], file_name=f"samples-seed{seed}.npy",
                           mime="application/octet-stream", key=f"samples_download_npy_{shown_choice.label}",
                           help="The values 0..3 themselves, as `sample --npy` writes them; `score --images` "
                                "reads it.")


if compare == "nothing":
    show_samples(st, model, choice)
else:
    other_choice = others[compare]
    left, right = st.columns(2)
    for where, shown_choice in ((left, choice), (right, other_choice)):
        where.subheader(as_name(shown_choice.label))
        where.markdown(f"**{score_label(shown_choice)}**")
        try:
            shown_model = model if shown_choice is choice else model_for(shown_choice)
        except PixelCNNError as err:
            where.error(str(err))
            continue
        show_samples(where, shown_model, shown_choice)

st.header("Erase and complete")
st.markdown(
    "Erase part of a test image (pick a shape, or draw a box or lasso on the image), then let the model "
    "redraw exactly the erased pixels, several times. Each erased pixel is drawn from the pixels *before* "
    "it in raster order only: known pixels below or to the right of an erased one cannot shape it. Erase "
    "the middle band and the completions ignore the rows under it; erase the top rows and the digit below "
    "cannot help. Known pixels are kept as they are when the sampler reaches them."
)
image, source = pick_image("complete")
selected = selected_pixels(st.session_state.get("complete_picker"))  # a box or lasso that started this run
if selected and selected != st.session_state.get("complete_selected"):  # new, not the one already followed
    st.session_state.complete_selected = selected
    st.session_state.complete_shape = DRAWN
c1, c2 = st.columns(2)
shape = c1.selectbox("Erase", list(ERASE_SHAPES) + [DRAWN], key="complete_shape",
                     help="A named region, or the box or lasso you draw on the image below.")
count = int(c2.number_input("Completions", 1, 10, 5, key="complete_count"))
erased = np.zeros((28, 28), dtype=bool)
if shape != DRAWN:
    erased = erase_mask(shape)
else:
    for r, c in st.session_state.get("complete_selected", []):
        erased[r, c] = True
left, right = st.columns([2, 3])
with left:
    plot(st, pixel_picker_figure(image, erased=erased, height=360), on_select="rerun",
         selection_mode=["box", "lasso"], key="complete_picker")
    st.caption(f"{as_name(source)}: {int(erased.sum())} pixels erased (grey).")
ckey = ("complete", model_key(choice), image.tobytes(), erased.tobytes(), count, seed, temperature)


def completions_of() -> np.ndarray:
    bar = st.progress(0.0, text="completing")
    done = complete(model, image, erased, count, seed=seed, temperature=temperature,
                    progress=lambda f: bar.progress(f, text=f"completing: {f:.0%}"))
    bar.empty()
    return done


completions = memo.get(ckey)
with right:
    if not erased.any():
        st.info("Nothing erased yet: pick a shape, or draw a box or lasso on the image.")
    elif completions is None and st.button("Complete", type="primary", key="complete_go"):
        try:
            completions = shared_result(ckey, completions_of)
        except PixelCNNError as err:
            st.error(str(err))
    masked = image.copy()
    masked[erased] = 0
    row = [image, masked] + list(completions if completions is not None else [])
    st.image(upscale(image_grid(np.stack(row), ncols=min(len(row), COMPLETIONS_A_ROW)), 4), width="stretch",
             caption="the original and the erased input (black)" if completions is None else
             f"the original, the erased input (black), then {len(completions)} completions")
