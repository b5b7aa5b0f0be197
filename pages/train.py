from pathlib import Path

import numpy as np
import streamlit as st
import torch

from pages.common.compute import as_name, as_text, on_this_machine
from pages.common.data import data_dir, dataset, events_of
from pages.common.navigation import lecture_mode
from pages.common.picker import sidebar
from pages.common.presentation import plot
from pixelcnn.cli.progress import format_seconds
from pixelcnn.errors import PixelCNNError
from pixelcnn.figures import loss_figure, loss_range
from pixelcnn.models import PRESETS, PixelCNNConfig
from pixelcnn.options import problems
from pixelcnn.runtime import bf16_is_fast
from pixelcnn.serve.estimate import SPEED_PROBE
from pixelcnn.serve.jobs import resume_run, start_run, stop_run
from pixelcnn.serve.phase import run_phase
from pixelcnn.serve.runs import active_run, check_run_name, list_runs, new_run_name, read_job, read_live_image, run_status
from pixelcnn.store.checkpoint import CHECKPOINT_NAME, MAX_PARAMETERS, check_trainable
from pixelcnn.store.data import MNIST_FILES, N_TRAIN
from pixelcnn.store.metrics import curves, progress_of
from pixelcnn.training.config import TrainConfig, preset_train_config
from pixelcnn.training.speed import expect

sidebar()
st.title("Train")
READ_ONLY = lecture_mode()  # the room watches the lecturer's run; nothing here starts or stops one
CONTROLS = not READ_ONLY or on_this_machine()  # the lecturer, on the server's own machine, keeps them
if READ_ONLY:
    st.caption("Lecture mode: the lecturer's run is shown as it trains"
               + ("; you are on the server's machine, so you can start and stop runs." if CONTROLS
                  else "; starting and stopping runs is the lecturer's."))
st.html("<style>[data-testid='stMainBlockContainer'] { padding-top: 2.5rem; }"  # the run on the first screen
        " [data-testid='stMetricValue'] { font-size: 1.75rem; }</style>")
TEST_IMAGES = MNIST_FILES["test_images"].shape[0]
STRIPS = 6  # live sample strips shown, newest last
CHART_HEIGHT = 260  # px: with the heading, values, progress and strips, on the first screen at 1280x720
RUN_KEY = "train_run_dir"
SHOW_KEY = "train_show_run"
DEFAULT_PRESET = "live"
FORM_LABELS = {"hidden": "Width", "n_blocks": "Blocks", "lr": "Learning rate", "batch_size": "Batch size",
               "steps": "Steps", "epochs": "Epochs", "minutes": "Minutes", "train_limit": "Training images",
               "val_limit": "Validation images", "eval_every": "Validate every N steps", "seed": "Seed",
               "label_dropout": "Label dropout", "dropout": "Dropout"}


def expectation(parameters: int, config: TrainConfig) -> None:
    """What the run will do here, at once: the background probe's speed (:mod:`pixelcnn.serve.estimate`)
    scaled to these settings, the steps and epochs the budget comes to, and when and under what load the
    speed was measured. While the probe runs, a fragment looks again every two seconds."""
    SPEED_PROBE.start_once()

    @st.fragment(run_every=2.0 if SPEED_PROBE.measuring() and SPEED_PROBE.result() is None else None)
    def estimate() -> None:
        probe = SPEED_PROBE.result()
        text, button = st.columns([6, 1])
        if probe is None:
            why = SPEED_PROBE.error()
            text.caption(f"Could not measure the training speed here ({as_text(why)})." if why and
                         not SPEED_PROBE.measuring() else "**What to expect**: measuring this machine's training "
                         "speed in the background (about 15 s); the estimate appears here.")
        else:
            speed = probe.images_per_s(parameters, config.amp and bf16_is_fast(torch.device("cpu")))
            expected = expect(config, speed, config.train_limit or N_TRAIN)
            text.caption(f"**What to expect** from these settings: {expected.text()}. Scaled from a probe "
                         f"{probe.when()}; a busier machine trains slower.")
        if button.button("Measure again", key="train_measure", disabled=SPEED_PROBE.measuring(),
                         help="Measure the speed again in the background (about 15 s); the page stays usable."):
            SPEED_PROBE.start()
            st.rerun()  # the whole page: its fragment then looks again every two seconds until the probe is done

    estimate()


def labelled(message: str) -> str:
    """A config check's message about a field, naming the field as the form labels it."""
    field, _, rest = message.partition(" ")
    return f"{FORM_LABELS[field]} {rest}" if field in FORM_LABELS else message


