"""Hostile files, bad input, faults: every failure is one line, nothing runs from a file, nothing saved is lost."""

import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pixelcnn.store import data as data_mod
from pixelcnn.__main__ import main
from pixelcnn.store.checkpoint import load_checkpoint, save_checkpoint
from pixelcnn.store.data import IdxFile, parse_idx
from pixelcnn.errors import CheckpointError, ConfigError, DataError
from pixelcnn.store.metrics import read_events
from pixelcnn.models import PixelCNN, PixelCNNConfig
from pixelcnn.serve.jobs import MAX_UPLOAD_BYTES, import_checkpoint
from pixelcnn.serve.runs import check_run_name, list_runs, run_status
from pixelcnn.training.config import TrainConfig
from pixelcnn.training.trainer import train

SMALL = IdxFile("small", 2051, (2, 28, 28), "", "")
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def one_line(err: BaseException) -> bool:
    return "\n" not in str(err) and len(str(err)) > 0


@FAST
@given(st.binary(max_size=2000))
def test_idx_parser_never_crashes(blob):
    try:
        parse_idx(blob, SMALL, "file")
    except DataError as err:
        assert one_line(err)


@FAST
@given(st.integers(0, 1576), st.integers(0, 255))
def test_idx_parser_with_one_byte_changed(position, value):
    good = (2051).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in SMALL.shape) + bytes(2 * 784)
    blob = bytearray(good)
    blob[position] = value
    try:
        parse_idx(bytes(blob), SMALL, "file")
    except DataError as err:
        assert one_line(err)


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint.pt"
    save_checkpoint(path, PixelCNN(PixelCNNConfig(hidden=8, n_blocks=1)))
    return path.read_bytes()


@FAST
@given(data=st.data())
def test_checkpoint_loader_only_raises_one_line_errors(tmp_path, checkpoint_bytes, data):
    blob = bytearray(checkpoint_bytes)
    kind = data.draw(st.sampled_from(["flip", "truncate", "random"]))
    if kind == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            blob[data.draw(st.integers(0, len(blob) - 1))] ^= data.draw(st.integers(1, 255))
    elif kind == "truncate":
        blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
    else:
        blob = bytearray(data.draw(st.binary(max_size=4000)))
    path = tmp_path / "fuzzed.pt"
    path.write_bytes(bytes(blob))
    try:
        load_checkpoint(path)
    except CheckpointError as err:
        assert one_line(err)


@FAST
@given(st.binary(max_size=3000))
def test_data_cache_reader_never_trusts_garbage(tmp_path, blob):
    path = tmp_path / "cache.npz"
    path.write_bytes(blob)
    assert data_mod._read_cache(path, "anything") is None


FLAG_VALUES = st.one_of(st.text(max_size=12), st.integers(-10**12, 10**12).map(str),
                        st.sampled_from(["nan", "inf", "-inf", "1e309", "0", "-0", "1e-400", "0x10", ""]))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flag=st.sampled_from(["--lr", "--batch-size", "--steps", "--epochs", "--hidden", "--n-blocks", "--seed",
                             "--train-limit", "--eval-every", "--grad-clip", "--checkpoint-minutes", "--device",
                             "--lr-schedule", "--preset"]),
       value=FLAG_VALUES)
def test_train_arguments_fail_with_one_line(tmp_path, capsys, flag, value):
    """Whatever the value, the command ends with exit code 2 and one line (here nothing can train:
    --resume on an empty folder), never a traceback."""
    try:
        code = main(["train", "--out", str(tmp_path / "empty"), "--resume", flag, value])
    except SystemExit as exit_:
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error:")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flag=st.sampled_from(["--row", "--col", "--channel", "--images", "--init-seed"]), value=FLAG_VALUES)
def test_receptive_field_arguments(tmp_path, capsys, flag, value):
    try:
        code = main(["receptive-field", "--preset", "tiny", "--out", str(tmp_path / "f.png"), flag, value])
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    assert code in (0, 2)
    if code == 2:
        assert err.count("\n") == 1 and err.startswith("error:")


