"""Benchmarks: ``python -m pixelcnn.bench {train,sample,receptive,codec,...,all}``.

Each measurement runs in a fresh subprocess, so allocator and thread state
cannot leak from one to the next, and the ratios printed are measured side
by side in one run on this machine.

- train: training images/s per preset, our trainer against a straightforward
  reference (dense masked kernels multiplied by their mask in every forward,
  NCHW, default Adam), both under the same process settings and
  micro-batches, in float32 and, where the CPU has fast bfloat16, both under
  bfloat16 autocast; the settings' own gain on the reference; our achieved
  GFLOP/s beside the best convolution throughput measured in the same run,
  in each precision.
- sample: 100 samples from ``paper`` with the cached sampler against the naive
  one; the naive time is measured over the first rows and scaled to 28 rows.
  Also the peak resident memory of the cached sampling process.
- receptive: one gradient receptive-field recompute for ``paper``.
- codec: compressing and decompressing 1 and 100 images against drawing as
  many samples with the cached sampler (``paper`` and ``live``; the ratios).
- kinds: ``paper``, ``rgb`` and ``gated`` (about the same parameter count)
  side by side: training images/s, 100 cached samples, one receptive field.
- device: our trainer's images/s and seconds per epoch (55,000 images) for each
  preset on whatever device is picked (CUDA, then MPS, then CPU).
- scaling: images/s of N data-parallel processes (torchrun) against one
  process with the same threads per process, and the scaling efficiency.
- learning: short CPU training runs of several configs and seeds on the real
  data (validation bits/dim every quarter of the run, seconds per step), to
  compare kinds at equal parameters and equal compute (the gated question).
- runs: the Models table (every run listed and summarised) with 2,000 run
  folders (``--folders``): the first rerun of a server, which reads every
  folder, against the next ones, which only compare each folder's stamp.
- load: the dashboard's interactive engine calls (100 samples, a receptive
  field, bits/dim of 256 images; ``paper``) on an idle CPU and under a
  lecture's load (a ``live`` training run, the Train page's default, started as
  the dashboard starts one, plus two busy normal-priority processes), with one intra-op thread
  (the dashboard's and the CLI's policy for interactive work) and with two.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from .models import PRESETS, build_model
from .models.reference import ReferencePixelCNN


def _time_training(preset: str, impl: str, batch: int, steps: int, settings: bool = True,
                   amp: bool = False) -> float:
    """Training images/s of ``impl`` (ours or the dense reference). With ``settings``, the process settings
    (allocator, denormal flush) and the micro-batches our trainer uses; without, PyTorch's defaults and
    whole batches (the reference as a straightforward script would run it). ``amp``: bfloat16 autocast
    where it is fast (see :func:`~pixelcnn.runtime.bf16_is_fast`), as ``train --amp`` runs it."""
    from .runtime import micro_batch_size, prepare_cpu
    from .training.speed import random_images, timed_steps
    from .training.step import make_optimizer

    torch.manual_seed(0)
    config = PRESETS[preset]
    x = random_images(config, batch)
    device = torch.device("cpu")
    if settings:
        prepare_cpu()
    micro = micro_batch_size(batch, config.hidden, config.image_size) if settings else batch
    if impl == "ours":
        model = build_model(config)
        optimizer = make_optimizer(model, 1e-3, device)
    else:
        model = ReferencePixelCNN(config)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return batch * steps / timed_steps(model, optimizer, x, micro, device, steps, amp=amp)


def training_flops_per_image(preset: str) -> float:
    """Useful floating-point operations of one training image: 2 per multiply-add of every live kernel tap
    at every position, times 3 for forward and backward."""
    from .models import MaskedConv2d

    config = PRESETS[preset]
    model = build_model(config)
    taps = sum(m.live_weights() if isinstance(m, MaskedConv2d) else m.weight.numel()
               for m in model.modules() if isinstance(m, (MaskedConv2d, torch.nn.Conv2d)))
    return 2.0 * 3.0 * taps * config.image_size ** 2


def _time_conv_peak(amp: bool = False, repeats: int = 5) -> float:
    """GFLOP/s of a large 3x3 convolution's forward and backward (128 channels, 64 images of 28x28,
    channels-last), in float32 or, with ``amp``, under the same bfloat16 autocast as training: the best
    this machine does with the kind of operation training is made of."""
    from .runtime import autocast, prepare_cpu

    prepare_cpu()
    x = torch.randn(64, 128, 28, 28).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    conv = torch.nn.Conv2d(128, 128, 3, padding=1).to(memory_format=torch.channels_last)
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        with autocast(torch.device("cpu"), amp):
            y = conv(x)
        y.float().sum().backward()
        times.append(time.perf_counter() - start)
    flops = 2.0 * 3.0 * 128 * 128 * 9 * 28 * 28 * 64
    return flops / min(times[1:]) / 1e9


def _time_sampling(method: str, rows: int, n: int) -> dict:
    import resource

    from .models import kind_of, random_model
    from .runtime import prepare_cpu
    from .sampling import draw_levels

    prepare_cpu()
    model = random_model(PRESETS["paper"], seed=0)
    size = model.config.image_size
    x = torch.zeros(n, 3, size, size, dtype=torch.long)
    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    with torch.inference_mode():
        cache = kind_of(model.config).cache(model, n) if method == "cached" else None
        for r in range(rows):
            for c in range(size):
                logits = cache.step(r, c) if cache else model(x)[:, :, :, r, c]
                values = draw_levels(logits, 1.0, torch.rand(n, 3, generator=generator, dtype=torch.float64))
                x[:, :, r, c] = values
                if cache:
                    cache.write(r, c, values)
    seconds = (time.perf_counter() - start) * size / rows
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mb": peak_mb}


def _time_sample_call(preset: str, n: int) -> float:
    """Seconds for ``sample(n)`` (cached) from the preset's random weights."""
    from .models import random_model
    from .runtime import prepare_cpu
    from .sampling import sample

    prepare_cpu(interactive=True)  # as the dashboard and the CLI's sample command run it
    model = random_model(PRESETS[preset], seed=0)
    sample(model, 2)
    start = time.perf_counter()
    sample(model, n)
    return time.perf_counter() - start


