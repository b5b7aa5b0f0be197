"""What a hostile review found (issue 12, part 3): each finding reproduced, and refused with one line."""

import contextlib
import gzip
import http.server
import json
import os
import pickle
import subprocess
import threading
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pixelcnn.store import checkpoint as checkpoint_mod
from pixelcnn.store import data as data_mod
from pixelcnn.__main__ import main
from pixelcnn.store.checkpoint import load_checkpoint, save_checkpoint
from pixelcnn.store.data import MNIST_FILES, IdxFile, cache_path, load_colored_mnist, load_course_pickle, read_idx
from pixelcnn.errors import CheckpointError, ConfigError, DataError, ModelError
from pixelcnn.store.metrics import read_events
from pixelcnn.models import PixelCNNConfig, build_model
from pixelcnn.serve.jobs import import_checkpoint, start_run, stop_run
from pixelcnn.serve.runs import run_status
from pixelcnn.sampling import sample
from pixelcnn.serve.limits import check_servable
from pixelcnn.store.rundir import CONFIG_NAME
from pixelcnn.training.config import TrainConfig
from pixelcnn.training.evaluate import evaluate
from pixelcnn.training.trainer import train

ROOT = Path(__file__).resolve().parent.parent
TINY = PixelCNNConfig(hidden=8, n_blocks=1)


def cli(capsys, *argv: str) -> tuple[int, str]:
    """Run the CLI in this process: (exit code, stderr)."""
    try:
        code = main(list(argv))
    except SystemExit as exit_:
        code = exit_.code
    finally:
        torch.set_flush_denormal(False)  # main's process setting; hypothesis draws no floats under it
    return code, capsys.readouterr().err


def assert_one_line_exit_2(code: int, err: str, *words: str) -> None:
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("error:"), err
    for word in words:
        assert word in err, err


def save(path: Path, config: PixelCNNConfig, **state_changes) -> Path:
    model = build_model(config)
    with torch.no_grad():
        for name, value in state_changes.items():
            getattr(model, name).fill_(value) if not callable(value) else value(model)
    save_checkpoint(path, model)
    return path


# 1. Memory before refusal

def test_a_huge_config_without_weights_is_refused_before_any_model_is_allocated(tmp_path, monkeypatch):
    largest = {"kind": "pixelcnn", "channels": 3, "levels": 4, "image_size": 28, "hidden": 1024,
               "n_blocks": 64, "first_kernel": 15, "block_kernel": 15}
    path = tmp_path / "huge.pt"
    torch.save({"format": "pixelcnn-checkpoint", "version": 1, "config": largest, "state_dict": {}}, path)
    assert path.stat().st_size < 4096
    built_on = []
    real_build = checkpoint_mod.build_model

    def spy(config):
        model = real_build(config)
        built_on.append(next(model.parameters()).device.type)
        return model

    monkeypatch.setattr(checkpoint_mod, "build_model", spy)
    with pytest.raises(CheckpointError, match="parameters") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)
    assert built_on == ["meta"]  # only the shapes were built, never the 8 GB of weights


def test_weights_that_do_not_fit_their_config_are_refused(tmp_path):
    path = tmp_path / "c.pt"
    torch.save({"format": "pixelcnn-checkpoint", "version": 1, "config": TINY.to_dict(),
                "state_dict": {"input_conv.weight": torch.zeros(2, 2)}}, path)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(path)


def test_a_compressed_member_is_refused_before_it_is_inflated(tmp_path):
    good = save(tmp_path / "good.pt", TINY)
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as out:
        for member in source.infolist():
            out.writestr(member.filename, source.read(member))
        out.writestr("archive/data/999", bytes(64 << 20))  # 64 MiB of zeros in about 64 KB
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(CheckpointError, match="compressed") as info:
        load_checkpoint(bomb)
    assert "\n" not in str(info.value)