@pytest.mark.parametrize("name", ["../escape", "/abs", "a/b", ".hidden", "", "x" * 65, "a b", "ü", "-flag",
                                  "..", "a\\b", "a\nb"])
def test_run_names_cannot_leave_the_runs_folder(name):
    with pytest.raises(ConfigError):
        check_run_name(name)


def test_good_run_names():
    assert check_run_name("run-1.2_x") == "run-1.2_x"


def test_upload_checks_the_file(tmp_path, monkeypatch, checkpoint_bytes):
    monkeypatch.setenv("PIXELCNN_RUNS_DIR", str(tmp_path / "runs"))
    info = import_checkpoint(checkpoint_bytes, "my model.pt")
    assert info.status == "imported" and (info.path / "checkpoint.pt").is_file()
    listed = {run.name: run.status for run in list_runs() if run.kind == "run"}
    assert listed == {info.name: "imported"}

    marker = tmp_path / "marker"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    buffer = io.BytesIO()
    torch.save({"format": "pixelcnn-checkpoint", "x": Payload()}, buffer)
    for bad in (buffer.getvalue(), b"", b"PK\x03\x04 truncated zip", checkpoint_bytes[:500]):
        with pytest.raises(CheckpointError) as err:
            import_checkpoint(bad, "evil.pt")
        assert one_line(err.value) and "evil.pt" in str(err.value)
    assert not marker.exists()
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [info.name]
    with pytest.raises(ConfigError, match="limit"):
        import_checkpoint(b"x" * (MAX_UPLOAD_BYTES + 1), "big.pt")


TINY = PixelCNNConfig(hidden=8, n_blocks=1)


def quick(**kw):
    return TrainConfig(**{**dict(steps=6, batch_size=16, eval_every=2, checkpoint_seconds=1e9, device="cpu"), **kw})


@pytest.mark.parametrize("failing", ["metrics", "checkpoint"])
def test_a_write_error_stops_the_run_and_keeps_what_was_saved(tmp_path, small_data, monkeypatch, failing):
    import pixelcnn.store.checkpoint as ckpt_mod
    import pixelcnn.training.trainer as train_mod

    run = tmp_path / "run"
    calls = {"n": 0}
    if failing == "metrics":
        original = train_mod.append_event

        def flaky(path, event):
            if event["event"] == "train" and event["step"] == 4:
                raise OSError(28, "No space left on device")
            original(path, event)

        monkeypatch.setattr(train_mod, "append_event", flaky)
    else:
        original_write = ckpt_mod.atomic_write

        def flaky_write(path, write):
            calls["n"] += 1
            if calls["n"] == 3:  # after those of steps 0 and 2: the disk is full half-way through
                def half(f):
                    f.write(b"partial")
                    raise OSError(28, "No space left on device")
                return original_write(path, half)
            return original_write(path, write)

        monkeypatch.setattr(ckpt_mod, "atomic_write", flaky_write)
    summary = train(run, TINY, quick(), small_data)
    assert summary["status"] == "failed" and "No space left" in summary["message"]
    assert "\n" not in summary["message"]
    ckpt = load_checkpoint(run)
    assert ckpt.train["step"] == 2
    assert [p.name for p in run.iterdir() if p.name.endswith(".tmp")] == []


def test_status_after_a_server_restart(tmp_path, monkeypatch, small_data):
    monkeypatch.setenv("PIXELCNN_RUNS_DIR", str(tmp_path))
    train(tmp_path / "done", TINY, quick(steps=2), small_data)
    train(tmp_path / "killed", TINY, quick(steps=4), small_data)
    killed = tmp_path / "killed" / "metrics.jsonl"
    lines = killed.read_text().splitlines(keepends=True)
    killed.write_text("".join(line for line in lines if '"end"' not in line and '"test"' not in line)
                      + '{"event": "train", "st')  # the process died mid-line
    (tmp_path / "killed" / "job.json").write_text(json.dumps({"pid": 2**22 + 12345, "started": 0}))
    assert run_status(tmp_path / "done") == ("finished", "")
    status, message = run_status(tmp_path / "killed")
    assert status == "interrupted" and "resumed" in message
    assert read_events(killed)[-1]["event"] != "end"
    assert {run.name: run.status for run in list_runs() if run.kind == "run"} == {
        "done": "finished", "killed": "interrupted"}


