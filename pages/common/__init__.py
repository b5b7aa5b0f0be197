"""Glue shared by the pages: the page list, cached loaders and the model picker. UI only; logic lives in
pixelcnn. A package (``pages/common/``), not a file in ``pages/``, so that Streamlit's legacy multipage
mode, which lists every ``pages/*.py``, never shows it as a page."""

from __future__ import annotations

import os
import re
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Hashable, TypeVar

import numpy as np
import streamlit as st
import torch.nn as nn

from pixelcnn.explain.pixels import log_probabilities
from pixelcnn.store.checkpoint import load_checkpoint
from pixelcnn.store.data import load_colored_mnist, load_labels
from pixelcnn.explain.digits import digit_score, load_classifier
from pixelcnn.errors import PixelCNNError
from pixelcnn.figures import bits_image, png_bytes, value_counts
from pixelcnn.serve.memo import ComputeSlots, SharedMemo, compute_slots_setting
from pixelcnn.store.metrics import METRICS_NAME, curves, read_events
from pixelcnn.models import PRESETS, get_preset
from pixelcnn.explain.posterior import which_digit
from pixelcnn.explain.receptive import analytic_field, gradient_field
from pixelcnn.models import random_model
from pixelcnn.sampling import sample
from pixelcnn.serve.runs import RunInfo, list_runs
from pixelcnn.runtime import INTERACTIVE_THREADS, intra_op_threads
from pixelcnn.serve.limits import check_servable

T = TypeVar("T")

MODEL_KEY = "model_choice"


def lecture_mode() -> bool:
    """Read-only mode for serving a room: ``streamlit run streamlit_app.py -- --lecture``
    or ``PIXELCNN_LECTURE_MODE=1``. It hides training and uploads."""
    env = os.environ.get("PIXELCNN_LECTURE_MODE", "").strip().lower()
    return "--lecture" in sys.argv[1:] or env in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class ModelChoice:
    """What the sidebar picked: a checkpoint (path) or random weights (preset, seed)."""

    kind: str  # "checkpoint" or "random"
    path: str = ""
    preset: str = "paper"
    seed: int = 0
    label: str = ""


@st.cache_resource(max_entries=8, show_spinner="Loading the model...")
def _load_checkpoint_model(path: str, mtime_ns: int) -> nn.Module:
    ckpt = load_checkpoint(path)
    check_servable(ckpt.config)
    return ckpt.model


@st.cache_resource(max_entries=8, show_spinner=False)
def _random_model(preset: str, seed: int) -> nn.Module:
    return random_model(get_preset(preset), seed)


def model_key(choice: ModelChoice) -> tuple:
    """What identifies a model's weights: the choice, plus the checkpoint file's mtime."""
    if choice.kind == "random":
        return ("random", choice.preset, choice.seed)
    try:
        return ("checkpoint", choice.path, Path(choice.path).stat().st_mtime_ns)
    except OSError:
        return ("checkpoint", choice.path, 0)


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
    go ahead of the room's."""
    return (st.context.ip_address or "") in ("127.0.0.1", "::1", "localhost")


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


def selected_pixels(state) -> list[tuple[int, int]]:
    """The (row, col) of every pixel a pixel-picker chart's selection holds, from its widget state; a
    page reads it before drawing the chart, so a click is followed in the run it starts."""
    selection = (state or {}).get("selection") or {}
    return [(int(round(p["y"])), int(round(p["x"]))) for p in selection.get("points", []) if "x" in p and "y" in p]


def pick_image(prefix: str) -> tuple[np.ndarray, str]:
    """A test image picked by index or by digit (widgets keyed by ``prefix``), with its description.
    The picked test image's index is left in ``st.session_state[prefix + "_picked"]`` (None for a sample).

    Without data it says so and falls back to a sample drawn by the picked model, so the view still
    shows something true about the model.
    """
    data = dataset()
    if data is None:
        st.info("No MNIST here yet (the Data page fetches it): showing a sample the picked model drew instead.")
        st.session_state[f"{prefix}_picked"] = None
        model, choice = picked_model_or_stop()
        return sample(model, 1, seed=0)[0], f"a sample of {choice.label} (seed 0)"
    test, digit_labels = data["test"], labels()
    how = st.radio("Pick the test image", ["by index", "by digit"] if digit_labels is not None else ["by index"],
                   horizontal=True, key=f"{prefix}_pick")
    if how == "by digit":
        c1, c2 = st.columns(2)
        digit = int(c1.selectbox("Digit", list(range(10)), key=f"{prefix}_digit"))
        indices = np.flatnonzero(digit_labels["test"] == digit)
        nth = int(c2.number_input(f"Which {digit} (of {len(indices)})", 0, len(indices) - 1, 0, key=f"{prefix}_nth"))
        index = int(indices[nth])
    else:
        index = int(st.number_input("Test image", 0, len(test) - 1, 0, key=f"{prefix}_index", bind="query-params"))
    st.session_state[f"{prefix}_picked"] = index
    return test[index], f"test image {index}"