def test_a_gzip_bomb_is_stopped_after_the_expected_size(tmp_path):
    spec = IdxFile("small-images-idx3-ubyte", 2051, (2, 28, 28), "", "")
    header = (2051).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in spec.shape)
    bomb = tmp_path / "small-images-idx3-ubyte.gz"
    bomb.write_bytes(gzip.compress(header + bytes(256 << 20), compresslevel=1))
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="expected exactly"):
            read_idx(bomb, spec)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"{peak} bytes allocated to refuse a bomb of a {spec.raw_bytes}-byte file"


# 2. and 3. Models the product cannot feed or serve

@pytest.mark.parametrize("config, words", [
    (PixelCNNConfig(hidden=8, n_blocks=1, channels=1), "1 channel"),
    (PixelCNNConfig(hidden=8, n_blocks=1, image_size=2), "2x2 images"),
    (PixelCNNConfig(hidden=8, n_blocks=1, levels=256), "256 levels"),
    (PixelCNNConfig(hidden=8, n_blocks=2, image_size=256), "256x256"),
    (PixelCNNConfig(hidden=1024, n_blocks=64), "GiB"),
])
def test_models_the_product_cannot_feed_or_serve_are_refused(config, words):
    with pytest.raises(ModelError, match=words) as info:
        check_servable(config)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("command", [["evaluate", "--split", "test"], ["sample", "--out", "{tmp}/s.png"],
                                     ["report", "--out", "{tmp}/report"]])
def test_a_one_channel_checkpoint_gets_one_line_from_every_command(tmp_path, capsys, command):
    path = save(tmp_path / "grey.pt", PixelCNNConfig(hidden=8, n_blocks=1, channels=1))
    argv = [part.format(tmp=tmp_path) for part in command] + ["--checkpoint", str(path)]
    assert_one_line_exit_2(*cli(capsys, *argv), "colored MNIST")


def test_an_upload_the_dashboard_cannot_serve_is_refused_and_not_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("PIXELCNN_RUNS_DIR", str(tmp_path / "runs"))
    path = save(tmp_path / "big-images.pt", PixelCNNConfig(hidden=8, n_blocks=1, image_size=256))
    with pytest.raises(ModelError, match="big-images.pt") as info:
        import_checkpoint(path.read_bytes(), "big-images.pt")
    assert "\n" not in str(info.value)
    assert [p.name for p in (tmp_path / "runs").iterdir()] == []


# 4. Weights that overflow

def huge_weights(model: torch.nn.Module) -> None:
    for parameter in model.parameters():
        parameter.fill_(1e38)


def test_overflowing_weights_are_an_error_not_a_score_or_black_samples(tmp_path, capsys, small_data):
    path = save(tmp_path / "overflow.pt", TINY, output_logits=huge_weights)
    model = load_checkpoint(path).model
    with pytest.raises(ModelError, match="overflow"):
        evaluate(model, small_data["test"][:4])
    with pytest.raises(ModelError, match="not finite"):
        sample(model, 2)
    assert_one_line_exit_2(*cli(capsys, "sample", "--checkpoint", str(path), "--out", str(tmp_path / "s.png")),
                           "not finite")
    assert not (tmp_path / "s.png").exists()


def test_overflowing_weights_give_an_error_for_a_receptive_field_not_an_empty_one(tmp_path, capsys):
    from pixelcnn.explain.receptive import gradient_field

    path = save(tmp_path / "overflow.pt", TINY, output_logits=huge_weights)
    image = np.zeros((28, 28, 3), dtype=np.uint8)
    with pytest.raises(ModelError, match="not finite"):
        gradient_field(load_checkpoint(path).model, image, 14, 14, 0)
    assert_one_line_exit_2(*cli(capsys, "receptive-field", "--checkpoint", str(path), "--out",
                                str(tmp_path / "f.png")), "not finite")
    assert not (tmp_path / "f.png").exists()


# 5. Output paths