@pytest.mark.slow
def test_killing_training_at_random_moments_never_loses_the_checkpoint(tmp_path, mnist_dir):
    """SIGKILL a real training process (saving a checkpoint every step) at random moments, five times."""
    run = tmp_path / "run"
    env = dict(os.environ, PIXELCNN_DATA_DIR=str(mnist_dir))
    base = [sys.executable, "-m", "pixelcnn", "train", "--out", str(run)]
    first = base + ["--preset", "tiny", "--steps", "400", "--batch-size", "16", "--train-limit", "2048",
                    "--val-limit", "16", "--eval-every", "1"]
    rng = random.Random(0)
    last_step = 0
    for attempt in range(5):
        command = first if attempt == 0 else base + ["--resume"]
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (run / "checkpoint.pt").exists():
            time.sleep(0.2)
        time.sleep(rng.uniform(2.0, 5.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
        ckpt = load_checkpoint(run)  # always loadable
        events = read_events(run / "metrics.jsonl")  # always readable, a torn last line skipped
        assert events and all(isinstance(e, dict) for e in events)
        step = ckpt.train["step"]
        assert step >= last_step
        last_step = step
        assert run_status(run)[0] == "interrupted"
    assert last_step > 0
    done = subprocess.run(base + ["--resume", "--steps", str(last_step + 2)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert load_checkpoint(run).train["step"] == last_step + 2


def test_a_live_strip_is_read_only_from_its_run_folder_and_bounded(tmp_path):
    """Review finding: a live-sample path outside the run folder was served to every visitor; /etc/passwd,
    a PNG bomb or an SVG as a live image crashed the Train page."""
    import os
    import struct
    import zlib

    import numpy as np

    from pixelcnn.figures import save_png
    from pixelcnn.serve.runs import read_live_image

    run = tmp_path / "run"
    (run / "live").mkdir(parents=True)
    save_png(np.full((5, 7, 3), 200, dtype=np.uint8), run / "live" / "step-1.png")
    image = read_live_image(run, "live/step-1.png", factor=4)
    assert image.shape == (20, 28, 3) and (image == 200).all()

    save_png(np.zeros((2, 2, 3), dtype=np.uint8), tmp_path / "outside.png")
    os.symlink(tmp_path / "outside.png", run / "live" / "link.png")
    os.symlink("/etc/passwd", run / "live" / "passwd.png")
    os.mkfifo(run / "live" / "fifo.png")
    (run / "live" / "drawing.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    chunk = lambda kind, data: (struct.pack(">I", len(data)) + kind + data  # noqa: E731
                                + struct.pack(">I", zlib.crc32(kind + data)))
    bomb = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))
    (run / "live" / "bomb.png").write_bytes(bomb)
    for file in ("../../outside.png", "live/link.png", "live/passwd.png", "live/fifo.png", "live/drawing.svg",
                 "live/bomb.png", "/etc/passwd", 7, None, "live/missing.png"):
        assert read_live_image(run, file) is None, file


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize("damage", ["nested", "fifo", "sparse", "zero", "misspelt"])
def test_train_config_files_are_read_bounded_with_one_line(tmp_path, capsys, damage):
    """Review findings: --config deeply nested (RecursionError), a 30 GB sparse file (MemoryError), /dev/zero
    (8 GB in 27 s), a FIFO (hangs), a misspelt training key silently ignored."""
    config = tmp_path / "config.json"
    if damage == "nested":
        config.write_text('{"model": {}, "train": ' + nested(100_000) + "}")
    elif damage == "fifo":
        os.mkfifo(config)
    elif damage == "sparse":
        with open(config, "wb") as f:
            f.truncate(30 << 30)
    elif damage == "zero":
        config.symlink_to("/dev/zero")
    else:
        config.write_text(json.dumps({"model": {"hidden": 8, "n_blocks": 1}, "train": {"step": 3}}))
    start = time.monotonic()
    code = main(["train", "--out", str(tmp_path / "run"), "--config", str(config)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert time.monotonic() - start < 30
    assert ("'step'" in err) if damage == "misspelt" else str(config) in err, err
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


@pytest.mark.parametrize("damage", ["nested", "fifo", "sparse", "mistyped"])
def test_a_damaged_run_folder_reads_as_empty_not_as_a_crash(tmp_path, damage):
    """Review findings: a nested or FIFO config.json or metrics.jsonl crashed or hung every page; a
    30 GB sparse metrics.jsonl took 8 GB; a mistyped event crashed the Models and Train pages."""
    from pixelcnn.store.rundir import read_run_config

    run = tmp_path / "run"
    run.mkdir()
    good = json.dumps({"event": "train", "step": 1, "bits_per_dim": 1.0, "elapsed": 1.0}) + "\n"
    if damage == "nested":
        (run / "config.json").write_text('{"model": ' + nested(100_000) + "}")
        (run / "metrics.jsonl").write_text(good + '{"event": "val", "step": 2, "x": ' + nested(50_000) + "}\n")
    elif damage == "fifo":
        os.mkfifo(run / "config.json")
        os.mkfifo(run / "metrics.jsonl")
    elif damage == "sparse":
        (run / "config.json").write_text("{}")
        with open(run / "metrics.jsonl", "wb") as f:
            f.write(good.encode())
            f.truncate(30 << 30)
    else:
        (run / "config.json").write_text("{}")
        (run / "metrics.jsonl").write_text(good + "".join(json.dumps(e) + "\n" for e in [
            {"event": "samples", "step": "x", "file": "live/a.png"}, {"event": "val", "step": 3, "bits_per_dim": "low"},
            {"event": "samples", "step": 4, "file": ["live/a.png"]}, {"event": "train", "step": True}]))
    start = time.monotonic()
    assert read_run_config(run) == {}
    events = read_events(run / "metrics.jsonl")
    assert events == ([] if damage in ("fifo", "sparse") else [json.loads(good)])
    assert time.monotonic() - start < 20


def npy_damage(path, damage: str) -> None:
    import numpy as np

    if damage == "2 TB declared":
        header = {"descr": "|u1", "fortran_order": False, "shape": (350_000_000, 28, 28, 3)}
        with open(path, "wb") as f:
            np.lib.format.write_array_header_1_0(f, header)
            f.write(b"\0" * 4096)
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "npz":
        with open(path, "wb") as f:
            np.savez(f, images=np.zeros((1, 28, 28, 3), dtype=np.uint8))
    elif damage == "fifo":
        os.mkfifo(path)
    elif damage == "out of range":
        np.save(path, np.full((2, 28, 28, 3), 7, dtype=np.int64))


@pytest.mark.parametrize("damage", ["2 TB declared", "empty", "npz", "fifo", "out of range"])
@pytest.mark.parametrize("command", ["bits", "predict", "score"])
def test_npy_inputs_are_refused_with_one_line(tmp_path, capsys, damage, command):
    """Review findings: a .npy declaring a 2 TB array (_ArrayMemoryError), an empty file (EOFError), an .npz
    given as .npy (AttributeError), a FIFO (hangs): exit 2 and one line instead."""
    path = tmp_path / "images.npy"
    npy_damage(path, damage)
    argv = {"bits": ["bits", "--preset", "tiny", "--image", str(path)],
            "predict": ["predict", "--preset", "tiny", "--image", str(path), "--row", "3", "--col", "4"],
            "score": ["score", "--images", str(path)]}[command]
    start = time.monotonic()
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err and str(path) in err, err
    assert time.monotonic() - start < 30


def test_outputs_are_checked_before_any_work(tmp_path, capsys):
    """Review findings: classifier --out '' overwrote the shipped classifier; on /proc it failed after 120 s
    of training; train --out / trained into /."""
    from pixelcnn.explain.digits import CLASSIFIER_PATH

    before = CLASSIFIER_PATH.stat().st_mtime_ns
    for argv in (["classifier", "--out", ""], ["classifier", "--out", "/proc/classifier.pt"],
                 ["train", "--preset", "tiny", "--steps", "1", "--out", "/"],
                 ["train", "--preset", "tiny", "--steps", "1", "--out", str(CLASSIFIER_PATH.parent.parent)]):
        start = time.monotonic()
        code = main(argv)
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1, (argv, err)
        assert time.monotonic() - start < 10, argv
    assert CLASSIFIER_PATH.stat().st_mtime_ns == before
    assert not (CLASSIFIER_PATH.parent.parent / "config.json").exists()


def test_an_interrupted_run_says_why_and_odd_clock_fields_do_not_crash(tmp_path):
    """Review findings: after a disk-full failure the Train page said only "interrupted"; a job or end
    event whose time is text crashed the status."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"kept")
    (run / "train.log").write_text(" 40.0% step 80\nerror: no space left on device while saving; the last "
                                   "checkpoint is kept\n")
    (run / "job.json").write_text(json.dumps({"pid": "x", "started": "yesterday"}))
    status, message = run_status(run)
    assert status == "interrupted" and "no space left on device" in message
    (run / "metrics.jsonl").write_text(json.dumps({"event": "end", "status": "stopped", "time": "noon"}) + "\n")
    assert run_status(run)[0] == "stopped"


@pytest.mark.parametrize("damage", ["text reference", "reference not a mapping", "nan weights", "huge weights"])
def test_a_damaged_digit_classifier_is_an_error_not_a_score(tmp_path, capsys, damage):
    """Review findings: reference numbers as text crashed `score` and the Samples and Models pages; NaN or
    1e38 weights reported "digit score 0.00" with exit 0."""
    from pixelcnn.explain.digits import CLASSIFIER_PATH, DigitClassifier, load_classifier, save_classifier

    model, record = load_classifier(CLASSIFIER_PATH)
    path = tmp_path / "classifier.pt"
    if damage == "text reference":
        record = {**record, "reference": {"real colored test images": "0.97", "![x](http://e/x.png)": 0.5}}
    elif damage == "reference not a mapping":
        record = {**record, "reference": [0.97]}
    else:
        model = DigitClassifier()
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(float("nan") if damage == "nan weights" else 1e38)
    save_classifier(path, model, record)
    code = main(["score", "--images", str(CHECK_IMAGES_NPY(tmp_path)), "--classifier", str(path)])
    err = capsys.readouterr()
    if damage.endswith("weights"):
        assert code == 2 and len(err.err.strip().splitlines()) == 1 and "not finite" in err.err, err
    else:
        assert code == 0 and "digit score" in err.out and "real colored test images" not in err.out, err
        assert all(isinstance(v, float) for v in load_classifier(path)[1]["reference"].values())


def CHECK_IMAGES_NPY(folder):
    import numpy as np

    path = folder / "images.npy"
    np.save(path, np.random.default_rng(0).integers(0, 4, (3, 28, 28, 3)).astype(np.uint8))
    return path


def test_run_folders_are_read_again_only_when_their_files_change(tmp_path, monkeypatch):
    """Review finding: 2,000 run folders took the Models page 7.9 s, every file re-read on every rerun."""
    import pixelcnn.serve.runs as runs_mod
    from pixelcnn.serve.run_table import run_row

    monkeypatch.setenv("PIXELCNN_RUNS_DIR", str(tmp_path))
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps({"model": {"hidden": 8}, "train": {}}))
        (tmp_path / name / "metrics.jsonl").write_text(json.dumps({"event": "train", "step": 1, "bits_per_dim": 1.5,
                                                                   "elapsed": 1.0}) + "\n")
    read = []
    real = runs_mod.read_json
    monkeypatch.setattr(runs_mod, "read_json", lambda path: read.append(os.path.basename(os.path.dirname(path)))
                        or real(path))
    first = {info.name: run_row(info) for info in runs_mod.list_runs() if info.kind == "run"}
    assert {"a", "b"} <= set(read) and first["a"]["width"] == 8
    read.clear()
    assert {info.name: run_row(info) for info in runs_mod.list_runs() if info.kind == "run"} == first
    assert read == []  # nothing changed: nothing read
    with open(tmp_path / "b" / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"event": "val", "step": 2, "bits_per_dim": 1.25}) + "\n")
    rows = {info.name: run_row(info) for info in runs_mod.list_runs() if info.kind == "run"}
    assert set(read) == {"b"} and rows["b"]["best val bits/dim"] == 1.25 and rows["a"] == first["a"]


BAD_START_FIELDS = [{"total_steps": "x"}, {"total_steps": float("nan")}, {"total_steps": float("inf")},
                    {"total_steps": -5}, {"total_steps": 10**400}, {"train": "y"}, {"train": {"batch_size": "x"}},
                    {"train": {"batch_size": 0}}, {"budget_seconds": float("nan")}, {"budget_seconds": "soon"},
                    {"step": 2.5}, {"model": "paper"}, {"steps_per_epoch": True}]


@pytest.mark.parametrize("bad", BAD_START_FIELDS, ids=lambda bad: json.dumps(bad, default=str)[:40])
def test_an_event_with_a_field_out_of_type_or_range_is_skipped_where_it_is_read(tmp_path, bad):
    """Review finding 1: a start event with total_steps "x", NaN or Infinity, or train "y", passed the event
    check and took the progress code down. Every field a reader uses is checked once, where events are read."""
    from pixelcnn.store.metrics import progress_of, read_events

    good = {"event": "start", "step": 0, "total_steps": 10, "train": {"batch_size": 32}, "budget_seconds": None}
    train = {"event": "train", "step": 3, "bits_per_dim": 1.5, "elapsed": 2.0, "images_per_s": 40.0}
    path = tmp_path / "metrics.jsonl"
    with open(path, "w") as f:  # json.dumps writes NaN and Infinity as JSON's readers accept them
        for event in (good, {**good, **bad}, train):
            f.write(json.dumps(event) + "\n")
    events = read_events(path)
    assert events == [good, train]
    progress = progress_of(events)
    assert progress["step"] == 3 and progress["total"] == 10


@pytest.mark.parametrize("command", [["bits", "--checkpoint", "{ckpt}", "--image", "{npy}"],
                                     ["predict", "--checkpoint", "{ckpt}", "--image", "{npy}", "--row", "1", "--col", "1"],
                                     ["score", "--images", "{npy}"],
                                     ["compress", "--checkpoint", "{ckpt}", "--images", "{npy}", "--out", "{tmp}/o.pxz"]])
@pytest.mark.parametrize("shape", ["(-1, 28, 28, 3)", "(28, -28, 3)", "(-5,)"])
def test_an_npy_with_a_negative_dimension_is_one_line(tmp_path, capsys, command, shape):
    """Review finding 7: an .npy whose header declares a negative dimension gave a traceback in bits, predict,
    score and compress --images (the size check computed a negative or zero size and let it through)."""
    import numpy as np
    from pixelcnn.models import PixelCNNConfig, build_model
    from pixelcnn.store.checkpoint import save_checkpoint

    good = tmp_path / "good.npy"
    np.save(good, np.zeros((1, 28, 28, 3), dtype=np.uint8))
    forged = good.read_bytes().replace(b"(1, 28, 28, 3)", shape.encode().ljust(len(b"(1, 28, 28, 3)")))
    npy = tmp_path / "forged.npy"
    npy.write_bytes(forged)
    ckpt = tmp_path / "m.pt"
    save_checkpoint(ckpt, build_model(PixelCNNConfig(hidden=8, n_blocks=1)))
    argv = [part.format(ckpt=ckpt, npy=npy, tmp=tmp_path) for part in command]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


@pytest.mark.parametrize("command, victim", [
    (["compress", "--checkpoint", "{ckpt}", "--images", "{npy}", "--out", "{ckpt}"], "ckpt"),
    (["compress", "--checkpoint", "{run}", "--images", "{npy}", "--out", "{run}/checkpoint.pt"], "run_ckpt"),
    (["compress", "--checkpoint", "{ckpt}", "--images", "{npy}", "--out", "{npy}"], "npy"),
    (["decompress", "--checkpoint", "{ckpt}", "{pxz}", "--npy", "{pxz}"], "pxz"),
    (["decompress", "--checkpoint", "{ckpt}", "{pxz}", "--png", "{tmp}/../{tmpname}/s.pxz"], "pxz"),
    (["sample", "--checkpoint", "{ckpt}", "--n", "1", "--out", "{ckpt}"], "ckpt"),
    (["bits", "--checkpoint", "{ckpt}", "--image", "{one}", "--npy", "{one}"], "one"),
    (["receptive-field", "--checkpoint", "{run}", "--npy", "{run}/checkpoint.pt", "--out", "{tmp}/f.png"], "run_ckpt"),
])
def test_no_command_writes_over_a_file_it_reads(tmp_path, capsys, command, victim):
    """Review finding 8: `compress ... --out` the checkpoint itself, and `decompress in.pxz --npy in.pxz`,
    destroyed the input. No command may write over a file it reads: one line, exit 2, the input intact."""
    import shutil

    import numpy as np
    from pixelcnn.models import PixelCNNConfig, build_model
    from pixelcnn.store.checkpoint import save_checkpoint

    ckpt = tmp_path / "m.pt"
    save_checkpoint(ckpt, build_model(PixelCNNConfig(hidden=8, n_blocks=1)))
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(ckpt, run / "checkpoint.pt")
    npy, one = tmp_path / "images.npy", tmp_path / "one.npy"
    np.save(npy, np.zeros((2, 28, 28, 3), dtype=np.uint8))
    np.save(one, np.zeros((28, 28, 3), dtype=np.uint8))
    pxz = tmp_path / "s.pxz"
    assert main(["compress", "--checkpoint", str(ckpt), "--images", str(npy), "--out", str(pxz)]) == 0
    capsys.readouterr()
    files = {"ckpt": ckpt, "run_ckpt": run / "checkpoint.pt", "npy": npy, "pxz": pxz, "one": one}
    before = files[victim].read_bytes()
    argv = [part.format(ckpt=ckpt, run=run, npy=npy, pxz=pxz, one=one, tmp=tmp_path, tmpname=tmp_path.name)
            for part in command]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "would destroy it" in err, err
    assert files[victim].read_bytes() == before


def test_a_model_with_more_labels_than_a_page_draws_rows_is_refused_where_it_is_read(tmp_path, capsys):
    """Review finding 3: "one row per digit" drew one row per class, and a legal 1,000-class checkpoint drew
    1,000 rows (2,000 with guidance): 6 GB and a dead page. The labels are bounded where a checkpoint is read
    for serving, so every drawing a page can ask for stays within the 100 samples the budget sizes."""
    from pixelcnn.errors import ModelError
    from pixelcnn.models import PixelCNNConfig, build_model
    from pixelcnn.serve.limits import SERVED_SAMPLES, check_servable
    from pixelcnn.store.checkpoint import save_checkpoint

    check_servable(PixelCNNConfig(hidden=8, n_blocks=1, classes=SERVED_SAMPLES))
    with pytest.raises(ModelError, match="at most 100 labels"):
        check_servable(PixelCNNConfig(hidden=8, n_blocks=1, classes=1000))
    ckpt = tmp_path / "many.pt"
    save_checkpoint(ckpt, build_model(PixelCNNConfig(hidden=8, n_blocks=1, classes=1000)))
    assert main(["sample", "--checkpoint", str(ckpt), "--per-digit", "--n", "1000", "--out",
                 str(tmp_path / "s.png")]) == 2
    err = capsys.readouterr().err
    assert "1,000 labels" in err and len(err.strip().splitlines()) == 1


def upload(store, session: str, file_id: str, megabytes: int) -> None:
    from streamlit.runtime.uploaded_file_manager import UploadedFileRec

    store.add_file(session, UploadedFileRec(file_id=file_id, name=f"{file_id}.pt", type="application/octet-stream",
                                            data=b"x" * (megabytes << 20)))


def test_the_upload_store_keeps_a_bounded_number_of_bytes_whoever_sends_them():
    from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager

    from pixelcnn.serve.uploads import bound_upload_store, kept_upload_bytes

    store = MemoryUploadedFileManager("/upload")
    bound_upload_store(store, lambda: True, files_per_session=3, total_bytes=40 << 20)
    for i in range(10):  # one session sending file after file: its newest three are kept
        upload(store, "a", f"a{i}", 4)
    assert [f.file_id for f in store.get_files("a", [f"a{i}" for i in range(10)])] == ["a7", "a8", "a9"]
    for session in "bcdefgh":  # many sessions: the oldest files go first, the total stays bounded
        for i in range(3):
            upload(store, session, f"{session}{i}", 5)
        assert kept_upload_bytes(store) <= 40 << 20
    assert store.get_files("h", ["h0", "h1", "h2"]) and not store.get_files("a", ["a9"])
    upload(store, "h", "h2", 1)  # the same file id sent again replaces it
    assert len(store.get_files("h", ["h2"])[0].data) == 1 << 20
    store.remove_session_files("h")  # a session that ends takes its files along
    assert kept_upload_bytes(store) <= (40 - 11) << 20


def test_in_lecture_mode_the_upload_store_keeps_nothing():
    from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager

    from pixelcnn.serve.uploads import bound_upload_store, kept_upload_bytes

    store = MemoryUploadedFileManager("/upload")
    accepting = False
    bound_upload_store(store, lambda: accepting)
    bound_upload_store(store, lambda: accepting)  # every script run installs it: once is what counts
    upload(store, "room", "f", 1)
    assert store.get_files("room", ["f"]) == [] and kept_upload_bytes(store) == 0
    accepting = True
    upload(store, "room", "f", 1)
    assert kept_upload_bytes(store) == 1 << 20


def test_the_servers_upload_limit_is_the_one_the_code_states():
    import tomllib

    from pixelcnn.serve.uploads import UPLOAD_LIMIT_MB

    config = tomllib.loads((Path(__file__).resolve().parent.parent / ".streamlit/config.toml").read_text())
    assert config["server"]["maxUploadSize"] == UPLOAD_LIMIT_MB


def test_an_upload_is_named_after_its_file_and_added_once(tmp_path, monkeypatch, checkpoint_bytes):
    """Browser walk: "Add it" pressed twice added the same upload twice, under a timestamp name."""
    monkeypatch.setenv("PIXELCNN_RUNS_DIR", str(tmp_path / "runs"))
    first = import_checkpoint(checkpoint_bytes, "my model.pt")
    assert first.name == "my-model"
    with pytest.raises(ConfigError, match="already here as my-model"):
        import_checkpoint(checkpoint_bytes, "copy of it.pt")
    second = import_checkpoint(_resaved(checkpoint_bytes, "another"), "my model.pt")  # other bytes
    assert second.name == "my-model-2"
    paper = import_checkpoint(_resaved(checkpoint_bytes, "third"), "paper.pt")
    assert paper.name == "paper-2"  # "paper" is the shipped model's name


def _resaved(checkpoint_bytes: bytes, note: str) -> bytes:
    buffer = io.BytesIO()
    torch.save(torch.load(io.BytesIO(checkpoint_bytes), weights_only=True) | {"note": note}, buffer)
    return buffer.getvalue()