def test_label(index: int | None) -> int | None:
    """The digit label of test image ``index``, or None (no index, or no label files)."""
    digit_labels = labels()
    return None if index is None or digit_labels is None else int(digit_labels["test"][index])


def model_for(choice: ModelChoice) -> nn.Module:
    """The model for a choice, cached; raises PixelCNNError with a one-line message."""
    if choice.kind == "random":
        return _random_model(choice.preset, choice.seed)
    try:
        mtime = Path(choice.path).stat().st_mtime_ns
    except OSError:
        raise PixelCNNError(f"{choice.path}: the checkpoint is gone; pick another model") from None
    return _load_checkpoint_model(choice.path, mtime)


def picked() -> ModelChoice:
    return st.session_state.get(MODEL_KEY) or ModelChoice("random", label="random weights (paper, seed 0)")


def picked_model_or_stop() -> tuple[nn.Module, ModelChoice]:
    choice = picked()
    try:
        return model_for(choice), choice
    except PixelCNNError as err:
        st.error(str(err))
        st.stop()


@st.cache_resource(show_spinner="Loading colored MNIST...")
def _data(data_dir: str | None) -> dict[str, np.ndarray]:
    return load_colored_mnist(data_dir, download=False)


@st.cache_resource(show_spinner=False)
def _labels(data_dir: str | None) -> dict[str, np.ndarray] | None:
    return load_labels(data_dir)


def data_dir() -> str | None:
    return os.environ.get("PIXELCNN_DATA_DIR") or None


def dataset() -> dict[str, np.ndarray] | None:
    """Colored MNIST, or None when the files are not there yet (the Data page offers the download)."""
    try:
        return _data(data_dir())
    except PixelCNNError:
        return None


def forget_data() -> None:
    """Drop the cached data, after a download."""
    _data.clear()
    _labels.clear()


@st.cache_data(max_entries=32, show_spinner=False)
def value_counts_of(split: str, digit: str) -> np.ndarray:
    images = dataset()[split]
    if digit != "all":
        images = images[labels()[split] == int(digit)]
    return value_counts(images)


def labels() -> dict[str, np.ndarray] | None:
    """The digit labels, or None when they are absent or damaged (see :func:`labels_problem`)."""
    try:
        return _labels(data_dir())
    except PixelCNNError:
        return None


def labels_problem() -> str | None:
    """Why the label files cannot be used, if they are there but damaged."""
    try:
        _labels(data_dir())
    except PixelCNNError as err:
        return f"No digit filter: {err}"
    return None


@st.cache_data(max_entries=64, show_spinner=False)
def _events(path: str, size: int, mtime_ns: int) -> list[dict]:
    return read_events(path)


def events_of(run_dir: Path) -> list[dict]:
    """A run's metrics events, re-read only when the file changed."""
    path = run_dir / METRICS_NAME
    try:
        st_ = path.stat()
    except OSError:
        return []
    return _events(str(path), st_.st_size, st_.st_mtime_ns)


def curves_of(run_dir: Path) -> dict[str, list[tuple[float, float]]]:
    return curves(events_of(run_dir))


def runs_with_checkpoints() -> list[RunInfo]:
    return [r for r in list_runs() if r.has_checkpoint and r.status != "running"]


def comparison_options(trained_first: bool = True, random_seed: int = 0) -> dict[str, ModelChoice]:
    """Every model a side-by-side view can show, by label: each checkpoint, and each preset's random weights
    (initialised with ``random_seed``)."""
    trained = {}
    for run in runs_with_checkpoints():
        label = f"{run.name} (shipped)" if run.kind == "shipped" else f"{run.name} (run, {run.status})"
        trained[label] = ModelChoice("checkpoint", path=str(run.checkpoint), label=label)
    random = {f"{p} (random weights)": ModelChoice("random", preset=p, seed=random_seed,
                                                   label=f"random weights ({p}, seed {random_seed})")
              for p in PRESETS}
    return {**trained, **random} if trained_first else {**random, **trained}


def presets() -> list[str]:
    return list(PRESETS)


RANDOM = "Random weights"


_HANDED_OVER = "_handed_to_entry_script"
_this_run = threading.local()  # the script thread of the current run: did it start in streamlit_app.py?


def app_pages() -> list:
    """The dashboard's pages, in order (in lecture mode the Train page shows the runs read-only)."""
    pages = [
        st.Page("pages/overview.py", title="Overview", icon=":material/school:", default=True),
        st.Page("pages/data.py", title="Data", icon=":material/dataset:"),
        st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("pages/samples.py", title="Samples", icon=":material/grid_view:"),
        st.Page("pages/bits.py", title="Where the bits go", icon=":material/local_fire_department:"),
        st.Page("pages/generation.py", title="How a sample is drawn", icon=":material/draw:"),
        st.Page("pages/compression.py", title="Bits are bytes", icon=":material/compress:"),
        st.Page("pages/receptive_field.py", title="Receptive field", icon=":material/center_focus_strong:"),
        st.Page("pages/models.py", title="Models", icon=":material/leaderboard:"),
    ]
    return pages


