import json
import math
import threading

import numpy as np
import pytest
import torch

from pixelcnn.store.checkpoint import load_checkpoint
from pixelcnn.errors import ConfigError
from pixelcnn.store.metrics import read_events
from pixelcnn.models import PixelCNNConfig
from pixelcnn.training.config import TrainConfig, resume_config
from pixelcnn.training.step import batch_order, learning_rate
from pixelcnn.training.evaluate import evaluate
from pixelcnn.training.trainer import train

TINY = PixelCNNConfig(hidden=16, n_blocks=2)


def quick(**kw) -> TrainConfig:
    defaults = dict(steps=6, batch_size=32, eval_every=3, checkpoint_seconds=1e9, device="cpu")
    return TrainConfig(**{**defaults, **kw})


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_training_lowers_the_loss_and_writes_the_run(tmp_path, small_data):
    events = []
    summary = train(tmp_path / "run", TINY, quick(steps=30, lr=3e-3, eval_every=10), small_data,
                    callback=events.append)
    assert summary["status"] == "finished"
    train_bpd = [e["bits_per_dim"] for e in events if e["event"] == "train"]
    assert len(train_bpd) == 30 and np.mean(train_bpd[-5:]) < np.mean(train_bpd[:5]) - 0.2
    epoch_ends = set(range(6, 31, 6))  # 192 training images in batches of 32
    assert [e["step"] for e in events if e["event"] == "val"] == sorted(epoch_ends | {10, 20, 30})
    assert read_events(tmp_path / "run" / "metrics.jsonl") == events
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["model"] == TINY.to_dict() and config["train"]["steps"] == 30
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert ckpt.summary["test_bits_per_dim"] == pytest.approx(summary["test_bits_per_dim"])
    assert evaluate(ckpt.model, small_data["test"]) == pytest.approx(summary["test_bits_per_dim"], abs=1e-5)
    for key in ("epoch", "elapsed", "images_per_s"):
        assert all(key in e for e in events if e["event"] == "train")


def test_resume_gives_the_same_weights(tmp_path, small_data):
    """N steps in one go equal N/2 steps, a stop, and a resume for the other N/2."""
    full = train(tmp_path / "full", TINY, quick(steps=8), small_data)
    assert full["status"] == "finished"

    stop = threading.Event()

    def stop_at_four(event):
        if event["event"] == "train" and event["step"] == 4:
            stop.set()

    half = train(tmp_path / "split", TINY, quick(steps=8), small_data, callback=stop_at_four, stop=stop)
    assert half["status"] == "stopped" and half["step"] == 4
    assert load_checkpoint(tmp_path / "split").train["step"] == 4
    rest = train(tmp_path / "split", TINY, quick(steps=8), small_data, resume=True)
    assert rest["status"] == "finished"
    a, b = weights(load_checkpoint(tmp_path / "full").model), weights(load_checkpoint(tmp_path / "split").model)
    assert all(torch.equal(a[k], b[k]) for k in a)
    steps = [e["step"] for e in read_events(tmp_path / "split" / "metrics.jsonl") if e["event"] == "train"]
    assert steps == list(range(1, 9))


def test_stop_is_honoured_within_one_step(tmp_path, small_data):
    stop = threading.Event()
    seen = []

    def on_event(event):
        seen.append(event)
        if event["event"] == "train" and event["step"] == 2:
            stop.set()

    summary = train(tmp_path / "run", TINY, quick(steps=50), small_data, callback=on_event, stop=stop)
    assert summary["status"] == "stopped" and summary["step"] == 2
    assert max(e["step"] for e in seen if e["event"] == "train") == 2
    assert load_checkpoint(tmp_path / "run").train["step"] == 2


@pytest.mark.parametrize("loss_every", [None, 4])
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, small_data, loss_every):
    """Read back each step, or every 4 steps (the update after a NaN then happens, and the read-back before
    the next checkpoint finds it): either way the run fails and its last good checkpoint stays."""
    holder = {}

    def poison(event):
        if event["event"] == "checkpoint" and event["step"] == 3:
            model = holder["model"]
            with torch.no_grad():
                model.output_logits.bias.fill_(float("nan"))

    import pixelcnn.training.trainer as train_mod
    original = train_mod.build_model

    def capture(config):
        holder["model"] = original(config)
        return holder["model"]

    train_mod.build_model = capture
    try:
        summary = train(tmp_path / "run", TINY, quick(steps=10, loss_every=loss_every), small_data,
                        callback=poison)
    finally:
        train_mod.build_model = original
    assert summary["status"] == "failed" and "nan" in summary["message"].lower()
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt.train["step"] == 3
    assert all(torch.isfinite(p).all() for p in ckpt.model.parameters())
    assert read_events(tmp_path / "run" / "metrics.jsonl")[-1]["status"] == "failed"