def run_form() -> None:
    """Hyperparameters, each checked by the engine's own limits, from the preset's training settings (the
    ``live`` preset's five minutes); what the run will do here; Start launches a background job."""
    names = list(PRESETS)
    preset = st.segmented_control("Preset", names, default=DEFAULT_PRESET, key="train_preset") or DEFAULT_PRESET
    base, start_from = PRESETS[preset], preset_train_config(preset)
    budget_kinds = ["steps", "epochs", "minutes"]
    default_kind = "minutes" if start_from.minutes else "steps" if preset == "tiny" or start_from.steps else "epochs"
    default_budget = {"minutes": start_from.minutes, "steps": start_from.steps or 200,
                      "epochs": start_from.epochs or 1}[default_kind]
    with st.container(border=True):  # not a form: "What to expect" follows every edit
        c1, c2, c3 = st.columns(3)
        hidden = c1.number_input("Width", value=base.hidden, step=8, key=f"hidden_{preset}",
                                 help="Residual stream width; for gated, feature maps per stack. Width and "
                                      f"blocks together: at most {MAX_PARAMETERS:,} parameters.")
        n_blocks = c1.number_input("Blocks", value=base.n_blocks, step=1, key=f"blocks_{preset}",
                                   help="Residual blocks; for gated, gated layers after the first.")
        lr = c2.number_input("Learning rate", value=start_from.lr, format="%.5f", step=1e-4, key=f"lr_{preset}")
        batch = c2.number_input("Batch size", value=start_from.batch_size, step=16, key=f"batch_{preset}")
        budget_kind = c3.radio("Budget", budget_kinds, index=budget_kinds.index(default_kind), horizontal=True,
                               key=f"budget_kind_{preset}",
                               help="minutes: training stops when the time is up, then validates and tests; the "
                                    "cosine schedule follows the clock.")
        budget = c3.number_input("Steps, epochs or minutes", value=float(default_budget), step=1.0,
                                 key=f"budget_{preset}")  # no widget bounds: the checks below name the limit
        c4, c5, c6 = st.columns(3)
        train_limit = c4.number_input("Training images (0 = all 55,000)", value=0, step=1000, key="train_limit")
        val_limit = c4.number_input("Validation images (0 = all 5,000)", value=start_from.val_limit or 1000,
                                    step=500, key=f"val_limit_{preset}")
        eval_every = c5.number_input("Validate every N steps (0 = each epoch)", value=start_from.eval_every or 50,
                                     step=10, key=f"eval_every_{preset}")
        seed = c5.number_input("Seed", value=0, step=1, key="train_seed")
        schedule = c6.selectbox("Learning-rate schedule", ["constant", "cosine"],
                                index=["constant", "cosine"].index(start_from.lr_schedule), key=f"schedule_{preset}")
        amp = c6.checkbox("bfloat16 autocast", value=start_from.amp, key=f"amp_{preset}",
                          help="Forward and backward in bfloat16 where this machine does it fast (about twice "
                               "the speed here); evaluation stays float32." if bf16_is_fast(torch.device("cpu"))
                          else "This CPU has no fast bfloat16, so training runs in float32 either way.")
        name = c6.text_input("Run name (optional)", key="train_name", placeholder=new_run_name(preset))
        c7, c8, c9 = st.columns(3)
        conditional = c7.checkbox("Class-conditional (draw the digit asked for)", value=bool(base.classes),
                                  key=f"conditional_{preset}",
                                  help="The digit label enters every layer as a learned bias, so the model can be "
                                       "told which digit to draw (Samples) and read as a digit classifier (Where "
                                       "the bits go). Needs the MNIST label files.")
        label_dropout = c8.number_input("Label dropout", value=start_from.label_dropout, step=0.05,
                                        key=f"label_dropout_{preset}",
                                        help="The share of training images shown without their label, so that the "
                                             "model also draws with none and guidance has its unconditional half.")
        dropout = c9.number_input("Dropout", value=base.dropout, step=0.05, key=f"dropout_{preset}",
                                  disabled=base.kind == "gated",
                                  help="The share of each residual block's features zeroed while training, "
                                       "against overfitting; sampling and scoring never drop. Gated has no "
                                       "residual blocks.")
        recolor = c9.checkbox("Recolor batches", value=start_from.recolor, key=f"recolor_{preset}",
                              help="Each training image in a random one of the 48 colour schemes that colored "
                                   "MNIST draws equally often (channels permuted, some flipped): the same "
                                   "distribution, more distinct images, against overfitting.")
        start = st.button("Start training", type="primary", key="train_start")
    model_values = {**base.to_dict(), "hidden": int(hidden), "n_blocks": int(n_blocks),
                    "classes": 10 if conditional else 0, "dropout": float(dropout)}
    budgets = {"steps": dict(steps=int(budget)), "epochs": dict(epochs=int(budget)),
               "minutes": dict(minutes=float(budget))}
    train_values = dict(**budgets[budget_kind], batch_size=int(batch), lr=float(lr), seed=int(seed),
                        eval_every=int(eval_every) or None, train_limit=int(train_limit) or None,
                        val_limit=int(val_limit) or None, lr_schedule=schedule, amp=bool(amp),
                        label_dropout=float(label_dropout), recolor=bool(recolor))
    found = problems(PixelCNNConfig, model_values, FORM_LABELS) + problems(TrainConfig, train_values, FORM_LABELS)
    if found:
        st.error("\n".join(f"- {line}" for line in found))
        return
    try:
        model = base.__class__(**model_values)
        parameters = check_trainable(model)
        config = start_from.with_budget(**train_values)
    except PixelCNNError as err:
        st.error(labelled(str(err)))
        return
    if not start:
        expectation(parameters, config)
        return
    try:
        run_name = check_run_name(name.strip() or new_run_name(preset))
        info = start_run(run_name, model, config, data_dir=data_dir())
    except PixelCNNError as err:
        st.error(str(err))
        return
    st.session_state[RUN_KEY] = str(info.path)
    st.session_state.pop(SHOW_KEY, None)  # else, once it ends, the picker would show an older run
    st.rerun()