def entered_through_the_entry_script() -> None:
    """Called by ``streamlit_app.py`` before it runs the page: this run went through the entry script."""
    _this_run.entered = True


def _run_through_the_entry_script() -> None:
    """Make every page run through ``streamlit_app.py`` and its ``st.navigation``, deep links included.

    Streamlit treats a ``pages/`` folder beside the entry script as a legacy
    multipage app until some script has called ``st.navigation``. So when the
    first request after a server start is a link to a page (say ``/samples``),
    that page runs alone: every file in ``pages/`` is listed and lecture mode is
    not applied. Such a page calls the public ``st.navigation`` with the app's
    own page list, which ends the legacy mode for the server, and reruns: the
    rerun lands on the same page (the URL path is the same), through the entry
    script. Once per session at most: ``AppTest`` restores the legacy mode
    before every run, and a rerun there would swallow the widget event that
    started the run.
    """
    entered = getattr(_this_run, "entered", False)
    _this_run.entered = False
    if not entered and not st.session_state.get(_HANDED_OVER):
        st.session_state[_HANDED_OVER] = True
        st.navigation(app_pages(), position="hidden")
        st.rerun()


def sidebar() -> None:
    """The model picker every page draws first: a shipped checkpoint, a finished run, or random weights.

    Each page calls it (rather than the entry script) so the same keyed widgets
    are rendered on every page and their state carries across page switches.
    """
    _run_through_the_entry_script()
    runs = runs_with_checkpoints()
    labels = {}
    for run in runs:
        kind = "shipped" if run.kind == "shipped" else f"run, {run.status}"
        labels[str(run.checkpoint)] = f"{run.name} ({kind})"
    options = list(labels) + [RANDOM]
    current: ModelChoice | None = st.session_state.get(MODEL_KEY)
    if current is None:
        default = options[0]
    elif current.kind == "random":
        default = RANDOM
    else:
        default = current.path if current.path in labels else options[0]
    st.sidebar.subheader("Model")
    choice = st.sidebar.selectbox("Model", options, index=options.index(default), label_visibility="collapsed",
                                  format_func=lambda o: labels.get(o, o), key="model_select",
                                  bind="query-params")
    if choice == RANDOM:
        old = current if current and current.kind == "random" else ModelChoice("random")
        preset = st.sidebar.selectbox("Preset", presets(), index=presets().index(old.preset), key="random_preset")
        seed = int(st.sidebar.number_input("Init seed", 0, 2**31 - 1, old.seed, key="random_seed"))
        st.session_state[MODEL_KEY] = ModelChoice("random", preset=preset, seed=seed,
                                                  label=f"random weights ({preset}, seed {seed})")
    else:
        st.session_state[MODEL_KEY] = ModelChoice("checkpoint", path=choice, label=labels[choice])
    if PRESENT_STATE not in st.session_state:  # a slide's link asks for it: ?present=true
        st.session_state[PRESENT_STATE] = st.query_params.get(PRESENT_KEY, "").lower() in ("1", "true", "yes", "on")
    st.session_state[PRESENT_STATE] = st.sidebar.toggle(
        "Presentation mode", value=st.session_state[PRESENT_STATE], key=PRESENT_KEY,
        help="For a projector: larger text, plots and images, one large map at a time. A slide can ask for it "
             "with ?present=true in its link.")
    if presentation():
        st.html(PRESENTATION_CSS)


PRESENT_KEY = "present"
PRESENT_STATE = "presentation_on"  # outlives the widget's own state across page switches
PRESENTATION_CSS = """<style>
html { font-size: 21px !important; }
[data-testid="stMainBlockContainer"] { max-width: 100% !important; padding-left: 2.5rem; padding-right: 2.5rem; }
[data-testid="stImage"] img { image-rendering: pixelated; min-width: min(100%, 540px); }
</style>"""
PRESENTATION_FONT = 19  # px, plot text; 12 by default, small from the back of a hall


def presentation() -> bool:
    """Whether this session shows the presentation scale (the sidebar's toggle, or ``?present=true``)."""
    return bool(st.session_state.get(PRESENT_STATE))


def plot(where: Any, figure: Any, **kwargs: Any) -> Any:
    """``where.plotly_chart(figure, **kwargs)``, its text enlarged in presentation mode."""
    if presentation():
        figure.update_layout(font={"size": PRESENTATION_FONT}, height=int((figure.layout.height or 450) * 1.3))
    return where.plotly_chart(figure, **kwargs)