def test_reading_the_loss_back_every_few_steps_changes_nothing(tmp_path, small_data):
    """The deferred read-back an accelerator uses gives the same losses, events and weights as reading each
    step's loss at once: only when the host learns the numbers changes."""
    runs = {}
    for every in (1, 3):
        events = []
        train(tmp_path / f"every-{every}", TINY, quick(steps=8, loss_every=every), small_data, callback=events.append)
        runs[every] = events
    losses = {every: [(e["step"], e["bits_per_dim"]) for e in events if e["event"] == "train"]
              for every, events in runs.items()}
    assert losses[1] == losses[3] and len(losses[1]) == 8
    assert [e["event"] for e in runs[1]] == [e["event"] for e in runs[3]]
    assert all(e["images_per_s"] > 0 for e in runs[3] if e["event"] == "train")
    a, b = (weights(load_checkpoint(tmp_path / f"every-{every}").model) for every in (1, 3))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_the_compiled_step_equals_the_eager_one(small_data):
    """``--compile``: one optimizer step through torch.compile gives the eager step's loss and weights (to
    float32 rounding: the compiler may fuse and reorder the arithmetic)."""
    from pixelcnn.models import build_model
    from pixelcnn.training.step import make_optimizer, train_step
    from pixelcnn.training.evaluate import to_tensor

    batch = to_tensor(small_data["train"][:16])
    results = []
    for compiled in (False, True):
        torch.manual_seed(0)
        model = build_model(TINY)
        optimizer = make_optimizer(model, 1e-3, torch.device("cpu"))
        runner = torch.compile(model) if compiled else model
        loss = train_step(runner, optimizer, batch, 16, torch.device("cpu"), grad_clip=1.0)
        results.append((loss, weights(model)))
    (eager_loss, eager), (compiled_loss, compiled) = results
    assert compiled_loss == pytest.approx(eager_loss, rel=1e-5)
    for name in eager:
        torch.testing.assert_close(compiled[name], eager[name], rtol=1e-4, atol=1e-6)


def test_a_second_start_does_not_overwrite_a_run(tmp_path, small_data):
    train(tmp_path / "run", TINY, quick(steps=2), small_data)
    before = (tmp_path / "run" / "checkpoint.pt").read_bytes()
    with pytest.raises(ConfigError, match="--resume"):
        train(tmp_path / "run", TINY, quick(steps=2), small_data)
    assert (tmp_path / "run" / "checkpoint.pt").read_bytes() == before
    with pytest.raises(ConfigError, match="no checkpoint"):
        train(tmp_path / "other", TINY, quick(steps=2), small_data, resume=True)


def test_training_is_deterministic(tmp_path, small_data):
    train(tmp_path / "a", TINY, quick(steps=3), small_data)
    train(tmp_path / "b", TINY, quick(steps=3), small_data)
    a, b = weights(load_checkpoint(tmp_path / "a").model), weights(load_checkpoint(tmp_path / "b").model)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_config_keeps_stored_settings(tmp_path, small_data):
    train(tmp_path / "run", TINY, quick(steps=2, lr=2e-3, lr_schedule="cosine"), small_data)
    config = resume_config(tmp_path / "run", {"epochs": 3})
    assert (config.lr, config.lr_schedule, config.epochs, config.steps) == (2e-3, "cosine", 3, None)


def test_batch_order_is_a_permutation_per_epoch():
    a, b = batch_order(0, 0, 100), batch_order(0, 1, 100)
    assert sorted(a) == list(range(100)) and not np.array_equal(a, b)
    assert np.array_equal(a, batch_order(0, 0, 100))


def test_cosine_schedule():
    assert learning_rate(1e-3, "cosine", 0, 100) == pytest.approx(1e-3)
    assert learning_rate(1e-3, "cosine", 50, 100) == pytest.approx(5e-4)
    assert learning_rate(1e-3, "cosine", 100, 100) == pytest.approx(0, abs=1e-12)
    assert learning_rate(1e-3, "constant", 70, 100) == 1e-3