@st.cache_data(max_entries=64, show_spinner=False)
def live_image(run_dir: str, file: str, mtime_ns: int) -> np.ndarray | None:
    return read_live_image(Path(run_dir), file)


def live_strip(run_dir: Path, events: list[dict]) -> None:
    """What the model drew as it trained (the trainer's live samples), oldest first, enlarged pixel for
    pixel; a file that is not a live strip of this run is left out."""
    drawn = []
    for event in (e for e in events if e.get("event") == "samples" and isinstance(e.get("file"), str)):
        try:
            mtime = (run_dir / event["file"]).stat().st_mtime_ns
        except (OSError, ValueError):
            continue
        image = live_image(str(run_dir), event["file"], mtime)
        if image is not None:
            drawn.append((event, image))
    if not drawn:
        st.caption("**What it draws as it learns** appears here: 16 samples (seed 0), drawn a few times over the "
                   "run.")
        return
    st.caption("**What it draws as it learns**: the same 16 samples (seed 0), drawn a few times over the run.")
    shown = drawn[-STRIPS:]
    for column, (event, image) in zip(st.columns(STRIPS), shown):  # always six: the strip keeps its height
        step = event.get("step")
        column.image(image, caption=f"step {step:,}" if isinstance(step, int) else "step ?", width="stretch")


def which_test_text(run_dir: Path, test_images: object) -> str:
    """Which test the run reports: all 10,000 images, or a stated subset and the command that scores all."""
    if not isinstance(test_images, int) or test_images >= TEST_IMAGES:
        return f"test: all {TEST_IMAGES:,} test images"
    return (f"test: the first {test_images:,} of the {TEST_IMAGES:,} test images (sized to a lecture); "
            f"`python -m pixelcnn evaluate --checkpoint {run_dir}/checkpoint.pt --split test` scores all")


def controls(run_dir: Path, status: str, place) -> None:
    """Stop, Resume or Restart, for whoever may start and stop runs (never the room in lecture mode)."""
    restartable = status == "failed" and not (run_dir / CHECKPOINT_NAME).is_file()
    if not CONTROLS:
        return
    if status == "running" and place.button("Stop", type="primary", key="stop_run", width="stretch"):
        stop_run(run_dir)
        st.rerun(scope="fragment")  # the stop file is there: the phase reads "stopping" at once
    elif (status in ("stopped", "interrupted") or restartable) and place.button(
            "Restart" if restartable else "Resume", key="resume_run", width="stretch",
            help="It ended before its first checkpoint: train it again from the start, same settings."
            if restartable else "Continue from the last checkpoint."):
        try:
            resume_run(run_dir.name, data_dir())
        except PixelCNNError as err:
            st.error(str(err))
        else:
            st.rerun()  # the user's click: the page starts polling the resumed run


