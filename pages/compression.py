import numpy as np
import streamlit as st

from pages.common.compute import as_name, shared_result
from pages.common.picker import model_key, pick_image, picked_model_or_stop, sidebar, test_label
from pages.common.presentation import plot, presentation
from pixelcnn.errors import PixelCNNError
from pixelcnn.explain.codec import baseline_sizes, compress, decoding
from pixelcnn.explain.pixels import ERASE_SHAPES, bits_per_value, complete, erase_mask
from pixelcnn.figures import image_grid, raster_bits_figure, upscale
from pixelcnn.sampling import sample
from pixelcnn.serve.player import player_height, player_html

sidebar()
st.title("Bits are bytes")
st.markdown(
    "What does 0.13 bits/dim mean? A file size. An entropy coder turns each conditional "
    "p(value | everything before it) and the true value into a share of one bit stream, so a model that gives "
    "an image probability p(x) stores it in about -log2 p(x) bits. The decoder holds the same model: it "
    "computes the same conditionals from the values it has already decoded and reads the next value off the "
    "stream, one pixel at a time, exactly as the sampler draws, and ends with the original image, bit for "
    "bit. PNG and gzip see bytes; the model knows what digits look like."
)
model, choice = picked_model_or_stop()
SOURCES = ["a test image", "a sample of the model", "a test image, erased and completed"]
source_kind = st.radio("Image", SOURCES, horizontal=True, key="codec_source")
labels = None
if source_kind == SOURCES[1]:
    seed = int(st.number_input("Sample seed", 0, 10**6, 0, key="codec_seed"))
    image, source = sample(model, 1, seed=seed)[0], f"sample seed {seed} of {choice.label}"
else:
    image, source = pick_image("codec")
    label = test_label(st.session_state.get("codec_picked"))
    if source_kind == SOURCES[2]:
        shape = st.selectbox("Erase, then let the model complete", ERASE_SHAPES, index=0, key="codec_erase")
        image = complete(model, image, erase_mask(shape), 1, seed=0)[0]
        source = f"{source}, {shape} erased and completed (seed 0)"
    elif model.config.classes and label is not None:
        labels = np.array([label])
        source = f"{source} (coded given its label, {label})"


coded_label = None if labels is None else int(labels[0])
key = ("codec", model_key(choice), image.tobytes(), coded_label)
# First what one forward pass and the general-purpose compressors tell, within a few tenths of a second; then
# the bit stream itself, which the coder writes pixel by pixel as the decoder will read it.
try:
    bits = shared_result(("bits",) + key, lambda: bits_per_value(model, image, coded_label))
except PixelCNNError as err:
    st.error(str(err))
    st.stop()
dims = image.size
model_bits = float(bits.sum(dtype=np.float64))
sizes = baseline_sizes(image[None])  # bytes
c0, c1, c2, c3, c4 = st.columns([1, 1, 1, 1, 1])
c0.image(upscale(image_grid(image[None], ncols=1), 4), caption=as_name(source))
c1.metric("-log2 p(x) under the model", f"{model_bits / 8:.1f} bytes",
          help=f"{model_bits:.1f} bits: {model_bits / dims:.4f} bits/dim, what `bits` reports")
stream_slot = c2.empty()
stream_slot.metric("The model's bit stream", "coding...", help="The range coder is writing the stream, pixel by pixel.")
c3.metric("PNG (palette, optimised)", f"{sizes['png']} bytes", help=f"{8 * sizes['png'] / dims:.4f} bits/dim")
c4.metric("gzip -9 of the values", f"{sizes['gzip']} bytes",
          help=f"{8 * sizes['gzip'] / dims:.4f} bits/dim; bzip2 {sizes['bzip2']} bytes, lzma {sizes['lzma']} bytes, "
               f"raw values {sizes['raw']} bytes")
plot(st, raster_bits_figure(bits, "Where the bits are spent, pixel by pixel"), key="codec_curve")
st.caption("The background costs almost nothing once the model has seen its colour; each stroke's first "
           "pixels and the edges that could go either way cost the bits.")


def encode() -> dict:
    encoded = compress(model, image, labels)
    return {"data": encoded.data, "header": encoded.header_bytes, "model_bits": encoded.model_bits}


try:
    result = shared_result(key, encode)
except PixelCNNError as err:
    stream_slot.error(str(err))
    st.stop()
stream_bytes = len(result["data"]) - result["header"]
stream_slot.metric("The model's bit stream", f"{stream_bytes} bytes",
                   delta=f"{8 * stream_bytes - result['model_bits']:+.1f} bits of coder overhead", delta_color="off",
                   help=f"{8 * stream_bytes / dims:.4f} bits/dim. The file adds a {result['header']}-byte header "
                        f"(format, the model's identity, a checksum), paid once per file, whatever the number of "
                        f"images.")

st.header("Decode it in front of the room")
st.markdown("The player starts from the bit stream alone: each step computes the pixel's distribution from "
            "the pixels decoded so far (the bars) and reads the value off the stream.")


def decode() -> dict:
    recording, decoded = decoding(model, result["data"])
    equal = bool(np.array_equal(decoded[0], image))
    done = "identical to the original, bit for bit" if equal else "NOT the original"
    return {"html": player_html(recording, verb="decoding", large=presentation(), done=done), "equal": equal}


if st.button("Decode from the bit stream", type="primary", key="codec_decode") or st.session_state.get(
        "codec_decoded") == key:
    st.session_state.codec_decoded = key
    try:
        decoded = shared_result(("decode", presentation()) + key, decode)
    except PixelCNNError as err:
        st.error(str(err))
        st.stop()
    st.iframe(decoded["html"], height=player_height(presentation()))
    if decoded["equal"]:
        st.caption(f"Press Play to watch the decoder read the {stream_bytes} bytes; at the last step it says what "
                   f"the file's checksum already verified: the image is the original, bit for bit.")
    else:
        st.error("The decoded image differs from the original.")