@pytest.mark.parametrize("bad", [dict(lr=0), dict(lr=-1), dict(lr=math.nan), dict(batch_size=0), dict(steps=0),
                                 dict(epochs=10**6), dict(grad_clip=-1.0), dict(lr_schedule="step"),
                                 dict(batch_size=2.5)])
def test_train_config_limits(bad):
    with pytest.raises(ConfigError):
        TrainConfig(**bad)


def quick_time(minutes: float, **kw) -> TrainConfig:
    return TrainConfig(**{**dict(minutes=minutes, batch_size=16, val_limit=8, live_samples=0, device="cpu",
                                 lr_schedule="cosine", checkpoint_seconds=1e9), **kw})


def test_a_time_budget_stops_on_time_then_validates_tests_and_saves(tmp_path, small_data):
    run = tmp_path / "run"
    budget = 0.05 * 60
    summary = train(run, PixelCNNConfig(hidden=8, n_blocks=1), quick_time(0.05), small_data)
    events = read_events(run / "metrics.jsonl")
    trains = [e for e in events if e["event"] == "train"]
    assert summary["status"] == "finished" and trains
    assert all(e["elapsed"] < budget for e in trains[:-1])  # every later step began before the budget was up
    assert summary["elapsed"] >= budget
    assert [e["event"] for e in events[-4:]][-3:] == ["test", "checkpoint", "end"]
    assert any(e["event"] == "val" and e["step"] == trains[-1]["step"] for e in events)
    assert load_checkpoint(run).train["step"] == trains[-1]["step"]
    from pixelcnn.training.step import TIME_WARMUP, learning_rate_at

    # Each step's rate is the schedule at the moment it began, a moment after the step before it ended.
    for before, after in zip(trains, trains[1:]):
        if before["elapsed"] / budget > TIME_WARMUP:
            assert after["lr"] <= learning_rate_at(1e-3, "cosine", before["elapsed"] / budget, TIME_WARMUP) + 1e-12


def test_resuming_a_time_budget_continues_its_schedule(tmp_path, small_data):
    run, budget = tmp_path / "run", 0.1 * 60
    stop = threading.Event()

    def stop_a_third_in(event):
        if event["event"] == "train" and event["elapsed"] > budget / 3:
            stop.set()

    first = train(run, PixelCNNConfig(hidden=8, n_blocks=1), quick_time(0.1), small_data, stop=stop,
                  callback=stop_a_third_in)
    assert first["status"] == "stopped" and budget / 3 < first["elapsed"] < budget
    before = [e for e in read_events(run / "metrics.jsonl") if e["event"] == "train"]
    second = train(run, PixelCNNConfig(hidden=8, n_blocks=1), quick_time(0.1), small_data, resume=True)
    assert second["status"] == "finished" and second["elapsed"] >= budget
    events = read_events(run / "metrics.jsonl")
    resumed = [e for e in events if e["event"] == "train"][len(before):]
    assert resumed and resumed[0]["lr"] <= before[-1]["lr"]  # no new warm-up: the schedule goes on
    assert [e["event"] for e in events].count("start") == 2
    with pytest.raises(ConfigError, match="has trained its 0.1 minutes"):
        train(run, PixelCNNConfig(hidden=8, n_blocks=1), quick_time(0.1), small_data, resume=True)


def test_the_time_schedule_warms_up_then_decays_to_zero():
    from pixelcnn.training.step import TIME_WARMUP, learning_rate_at

    assert learning_rate_at(1e-3, "cosine", 0.0, TIME_WARMUP) < 1e-4
    assert learning_rate_at(1e-3, "cosine", TIME_WARMUP, TIME_WARMUP) == pytest.approx(1e-3)
    assert learning_rate_at(1e-3, "cosine", 1.0, TIME_WARMUP) == pytest.approx(0, abs=1e-12)
    assert learning_rate_at(1e-3, "constant", 0.4, TIME_WARMUP) == 1e-3