def _time_receptive(repeats: int, preset: str = "paper") -> float:
    import numpy as np

    from .explain.receptive import gradient_field
    from .models import random_model
    from .runtime import prepare_cpu

    prepare_cpu(interactive=True)
    model = random_model(PRESETS[preset], seed=0)
    image = np.random.default_rng(0).integers(0, 4, (28, 28, 3))
    gradient_field(model, image, 14, 14, 0)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        gradient_field(model, image, 14, 14, 0)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


INTERACTIVE_CALLS = {"samples": "100 samples (paper, cached)", "field": "receptive field (paper)",
                     "evaluate": "bits/dim of 256 images (paper)"}


def _time_interactive(call: str, threads: int) -> float:
    """Seconds for one interactive engine call with ``threads`` intra-op threads (after a warm-up)."""
    import numpy as np

    from . import sampling
    from .explain.receptive import gradient_field
    from .models import random_model
    from .runtime import prepare_cpu
    from .training.evaluate import evaluate

    prepare_cpu()
    torch.set_num_threads(threads)
    sampling.INTERACTIVE_THREADS = threads  # the sampler's own choice, overridden for the comparison
    model = random_model(PRESETS["paper"], seed=0)
    images = np.random.default_rng(0).integers(0, 4, (256, 28, 28, 3)).astype(np.uint8)
    calls = {"samples": lambda: sampling.sample(model, 100),
             "field": lambda: gradient_field(model, images[:4], 14, 14, 0),
             "evaluate": lambda: evaluate(model, images)}
    if call == "samples":
        sampling.sample(model, 2)
    else:
        calls[call]()
    times = []
    for _ in range(1 if call == "samples" else 3):
        start = time.perf_counter()
        calls[call]()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _time_device(preset: str, batch: int, steps: int) -> dict:
    from .runtime import micro_batch_size, pick_device, prepare_cpu
    from .training.speed import random_images, timed_steps
    from .training.step import make_optimizer

    prepare_cpu()
    device = pick_device("auto")
    torch.manual_seed(0)
    config = PRESETS[preset]
    model = build_model(config).to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, 1e-3, device)
    micro = batch if device.type == "cuda" else micro_batch_size(batch, config.hidden, config.image_size)
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    ips = batch * steps / timed_steps(model, optimizer, random_images(config, batch), micro, device, steps,
                                      amp=True, sync=sync)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    return {"device": name, "images_per_s": ips}


