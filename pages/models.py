import streamlit as st

from pages.common.compute import as_name, as_text, digit_reference_text
from pages.common.data import curves_of, events_of
from pages.common.navigation import lecture_mode
from pages.common.picker import sidebar
from pages.common.presentation import plot
from pixelcnn.errors import PixelCNNError
from pixelcnn.explain.results import (recorded_digit_score, recorded_temperature_scores, recorded_test_bits_per_dim,
                                      temperature_text)
from pixelcnn.figures import LOSS_AXES, curves_csv, loss_figure, loss_range
from pixelcnn.serve.jobs import MAX_UPLOAD_BYTES, import_checkpoint
from pixelcnn.serve.run_table import run_row
from pixelcnn.serve.runs import list_runs, run_settings

DAMAGED_SHOWN = 10
FIRST_COLUMNS = ("model", "status", "test bits/dim", "best val bits/dim", "digit score", "parameters", "epochs",
                 "started from")


def table_row(row: dict) -> dict:
    """A run's row as the table shows it: the results first (so a laptop's width shows them), each value as
    text, "-" where nothing was measured."""
    def shown(key: str, value) -> str:
        if value is None:
            return "-"
        if isinstance(value, float) and "bits/dim" in key:
            return f"{value:.4f}"
        if isinstance(value, int) and not isinstance(value, bool) and key == "parameters":
            return f"{value:,}"
        return f"{value:g}" if isinstance(value, float) else str(value)

    order = list(FIRST_COLUMNS) + [k for k in row if k not in FIRST_COLUMNS]
    return {key: shown(key, row.get(key)) for key in order}


sidebar()
st.title("Models")
if not lecture_mode():
    with st.expander("Add a checkpoint file"):
        uploads = st.session_state.setdefault("models_uploads", 0)  # a new key empties the box once added
        upload = st.file_uploader("A checkpoint.pt written by pixelcnn", type=["pt"], key=f"models_upload_{uploads}",
                                  max_upload_size=MAX_UPLOAD_BYTES // 2**20)
        if upload is not None and st.button("Add it", key="models_add"):
            try:
                added = import_checkpoint(upload.getvalue(), upload.name)
            except PixelCNNError as err:
                st.error(str(err))
            else:
                st.session_state.models_added = added.name
                st.session_state.models_uploads = uploads + 1
                st.rerun()  # so the sidebar, drawn before the upload, lists it
    if st.session_state.get("models_added"):
        st.success(f"Added as {st.session_state.pop('models_added')}; pick it in the sidebar.")
runs = [r for r in list_runs() if r.has_checkpoint or r.status in ("running", "damaged")]
if not runs:
    st.info("No models yet: train one on the Train page.")
    st.stop()

st.dataframe([table_row(run_row(run)) for run in runs], hide_index=True, width="stretch", column_config={
    "started from": st.column_config.TextColumn(help="Random weights, or the checkpoint a continued run loaded, "
                                                     "named as it was then (a shipped model continued from its "
                                                     "earlier self names its own folder): its epochs and curves "
                                                     "count from there.")})
damaged = [r for r in runs if r.status == "damaged"]
for run in damaged[:DAMAGED_SHOWN]:
    st.warning(as_text(f"{run.name} is damaged: {run.message}. Repair or remove the file; every other run works."))
if len(damaged) > DAMAGED_SHOWN:
    st.warning(f"... and {len(damaged) - DAMAGED_SHOWN:,} more damaged runs (status 'damaged' in the table).")
runs = [r for r in runs if r.status != "damaged"]
if not runs:
    st.stop()

names = [r.name for r in runs]
by_name = {r.name: r for r in runs}
newest_run = [r.name for r in runs if r.kind == "run"][:1]
default = [r.name for r in runs if r.kind == "shipped"] + newest_run
chosen = st.multiselect("Curves to compare", names, default=default, key="models_compare")
c1, c2 = st.columns(2)
smoothing = c1.slider("Smoothing of the training curves", 0.0, 0.99, 0.8, key="models_smoothing")
x_axis = c2.segmented_control("Against", list(LOSS_AXES), default="epoch", format_func=LOSS_AXES.get,
                              key="models_x", help="Runs of other batch sizes compare fairly by epochs or images "
                                                   "seen, not by steps.") or "epoch"
per_step = {}
for run in runs:
    _, train_cfg, steps_per_epoch = run_settings(run)
    batch = train_cfg.get("batch_size")
    per_step[run.name] = 1 / steps_per_epoch if x_axis == "epoch" else \
        float(batch) if isinstance(batch, int) and not isinstance(batch, bool) and batch > 0 else 1.0
if chosen:
    compared = {n: curves_of(by_name[n].path) for n in chosen}
    plot(st, loss_figure(compared, smoothing, x_axis, per_step), key="models_chart")
    st.download_button("These curves as CSV", curves_csv(compared, per_step, x_axis),
                       file_name="curves.csv", mime="text/csv", key="models_curves_csv",
                       help="One row per point: run, curve (train, validation, test), step, the x shown, "
                            "bits/dim unsmoothed: the exercise's loss curves for a report.")

st.header("Side by side")
c1, c2 = st.columns(2)
pair = [c1.selectbox("Left", names, index=0, key="models_left"),
        c2.selectbox("Right", names, index=names.index("rgb") if "rgb" in names else min(1, len(names) - 1),
                     key="models_right")]
scores = [recorded_test_bits_per_dim(by_name[name].path, events_of(by_name[name].path)) for name in pair]
shared_range = loss_range({name: curves_of(by_name[name].path) for name in pair})  # one scale for both
for column, name, bits in zip((c1, c2), pair, scores):
    run = by_name[name]
    delta = None if column is c1 or None in scores else f"{bits - scores[0]:+.4f} vs left"
    column.metric("test bits/dim", "not measured" if bits is None else f"{bits:.4f}", delta=delta,
                  delta_color="inverse")
    plot(column, loss_figure({name: curves_of(run.path)}, smoothing, x_axis, per_step, y_range=shared_range),
         key=f"models_side_{name}_{column is c1}")
    samples = run.path / "samples.png"
    if samples.is_file():
        column.image(str(samples), caption=f"{as_name(name)}: 100 samples written by `python -m pixelcnn report`")
        score = recorded_digit_score(run.path)
        if score is not None:
            column.markdown(f"**Digit score {score:.2f}**: the share of these samples a small MNIST classifier "
                            f"reads as one digit with p >= 0.9 (reference: {digit_reference_text()}).")
        if reading := temperature_text(recorded_temperature_scores(run.path)):
            column.caption(reading)
    else:
        column.caption("No samples.png in this run's folder: draw samples on the Samples page.")
