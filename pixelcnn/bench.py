"""Benchmarks: ``python -m pixelcnn.bench {train,sample,receptive,all}``.

Each measurement runs in a fresh subprocess, so allocator and thread state
cannot leak from one to the next, and the ratios printed are measured side
by side in one run on this machine.

- train: training images/s per preset, our trainer against a straightforward
  reference (dense masked kernels multiplied by their mask in every forward,
  NCHW, default Adam, default allocator).
- sample: 100 samples from ``paper`` with the cached sampler against the naive
  one; the naive time is measured over the first rows and scaled to 28 rows.
  Also the peak resident memory of the cached sampling process.
- receptive: one gradient receptive-field recompute for ``paper``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch

from .model import PRESETS, PixelCNN
from .reference import ReferencePixelCNN


def _time_training(preset: str, impl: str, batch: int, steps: int) -> float:
    from .runtime import micro_batch_size, prepare_cpu
    from .train import make_optimizer, train_step

    torch.manual_seed(0)
    config = PRESETS[preset]
    x = torch.randint(0, config.levels, (batch, config.channels, config.image_size, config.image_size),
                      dtype=torch.uint8)
    device = torch.device("cpu")
    if impl == "ours":
        prepare_cpu()
        model = PixelCNN(config)
        optimizer = make_optimizer(model, 1e-3, device)
        micro = micro_batch_size(batch, config.hidden, config.image_size)
    else:
        model = ReferencePixelCNN(config)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        micro = batch
    train_step(model, optimizer, x, micro, device)  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        train_step(model, optimizer, x, micro, device)
    return batch * steps / (time.perf_counter() - start)


def _time_sampling(method: str, rows: int, n: int) -> dict:
    import resource

    from .receptive import random_model
    from .runtime import prepare_cpu
    from .sampling import CachedPixelCNN, _draw

    prepare_cpu()
    model = random_model(PRESETS["paper"], seed=0)
    size = model.config.image_size
    x = torch.zeros(n, 3, size, size, dtype=torch.long)
    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    with torch.inference_mode():
        cache = CachedPixelCNN(model, n) if method == "cached" else None
        for r in range(rows):
            for c in range(size):
                logits = cache.step(r, c) if cache else model(x)[:, :, :, r, c]
                values = _draw(logits, 1.0, torch.rand(n, 3, generator=generator, dtype=torch.float64))
                x[:, :, r, c] = values
                if cache:
                    cache.write(r, c, values)
    seconds = (time.perf_counter() - start) * size / rows
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mb": peak_mb}


def _time_receptive(repeats: int) -> float:
    import numpy as np

    from .receptive import gradient_field, random_model

    model = random_model(PRESETS["paper"], seed=0)
    image = np.random.default_rng(0).integers(0, 4, (28, 28, 3))
    gradient_field(model, image, 14, 14, 0)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        gradient_field(model, image, 14, 14, 0)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _child(spec: dict) -> object:
    """Run one measurement in a fresh interpreter and return its JSON result."""
    out = subprocess.run([sys.executable, "-m", "pixelcnn.bench", "_child", json.dumps(spec)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_train(presets: list[str], batch: int, steps: int) -> None:
    print(f"training throughput, batch {batch}, {steps} timed steps after one warm-up, "
          f"{torch.get_num_threads()} threads")
    print(f"{'preset':<8} {'reference img/s':>16} {'ours img/s':>11} {'ratio':>6}")
    for preset in presets:
        ref = _child({"kind": "train", "preset": preset, "impl": "reference", "batch": batch, "steps": steps})
        ours = _child({"kind": "train", "preset": preset, "impl": "ours", "batch": batch, "steps": steps})
        print(f"{preset:<8} {ref:>16.1f} {ours:>11.1f} {ours / ref:>5.2f}x", flush=True)


def bench_sample(naive_rows: int, n: int) -> None:
    cached = _child({"kind": "sample", "method": "cached", "rows": 28, "n": n})
    naive = _child({"kind": "sample", "method": "naive", "rows": naive_rows, "n": n})
    print(f"sampling {n} images from paper (random weights)")
    print(f"cached: {cached['seconds']:.2f} s (peak resident memory {cached['peak_mb']:.0f} MB)")
    print(f"naive:  {naive['seconds']:.1f} s (measured over the first {naive_rows} rows, scaled to 28)")
    print(f"speed-up: {naive['seconds'] / cached['seconds']:.0f}x", flush=True)


def bench_receptive(repeats: int) -> None:
    seconds = _child({"kind": "receptive", "repeats": repeats})
    print(f"receptive field recompute (paper, one image): {seconds * 1000:.0f} ms (median of {repeats})", flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_child"]:
        spec = json.loads(argv[1])
        if spec["kind"] == "train":
            result = _time_training(spec["preset"], spec["impl"], spec["batch"], spec["steps"])
        elif spec["kind"] == "sample":
            result = _time_sampling(spec["method"], spec["rows"], spec["n"])
        else:
            result = _time_receptive(spec["repeats"])
        print(json.dumps(result))
        return 0
    parser = argparse.ArgumentParser(prog="python -m pixelcnn.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["train", "sample", "receptive", "all"])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--naive-rows", type=int, default=2)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    if args.what in ("train", "all"):
        bench_train(args.presets, args.batch_size, args.steps)
    if args.what in ("sample", "all"):
        bench_sample(args.naive_rows, args.n)
    if args.what in ("receptive", "all"):
        bench_receptive(args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