def progress_line(phase, progress: dict) -> None:
    """The progress bar, its text saying the phase, the step, the speed and the time left."""
    if phase.name == "starting":
        st.progress(0.0, text="Starting: loading the data and building the model (a few seconds)")
        return
    budget = progress["budget_seconds"]
    text = f"step {progress['step']:,}" + (f" of a {budget / 60:g}-minute budget" if budget
                                             else f" of {progress['total']:,}")
    if progress["images_per_s"]:
        text += f", {progress['images_per_s']:.0f} images/s"
    if phase.name == "training" and progress["eta_seconds"] is not None:
        text += f", about {format_seconds(progress['eta_seconds'])} left"
    if phase.name not in ("training", "finished"):
        text = f"{phase.text[:1].upper()}{phase.text[1:]} ({text})"
    st.progress(min(progress["fraction"], 1.0), text=text)


def show_run(run_dir: Path, status: str, form_hidden: bool) -> None:
    """The live view of one run, chart and live samples on the first screen; while it is active, a fragment
    polls its metrics file every second.

    The fragment never reruns the whole app, not even when the run ends (it shows the end itself, and,
    where the form was hidden for this run, a button that brings it back), so a click elsewhere (a page
    link, a widget) never races an app rerun that the page started on its own.
    """

    @st.fragment(run_every=1.0 if status in ("running", "new") else None)  # a new run may be about to start
    def live() -> None:
        events = events_of(run_dir)
        now, message = run_status(run_dir, events)
        phase = run_phase(run_dir, now, events, read_job(run_dir))
        progress = progress_of(events)
        head, button_col = st.columns([5, 1], vertical_alignment="center")
        head.subheader(f"Run {as_name(run_dir.name)}: {phase.name}", anchor=False)
        controls(run_dir, now, button_col)
        for col, key, label in zip(st.columns(3), ("train", "val", "test"), ("train", "validation", "test")):
            value = progress[key]
            col.metric(f"{label} bits/dim", "-" if value is None else f"{value:.4f}")
        progress_line(phase, progress)
        if phase.name == "starting":
            st.caption("The chart and the samples appear with the first steps.")
        else:
            shown = {run_dir.name: curves(events)}  # the whole fall from 2.0: the lecture's moment
            figure = loss_figure(shown, st.session_state.get("train_smoothing", 0.6),
                                 y_range=loss_range(shown, settled=False))
            figure.update_layout(height=CHART_HEIGHT)
            plot(st, figure, key="train_chart")
        live_strip(run_dir, events)
        if progress["test"] is not None:
            st.caption(which_test_text(run_dir, progress["test_images"]))
        if phase.active:
            st.caption(f"Run {as_name(run_dir.name)} is training in the background; every visitor sees it here. "
                       f"One run at a time: the form to start another returns when it ends.")
        if message:
            (st.error if now in ("failed", "damaged") else st.info)(as_text(message))
        if not phase.active and form_hidden and CONTROLS and st.button(
                "Start another run", key="train_another", help="The run has ended: back to the form."):
            st.rerun()

    live()


def chosen_run(runs: list, running) -> tuple:
    """(the run to show, the picker's names, its index, its key): the run training, else the one this
    session picked or started last, else the newest. The picker is drawn under the view, so its value is
    read from the session here; its key names the run training, so a new run is never shown under an older
    run's name."""
    names = [r.name for r in runs]
    remembered = running.name if running is not None else Path(st.session_state.get(RUN_KEY, "")).name
    index = names.index(remembered) if remembered in names else 0
    key = SHOW_KEY if running is None else f"{SHOW_KEY}:{running.name}"
    chosen = st.session_state.get(key, names[index])
    return next((r for r in runs if r.name == chosen), runs[index]), names, index, key


running = active_run()
runs = [r for r in list_runs() if r.kind == "run"]
picked = chosen_run(runs, running) if runs else None
if running is not None:
    show_run(running.path, running.status, form_hidden=True)
elif not CONTROLS:
    pass
elif dataset() is None:
    st.warning("MNIST is not available yet: open the Data page to fetch it."
               + (" Earlier runs are below." if runs else ""))
else:
    run_form()
if picked is not None:
    shown, names, index, key = picked
    if running is None:
        show_run(shown.path, shown.status, form_hidden=False)
    left, right = st.columns(2)
    left.selectbox("Show run", names, index=index, key=key, disabled=running is not None,
                   help="Any run in runs/; while a run trains, it is the one shown.")
    right.slider("Smoothing of the training curve", 0.0, 0.99, 0.6, key="train_smoothing")