@contextlib.contextmanager
def read_only_folder(tmp_path: Path, monkeypatch):
    """A read-only filesystem (a tmpfs mounted read-only, as root here and in CI); where mounting is not
    permitted, a folder that ``os.access`` reports as read-only."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
                             capture_output=True).returncode == 0
    if not mounted:
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == folder and mode & os.W_OK
                            else real_access(p, mode, **kw))
    try:
        yield folder
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize("out", ["", "/", "{tmp}", "{ro}/s.png", "{tmp}/missing/s.png"])
def test_sample_refuses_outputs_it_cannot_write(tmp_path, capsys, monkeypatch, out):
    with read_only_folder(tmp_path, monkeypatch) as ro:
        code, err = cli(capsys, "sample", "--preset", "tiny", "--n", "1",
                        "--out", out.format(tmp=tmp_path, ro=ro))
    assert_one_line_exit_2(code, err, "--out")


def test_npy_goes_to_exactly_the_path_given(tmp_path, capsys):
    code, err = cli(capsys, "sample", "--preset", "tiny", "--n", "1", "--out", str(tmp_path / "s.png"),
                    "--npy", str(tmp_path / "samples.data"))
    assert code == 0, err
    assert np.load(tmp_path / "samples.data").shape == (1, 28, 28, 3)
    assert not (tmp_path / "samples.data.npy").exists()
    assert_one_line_exit_2(*cli(capsys, "receptive-field", "--preset", "tiny", "--out", str(tmp_path / "f.png"),
                                "--npy", str(tmp_path)), "--npy")


def test_report_and_train_refuse_outputs_they_cannot_write(tmp_path, capsys, monkeypatch):
    ckpt = save(tmp_path / "c.pt", TINY)
    a_file = tmp_path / "a-file"
    a_file.write_text("keep me")
    assert_one_line_exit_2(*cli(capsys, "report", "--checkpoint", str(ckpt), "--out", str(a_file)), "is a file")
    assert a_file.read_text() == "keep me"
    assert_one_line_exit_2(*cli(capsys, "train", "--preset", "tiny", "--steps", "1", "--out", ""), "empty")
    with read_only_folder(tmp_path, monkeypatch) as ro:
        assert_one_line_exit_2(*cli(capsys, "train", "--preset", "tiny", "--steps", "1", "--out", str(ro / "run")),
                               "not writable")
        assert_one_line_exit_2(*cli(capsys, "report", "--checkpoint", str(ckpt), "--no-measure",
                                    "--out", str(ro)), "not writable")


def test_a_write_that_fails_after_the_checks_is_one_line(tmp_path, capsys, monkeypatch):
    import pixelcnn.cli.draw as draw

    def full_disk(image, path):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(draw, "save_png", full_disk)
    code, err = cli(capsys, "sample", "--preset", "tiny", "--n", "1", "--out", str(tmp_path / "s.png"))
    last = err.splitlines()[-1] + "\n"  # after the progress bar's lines
    assert_one_line_exit_2(code, last, "No space left")


# 6. Devices

@pytest.mark.parametrize("command", [["train", "--preset", "tiny", "--steps", "1", "--out", "{tmp}/run"],
                                     ["evaluate", "--checkpoint", "{ckpt}"],
                                     ["sample", "--checkpoint", "{ckpt}", "--out", "{tmp}/s.png"]])
def test_a_meta_device_is_one_line(tmp_path, capsys, small_data, monkeypatch, command):
    monkeypatch.setattr(data_mod, "load_colored_mnist", lambda *a, **k: small_data)
    ckpt = save(tmp_path / "c.pt", TINY)
    argv = [part.format(tmp=tmp_path, ckpt=ckpt) for part in command] + ["--device", "meta"]
    assert_one_line_exit_2(*cli(capsys, *argv), "unknown device")


# 7. A run killed before its first checkpoint

def quick(**kw) -> TrainConfig:
    return TrainConfig(**{**dict(steps=4, batch_size=16, eval_every=2, val_limit=16, device="cpu"), **kw})


def test_training_refuses_a_model_over_the_loading_limit_before_building_it(tmp_path, capsys, small_data,
                                                                            monkeypatch):
    import pixelcnn.training.trainer as train_mod

    built = []
    monkeypatch.setattr(train_mod, "build_model", lambda config: built.append(config))
    run = tmp_path / "run"
    assert_one_line_exit_2(*cli(capsys, "train", "--preset", "paper", "--hidden", "1024", "--n-blocks", "64",
                                "--steps", "1", "--out", str(run)), "parameters", "limit")
    assert built == [] and not (run / "checkpoint.pt").exists()


def test_a_checkpoint_exists_from_the_first_moment(tmp_path, small_data):
    stop = threading.Event()
    stop.set()  # asked to stop before the first step
    summary = train(tmp_path / "run", TINY, quick(), small_data, stop=stop)
    assert summary["status"] == "stopped" and summary["step"] == 0
    assert load_checkpoint(tmp_path / "run").train["step"] == 0
    assert run_status(tmp_path / "run")[0] == "stopped"


def test_a_run_that_died_before_its_first_checkpoint_can_be_resumed_or_restarted(tmp_path, small_data):
    run = tmp_path / "run"
    run.mkdir()
    (run / CONFIG_NAME).write_text(json.dumps({"model": TINY.to_dict(), "train": quick().to_dict()}))
    (run / "metrics.jsonl").write_text('{"event": "start", "step": 0, "total_steps": 4}\n')
    summary = train(run, TINY, quick(), small_data, resume=True)  # restarts from the stored config
    assert summary["status"] == "finished" and summary["step"] == 4
    assert [e["event"] for e in read_events(run / "metrics.jsonl")].count("start") == 1

    other = tmp_path / "other"
    other.mkdir()
    (other / "metrics.jsonl").write_text('{"event": "start", "step": 0}\n')
    assert train(other, TINY, quick(), small_data)["status"] == "finished"  # started over


def test_a_stop_file_stops_the_run_at_its_next_step(tmp_path, small_data):
    from pixelcnn.store.rundir import request_stop

    run = tmp_path / "run"
    seen = []

    def on_event(event):
        seen.append(event["event"])
        if event["event"] == "train":
            request_stop(run)

    summary = train(run, TINY, quick(steps=50), small_data, callback=on_event)
    assert summary["status"] == "stopped" and summary["step"] == 1
    summary = train(run, TINY, quick(steps=3), small_data, resume=True)  # a resume clears the request
    assert summary["status"] == "finished" and summary["step"] == 3


def test_resuming_a_finished_run_is_refused_and_changes_nothing(tmp_path, small_data, capsys):
    run = tmp_path / "run"
    train(run, TINY, quick(), small_data)
    before = (run / "metrics.jsonl").read_text()
    with pytest.raises(ConfigError, match="already trained 4 of 4"):
        train(run, TINY, quick(), small_data, resume=True)
    assert (run / "metrics.jsonl").read_text() == before


@pytest.mark.slow
def test_stop_in_the_first_second_of_a_dashboard_run(tmp_path, monkeypatch, mnist_dir):
    monkeypatch.setenv("PIXELCNN_RUNS_DIR", str(tmp_path))
    config = TrainConfig(steps=500, batch_size=16, train_limit=256, val_limit=16, device="cpu")
    info = start_run("early-stop", PixelCNNConfig(hidden=8, n_blocks=1), config, data_dir=str(mnist_dir))
    time.sleep(0.3)  # Python is still importing torch
    assert stop_run(info.path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and run_status(info.path)[0] == "running":
        time.sleep(0.5)
    status, message = run_status(info.path)
    assert status == "stopped", (status, message, (info.path / "train.log").read_text())
    assert load_checkpoint(info.path).train["step"] == 0


# 8. The course pickle, every protocol

@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_course_pickles_of_every_protocol_load(tmp_path, monkeypatch, protocol):
    monkeypatch.setattr(data_mod, "split", lambda train, test: {"train": train, "test": test})
    rng = np.random.default_rng(0)
    arrays = {"train": rng.integers(0, 4, (60_000, 28, 28, 3), dtype=np.uint8),
              "test": rng.integers(0, 4, (10_000, 28, 28, 3), dtype=np.uint8)}
    path = tmp_path / "mnist_colored.pkl"
    path.write_bytes(pickle.dumps(arrays, protocol=protocol))
    loaded = load_course_pickle(path)
    assert all(np.array_equal(loaded[k], arrays[k]) for k in arrays)


def test_codecs_encode_is_admitted_for_latin1_only(tmp_path):
    import codecs

    class Sneaky:
        def __reduce__(self):
            return (codecs.encode, ("eJwrSS0uAQAEXQHB", "base64"))

    path = tmp_path / "sneaky.pkl"
    path.write_bytes(pickle.dumps({"train": Sneaky(), "test": None}, protocol=2))
    with pytest.raises(DataError, match="refused"):
        load_course_pickle(path)


# 9. Altered data and checkpoints

def flip_a_weight_bit(path: Path) -> None:
    with zipfile.ZipFile(path) as archive:
        member = max(archive.infolist(), key=lambda m: m.file_size)
    blob = bytearray(path.read_bytes())
    name_length = int.from_bytes(blob[member.header_offset + 26:member.header_offset + 28], "little")
    extra_length = int.from_bytes(blob[member.header_offset + 28:member.header_offset + 30], "little")
    start = member.header_offset + 30 + name_length + extra_length
    blob[start + member.file_size // 2] ^= 0x01
    path.write_bytes(bytes(blob))


def test_a_flipped_bit_in_a_checkpoint_is_refused(tmp_path):
    path = save(tmp_path / "c.pt", PixelCNNConfig(hidden=32, n_blocks=2))
    load_checkpoint(path)
    flip_a_weight_bit(path)
    with pytest.raises(CheckpointError, match="checksum") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


@pytest.mark.slow
def test_a_regzipped_idx_file_with_other_pixels_is_refused(tmp_path, mnist_dir):
    spec = MNIST_FILES["test_labels"]
    raw = bytearray(gzip.decompress((mnist_dir / (spec.name + ".gz")).read_bytes()))
    raw[100] = (raw[100] + 1) % 10
    forged = tmp_path / (spec.name + ".gz")
    forged.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError, match="SHA-256"):
        read_idx(forged, spec)


@pytest.mark.slow
def test_a_rewritten_cache_with_a_recomputed_digest_is_rebuilt(tmp_path, mnist_dir):
    from tests.test_data import copy_of_mnist

    folder = copy_of_mnist(mnist_dir, tmp_path / "data")
    original = load_colored_mnist(folder)
    cache = cache_path(folder)
    with np.load(cache) as npz:
        stored = {key: npz[key] for key in npz.files}
    forged = {"train": np.zeros_like(stored["train"]), "test": stored["test"]}
    stored.update(forged, digest=data_mod._digest(forged))
    with open(cache, "wb") as f:
        np.savez(f, **stored)
    again = load_colored_mnist(folder)
    assert np.array_equal(again["train"], original["train"])


@pytest.mark.slow
def test_an_offline_corrupt_file_says_why(tmp_path, mnist_dir):
    from tests.test_data import copy_of_mnist

    folder = copy_of_mnist(mnist_dir, tmp_path / "data")
    damaged = folder / "t10k-images-idx3-ubyte.gz"
    damaged.write_bytes(damaged.read_bytes()[:5000])
    with pytest.raises(DataError) as info:
        load_colored_mnist(folder, mirrors=("http://127.0.0.1:9/",))
    message = str(info.value)
    assert "unreadable or corrupt" in message and "moved aside" in message and "\n" not in message


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_the_data_command_checks_the_label_files(tmp_path, mnist_dir, capsys, monkeypatch, damage):
    from tests.test_data import copy_of_mnist

    folder = copy_of_mnist(mnist_dir, tmp_path / "data")
    labels = folder / "train-labels-idx1-ubyte.gz"
    if damage == "missing":
        labels.unlink()
    else:
        labels.write_bytes(labels.read_bytes()[:1000])
    offline = ("http://127.0.0.1:9/",)  # nothing listens there: every download fails at once
    monkeypatch.setitem(data_mod.load_colored_mnist.__kwdefaults__, "mirrors", offline)
    monkeypatch.setitem(data_mod.download_mnist.__kwdefaults__, "mirrors", offline)
    code, err = cli(capsys, "data", "--data-dir", str(folder))
    assert_one_line_exit_2(code, err.splitlines()[-1] + "\n", "train-labels")  # after the progress lines


class _EndlessHandler(http.server.BaseHTTPRequestHandler):
    """Streams zeros without end (bounded at 256 MiB so that a broken client cannot hang the test)."""

    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        chunk = bytes(1 << 16)
        with contextlib.suppress(OSError):
            for _ in range(4096):
                self.wfile.write(chunk)

    def log_message(self, *args):
        pass


def test_a_hostile_mirror_is_cut_off_at_the_known_size(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EndlessHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        start = time.monotonic()
        with pytest.raises(DataError, match="more than"):
            data_mod._download_one(f"http://127.0.0.1:{server.server_address[1]}/x", tmp_path / "labels.gz",
                                   MNIST_FILES["test_labels"], None, 10)
        assert time.monotonic() - start < 10
    finally:
        server.shutdown()
        server.server_close()
    assert list(tmp_path.iterdir()) == []


# 11. The results command on malformed files

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5)
JSON_VALUES = SCALARS | st.lists(SCALARS, max_size=3) | st.dictionaries(st.text(max_size=3), SCALARS, max_size=2)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(results=st.fixed_dictionaries({}, optional={key: JSON_VALUES for key in (
           "kind", "parameters", "epochs", "train_seconds", "devices", "best_val_bits_per_dim", "test_bits_per_dim")}),
       events=st.lists(st.fixed_dictionaries({}, optional={"event": st.just("val") | JSON_VALUES, "epoch": JSON_VALUES,
                                                            "bits_per_dim": JSON_VALUES, "step": JSON_VALUES,
                                                            "elapsed": JSON_VALUES}),
                       max_size=5))
def test_results_never_crashes_on_malformed_files(tmp_path, capsys, results, events):
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    (folder / "results.json").write_text(json.dumps(results))
    (folder / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events) + "garbage\n")
    for argv in (["results", str(folder)], ["results", "--val-every", "1", str(folder)],
                 ["results", "--val-every-minutes", "1", str(folder)]):
        code, err = cli(capsys, *argv)
        assert code in (0, 2)
        if code == 2:
            assert err.count("\n") == 1 and err.startswith("error:"), err


# 12. Smaller ones

def help_example_outputs() -> set[str]:
    """The files the ``--help`` examples of every command write in the folder they are run from."""
    import argparse
    import re

    from pixelcnn.__main__ import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    epilogs = " ".join(command.epilog or "" for command in commands.values())
    return set(re.findall(r"--(?:out|npy|png) ([\w.-]+\.\w+)\b", epilogs))


def test_the_readme_and_help_examples_outputs_are_ignored_by_git():
    readme = (ROOT / "README.md").read_text()
    outputs = {"samples.png", "field.png"} | help_example_outputs()
    assert all(name in readme for name in {"samples.png", "field.png"})
    assert {"random.png", "bits.npy", "one.pxz", "exercise.ipynb"} <= outputs, outputs
    ignored = subprocess.run(["git", "check-ignore", *outputs], cwd=ROOT, capture_output=True, text=True)
    assert set(ignored.stdout.split()) == outputs