def test_the_live_preset_brings_its_training_settings_and_a_given_budget_replaces_its_own():
    from pixelcnn.models import PRESETS
    from pixelcnn.training.config import PRESET_TRAINING, preset_train_config

    live = preset_train_config("live")
    assert live.minutes == 5 and live.amp and live.lr_schedule == "cosine"
    assert preset_train_config("paper") == TrainConfig() and preset_train_config(None) == TrainConfig()
    assert set(PRESET_TRAINING) <= set(PRESETS)
    stepped = live.with_budget(steps=6, lr=1e-3)
    assert (stepped.steps, stepped.minutes, stepped.lr, stepped.amp) == (6, None, 1e-3, True)
    assert live.with_budget(batch_size=32).minutes == 5  # no budget given: the preset's stays
    # Table 1's architecture, only narrower: 7x7 type A, 3x3 type B blocks, the pixelcnn kind.
    config = PRESETS["live"]
    assert (config.kind, config.first_kernel, config.block_kernel, config.n_blocks) == ("pixelcnn", 7, 3, 12)


def test_a_new_budget_on_resume_replaces_the_stored_one(tmp_path, small_data):
    train(tmp_path / "run", TINY, quick(steps=2), small_data)
    config = resume_config(tmp_path / "run", {"minutes": 2.0})
    assert (config.steps, config.epochs, config.minutes) == (None, None, 2.0)


def test_bf16_autocast_trains_on_a_cpu_that_has_it_and_falls_back_where_not(monkeypatch):
    from pixelcnn import runtime
    from pixelcnn.models import build_model
    from pixelcnn.training.step import make_optimizer, train_step

    cpu = torch.device("cpu")
    for fast in (True, False):
        monkeypatch.setattr(runtime, "bf16_is_fast", lambda device, fast=fast: fast)
        with runtime.autocast(cpu, amp=True):
            assert torch.is_autocast_enabled("cpu") == fast
    with runtime.autocast(cpu, amp=False):
        assert not torch.is_autocast_enabled("cpu")
    monkeypatch.setattr(runtime, "bf16_is_fast", lambda device: True)  # bf16 on any CPU: slow, still correct
    torch.manual_seed(0)
    model = build_model(TINY)
    optimizer = make_optimizer(model, 3e-3, cpu)
    batch = torch.randint(0, 4, (8, 3, 28, 28), dtype=torch.uint8)
    first = train_step(model, optimizer, batch, 4, cpu, amp=True)
    for _ in range(5):
        last = train_step(model, optimizer, batch, 4, cpu, amp=True)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # weights stay float32
    assert math.isfinite(first) and last < first
    assert evaluate(model, batch) == pytest.approx(last, abs=0.05)  # float32 evaluation agrees


def test_a_short_time_budget_saves_often_so_a_kill_costs_seconds(tmp_path, small_data, monkeypatch):
    """Review finding: a `live` run killed in its first two minutes always resumed from step 0 (it saved
    every 120 s). A time budget now saves every twentieth of it (here the floor, lowered for the test)."""
    import pixelcnn.training.trainer as engine

    monkeypatch.setattr(engine, "MIN_SAVE_SECONDS", 0.5)
    run = tmp_path / "run"
    config = quick_time(0.1).with_budget(minutes=0.1, checkpoint_seconds=600.0)
    train(run, PixelCNNConfig(hidden=8, n_blocks=1), config, small_data)
    saves = [e for e in read_events(run / "metrics.jsonl") if e["event"] == "checkpoint" and e["step"] > 0]
    assert len(saves) >= 5, saves  # about one every 0.5 s of a 6 s run, besides the final one


def test_a_time_budget_draws_live_samples_by_the_clock_too(tmp_path, small_data):
    """Lecture finding: on a busy CPU a five-minute run validated (and drew its live samples) only at the
    very end. A time budget now draws them at least six times, validations or not."""
    from pixelcnn.store.data import synthetic_colored_mnist

    run = tmp_path / "run"
    # more steps to an epoch (4,096) than the run takes, even idle (about 1,500 here): no validation
    data = synthetic_colored_mnist(65536, 16, 16)
    train(run, PixelCNNConfig(hidden=8, n_blocks=1), quick_time(0.1, live_samples=4), data)
    events = read_events(run / "metrics.jsonl")
    drawn = [e for e in events if e["event"] == "samples"]
    assert len(drawn) >= 5 and len([e for e in events if e["event"] == "val"]) <= 2, [e["event"] for e in events]
    assert all((run / e["file"]).is_file() for e in drawn)
