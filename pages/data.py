import numpy as np
import streamlit as st

from pages.common.data import data_dir, dataset, forget_data, labels, labels_problem, value_counts_of
from pages.common.picker import sidebar
from pages.common.presentation import plot
from pixelcnn.errors import PixelCNNError
from pixelcnn.figures import histogram_figure, image_grid, upscale
from pixelcnn.store.data import download_mnist, resolve_data_dir

sidebar()
st.title("Colored MNIST")
data = dataset()
if data is None:
    folder = resolve_data_dir(data_dir())
    st.warning(f"MNIST is not in {folder} yet.")
    if st.button("Download MNIST (about 11 MB)", type="primary"):
        bar = st.progress(0.0, text="starting the download")
        try:
            download_mnist(folder, progress=lambda fraction, text: bar.progress(fraction, text=text))
        except PixelCNNError as err:
            bar.empty()
            st.error(str(err))
            st.stop()
        forget_data()
        st.rerun()
    st.stop()

sizes = {split: len(images) for split, images in data.items()}
cols = st.columns(3)
for col, (split, n) in zip(cols, sizes.items()):
    col.metric(f"{split} images", f"{n:,}")

left, right = st.columns([3, 2])
with right:
    split = st.segmented_control("Split", list(data), default="train", key="data_split") or "train"
    seed = int(st.number_input("Seed", 0, 10**6, 0, key="data_seed"))
    digit_labels = labels()
    if digit_labels is not None:
        digit = st.selectbox("Digit", ["all"] + [str(d) for d in range(10)], key="data_digit")
    else:
        digit = "all"
        st.caption(labels_problem() or "No label files beside the images, so no digit filter.")
images = data[split]
if digit != "all":
    images = images[digit_labels[split] == int(digit)]
chosen = np.random.default_rng(seed).choice(len(images), size=min(100, len(images)), replace=False)
with left:
    st.image(upscale(image_grid(images[np.sort(chosen)]), 2), caption=f"{len(chosen)} {split} images" + ("" if digit == "all" else f" of the digit {digit}")
             + f", seed {seed}")
with right:
    plot(st, histogram_figure(value_counts_of(split, digit)), key="data_histogram")
    over = f"all {len(images):,} {split} images" + ("" if digit == "all" else f" of the digit {digit}")
    st.caption(f"How often each value occurs per channel over {over} (not only the 100 shown). Background and "
               f"stroke colors are drawn uniformly, so all four values are about equally common.")
