"""The server's shared memo and compute slots, and the teaching computations cached across sessions."""

from __future__ import annotations

import re
from typing import Any, Callable, Hashable, TypeVar

import numpy as np
import streamlit as st

from pixelcnn.errors import PixelCNNError
from pixelcnn.explain.digits import digit_score, load_classifier
from pixelcnn.explain.pixels import log_probabilities
from pixelcnn.explain.posterior import which_digit
from pixelcnn.explain.receptive import analytic_field, gradient_field
from pixelcnn.figures import bits_image, png_bytes
from pixelcnn.runtime import INTERACTIVE_THREADS, intra_op_threads
from pixelcnn.serve.memo import ComputeSlots, SharedMemo, compute_slots_setting

from .data import dataset
from .picker import ModelChoice, model_for

T = TypeVar("T")


@st.cache_resource(show_spinner=False)
def shared_memo() -> SharedMemo:
    """Samples, completions, recordings and codings, shared by every session of this server (bounded), and
    computed at most ``PIXELCNN_COMPUTE_SLOTS`` at a time, whatever the number of visitors."""
    return SharedMemo(max_entries=48, slots=ComputeSlots(compute_slots_setting()))


def shared_result(key: Hashable, compute: Callable[[], T], where: Any = st) -> T:
    """``compute()``'s result from the server's shared memo; while the server's compute slots are all taken,
    a note in ``where`` says how many computations are ahead of this one (none of the room's, for the
    lecturer at the server's own machine)."""
    note, shown = where.empty(), [None]

    def waiting(ahead: int) -> None:
        if ahead != shown[0]:
            shown[0] = ahead
            note.info(f"Waiting for the server: {ahead} computation{'s' if ahead != 1 else ''} ahead of this one "
                      f"(it runs {compute_slots_setting()} at a time, so a room's requests take turns).")

    try:
        return shared_memo().get_or_compute(key, compute, waiting, first=on_this_machine())[0]
    finally:
        note.empty()


def on_this_machine() -> bool:
    """Whether this session's browser runs on the server's own machine (the lecturer's laptop): its requests
    go ahead of the room's, and in lecture mode it keeps Start and Stop. Streamlit gives no address for a
    loopback connection (``st.context.ip_address`` is None), and none outside a server either (``AppTest``:
    no runtime, so a room)."""
    from streamlit import runtime

    return runtime.exists() and st.context.ip_address in (None, "127.0.0.1", "::1")


@st.cache_data(max_entries=512, show_spinner=False)
def receptive_maps(key: tuple, _choice: ModelChoice, row: int, col: int, channel: int,
                   inputs: str) -> tuple[np.ndarray, np.ndarray]:
    """The gradient field and the analytic field for one target, cached across sessions."""
    model = model_for(_choice)
    if inputs == "test images":
        images = dataset()["test"][:4]
    else:
        images = np.random.default_rng(0).integers(0, model.config.levels, (4, 28, 28, 3))
    return gradient_field(model, images, row, col, channel), analytic_field(model.config, row, col, channel=channel)


@st.cache_data(max_entries=256, show_spinner="Scoring every value of the image...")
def image_log_probabilities(key: tuple, _choice: ModelChoice, image: np.ndarray) -> np.ndarray:
    """Every conditional's log-probabilities (H, W, C, levels) for one image, cached across sessions:
    picking a pixel or moving the temperature then costs no forward pass. One thread: one image is too
    little work for two to pay, and the other core is the browser's, which is drawing the page meanwhile."""
    with intra_op_threads(INTERACTIVE_THREADS):
        return log_probabilities(model_for(_choice), image)


@st.cache_data(max_entries=256, show_spinner="Scoring the image under every label...")
def image_label_reading(key: tuple, _choice: ModelChoice, image: np.ndarray) -> dict:
    """A conditional model's bits/dim of one image under each label and its answer, cached across sessions."""
    return which_digit(model_for(_choice), image)


@st.cache_resource(show_spinner=False)
def _digit_classifier():
    return load_classifier()


def digit_reference_text() -> str:
    """The digit score's reference points, as measured when the classifier was trained."""
    try:
        _, record = _digit_classifier()
    except PixelCNNError:
        return "no classifier to measure them"
    return ", ".join(f"{as_text(name)} {value:.2f}" for name, value in record.get("reference", {}).items())


def as_text(text: str) -> str:
    """``text`` escaped for Markdown, so that a message read from a file (a run's end message, its log, a
    record) shows as written: no link, image or formatting of anyone's choosing."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~$:])", r"\\\1", str(text))


def as_name(text: str) -> str:
    """A name read from disk (a run folder's, in a model's label) escaped for Markdown: the characters that
    open a link, an image, emphasis, code, HTML, maths or an emoji code anywhere, and a list or heading marker
    at its start; hyphens, dots and parentheses inside it stay as they are ("shared-run", "paper (shipped)"),
    since there they format nothing."""
    text = re.sub(r"([\\`*_{}\[\]<>!|~$:#])", r"\\\1", str(text))
    text = re.sub(r"^([+-])", r"\\\1", text)
    return re.sub(r"^(\d+)\.", r"\1\\.", text)


def digit_score_text(images: np.ndarray, asked: np.ndarray | None = None) -> str:
    """The digit score of ``images`` with its reference points (and, for images drawn for the digits
    ``asked``, the share read as the digit asked for), or why there is none."""
    try:
        classifier, _ = _digit_classifier()
    except PixelCNNError as err:
        return f"No digit score: {err}"
    result = digit_score(classifier, images, asked)
    refs = digit_reference_text()
    confident = sum(result["histogram"])
    read = ", ".join(f"{d}: {n}" for d, n in enumerate(result["histogram"]) if n)
    text = (f"**Digit score {result['score']:.2f}**: {confident} of {result['n']} read as one digit with "
            f"p >= 0.9 (reference: {refs}). Digits read: {read or 'none'}.")
    if asked is not None:
        text = f"**Read as the digit asked for: {result['asked_for']:.2f}** (p >= 0.9). " + text
    return text


@st.cache_data(max_entries=256, show_spinner=False)
def bits_png(bits: np.ndarray, scale: int, ncols: int = 4) -> bytes:
    """The bits heat map as PNG bytes, encoded once per image and model, not at every rerun."""
    return png_bytes(bits_image(bits, scale=scale, ncols=ncols))
