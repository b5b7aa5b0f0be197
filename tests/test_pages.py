"""Every dashboard page through streamlit.testing.v1.AppTest: it renders, its widgets work."""

import json
import os
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pixelcnn.explain.results import read_results
from pixelcnn.store.metrics import read_events
from pixelcnn.store.rundir import read_run_config
from pixelcnn.serve.runs import SHIPPED_DIR, run_status

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
PAGES = ["pages/overview.py", "pages/data.py", "pages/train.py", "pages/samples.py", "pages/compression.py",
         "pages/receptive_field.py", "pages/models.py"]


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("PIXELCNN_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    return at


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv("PIXELCNN_DATA_DIR", str(empty))


@pytest.fixture
def real_data(mnist_dir, monkeypatch):
    monkeypatch.setenv("PIXELCNN_DATA_DIR", str(mnist_dir))


def open_page(at: AppTest, page: str) -> AppTest:
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def pick_random_weights(at: AppTest, preset: str = "tiny") -> None:
    at.sidebar.selectbox(key="model_select").select("Random weights").run()
    at.sidebar.selectbox(key="random_preset").select(preset).run()


def heatmap(at: AppTest) -> list:
    chart = at.get("plotly_chart")[0]
    spec = json.loads(chart.proto.spec)
    return spec["data"][0]["z"]


def test_every_page_renders_without_data(app, no_data):
    pick_random_weights(app)
    for page in PAGES:
        open_page(app, page)
    open_page(app, "pages/data.py")
    assert any("Download MNIST" in b.label for b in app.button)
    open_page(app, "pages/train.py")
    assert any("Data page" in w.value for w in app.warning)


def test_overview_shows_the_architecture(app, no_data):
    open_page(app, "pages/overview.py")
    assert app.latex and app.table  # a static table, which wraps to a phone's width (a grid scrolled inside itself)
    table = app.table[0].value
    assert list(table["mask"])[0] == "A"
    assert sum(int(count.replace(",", "")) for count in table["parameters"]) == 472_844
    assert "445,440" in list(table["parameters"])  # thousands separators


def test_model_choice_persists_across_pages(app, no_data):
    pick_random_weights(app, "lecture")
    open_page(app, "pages/samples.py")
    open_page(app, "pages/overview.py")
    assert app.sidebar.selectbox(key="model_select").value == "Random weights"
    assert app.sidebar.selectbox(key="random_preset").value == "lecture"
    assert "lecture" in app.session_state["model_choice"].label


def test_receptive_field_follows_the_sliders(app, no_data):
    open_page(app, "pages/receptive_field.py")
    for key in ("rf_row", "rf_col"):
        assert app.slider(key=key).value == 14
    before = heatmap(app)
    app.slider(key="rf_row").set_value(5).run()
    after = heatmap(app)
    assert before != after
    app.slider(key="rf_col").set_value(3).run()
    assert heatmap(app) != after
    assert "equal to the analytic one" in app.caption[-1].value
    app.toggle(key="rf_binary").set_value(True).run()
    assert not app.exception


def test_receptive_field_compares_three_kinds_and_grows_with_depth(app, no_data):
    open_page(app, "pages/receptive_field.py")
    assert app.multiselect(key="rf_models").value == ["paper (random weights)", "rgb (random weights)",
                                                      "gated (random weights)"]
    assert len(app.get("plotly_chart")) == 3
    counts = [int(c.value.split()[0]) for c in app.caption if "nonzero gradient" in c.value]
    paper, rgb, gated = counts
    assert paper == rgb < gated  # at channel 0 rgb sees what paper sees; gated has no blind spot
    assert all("equal to the analytic one" in c.value for c in app.caption if "nonzero gradient" in c.value)
    app.select_slider(key="rf_channel").set_value(2).run()
    counts = [int(c.value.split()[0]) for c in app.caption if "nonzero gradient" in c.value]
    assert counts[1] == counts[0] + 1  # blue sees red and green of its own pixel

    def grown() -> list[int]:
        return [int(image.captions[0].split("→ ")[1].split()[0]) for image in app.image]

    shallow = grown()
    app.slider(key="rf_depth").set_value(12).run()
    deep = grown()
    assert len(deep) == 3 and all(d > s for d, s in zip(deep, shallow)), (shallow, deep)


def test_samples_page_compares_two_models(app, no_data):
    pick_random_weights(app)
    open_page(app, "pages/samples.py")
    app.number_input(key="samples_n").set_value(4).run()
    app.selectbox(key="samples_compare").select("lecture (random weights)").run()
    assert not app.exception
    captions = [caption for image in app.image for caption in image.captions]
    assert sum(caption.startswith("4 samples (cached") for caption in captions) == 2, captions
    assert [h.value for h in app.main.subheader] == ["random weights (tiny, seed 0)",
                                                     "random weights (lecture, seed 0)"]


def test_models_page_puts_two_shipped_models_side_by_side(app, no_data):
    open_page(app, "pages/models.py")
    assert app.selectbox(key="models_left").value == "paper" and app.selectbox(key="models_right").value == "rgb"
    values = [m.value for m in app.metric]
    assert len(values) == 2 and all(v.replace(".", "").isdigit() for v in values), values
    readings = [c.value for c in app.caption if c.value.startswith("Digit score of 100 samples")]
    assert len(readings) == 2 and all("highest at T = " in r for r in readings), readings


def test_models_table_says_which_models_were_continued_from_earlier_weights(app, no_data):
    """A continued model's epochs and curves count from the weights it loaded: the table names them."""
    open_page(app, "pages/models.py")
    rows = {r["model"]: r for r in app.dataframe[0].value.to_dict("records")}
    for name in ("paper", "rgb", "conditional"):
        start = read_run_config(SHIPPED_DIR / name)["train"]["init_from"]
        assert rows[name]["started from"] == ("random weights" if start is None else start), rows[name]
    assert rows["rgb"]["started from"].endswith("checkpoint.pt")


def test_samples_page_draws_a_grid(app, no_data):
    pick_random_weights(app)
    open_page(app, "pages/samples.py")
    app.number_input(key="samples_n").set_value(12).run()
    assert not app.exception
    captions = [caption for image in app.image for caption in image.captions]
    assert any(caption.startswith("12 samples (cached") for caption in captions), captions
    labels = [button.proto.label for button in app.get("download_button")]
    assert labels == ["PNG, 1 px a pixel", "PNG for slides (8x)", ".npy (n, 28, 28, 3) uint8"], labels


def test_the_receptive_field_is_one_click_from_a_png_and_an_npy(app, no_data):
    """Lecture finding: the exercise's 28x28 field, shown on the page, could not be downloaded there."""
    open_page(app, "pages/receptive_field.py")
    app.multiselect(key="rf_models").set_value(["paper (random weights)"]).run()
    buttons = app.get("download_button")
    assert [b.proto.label for b in buttons] == ["PNG", ".npy"], [b.proto.label for b in buttons]


def test_npy_bytes_read_back_as_the_array():
    import io

    import numpy as np

    from pixelcnn.figures import npy_bytes

    field = np.random.default_rng(0).random((28, 28)).astype(np.float32)
    assert np.array_equal(np.load(io.BytesIO(npy_bytes(field))), field)


@pytest.mark.slow
def test_every_page_with_real_data(app, real_data):
    for page in PAGES:
        open_page(app, page)
    open_page(app, "pages/data.py")
    app.selectbox(key="data_digit").select("3").run()
    assert not app.exception and any("100 train images of the digit 3" in c for image in app.image for c in image.captions)


def expectation_text(at: AppTest) -> str:
    """The estimate's line, once the server's background speed probe has measured (the page never waits)."""
    from pixelcnn.serve.estimate import SPEED_PROBE

    deadline = time.monotonic() + 180
    while SPEED_PROBE.result() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    at.run()
    return next(c.value for c in at.caption if "What to expect" in c.value and "images/s" in c.value)


def test_train_form_names_every_problem_as_the_form_labels_it(app, real_data):
    open_page(app, "pages/train.py")
    app.number_input(key="hidden_live").set_value(0).run()
    app.number_input(key="batch_live").set_value(0).run()
    errors = " ".join(e.value for e in app.error)
    assert "Width must be" in errors and "Batch size must be" in errors and "hidden" not in errors, errors
    app.number_input(key="hidden_live").set_value(13).run()
    app.number_input(key="batch_live").set_value(16).run()
    assert [e.value for e in app.error] and app.error[0].value.startswith("Width must be even")
    app.number_input(key="hidden_live").set_value(96).run()
    app.number_input(key="budget_live").set_value(-5).run()  # browser walk: -5 sat on "Press Enter" unexplained
    app.number_input(key="label_dropout_live").set_value(-5).run()
    app.number_input(key="dropout_live").set_value(1).run()
    errors = " ".join(e.value for e in app.error)
    assert "Minutes must be" in errors and "Label dropout must be" in errors and "Dropout must be" in errors, errors


def test_train_form_refuses_a_model_over_the_parameter_limit(app, real_data):
    open_page(app, "pages/train.py")
    app.number_input(key="blocks_live").set_value(64)
    app.number_input(key="hidden_live").set_value(1024).run()  # both at once: no speed measured in between
    errors = " ".join(e.value for e in app.error)
    assert "parameters" in errors and "limit" in errors and not app.exception, errors


@pytest.mark.slow
def test_train_page_starts_a_run_that_writes_metrics_and_a_checkpoint(app, real_data, tmp_path, conditional_run):
    open_page(app, "pages/train.py")
    assert app.selectbox(key="train_show_run").value == "digits"  # the earlier run, shown under the form
    expected = expectation_text(app)
    assert "images/s" in expected and "minutes" in expected  # the live preset's five minutes
    app.number_input(key="budget_live").set_value(1).run()
    app.number_input(key="batch_live").set_value(16).run()
    from pixelcnn.training.speed import format_minutes

    assert expectation_text(app) != expected and f"in {format_minutes(60)} of training" in expectation_text(app)
    app.radio(key="budget_kind_live").set_value("steps")
    app.number_input(key="budget_live").set_value(6)
    app.number_input(key="train_limit").set_value(512)
    app.number_input(key="val_limit_live").set_value(64)
    app.number_input(key="eval_every_live").set_value(3)
    app.number_input(key="dropout_live").set_value(0.1)
    app.text_input(key="train_name").input("apptest-run")
    app.button(key="train_start").click().run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert app.selectbox(key="train_show_run:apptest-run").value == "apptest-run"  # the run it started
    run = tmp_path / "runs" / "apptest-run"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        events = read_events(run / "metrics.jsonl")
        if any(e["event"] == "end" for e in events):
            break
        time.sleep(1)
    kinds = [e["event"] for e in read_events(run / "metrics.jsonl")]
    assert kinds.count("train") == 6 and "val" in kinds and kinds[-1] == "end"
    written = json.loads((run / "config.json").read_text())
    stored = written["train"]  # the live preset's settings, budget replaced
    assert stored["steps"] == 6 and stored["minutes"] is None and stored["amp"] and stored["grad_clip"] == 1.0
    assert written["model"]["dropout"] == 0.1  # the form's dropout reached the model
    assert (run / "checkpoint.pt").is_file()
    app.run()
    assert not app.exception
    assert "apptest-run" in app.sidebar.selectbox(key="model_select").options[-2] or any(
        "apptest-run" in o for o in app.sidebar.selectbox(key="model_select").options)


def test_lecture_mode_shows_runs_read_only_and_hides_uploads_and_the_naive_sampler(tmp_path, monkeypatch, no_data,
                                                                                    conditional_run):
    """Lecture mode: the room sees the lecturer's runs (chart, live samples) but cannot start, stop or resume
    one, upload a checkpoint, or hold a core for minutes with the naive sampler."""
    monkeypatch.setenv("PIXELCNN_RUNS_DIR", str(tmp_path / "runs"))
    normal = AppTest.from_file(APP, default_timeout=120)
    normal.run()
    open_page(normal, "pages/models.py")
    monkeypatch.setenv("PIXELCNN_LECTURE_MODE", "1")
    lecture = AppTest.from_file(APP, default_timeout=120)
    lecture.run()
    open_page(lecture, "pages/train.py")
    assert any("Lecture mode" in caption.value for caption in lecture.caption)
    assert any(h.value.startswith("Run digits") for h in lecture.subheader)  # the finished run, read-only
    assert not [b for b in lecture.button if b.label in ("Start training", "Stop", "Resume", "Restart")]
    assert not lecture.get("number_input") or "hidden_live" not in [w.key for w in lecture.number_input]
    open_page(lecture, "pages/models.py")
    assert not lecture.get("file_uploader")
    open_page(lecture, "pages/samples.py")
    assert lecture.selectbox(key="samples_method").options == ["cached"]
    open_page(lecture, "pages/receptive_field.py")


@pytest.mark.slow
def test_two_sessions_share_one_run(tmp_path, monkeypatch, real_data):
    """A second session sees the first one's run, cannot start another, and can stop it."""
    monkeypatch.setenv("PIXELCNN_RUNS_DIR", str(tmp_path / "runs"))
    first, second = (AppTest.from_file(APP, default_timeout=120) for _ in range(2))
    for at in (first, second):
        at.run()
        open_page(at, "pages/train.py")
    first.radio(key="budget_kind_live").set_value("steps")
    first.number_input(key="budget_live").set_value(5000)
    first.number_input(key="train_limit").set_value(1024)
    first.text_input(key="train_name").input("shared-run")
    first.button(key="train_start").click().run()
    run = tmp_path / "runs" / "shared-run"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(e["event"] == "train" for e in read_events(run / "metrics.jsonl")):
        time.sleep(0.5)
    second.run()
    assert any("shared-run" in c.value and "training in the background" in c.value for c in second.caption)
    assert not [b for b in second.button if b.label == "Start training"]
    second.button(key="stop_run").click().run()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and run_status(run)[0] == "running":
        time.sleep(0.5)
    assert run_status(run)[0] == "stopped"
    assert (run / "checkpoint.pt").is_file()
    first.run()
    assert not first.exception
    assert [b for b in first.button if b.label == "Start training"]


def test_a_model_without_blocks_alone_on_the_receptive_field_page(app, no_data, tmp_path):
    """Red-team finding 10: a legal model with 0 blocks once crashed the depth slider (min = max)."""
    from pixelcnn.store.checkpoint import save_checkpoint
    from pixelcnn.models import PixelCNNConfig, build_model

    run = tmp_path / "runs" / "no-blocks"
    run.mkdir(parents=True)
    save_checkpoint(run / "checkpoint.pt", build_model(PixelCNNConfig(hidden=8, n_blocks=0)))
    open_page(app, "pages/receptive_field.py")
    label = next(o for o in app.multiselect(key="rf_models").options if o.startswith("no-blocks"))
    app.multiselect(key="rf_models").set_value([label]).run()
    assert not app.exception, [e.value for e in app.exception]
    assert len(app.get("plotly_chart")) == 1
    assert any("no layers after the first" in c.value for c in app.caption)


def test_a_failed_download_leaves_no_progress_bar_above_its_error(app, no_data, monkeypatch):
    """Red-team finding 12: the Data page kept a stale "starting the download" bar above an offline error."""
    from pixelcnn.store import data as data_mod
    from pixelcnn.errors import DataError

    def offline(folder, progress=None, **kwargs):
        progress(0.3, "downloading train-images-idx3-ubyte.gz")
        raise DataError("MNIST not found and it could not be downloaded; put the four files there")

    monkeypatch.setattr(data_mod, "download_mnist", offline)
    open_page(app, "pages/data.py")
    next(b for b in app.button if "Download MNIST" in b.label).click().run()
    assert any("could not be downloaded" in e.value for e in app.error)
    assert len(app.get("progress")) == 0


def test_where_the_bits_go_without_data_shows_a_sample_and_says_why(app, no_data):
    pick_random_weights(app, "tiny")
    open_page(app, "pages/bits.py")
    assert any("No MNIST here yet" in i.value for i in app.info)
    assert len(app.metric) >= 1 and all(float(m.value) > 0 for m in app.metric)
    scales = [c.value for c in app.caption if c.value.startswith("Colour scale")]
    assert scales and all("black is 0 bits" in c and "all three" in c for c in scales), scales


def test_bits_heat_maps_stack_two_by_two_in_a_narrow_column():
    """Lecture finding: four panels in a row were about 64 px each at 1280 wide."""
    import numpy as np

    from pixelcnn.figures import bits_image, heat_scale_bar

    bits = np.random.default_rng(0).random((28, 28, 3))
    assert bits_image(bits, scale=6, pad=4).shape == (28 * 6 + 8, 4 * (28 * 6 + 4) + 4, 3)
    assert bits_image(bits, scale=6, pad=4, ncols=2).shape == (2 * (28 * 6 + 4) + 4, 2 * (28 * 6 + 4) + 4, 3)
    bar = heat_scale_bar()
    assert tuple(bar[0, 0]) == (0, 0, 0) and tuple(bar[0, -1]) == (255, 255, 255)


def test_where_the_bits_go_side_by_side_and_a_pixel_picked(app, real_data):
    open_page(app, "pages/bits.py")
    labels = [m.label for m in app.metric]
    assert len(labels) == 3, labels  # paper, with rgb and gated by default
    totals = [float(m.value) for m in app.metric]
    assert all(0 < t < 2 for t in totals)
    titles = lambda: [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in app.get("plotly_chart")[1:]]
    assert all("at (7, 12)" in t for t in titles())
    app.number_input(key="bits_row").set_value(20).run()
    app.number_input(key="bits_col").set_value(3).run()
    assert not app.exception and all("at (20, 3)" in t for t in titles()) and len(titles()) == 3

    def bars() -> list:
        spec = json.loads(app.get("plotly_chart")[1].proto.spec)
        return [trace["y"] for trace in spec["data"]]

    before = bars()
    app.slider(key="bits_temperature").set_value(2.5).run()
    after = bars()
    assert before != after and all(abs(sum(ys) - 1) < 1e-6 for ys in after)
    app.radio(key="bits_pick").set_value("by digit").run()
    app.selectbox(key="bits_digit").select(3).run()
    assert not app.exception


def test_how_a_sample_is_drawn_embeds_the_player(app, no_data):
    pick_random_weights(app, "tiny")
    open_page(app, "pages/generation.py")
    frames = app.get("iframe")
    assert len(frames) == 1
    html = frames[0].proto.srcdoc
    assert "steps" in html and '"size":28' in html
    app.number_input(key="generation_seed").set_value(3).run()
    assert app.get("iframe")[0].proto.srcdoc != html


def test_erase_and_complete_draws_completions_of_the_erased_region(app, real_data, monkeypatch):
    """Lecture finding: the original, the erased input and the completions shared one row, 68 to 112 px
    each; four a row now, each a quarter of the column."""
    import pixelcnn.figures

    grids, image_grid = [], pixelcnn.figures.image_grid
    monkeypatch.setattr(pixelcnn.figures, "image_grid",
                        lambda images, ncols=10: grids.append((len(images), ncols)) or image_grid(images, ncols))
    pick_random_weights(app, "tiny")
    open_page(app, "pages/samples.py")
    app.selectbox(key="complete_shape").select("middle band").run()
    app.number_input(key="complete_count").set_value(10).run()
    assert any("224 pixels erased" in c.value for c in app.caption)
    app.button(key="complete_go").click().run()
    assert not app.exception
    assert any("then 10 completions" in c for image in app.image for c in image.captions)
    assert grids[-1] == (12, 4), grids


def test_the_train_page_shows_what_the_run_draws_as_it_learns(app, tmp_path, small_data, no_data):
    from pixelcnn.models import PixelCNNConfig
    from pixelcnn.training.config import TrainConfig
    from pixelcnn.training.trainer import train

    run = tmp_path / "runs" / "learning"
    train(run, PixelCNNConfig(hidden=8, n_blocks=1),
          TrainConfig(steps=4, batch_size=16, eval_every=2, val_limit=8, live_samples=4, device="cpu"), small_data)
    assert sorted(p.name for p in (run / "live").iterdir()) == ["step-0000002.png", "step-0000004.png"]
    open_page(app, "pages/train.py")
    assert not app.exception
    captions = [c for image in app.image for c in image.captions]
    assert "step 2" in captions and "step 4" in captions


@pytest.fixture
def conditional_run(tmp_path, monkeypatch):
    """A finished class-conditional run (tiny, on stand-in data with labels) in the dashboard's runs folder."""
    import numpy as np

    from pixelcnn.store.data import synthetic_colored_mnist
    from pixelcnn.models import PixelCNNConfig
    from pixelcnn.training.config import TrainConfig
    from pixelcnn.training.trainer import train

    data = synthetic_colored_mnist(32, 16, 16)
    data.update({f"{split}_labels": np.arange(len(images)) % 10 for split, images in list(data.items())})
    folder = tmp_path / "runs" / "digits"
    train(folder, PixelCNNConfig(hidden=8, n_blocks=1, classes=10), TrainConfig(steps=2, batch_size=16,
                                                                              live_samples=0), data)
    return folder


def pick_run(at: AppTest, folder) -> None:
    at.sidebar.selectbox(key="model_select").select(str(folder / "checkpoint.pt")).run()


def test_samples_of_a_conditional_model_one_row_per_digit_with_guidance(conditional_run, app, no_data):
    from pixelcnn.explain.results import write_results

    shares = {"1": 0.5, "0.9": 0.6, "0.8": 0.7, "0.7": 0.7}
    guided = {w: {"asked_for_by_temperature": {**shares, "0.8": best}} for w, best in (("0", 0.7), ("1", 0.75),
                                                                                       ("3", 0.6))}
    write_results(conditional_run, {"guidance": guided})
    pick_run(app, conditional_run)
    open_page(app, "pages/samples.py")
    app.selectbox(key="samples_digit").select("one row per digit").run()
    app.slider(key="samples_guidance").set_value(2.0).run()
    assert not app.exception, [e.value for e in app.exception]
    captions = [caption for image in app.image for caption in image.captions]
    assert any(caption.startswith("100 samples (cached, seed 0, temperature 1, one row per digit, guidance 2)")
               for caption in captions), captions
    assert any("Read as the digit asked for" in m.value for m in app.markdown)
    assert any(c.value.endswith("highest 0.75 at guidance 1, T = 0.8.") for c in app.caption), \
        [c.value for c in app.caption]
    app.selectbox(key="samples_digit").select("3").run()
    app.button(key="samples_best").click().run()
    assert (app.selectbox(key="samples_digit").value, app.slider(key="samples_guidance").value,
            app.number_input(key="samples_temperature").value) == ("one row per digit", 1.0, 0.8)
    captions = [caption for image in app.image for caption in image.captions]
    assert any(caption.startswith("100 samples (cached, seed 0, temperature 0.8, one row per digit, guidance 1)")
               for caption in captions), captions


def test_samples_page_offers_the_temperature_where_report_read_the_most_digits(conditional_run, app, no_data):
    from pixelcnn.explain.results import write_results

    write_results(conditional_run, {"digit_score_by_temperature": {"1": 0.31, "0.9": 0.45, "0.8": 0.37, "0.7": 0.36}})
    pick_run(app, conditional_run)
    open_page(app, "pages/samples.py")
    app.number_input(key="samples_n").set_value(4).run()
    assert any(c.value.endswith("highest at T = 0.9. The exercise's samples are drawn at T = 1.") for c in app.caption)
    app.button(key="samples_best_temperature").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.number_input(key="samples_temperature").value == 0.9
    captions = [caption for image in app.image for caption in image.captions]
    assert any(caption.startswith("4 samples (cached, seed 0, temperature 0.9") for caption in captions), captions


def test_which_digit_does_the_model_think_this_is(conditional_run, app, real_data):
    pick_run(app, conditional_run)
    open_page(app, "pages/bits.py")
    assert any("Which digit" in h.value for h in app.header)
    answers = [m for m in app.metric if m.label == "The model's answer"]
    assert answers and answers[0].value.split()[0] in [str(d) for d in range(10)]
    assert any("true label: 7" in c.value for c in app.caption)  # test image 0 is a 7


def test_bits_are_bytes_compresses_and_decodes_the_picked_image(app, real_data):
    pick_random_weights(app)
    open_page(app, "pages/compression.py")
    labels = [m.label for m in app.metric]
    assert "The model's bit stream" in labels and "PNG (palette, optimised)" in labels
    app.button(key="codec_decode").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert any("the image is the original, bit for bit" in c.value for c in app.caption)
    assert "identical to the original, bit for bit" in app.get("iframe")[0].proto.srcdoc  # said at the last step


@pytest.mark.slow
def test_train_page_starts_a_conditional_run(app, real_data, tmp_path):
    open_page(app, "pages/train.py")
    app.radio(key="budget_kind_live").set_value("steps")
    app.number_input(key="budget_live").set_value(3)
    app.number_input(key="train_limit").set_value(256)
    app.number_input(key="val_limit_live").set_value(64)
    app.checkbox(key="conditional_live").check()
    app.number_input(key="label_dropout_live").set_value(0.25)
    app.checkbox(key="recolor_live").check()
    app.text_input(key="train_name").input("apptest-digits")
    app.button(key="train_start").click().run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    run = tmp_path / "runs" / "apptest-digits"
    deadline = time.monotonic() + 600  # the end tests all 10,000 test images twice: given the label, and none
    while time.monotonic() < deadline and not any(e["event"] == "end" for e in read_events(run / "metrics.jsonl")):
        time.sleep(1)
    stored = json.loads((run / "config.json").read_text())
    assert stored["model"]["classes"] == 10 and stored["train"]["label_dropout"] == 0.25
    assert stored["train"]["recolor"] is True
    end = read_events(run / "metrics.jsonl")[-1]
    assert end["event"] == "end" and end["status"] == "finished" and "test_no_label_bits_per_dim" in end


@pytest.fixture
def damaged_runs(tmp_path, conditional_run):
    """Beside a good run, one run folder for each damage a review found taking down every page."""
    runs = tmp_path / "runs"
    good_event = json.dumps({"event": "train", "step": 1, "bits_per_dim": 1.0, "elapsed": 1.0}) + "\n"
    damage = {
        "nested-config": {"config.json": '{"model": ' + "[" * 100_000 + "]" * 100_000 + "}"},
        "nested-metrics": {"config.json": "{}", "metrics.jsonl": good_event + '{"event": "val", "x": '
                           + "[" * 50_000 + "]" * 50_000 + "}\n"},
        "fifo": {"config.json": "fifo", "metrics.jsonl": "fifo", "job.json": "fifo"},
        "sparse": {"config.json": "sparse", "metrics.jsonl": "sparse"},
        "mistyped": {"config.json": json.dumps({"model": "x", "train": [], "steps_per_epoch": "many"}),
                     "metrics.jsonl": good_event + json.dumps({"event": "samples", "step": "x", "file": "../x"}) + "\n"
                     + json.dumps({"event": "samples", "step": 2, "file": "/etc/passwd"}) + "\n",
                     "results.json": json.dumps({"digit_score": "high", "test_bits_per_dim": [1]})},
        "huge-model": {"config.json": json.dumps({"model": {"hidden": 1024, "n_blocks": 64}, "train": {}}),
                       "checkpoint.pt": "not a checkpoint"},
    }
    for name, files in damage.items():
        folder = runs / name
        folder.mkdir(parents=True)
        for file, content in files.items():
            if content == "fifo":
                os.mkfifo(folder / file)
            elif content == "sparse":
                with open(folder / file, "wb") as f:
                    f.truncate(30 << 30)
            else:
                (folder / file).write_text(content)
    return runs


def test_every_page_renders_beside_damaged_run_folders(damaged_runs, app, real_data):
    start = time.monotonic()
    for page in ["pages/overview.py", "pages/train.py", "pages/models.py", "pages/samples.py"]:
        open_page(app, page)
    assert time.monotonic() - start < 120
    open_page(app, "pages/models.py")
    shown = [row for frame in app.dataframe for row in frame.value["model"]]
    assert "digits" in shown and "huge-model" in shown
    status = {row["model"]: row["status"] for row in app.dataframe[0].value.to_dict("records")}
    assert all(status[name] == "damaged" for name in ("nested-config", "fifo", "sparse", "mistyped")), status
    assert status["digits"] == "finished", status
    warnings = " ".join(w.value.replace("\\", "") for w in app.warning)
    for line in ("fifo is damaged: config.json: not a regular file", "sparse is damaged: config.json: 32,212,254,720 "
                 "bytes", "mistyped is damaged: config.json: its model settings are a JSON str, not an object",
                 "nested-config is damaged: config.json: JSON nested"):
        assert line in warnings, warnings
    open_page(app, "pages/train.py")
    app.selectbox(key="train_show_run").select("fifo").run()
    assert any("config.json: not a regular file" in e.value.replace("\\", "") for e in app.error), app.error


def test_shipped_models_are_called_shipped_everywhere_and_the_histogram_says_what_it_counts(app, real_data):
    """Lecture findings: "paper (shipped)" beside "rgb (trained)" for models that are all shipped; the
    histogram's caption said "selected images" for the whole split."""
    open_page(app, "pages/bits.py")
    compared = app.multiselect(key="bits_compare")
    assert "rgb (shipped)" in compared.value and not [o for o in compared.options if "(trained)" in o]
    open_page(app, "pages/data.py")
    assert any("over all 55,000 train images (not only the 100 shown)" in c.value for c in app.caption)


def test_an_uploaded_checkpoint_shows_its_own_record_on_the_models_page(conditional_run, app, no_data, tmp_path):
    """Lecture finding: an uploaded checkpoint showed "epochs 0" and "None" for test bits/dim and lr."""
    from pixelcnn.serve.jobs import import_checkpoint

    added = import_checkpoint((conditional_run / "checkpoint.pt").read_bytes(), "digits.pt")
    open_page(app, "pages/models.py")
    row = next(r for r in app.dataframe[0].value.to_dict("records") if r["model"] == added.name)
    assert float(row["epochs"]) > 0 and row["lr"] == "0.001" and float(row["test bits/dim"]) > 0, row
    shown = [v for r in app.dataframe[0].value.to_dict("records") for v in r.values()]
    assert "None" not in shown and "nan" not in shown  # nothing measured reads "-"
    assert list(row)[:5] == ["model", "status", "test bits/dim", "best val bits/dim", "digit score"]


def test_loss_curves_compare_runs_by_epochs_with_readable_log_ticks():
    """Lecture findings: the log axis read "2, 1, 9 ... 3, 2, 0.1, 9"; curves against steps compared runs of
    batch 64 and 128 unfairly."""
    from pixelcnn.figures import loss_figure

    curves = {"val": [(100, 0.2), (200, 0.15)], "train": [(100, 0.3), (200, 0.2)], "test": []}
    figure = loss_figure({"b64": curves, "b128": curves}, x="epoch", per_step={"b64": 1 / 860, "b128": 1 / 430})
    xs = {trace.name: max(trace.x) for trace in figure.data}
    assert xs["b64: validation"] == pytest.approx(200 / 860) and xs["b128: validation"] == pytest.approx(200 / 430)
    assert figure.layout.xaxis.title.text == "epochs"
    ticks = list(figure.layout.yaxis.ticktext)
    assert ticks[0] == "0.15" and ticks[-1] == "0.2" and len(ticks) == len(set(ticks))
    falling = {"train": [(s, 2.0 * 0.9 ** s + 0.1) for s in range(100)], "val": [(99, 0.11)], "test": []}
    low, high = (10 ** v for v in loss_figure({"run": falling}).layout.yaxis.range)
    assert 0.09 < low < 0.1 and high < 0.13  # the range where runs differ, not the first steps' 2.0
    assert "0.11" in loss_figure({"run": falling}).layout.yaxis.ticktext
    assert loss_figure({"a": curves}, x="images", per_step={"a": 64.0}).data[0].x[-1] == 200 * 64
    from pixelcnn.figures import curves_csv

    rows = curves_csv({"b64": curves}, {"b64": 1 / 860}, "epoch").decode().splitlines()
    assert rows[0] == "run,curve,step,epoch,bits_per_dim" and len(rows) == 5
    assert rows[-1].split(",") == ['"b64"', "validation", "200", f"{200 / 860:g}", "0.15"], rows


def test_the_models_page_plots_curves_against_epochs_by_default(app, real_data):
    open_page(app, "pages/models.py")
    chart = app.get("plotly_chart")[0]
    spec = json.loads(chart.proto.spec)
    assert spec["layout"]["xaxis"]["title"]["text"] == "epochs"
    paper_val = next(t for t in spec["data"] if t["name"] == "paper: validation")
    assert max(paper_val["x"]) == pytest.approx(read_results(SHIPPED_DIR / "paper")["epochs"], abs=0.5)
    assert "These curves as CSV" in [b.proto.label for b in app.get("download_button")]


def test_receptive_field_random_weights_take_a_seed_and_the_sidebar_model_is_offered(app, no_data):
    """Lecture findings: random weights were fixed at seed 0; the page ignored the sidebar's model."""
    open_page(app, "pages/receptive_field.py")
    counts = lambda: [c.value.split()[0] for c in app.caption if "nonzero gradient" in c.value]
    before, shape = heatmap(app), counts()
    app.number_input(key="rf_seed").set_value(3).run()
    assert not app.exception and heatmap(app) != before and counts() == shape  # the masks set the shape
    assert any("paper (shipped), is among the choices" in c.value for c in app.caption)
    assert "paper (shipped)" in app.multiselect(key="rf_models").options


def test_presentation_mode_enlarges_plots_and_shows_one_large_map_a_row(app, no_data):
    """Lecture finding: 16 px text and 11 px plot ticks are small from the back of a hall; three maps side by
    side were about 95 px wide at 1280x720."""
    open_page(app, "pages/receptive_field.py")
    font = lambda: [json.loads(c.proto.spec)["layout"].get("font", {}).get("size") for c in app.get("plotly_chart")]
    assert len(font()) == 3 and not any(font())
    assert len(app.columns) >= 3
    app.sidebar.toggle(key="present").set_value(True).run()
    assert not app.exception and font() == [19, 19, 19]
    # One large map a row: the pixel's sliders go to the sidebar, beside every map (that they keep their
    # values through the address is the browser test's to see: AppTest keeps no address).
    assert app.sidebar.slider(key="rf_row") and app.sidebar.select_slider(key="rf_channel")
    assert [s.key for s in app.main.slider] == ["rf_depth"]  # the layer-by-layer slider stays beside its maps
    before_move = heatmap(app)
    app.sidebar.slider(key="rf_col").set_value(20).run()
    assert heatmap(app) != before_move
    heights = [json.loads(c.proto.spec)["layout"]["height"] for c in app.get("plotly_chart")]
    assert heights == [520] * 3, heights  # what a 1280x720 screen holds whole: the browser test measures it
    assert app.sidebar.multiselect(key="rf_models") and app.sidebar.toggle(key="rf_log")  # the map's controls too
    assert any("font-size: 21px" in h.proto.body for h in app.get("html"))
    open_page(app, "pages/overview.py")
    assert font() and all(size == 19 for size in font())


def test_a_run_message_shows_as_text_not_markdown(app, tmp_path, no_data):
    """Review finding: Markdown in a run's end message was rendered; its images made every browser request
    an attacker's URL."""
    run = tmp_path / "runs" / "marked"
    run.mkdir(parents=True)
    (run / "config.json").write_text("{}")
    (run / "metrics.jsonl").write_text(json.dumps({"event": "end", "status": "failed", "step": 0,
                                                   "message": "see ![x](http://evil.example/x.png)"}) + "\n")
    open_page(app, "pages/train.py")
    shown = [e.value for e in app.error]
    assert any("\\!\\[x\\]\\(http" in value for value in shown), shown


@pytest.fixture(params=[{"total_steps": "x"}, {"total_steps": float("nan")}, {"total_steps": float("inf")},
                        {"train": "y"}, {"train": {"batch_size": "x"}}], ids=str)
def bad_start_run(tmp_path, request):
    """A run folder, first in the list, whose start event has one field out of type or range."""
    from pixelcnn.models import PixelCNNConfig, build_model
    from pixelcnn.store.checkpoint import save_checkpoint

    folder = tmp_path / "runs" / "aaa-bad-start"
    folder.mkdir(parents=True)
    model = PixelCNNConfig(hidden=8, n_blocks=1)
    (folder / "config.json").write_text(json.dumps({"model": model.to_dict(), "train": {"steps": 4}}))
    save_checkpoint(folder / "checkpoint.pt", build_model(model), summary={"status": "running", "step": 2})
    start = {"event": "start", "step": 0, "total_steps": 4, "train": {"batch_size": 32}, **request.param}
    train = {"event": "train", "step": 2, "bits_per_dim": 1.5, "elapsed": 2.0, "images_per_s": 40.0}
    (folder / "metrics.jsonl").write_text(json.dumps(start) + "\n" + json.dumps(train) + "\n")
    return folder


def test_one_metrics_line_out_of_range_takes_no_page_down(bad_start_run, app, no_data):
    """Review finding 1: a start event with total_steps "x", NaN or Infinity, or train "y", took the Models page
    down always, and the Train page while that run was shown (the default when it is first)."""
    open_page(app, "pages/models.py")
    assert bad_start_run.name in [row for frame in app.dataframe for row in frame.value["model"]]
    open_page(app, "pages/train.py")  # the run is the first, so the page shows it


@pytest.mark.parametrize("page, key", [("pages/bits.py", "bits_index"), ("pages/compression.py", "codec_index"),
                                       ("pages/samples.py", "samples_seed"), ("pages/receptive_field.py", "rf_seed"),
                                       ("pages/samples.py", "samples_temperature"), ("pages/receptive_field.py", "rf_row")])
@pytest.mark.parametrize("value", ["inf", "-Infinity", "nan", "1" * 400, "-" + "9" * 40, "1e400"])
def test_a_deep_link_with_a_number_no_widget_can_take_falls_back_quietly(tmp_path, monkeypatch, real_data, page, key,
                                                                         value):
    """Review finding 4: ?bits_index=inf, ?codec_index=inf, ?samples_seed=inf, ?rf_seed=inf and 400-digit numbers
    raised in Streamlit's number-input deserializer ("This app has encountered an error")."""
    monkeypatch.setenv("PIXELCNN_RUNS_DIR", str(tmp_path / "runs"))
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params[key] = value
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    widget = next(w for w in [*at.number_input, *at.slider] if w.key == key)
    assert widget.value == {"samples_temperature": 1.0, "rf_row": 14}.get(key, 0)


MARKDOWN_NAME = "![pic](x.png) **bold** [link](javascript:alert(1))"


@pytest.fixture
def markdown_named_run(tmp_path):
    from pixelcnn.models import PixelCNNConfig, build_model
    from pixelcnn.store.checkpoint import save_checkpoint

    folder = tmp_path / "runs" / MARKDOWN_NAME
    folder.mkdir(parents=True)
    model = PixelCNNConfig(hidden=8, n_blocks=1)
    (folder / "config.json").write_text(json.dumps({"model": model.to_dict(), "train": {"steps": 4}}))
    save_checkpoint(folder / "checkpoint.pt", build_model(model), summary={"status": "finished", "step": 4})
    end = {"event": "end", "status": "finished", "step": 4, "elapsed": 1.0}
    (folder / "metrics.jsonl").write_text(json.dumps(end) + "\n")
    return folder


def test_a_run_folders_name_is_shown_as_text_never_as_markdown(markdown_named_run, app, no_data):
    """Review finding 10: Markdown in a run folder's name was rendered in the Train page's run heading (an image
    from the dashboard itself, a link). Names from disk are text everywhere they appear."""
    from pages.common.compute import as_name

    open_page(app, "pages/train.py")
    app.selectbox(key="train_show_run").select(MARKDOWN_NAME).run()
    shown = [h.value for h in app.subheader] + [m.value for m in app.markdown] + [i.value for i in app.info]
    assert any(as_name(MARKDOWN_NAME) in text for text in shown), shown
    assert not any(MARKDOWN_NAME in text for text in shown), shown
    label = next(o for o in app.sidebar.selectbox(key="model_select").options if MARKDOWN_NAME in o)
    app.sidebar.selectbox(key="model_select").select(label).run()
    for page in ("pages/overview.py", "pages/samples.py", "pages/bits.py", "pages/generation.py",
                 "pages/compression.py", "pages/receptive_field.py", "pages/models.py"):
        open_page(app, page)
        shown = [h.value for h in app.subheader] + [m.value for m in app.markdown] + \
            [c.value for c in app.caption] + [m.label for m in app.metric]
        assert not [text for text in shown if MARKDOWN_NAME in text], page


def test_where_to_start_names_every_page(app, no_data):
    """Browser walk: the Overview's "Where to start" left out three pages."""
    import re

    titles = re.findall(r'title="([^"]+)"', (Path(APP).parent / "pages/common/navigation.py").read_text())
    assert len(titles) == 9
    text = " ".join(m.value for m in app.markdown)
    missing = [t for t in titles if t != "Overview" and f"**{t}**" not in text]
    assert not missing, missing
