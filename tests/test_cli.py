import contextlib
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from pixelcnn.__main__ import main
from pixelcnn.store.checkpoint import load_checkpoint


def run_cli(*args: str, env_data=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pixelcnn", *args], capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("argv", [
    ["train", "--out", "x", "--lr", "-1"],
    ["train", "--out", "x", "--steps", "0"],
    ["train", "--out", "x", "--steps", "3", "--epochs", "2"],
    ["train", "--out", "x", "--preset", "huge"],
    ["train", "--out", "x", "--batch-size", "many"],
    ["sample", "--out", "x.png"],
    ["sample", "--preset", "tiny", "--out", "x.png", "--temperature", "0"],
    ["receptive-field", "--preset", "tiny", "--out", "f.png", "--row", "-3"],
    ["frobnicate"],
])
def test_bad_arguments_give_one_line_and_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error:")


def test_out_of_range_values_give_one_line(capsys, tmp_path):
    assert main(["receptive-field", "--preset", "tiny", "--row", "40", "--out", str(tmp_path / "f.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "row" in err


def test_bad_checkpoint_gives_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x80\x04not really")
    assert main(["sample", "--checkpoint", str(bad), "--out", str(tmp_path / "s.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a pixelcnn checkpoint" in err
    assert not (tmp_path / "s.png").exists()


@pytest.mark.parametrize("command", ["data", "train", "evaluate", "sample", "receptive-field"])
def test_help_shows_an_example(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "python -m pixelcnn " + command in capsys.readouterr().out


def test_sample_and_receptive_field_commands(tmp_path, capsys):
    assert main(["sample", "--preset", "tiny", "--init-seed", "1", "--n", "12", "--seed", "3",
                 "--out", str(tmp_path / "grid.png"), "--npy", str(tmp_path / "s.npy")]) == 0
    assert "12 samples (cached) in" in capsys.readouterr().out
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (12, 28, 28, 3) and samples.max() <= 3
    grid = Image.open(tmp_path / "grid.png")
    assert grid.size == (10 * 29 + 1, 2 * 29 + 1)

    assert main(["receptive-field", "--preset", "paper", "--row", "14", "--col", "14", "--channel", "0",
                 "--out", str(tmp_path / "field.png"), "--npy", str(tmp_path / "field.npy")]) == 0
    out = capsys.readouterr().out
    field = np.load(tmp_path / "field.npy")
    assert field.shape == (28, 28)
    assert f"nonzero positions: {int((field > 0).sum())}" in out
    assert Image.open(tmp_path / "field.png").size[0] >= 28


@pytest.mark.slow
def test_train_evaluate_resume_on_real_data(tmp_path, mnist_dir, monkeypatch):
    monkeypatch.setenv("PIXELCNN_DATA_DIR", str(mnist_dir))
    run = tmp_path / "run"
    done = run_cli("train", "--preset", "tiny", "--steps", "4", "--train-limit", "512", "--val-limit", "256",
                   "--out", str(run))
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("test bits/dim: ")
    test_bpd = float(last.split(": ")[1])
    assert test_bpd < 2.0
    again = run_cli("train", "--preset", "tiny", "--steps", "4", "--out", str(run))
    assert again.returncode == 2 and "--resume" in again.stderr
    more = run_cli("train", "--out", str(run), "--resume", "--steps", "6")
    assert more.returncode == 0, more.stderr
    assert load_checkpoint(run).train["step"] == 6
    evaluated = run_cli("evaluate", "--checkpoint", str(run / "checkpoint.pt"), "--split", "test",
                        "--limit", "100", "--json")
    result = json.loads(evaluated.stdout)
    assert result["split"] == "test" and result["n_images"] == 100 and 0 < result["bits_per_dim"] < 2.0
    plain = run_cli("evaluate", "--checkpoint", str(run), "--split", "val", "--limit", "50")
    assert plain.stdout.startswith("val bits/dim: ")


@pytest.mark.slow
def test_data_command(mnist_dir):
    done = subprocess.run([sys.executable, "-m", "pixelcnn", "data", "--data-dir", str(mnist_dir)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "train: 55000 images of 28x28x3" in done.stdout and "test: 10000" in done.stdout


def test_report_writes_the_exercise_images(tmp_path, small_data, capsys):
    from pixelcnn.models import PixelCNNConfig
    from pixelcnn.training.config import TrainConfig
    from pixelcnn.training.trainer import train

    run = tmp_path / "run"
    train(run, PixelCNNConfig(hidden=8, n_blocks=1), TrainConfig(steps=4, batch_size=32, eval_every=2,
                                                                  device="cpu"), small_data)
    assert main(["report", "--checkpoint", str(run), "--no-measure"]) == 0
    out = capsys.readouterr().out
    assert "field-random.png" in out and "field-trained.png" in out
    svg = (run / "curves.svg").read_text()
    assert svg.startswith("<svg") and svg.count("<circle") == 2  # the two validations
    assert "bits per dimension (log scale)" in svg
    assert Image.open(run / "samples.png").size == (10 * 29 + 1, 10 * 29 + 1)
    for name in ("field-random.png", "field-trained.png"):
        assert Image.open(run / name).size == (280, 280)


def test_results_measures_and_tabulates(tmp_path, small_data, capsys):
    from pixelcnn.models import PixelCNNConfig
    from pixelcnn.explain.results import measure, write_results
    from pixelcnn.training.config import TrainConfig
    from pixelcnn.training.trainer import train

    runs = []
    for kind in ("pixelcnn", "gated"):
        run = tmp_path / kind
        train(run, PixelCNNConfig(kind=kind, hidden=8, n_blocks=1), TrainConfig(steps=3, batch_size=32,
                                                                                device="cpu"), small_data)
        results = measure(load_checkpoint(run), small_data["test"], small_data["test"][:10])
        assert results["test_images"] == len(small_data["test"]) and results["steps"] == 3
        assert 0 <= results["digit_score"] <= 1 and sum(results["digits_read"]) <= 10
        assert results["test500_bits_per_dim"] == pytest.approx(results["test_bits_per_dim"])  # < 500 images
        by_temperature = results["digit_score_by_temperature"]
        assert list(by_temperature) == ["1", "0.9", "0.8", "0.7"] and by_temperature["1"] == results["digit_score"]
        assert all(0 <= v <= 1 for v in by_temperature.values())
        assert by_temperature[results["best_temperature"]] == max(by_temperature.values())
        write_results(run, results)
        runs.append(str(run))
    assert main(["results", *runs]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| model | kind |") and len(table) == 4
    assert "| `gated` | gated |" in table[3] and table[0].endswith("| digit score (T = 1) | best digit score (T) |")
    assert main(["results", *runs, str(tmp_path / "nothing")]) == 2
    assert "no results.json" in capsys.readouterr().err


def test_validation_by_minutes_reads_runs_at_equal_time(tmp_path, capsys):
    def run(name: str, vals: list[tuple[float, float]]) -> str:
        folder = tmp_path / name
        folder.mkdir()
        events = [{"event": "val", "elapsed": seconds, "bits_per_dim": bits} for seconds, bits in vals]
        (folder / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events) + "garbage\n")
        return str(folder)

    fast = run("fast", [(50, 0.30), (110, 0.20), (170, 0.15), (300, 0.12)])
    slow = run("slow", [(90, 0.40), (200, 0.25), ({"not": "a number"}, 0.0)])
    assert main(["results", "--val-every-minutes", "2", fast, slow]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "| minutes | fast | slow |", "|---:|---:|---:|",
        "| 2 | 0.2000 | 0.4000 |",  # the latest validation at or before each mark
        "| 4 | 0.1500 | 0.2500 |",  # slow's last validation (3.3 min) is the last it shows
        "| 6 | 0.1200 |  |"]
    with pytest.raises(SystemExit) as info:
        main(["results", "--val-every-minutes", "2", "--val-every", "1", fast])
    assert info.value.code == 2 and capsys.readouterr().err.count("\n") == 1


def test_dashboard_jobs_keep_the_kind_and_every_other_setting(tmp_path):
    """The dashboard writes the validated configs to the run folder and starts the trainer on that file,
    so nothing is dropped on the way (once amp, compile, the checkpoint interval and the kernels were)."""
    from pixelcnn.__main__ import build_parser
    from pixelcnn.models import PixelCNNConfig
    from pixelcnn.serve.jobs import job_command
    from pixelcnn.training.config import TrainConfig, read_config_file, write_config_file

    model = PixelCNNConfig(kind="gated", hidden=16, n_blocks=2, first_kernel=5, block_kernel=5)
    config = TrainConfig(steps=5, amp=True, compile=True, checkpoint_seconds=30.0, grad_clip=0.5, eval_every=3,
                         lr_schedule="cosine", train_limit=100, val_limit=10, batch_size=32, lr=3e-3, seed=9)
    write_config_file(tmp_path / "config.json", model, config)
    args = build_parser().parse_args(job_command(tmp_path)[3:])
    assert read_config_file(args.config) == (model, config)
    assert read_config_file(args.config)[0].kind == "gated"


def test_the_gpu_recipes_are_valid_training_commands(tmp_path):
    """Every recipe parses as a train command and builds a valid config; a folder with a checkpoint resumes."""
    from pixelcnn.__main__ import build_parser
    from pixelcnn.cli.train import MODEL_OPTIONS
    from pixelcnn.models import PixelCNNConfig, get_preset
    from pixelcnn.options import given_options
    from pixelcnn.recipes import RECIPES, pack, recipe_command

    for name in RECIPES:
        args = build_parser().parse_args(recipe_command(name, tmp_path / name)[3:])
        config = get_preset(args.preset)
        config = PixelCNNConfig(**{**config.to_dict(), **given_options(args, PixelCNNConfig, MODEL_OPTIONS)})
        assert args.lr_schedule == "cosine" and args.amp and args.device == "cuda"
        if name == "conditional":  # the shipped conditional model's recipe, at paper's width
            assert (config.kind, config.hidden, config.classes) == ("pixelcnn", 128, 10)
        else:
            assert config.kind == get_preset(name).kind and config.classes == 0
    folder = tmp_path / "paper"
    folder.mkdir()
    (folder / "checkpoint.pt").write_bytes(b"x")
    (folder / "metrics.jsonl").write_text("{}\n")
    assert recipe_command("paper", folder)[-1] == "--resume"
    pack(folder, tmp_path / "paper.tar")
    import tarfile

    assert sorted(tarfile.open(tmp_path / "paper.tar").getnames()) == ["paper/checkpoint.pt", "paper/metrics.jsonl"]


def test_a_cpu_recipe_with_minutes_trains_by_the_clock(tmp_path):
    """With --minutes the budget is the clock in place of the epochs, so the cosine schedule follows the time."""
    from pixelcnn.__main__ import build_parser
    from pixelcnn.cli.train import train_configs
    from pixelcnn.recipes import RECIPES, recipe_command

    for name in RECIPES:
        command = recipe_command(name, tmp_path / name, "cpu", 120)
        model_config, config = train_configs(build_parser().parse_args(command[3:]))
        assert (config.minutes, config.epochs, config.steps, config.device) == (120, None, None, "cpu")
        assert config.step_budget(430) is None and config.lr_schedule == "cosine"


def test_recipes_print_the_plan_and_refuse_what_they_cannot_write(tmp_path, capsys):
    from pixelcnn.recipes import main as recipes_main

    assert recipes_main(["--out", str(tmp_path), "--only", "lecture", "--minutes", "0.5", "--device", "cpu",
                         "--dry-run"]) == 0
    plan, command = capsys.readouterr().out.splitlines()
    assert plan.startswith("lecture: ") and "images/s measured on cpu" in plan and "epochs) in 30 s" in plan, plan
    assert "--minutes 0.5" in command and "--epochs" not in command
    assert recipes_main(["--out", "/proc/recipes", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --out /proc/recipes") and err.count("\n") == 1, err
    assert recipes_main(["--out", str(tmp_path), "--minutes", "0"]) == 2
    assert not (tmp_path / "runs").exists()


def test_the_best_temperature_and_its_record():
    from pixelcnn.explain.results import best_temperature

    assert best_temperature({"1": 0.3, "0.9": 0.43, "0.8": 0.39, "0.7": 0.43}) == "0.9"  # the hotter on a tie
    assert best_temperature({"1": 0.5, "0.9": 0.2}) == "1"


@pytest.mark.parametrize("stored, expected", [
    ({"1": 0.3, "0.9": 0.43}, {"1": 0.3, "0.9": 0.43}),
    ({"1": "x"}, {}), ({"nan": 0.2}, {}), ({"1": float("inf")}, {}), ({"5": 0.2}, {}), ([0.3], {}),
    ({str(i / 10): 0.1 for i in range(1, 11)}, {}),
])
def test_a_recorded_temperature_reading_is_checked_before_it_is_shown(tmp_path, stored, expected):
    from pixelcnn.explain.results import recorded_temperature_scores, write_results

    write_results(tmp_path, {"digit_score_by_temperature": stored})
    assert recorded_temperature_scores(tmp_path) == expected


def drawn_one(path) -> str:
    """A "1" drawn as a thick dark line on white paper, 400x400: what a phone's camera or a paint program gives."""
    from PIL import ImageDraw

    page = Image.new("L", (400, 400), 255)
    ImageDraw.Draw(page).line([(200, 60), (200, 340)], fill=0, width=28)
    page.save(path)
    return str(path)


def test_your_own_digit_goes_wherever_an_image_does(tmp_path, capsys):
    """Issue 37: ``--png FILE`` beside ``--image`` and ``--images``: bits, predict, score, compress."""
    from pixelcnn.models import PixelCNNConfig, random_model
    from pixelcnn.store.checkpoint import save_checkpoint

    one = drawn_one(tmp_path / "one.png")
    save_checkpoint(tmp_path / "m.pt", random_model(PixelCNNConfig(hidden=8, n_blocks=1), seed=0))
    model = str(tmp_path / "m.pt")
    assert main(["bits", "--checkpoint", model, "--png", one, "--colours", "0,0,0/3,3,0",
                 "--out", str(tmp_path / "heat.png")]) == 0
    assert "bits/dim:" in capsys.readouterr().out and (tmp_path / "heat.png").is_file()
    assert main(["score", "--png", one, "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["histogram"][1] == 1  # the classifier reads a 1
    assert main(["compress", "--checkpoint", model, "--png", one, "--out", str(tmp_path / "one.pxz")]) == 0
    assert main(["decompress", "--checkpoint", model, str(tmp_path / "one.pxz"), "--npy", str(tmp_path / "back.npy")]) == 0
    from pixelcnn.store.drawing import own_digit, random_colours

    assert np.array_equal(np.load(tmp_path / "back.npy")[0], own_digit(open(one, "rb").read(), *random_colours(0)))


@pytest.mark.parametrize("argv, words", [
    (["--png", "missing.png"], "cannot be read"),
    (["--png", "{blank}"], "blank"),
    (["--png", "{one}", "--colours", "1,1,1/2,1,1"], "less than 3 apart"),
    (["--png", "{one}", "--colours", "red/blue"], "R,G,B/R,G,B"),
    (["--png", "{one}", "--out", "{one}"], "--png"),
])
def test_a_bad_own_digit_gives_one_line_and_exit_2(tmp_path, capsys, argv, words):
    one = drawn_one(tmp_path / "one.png")
    Image.new("L", (100, 100), 255).save(tmp_path / "blank.png")
    argv = [a.format(one=one, blank=tmp_path / "blank.png") for a in argv]
    out = ["--out", str(tmp_path / "heat.png")] if "--out" not in argv else []
    with pytest.raises(SystemExit) if "R,G,B" in words else contextlib.nullcontext():
        code = main(["bits", "--preset", "tiny", *argv, *out])
        assert code == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) <= 3, err
    assert open(one, "rb").read(4) == b"\x89PNG"  # never written over