def _time_data_parallel(preset: str, batch: int, steps: int) -> float | None:
    """Run under torchrun: global images/s of this group (printed by rank 0)."""
    from torch.nn.parallel import DistributedDataParallel

    from .training import distributed
    from .runtime import micro_batch_size, prepare_cpu
    from .training.speed import random_images, timed_steps
    from .training.step import make_optimizer

    prepare_cpu()
    world, device = distributed.setup("auto")
    torch.manual_seed(0)
    config = PRESETS[preset]
    model = build_model(config).to(device)
    wrapped = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) \
        if world.active else model
    optimizer = make_optimizer(model, 1e-3, device)
    local = distributed.local_batch_size(batch, world)
    micro = micro_batch_size(local, config.hidden, config.image_size)
    average = (lambda v: distributed.mean_and_any(v, False, world)[0]) if world.active else (lambda v: v)
    seconds = timed_steps(wrapped, optimizer, random_images(config, local), micro, device, steps,
                          average=average, sync=lambda: distributed.barrier(world))
    distributed.teardown(world)
    return batch * steps / seconds if world.is_main else None


def _child(spec: dict) -> object:
    """Run one measurement in a fresh interpreter and return its JSON result."""
    out = subprocess.run([sys.executable, "-m", "pixelcnn.bench", "_child", json.dumps(spec)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_train(presets: list[str], batch: int, steps: int) -> None:
    """Our trainer against the reference, every column under the same process settings and micro-batches.
    "ours" is what ``train`` runs: float32, then with ``--amp`` (bfloat16 autocast) where the CPU has fast
    bfloat16; the reference is also measured under that autocast, so its share of the gain is visible."""
    from .runtime import bf16_is_fast

    amp = bf16_is_fast(torch.device("cpu"))
    print(f"training throughput, batch {batch}, {steps} timed steps after one warm-up, {torch.get_num_threads()} "
          f"threads; every column with the same process settings (allocator, denormal flush) and micro-batches; "
          f"bfloat16 autocast {'fast here (AVX-512 BF16 / AMX)' if amp else 'not fast here: bf16 columns skipped'}")
    print(f"{'preset':<8} {'reference img/s':>16} {'ours fp32':>10} {'ratio':>6} {'ref bf16':>9} {'ours bf16':>10} "
          f"{'ratio':>6} {'ours/ref fp32':>14} {'GFLOP/s fp32':>13} {'GFLOP/s bf16':>13}")
    gains = {}
    for preset in presets:
        spec = {"kind": "train", "preset": preset, "batch": batch, "steps": steps}
        plain = _child({**spec, "impl": "reference", "settings": False})
        ref = _child({**spec, "impl": "reference"})
        ours = _child({**spec, "impl": "ours"})
        ref_bf16 = _child({**spec, "impl": "reference", "amp": True}) if amp else float("nan")
        ours_bf16 = _child({**spec, "impl": "ours", "amp": True}) if amp else float("nan")
        gains[preset] = ref / plain
        flops = training_flops_per_image(preset) / 1e9
        print(f"{preset:<8} {ref:>16.1f} {ours:>10.1f} {ours / ref:>5.2f}x {ref_bf16:>9.1f} {ours_bf16:>10.1f} "
              f"{ours_bf16 / ref_bf16:>5.2f}x {max(ours, ours_bf16) / ref:>13.2f}x {flops * ours:>13.1f} "
              f"{flops * ours_bf16:>13.1f}", flush=True)
    print("ours/ref fp32: our trainer as `train` runs it (bf16 where fast) against the float32 reference")
    print("the process settings alone (the reference with them / with PyTorch's defaults and whole batches): "
          + ", ".join(f"{preset} {gain:.2f}x" for preset, gain in gains.items()))
    peak = _child({"kind": "conv_peak"})
    line = f"best convolution throughput measured here: {peak:.1f} GFLOP/s in float32"
    if amp:
        line += f", {_child({'kind': 'conv_peak', 'amp': True}):.1f} GFLOP/s in bfloat16"
    print(line + " (3x3, 128 channels, 64 images of 28x28, forward and backward)", flush=True)


def bench_sample(naive_rows: int, n: int) -> None:
    cached = _child({"kind": "sample", "method": "cached", "rows": 28, "n": n})
    naive = _child({"kind": "sample", "method": "naive", "rows": naive_rows, "n": n})
    print(f"sampling {n} images from paper (random weights)")
    print(f"cached: {cached['seconds']:.2f} s (peak resident memory {cached['peak_mb']:.0f} MB)")
    print(f"naive:  {naive['seconds']:.1f} s (measured over the first {naive_rows} rows, scaled to 28)")
    print(f"speed-up: {naive['seconds'] / cached['seconds']:.0f}x", flush=True)


def bench_kinds(batch: int, steps: int, n: int, repeats: int) -> None:
    from .models import count_parameters

    print(f"the three kinds at about the same size: training (batch {batch}, {steps} timed steps), "
          f"{n} cached samples, one receptive field")
    print(f"{'preset':<7} {'parameters':>10} {'train img/s':>12} {'sample s':>9} {'field ms':>9}")
    base = None
    for preset in ("paper", "rgb", "gated"):
        ips = _child({"kind": "train", "preset": preset, "impl": "ours", "batch": batch, "steps": steps})
        seconds = _child({"kind": "sample_call", "preset": preset, "n": n})
        field = _child({"kind": "receptive", "repeats": repeats, "preset": preset})
        base = base or (ips, seconds, field)
        params = count_parameters(build_model(PRESETS[preset]))
        row = f"{preset:<7} {params:>10,} {ips:>12.1f} {seconds:>9.2f} {field * 1000:>9.0f}"
        if preset != "paper":
            row += (f"  training {base[0] / ips:.2f}x the time, sampling {seconds / base[1]:.2f}x, "
                    f"field {field / base[2]:.2f}x")
        print(row, flush=True)


def bench_device(presets: list[str], batch: int, steps: int) -> None:
    print(f"training on the default device, batch {batch}, {steps} timed steps after one warm-up")
    print(f"{'preset':<8} {'device':<28} {'img/s':>8} {'s/epoch':>8}")
    for preset in presets:
        result = _child({"kind": "device", "preset": preset, "batch": batch, "steps": steps})
        ips = result["images_per_s"]
        print(f"{preset:<8} {result['device']:<28} {ips:>8.1f} {55_000 / ips:>8.0f}", flush=True)


def bench_scaling(preset: str, nproc: int, batch: int, steps: int) -> None:
    import os

    threads = max(1, (os.cpu_count() or 1) // nproc) if not torch.cuda.is_available() else 1
    results = {}
    for n in (1, nproc):
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        spec = json.dumps({"kind": "ddp", "preset": preset, "batch": batch, "steps": steps})
        out = subprocess.run([sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={n}",
                              "--master_port=0" if n == 1 else "--standalone", "-m", "pixelcnn.bench",
                              "_child", spec], capture_output=True, text=True, env=env, check=True)
        results[n] = json.loads(out.stdout.strip().splitlines()[-1])
    single, many = results[1], results[nproc]
    print(f"data-parallel scaling, {preset}, global batch {batch}, {threads} thread(s) per process")
    print(f"1 process: {single:.1f} img/s; {nproc} processes: {many:.1f} img/s; "
          f"efficiency {many / (nproc * single):.0%}", flush=True)


def bench_load(busy: int) -> None:
    from .contention import busy_processes, training_load

    cases = [(call, threads) for call in INTERACTIVE_CALLS for threads in (1, 2)]
    idle = {case: _child({"kind": "interactive", "call": case[0], "threads": case[1]}) for case in cases}
    with training_load("live"), busy_processes(busy):
        loaded = {case: _child({"kind": "interactive", "call": case[0], "threads": case[1]}) for case in cases}
    print(f"interactive calls on an idle CPU and under load (a live run training as the dashboard starts "
          f"one, plus {busy} busy processes), {os.cpu_count()} cores")
    print(f"{'call':<32} {'threads':>7} {'idle s':>7} {'loaded s':>9} {'loaded/idle':>12}")
    for call, threads in cases:
        a, b = idle[(call, threads)], loaded[(call, threads)]
        policy = " (ours)" if threads == 1 else ""
        print(f"{INTERACTIVE_CALLS[call]:<32} {threads:>7} {a:>7.2f} {b:>9.2f} {b / a:>11.1f}x{policy}", flush=True)


LEARNING_CONFIGS = {
    "pixelcnn h64 x6": {"hidden": 64, "n_blocks": 6},
    "gated p21 x6": {"kind": "gated", "hidden": 21, "n_blocks": 6},
    "gated p28 x3": {"kind": "gated", "hidden": 28, "n_blocks": 3},
    "gated p32 x6": {"kind": "gated", "hidden": 32, "n_blocks": 6},
}


def _learning_run(model: dict, seed: int, steps: int, batch: int, train_limit: int) -> dict:
    """Train one config from scratch on real data into a temporary folder; its validation curve."""
    import tempfile

    from .store.data import load_data
    from .models import PixelCNNConfig, count_parameters
    from .runtime import prepare_cpu
    from .training.config import TrainConfig
    from .training.trainer import train

    prepare_cpu()
    config = PixelCNNConfig(**model)
    data = load_data()
    train_config = TrainConfig(steps=steps, batch_size=batch, eval_every=max(1, steps // 4), val_limit=1000,
                               train_limit=train_limit, live_samples=0, seed=seed, device="cpu")
    with tempfile.TemporaryDirectory() as folder:
        summary = train(Path(folder) / "run", config, train_config, data)
        events = [json.loads(line) for line in (Path(folder) / "run" / "metrics.jsonl").read_text().splitlines()]
    vals = [(e["step"], e["bits_per_dim"]) for e in events if e["event"] == "val"]
    step_seconds = [batch / e["images_per_s"] for e in events if e["event"] == "train"]
    return {"parameters": count_parameters(build_model(config)), "vals": vals,
            "seconds_per_step": statistics.median(step_seconds), "status": summary["status"]}


def bench_learning(names: list[str], seeds: list[int], steps: int, batch: int, train_limit: int) -> None:
    print(f"learning curves on the CPU: {steps} steps of batch {batch} on the first {train_limit} training "
          f"images, validation bits/dim (1,000 images) every {max(1, steps // 4)} steps, seeds {seeds}")
    rows = {}
    for name in names:
        runs = [_child({"kind": "learning", "model": LEARNING_CONFIGS[name], "seed": seed, "steps": steps,
                        "batch": batch, "train_limit": train_limit}) for seed in seeds]
        rows[name] = runs
        checkpoints = [step for step, _ in runs[0]["vals"]]
        means = [statistics.mean(run["vals"][i][1] for run in runs) for i in range(len(checkpoints))]
        spread = max(abs(run["vals"][-1][1] - means[-1]) for run in runs)
        curve = "  ".join(f"{step}: {value:.4f}" for step, value in zip(checkpoints, means))
        print(f"{name:<16} {runs[0]['parameters']:>8,} params  {statistics.mean(r['seconds_per_step'] for r in runs):.3f}"
              f" s/step  val {curve}  (final +/- {spread:.4f})", flush=True)


def _time_codec(preset: str, n: int, repeats: int) -> dict:
    """Median seconds to draw ``n`` samples (cached), compress them and decompress them, one after the other,
    from the preset's random weights, under the interactive commands' process settings."""
    from .explain.codec import compress, decompress
    from .models import random_model
    from .runtime import prepare_cpu
    from .sampling import sample

    prepare_cpu(interactive=True)
    model = random_model(PRESETS[preset], seed=0)
    times: dict[str, list[float]] = {"sample": [], "compress": [], "decompress": []}
    for repeat in range(repeats):
        start = time.perf_counter()
        images = sample(model, n, seed=repeat)
        times["sample"].append(time.perf_counter() - start)
        start = time.perf_counter()
        data = compress(model, images).data
        times["compress"].append(time.perf_counter() - start)
        start = time.perf_counter()
        decompress(model, data)
        times["decompress"].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def bench_codec(presets: list[str], repeats: int) -> None:
    """Compress and decompress against drawing the same number of samples, measured side by side."""
    print(f"{'preset':<9}{'images':>7}{'sample s':>10}{'compress s':>12}{'ratio':>7}{'decompress s':>14}{'ratio':>7}"
          f"{'images/s (compress)':>21}", flush=True)
    for preset in presets:
        for n in (1, 100):
            t = _child({"kind": "codec", "preset": preset, "n": n, "repeats": repeats})
            print(f"{preset:<9}{n:>7}{t['sample']:>10.2f}{t['compress']:>12.2f}{t['compress'] / t['sample']:>6.2f}x"
                  f"{t['decompress']:>14.2f}{t['decompress'] / t['sample']:>6.2f}x{n / t['compress']:>21.1f}",
                  flush=True)


def bench_receptive(repeats: int) -> None:
    seconds = _child({"kind": "receptive", "repeats": repeats})
    print(f"receptive field recompute (paper, one image): {seconds * 1000:.0f} ms (median of {repeats})", flush=True)


def _many_run_folders(root: Path, folders: int) -> None:
    """``folders`` finished runs of the tiny preset (one real checkpoint, hard-linked), as a lecture's
    ``runs/`` may hold after a term."""
    from .store.checkpoint import save_checkpoint
    from .models import build_model

    seed = root / "seed"
    seed.mkdir()
    save_checkpoint(seed / "checkpoint.pt", build_model(PRESETS["tiny"]))
    config = json.dumps({"model": PRESETS["tiny"].to_dict(), "train": {"steps": 20}, "steps_per_epoch": 430})
    events = "".join(json.dumps(e) + "\n" for e in (
        [{"event": "start", "step": 0, "total_steps": 20, "steps_per_epoch": 430}]
        + [{"event": "train", "step": s, "bits_per_dim": 2.0 - s / 20, "elapsed": s} for s in range(1, 21)]
        + [{"event": "val", "step": 20, "bits_per_dim": 1.1}, {"event": "test", "step": 20, "bits_per_dim": 1.1},
           {"event": "end", "status": "finished", "step": 20, "elapsed": 20.0}]))
    for i in range(folders):
        run = root / f"run-{i:05d}"
        run.mkdir()
        (run / "config.json").write_text(config)
        (run / "metrics.jsonl").write_text(events)
        os.link(seed / "checkpoint.pt", run / "checkpoint.pt")


def bench_runs(folders: int) -> None:
    """What the Models table costs per rerun with ``folders`` run folders: the first rerun of a server
    (every folder read) against the next ones (only the folders' stamps), side by side with no runs."""
    import tempfile

    from .serve.run_table import run_row
    from .serve.runs import list_runs

    def table() -> float:
        start = time.perf_counter()
        [run_row(info) for info in list_runs()]
        return time.perf_counter() - start

    before = os.environ.get("PIXELCNN_RUNS_DIR")
    with tempfile.TemporaryDirectory() as empty, tempfile.TemporaryDirectory() as many:
        try:
            os.environ["PIXELCNN_RUNS_DIR"] = empty
            table()
            none = min(table() for _ in range(3))
            _many_run_folders(Path(many), folders)
            os.environ["PIXELCNN_RUNS_DIR"] = many
            first = table()
            again = min(table() for _ in range(3))
        finally:
            os.environ.pop("PIXELCNN_RUNS_DIR") if before is None else os.environ.update(PIXELCNN_RUNS_DIR=before)
    print(f"Models table with {folders:,} run folders: first rerun {first:.2f} s, later reruns {again:.3f} s "
          f"({first / again:.0f}x less); with no runs {none:.3f} s, so the folders add {again - none:.3f} s a rerun",
          flush=True)


def main(argv: list[str] | None = None) -> int:  # long: the one parser of every benchmark and its options
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_child"]:
        spec = json.loads(argv[1])
        if spec["kind"] == "train":
            result = _time_training(spec["preset"], spec["impl"], spec["batch"], spec["steps"],
                                    spec.get("settings", True), spec.get("amp", False))
        elif spec["kind"] == "conv_peak":
            result = _time_conv_peak(spec.get("amp", False))
        elif spec["kind"] == "sample":
            result = _time_sampling(spec["method"], spec["rows"], spec["n"])
        elif spec["kind"] == "device":
            result = _time_device(spec["preset"], spec["batch"], spec["steps"])
        elif spec["kind"] == "ddp":
            result = _time_data_parallel(spec["preset"], spec["batch"], spec["steps"])
        elif spec["kind"] == "sample_call":
            result = _time_sample_call(spec["preset"], spec["n"])
        elif spec["kind"] == "interactive":
            result = _time_interactive(spec["call"], spec["threads"])
        elif spec["kind"] == "codec":
            result = _time_codec(spec["preset"], spec["n"], spec["repeats"])
        elif spec["kind"] == "learning":
            result = _learning_run(spec["model"], spec["seed"], spec["steps"], spec["batch"], spec["train_limit"])
        else:
            result = _time_receptive(spec["repeats"], spec.get("preset", "paper"))
        if result is not None:  # under torchrun only rank 0 has a result to report
            print(json.dumps(result), flush=True)
        return 0
    parser = argparse.ArgumentParser(prog="python -m pixelcnn.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["train", "sample", "receptive", "kinds", "device", "scaling", "load", "learning",
                                         "codec", "runs", "all"])
    parser.add_argument("--nproc", type=int, default=2, help="processes for the scaling benchmark")
    parser.add_argument("--preset", default="tiny", choices=list(PRESETS), help="preset for the scaling benchmark")
    parser.add_argument("--presets", nargs="+", choices=list(PRESETS),
                        help="presets for train (default: the pixelcnn ones) and device (default: all)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--naive-rows", type=int, default=2)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--busy", type=int, default=2, help="busy processes beside the training run (load)")
    parser.add_argument("--configs", nargs="+", choices=list(LEARNING_CONFIGS), default=list(LEARNING_CONFIGS),
                        help="configs for the learning benchmark")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1], help="seeds for the learning benchmark")
    parser.add_argument("--train-limit", type=int, default=20_000, help="training images (learning)")
    parser.add_argument("--folders", type=int, default=2000, help="run folders for the runs benchmark")
    args = parser.parse_args(argv)
    if args.what in ("train", "all"):
        bench_train(args.presets or [p for p in PRESETS if PRESETS[p].kind == "pixelcnn"], args.batch_size,
                    args.steps)
    if args.what in ("sample", "all"):
        bench_sample(args.naive_rows, args.n)
    if args.what in ("receptive", "all"):
        bench_receptive(args.repeats)
    if args.what in ("kinds", "all"):
        bench_kinds(args.batch_size, args.steps, args.n, args.repeats)
    if args.what == "device":
        bench_device(args.presets or list(PRESETS), args.batch_size, args.steps)
    if args.what == "scaling":
        bench_scaling(args.preset, args.nproc, args.batch_size, args.steps)
    if args.what in ("load", "all"):
        bench_load(args.busy)
    if args.what in ("codec", "all"):
        bench_codec(args.presets or ["paper", "live"], min(args.repeats, 3))
    if args.what in ("runs", "all"):
        bench_runs(args.folders)
    if args.what == "learning":
        bench_learning(args.configs, args.seeds, args.steps, args.batch_size, args.train_limit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
