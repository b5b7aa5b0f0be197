"""The sidebar every page draws first (the model picker, presentation mode), the models it picks, and the
test-image picker."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
import torch.nn as nn

from pixelcnn.errors import PixelCNNError
from pixelcnn.models import PRESETS, get_preset, random_model
from pixelcnn.sampling import sample
from pixelcnn.serve.limits import check_servable
from pixelcnn.serve.runs import RunInfo, list_runs
from pixelcnn.store.checkpoint import load_checkpoint

from .data import dataset, labels
from .navigation import number_input_in_address, through_the_entry_script
from .own_digit import ADDRESS_KEY, own_digit_input
from .presentation import PRESENT_KEY, PRESENT_STATE, PRESENTATION_CSS, presentation

MODEL_KEY = "model_choice"


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
OWN = "your own digit"


def sidebar() -> None:
    """The frame every page draws first: the hand-over to the entry script, then the sidebar under the page
    list: the model picker (a shipped checkpoint, a finished run, or random weights) and presentation mode.

    Each page calls it, rather than the entry script, because a keyed widget's identity includes the script
    that draws it: ``AppTest`` runs each page alone after its first run, and a sidebar drawn by the entry
    script in one run and by the page in the next loses the event in between. Drawn by the page, the same
    keyed widgets are rendered on every page and their state carries across page switches.
    """
    through_the_entry_script()
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
        st.query_params[PRESENT_KEY] = "true"  # the address says so: copied into a slide, it opens the same
        st.html(PRESENTATION_CSS)
    else:
        st.query_params.pop(PRESENT_KEY, None)


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
    ways = ["by index", "by digit"] if digit_labels is not None else ["by index"]
    if f"{prefix}_pick" not in st.session_state and st.query_params.get(ADDRESS_KEY):
        st.session_state[f"{prefix}_pick"] = OWN  # a link with a drawing opens on it
    how = st.radio("Pick the test image", [*ways, OWN], horizontal=True, key=f"{prefix}_pick")
    if how != OWN:
        st.query_params.pop(ADDRESS_KEY, None)
    if how == OWN:
        st.session_state[f"{prefix}_picked"] = None
        own = own_digit_input(prefix)
        if own is None:
            st.stop()
        return own
    if how == "by digit":
        c1, c2 = st.columns(2)
        digit = int(c1.selectbox("Digit", list(range(10)), key=f"{prefix}_digit"))
        indices = np.flatnonzero(digit_labels["test"] == digit)
        nth = int(c2.number_input(f"Which {digit} (of {len(indices)})", 0, len(indices) - 1, 0, key=f"{prefix}_nth"))
        index = int(indices[nth])
    else:
        index = int(number_input_in_address(st, "Test image", 0, len(test) - 1, 0, key=f"{prefix}_index"))
    st.session_state[f"{prefix}_picked"] = index
    return test[index], f"test image {index}"


def test_label(index: int | None) -> int | None:
    """The digit label of test image ``index``, or None (no index, or no label files)."""
    digit_labels = labels()
    return None if index is None or digit_labels is None else int(digit_labels["test"][index])


def selected_pixels(state) -> list[tuple[int, int]]:
    """The (row, col) of every pixel a pixel-picker chart's selection holds, from its widget state; a
    page reads it before drawing the chart, so a click is followed in the run it starts."""
    selection = (state or {}).get("selection") or {}
    return [(int(round(p["y"])), int(round(p["x"]))) for p in selection.get("points", []) if "x" in p and "y" in p]
