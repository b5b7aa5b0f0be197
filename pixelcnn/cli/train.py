"""Data, train, evaluate, posterior, classifier: the training side of the command line."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..explain.digits import CLASSIFIER_PATH, build_classifier
from ..explain.posterior import generative_reading
from ..models import KINDS, PRESETS, PixelCNNConfig, get_preset
from ..options import add_options, flag_of, given_options
from ..runtime import pick_device
from ..store.checkpoint import check_trainable
from ..store.data import cache_path, load_data, load_labels, resolve_data_dir
from ..store.metrics import METRICS_NAME, read_events
from ..store.rundir import claim_job
from ..training.config import PRESET_TRAINING, TrainConfig, preset_train_config, read_config_file, resume_config
from ..training.evaluate import evaluate
from ..training.state import check_run_dir, stored_model_config
from ..training.trainer import train
from .args import Parser, add_data_args, int_in, load_servable, positive_int, progress_printer, split_labels
from .outputs import check_output_path
from .progress import ProgressBar, TrainingProgress

FMT = argparse.RawDescriptionHelpFormatter




def _settings_text(settings: dict[str, Any]) -> str:
    """Training settings as their flags: ``--minutes 5 --batch-size 64 --amp``."""
    from dataclasses import fields

    by_name = {f.name: f for f in fields(TrainConfig)}
    return " ".join(flag_of(by_name[name]) + ("" if value is True else f" {value:g}" if isinstance(value, float)
                                              else f" {value}") for name, value in settings.items())


MODEL_OPTIONS = ("kind", "hidden", "n_blocks", "first_kernel", "block_kernel", "classes", "norm", "dropout")


def train_configs(args: argparse.Namespace) -> tuple[Any, Any]:
    """The model and training settings a parsed ``train`` command asks for: preset or ``--config``, then the
    options given; with ``--resume``, the run's stored budget extended by those given."""
    from dataclasses import fields

    model_config, config = get_preset(args.preset or "paper"), preset_train_config(args.preset)
    if args.config:
        model_config, config = read_config_file(args.config)
    model_config = replace(model_config, **given_options(args, PixelCNNConfig, MODEL_OPTIONS))
    given = given_options(args, TrainConfig, [f.name for f in fields(TrainConfig)])
    return model_config, resume_config(args.out, given) if args.resume else config.with_budget(**given)


def _evaluate_conditional(args: argparse.Namespace, model, images, device) -> int:
    """Three readings of a conditional model: given the true labels, shown no label, and the exact mixture
    over labels (with the generative classifier's accuracy, which the same passes give)."""

    labels = split_labels(args, len(images))
    no_label = evaluate(model, images, device=device)
    bar, _ = progress_printer()
    reading = generative_reading(model, images, labels, progress=lambda f: bar.update(f, "one pass per label"))
    bar.close()
    result = {"split": args.split, "bits_per_dim": reading["given_label_bits_per_dim"],
              "no_label_bits_per_dim": no_label, "marginal_bits_per_dim": reading["marginal_bits_per_dim"],
              "generative_accuracy": reading["accuracy"], "n_images": len(images), "weights": args.weights}
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{args.split} bits/dim given the true label: {result['bits_per_dim']:.4f}")
    print(f"{args.split} bits/dim with no label: {no_label:.4f}")
    print(f"{args.split} bits/dim unconditional, log p(x) = logsumexp_y log p(x|y)p(y): "
          f"{result['marginal_bits_per_dim']:.4f}")
    print(f"the model as a digit classifier (Bayes' rule): accuracy {reading['accuracy']:.4f}")
    return 0


def add_data_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="fetch, verify and colorize MNIST", formatter_class=FMT,
                       epilog="example:\n  python -m pixelcnn data --data-dir data/")
    add_data_args(p)
    p.set_defaults(handler=cmd_data)


def cmd_data(args: argparse.Namespace) -> int:
    bar, progress = progress_printer()
    data = load_data(args.data_dir, args.data_file, progress=progress)
    bar.close()
    if args.data_file is None:
        labels = load_labels(args.data_dir, required=True)
        print(f"labels: {len(labels['train']) + len(labels['val'])} training and {len(labels['test'])} test, verified")
    for key, value in data.items():
        print(f"{key}: {value.shape[0]} images of {value.shape[1]}x{value.shape[2]}x{value.shape[3]}")
    if args.data_file is None:
        print(f"cache: {cache_path(resolve_data_dir(args.data_dir))}")
    return 0


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a PixelCNN into a run folder", formatter_class=FMT,
                       epilog="examples:\n  python -m pixelcnn train --preset live --out runs/live\n"
                              "  python -m pixelcnn train --preset tiny --steps 200 --out runs/tiny\n"
                              "  python -m pixelcnn train --preset paper --epochs 10 --out runs/paper\n"
                              "  python -m pixelcnn train --out runs/paper --resume --epochs 15\n"
                              "\nWith --resume, the run keeps its stored settings except those given again.\n"
                              "Several processes: torchrun --nproc_per_node=N -m pixelcnn train ...; --batch-size\n"
                              "is then the global batch (images per optimizer step over all processes).")
    p.add_argument("--out", required=True, help="run folder (config.json, metrics.jsonl, checkpoint.pt)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--preset", choices=sorted(PRESETS),
                        help="model size (default: paper); " + "; ".join(
                            f"{name!r} also brings training settings ({_settings_text(settings)}) under the "
                            f"options given" for name, settings in PRESET_TRAINING.items()))
    source.add_argument("--config", help="a config.json holding the model and training settings (how the "
                                         "dashboard starts a run); options given as well override it")
    add_options(p, PixelCNNConfig, MODEL_OPTIONS, choices={"kind": list(KINDS)}, default_note="default: the preset's")
    budget = p.add_mutually_exclusive_group()
    add_options(budget, TrainConfig, ["epochs", "steps"])
    add_options(p, TrainConfig, [f.name for f in fields(TrainConfig) if f.name not in ("epochs", "steps")])
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    add_data_args(p)
    p.set_defaults(handler=cmd_train)


def parse_train_command(argv: list[str]) -> argparse.Namespace:
    """The options of ``python -m pixelcnn train ARGV...`` as the command line parses them."""

    sub = Parser(prog="python -m pixelcnn").add_subparsers(dest="command", required=True, parser_class=Parser)
    add_train_parser(sub)
    return sub.choices["train"].parse_args(argv)


def cmd_train(args: argparse.Namespace) -> int:
    stop = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        stop.set()

    # First of all: a stop that arrives while the data loads still ends the run with a checkpoint.
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    check_output_path(args.out, "--out", folder=True)
    model_config, config = train_configs(args)
    check_trainable(model_config)  # before the data loads: a refusal comes at once
    check_run_dir(Path(args.out), args.resume)
    main_rank = int(os.environ.get("RANK", "0")) == 0  # under torchrun, rank 0 alone reports
    if main_rank:
        claim_job(Path(args.out))  # the dashboard shows the run as starting while the data loads
    data_bar, progress = progress_printer()
    stored = stored_model_config(Path(args.out)) if args.resume else None
    classes = (stored or model_config).classes  # a resumed run keeps its stored model
    if classes and args.data_file:
        raise ConfigError(f"a conditional model (--classes {classes}) needs the digit labels, and the "
                          f"course pickle has none: train it on the MNIST IDX files (--data-dir)")
    data = load_data(args.data_dir, args.data_file, progress=progress if main_rank else None)
    data_bar.close()
    if classes:
        data.update({f"{split}_labels": labels for split, labels in load_labels(args.data_dir, required=True).items()})
    spec = {"source": "course-pickle" if args.data_file else "mnist-idx", "colorization": "v1",
            "train": len(data["train"]), "val": len(data["val"]), "test": len(data["test"])}

    bar = ProgressBar()
    on_event = TrainingProgress(bar) if main_rank else None

    summary = train(args.out, model_config, config, data, resume=args.resume, callback=on_event,
                    stop=stop, data_spec=spec)
    bar.close()
    if not main_rank:
        return 0 if summary["status"] == "finished" else 1
    return report_training(summary, Path(args.out))


def report_training(summary: dict[str, Any], run_dir: Path) -> int:
    """Print how a training command ended; its exit code (0 when the run finished)."""
    if summary["status"] == "stopped":
        print(f"stopped at step {summary['step']}; checkpoint saved. Continue with: "
              f"python -m pixelcnn train --out {run_dir} --resume")
        return 1
    if summary["status"] == "failed":
        print(f"error: {summary['message']}", file=sys.stderr)
        return 1
    live = sum(e.get("seconds", 0.0) for e in read_events(run_dir / METRICS_NAME) if e["event"] == "samples")
    if live:
        print(f"live samples: {live:.1f} s of {summary['elapsed']:.1f} s of training ({live / summary['elapsed']:.1%})")
    if summary.get("best_val_bits_per_dim") is not None:
        print(f"best validation bits/dim: {summary['best_val_bits_per_dim']:.4f}")
    print(f"test bits/dim: {summary['test_bits_per_dim']:.4f}")
    if "test_no_label_bits_per_dim" in summary:
        print(f"test bits/dim with no label: {summary['test_no_label_bits_per_dim']:.4f}")
    if "test_average_bits_per_dim" in summary:
        print(f"the weights' moving average: best validation bits/dim "
              f"{summary['best_average_val_bits_per_dim']:.4f}, test bits/dim "
              f"{summary['test_average_bits_per_dim']:.4f}")
    return 0


def add_evaluate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="bits/dim of a checkpoint on a split", formatter_class=FMT,
                       epilog="example:\n  python -m pixelcnn evaluate --checkpoint checkpoints/paper/checkpoint.pt --split test")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--split", choices=["train", "val", "test"], default="test")
    p.add_argument("--limit", type=positive_int, help="only the first N images of the split")
    p.add_argument("--weights", choices=["raw", "average"], default="raw",
                   help="the trained weights, or their moving average (a run trained with --ema-decay)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--device", default="auto")
    add_data_args(p)
    p.set_defaults(handler=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    device = pick_device(args.device)
    ckpt = load_servable(args.checkpoint, device, args.weights)
    images = load_data(args.data_dir, args.data_file)[args.split][: args.limit]
    if ckpt.config.classes:
        return _evaluate_conditional(args, ckpt.model, images, device)
    value = evaluate(ckpt.model, images, device=device)
    if args.json:
        print(json.dumps({"split": args.split, "bits_per_dim": value, "n_images": len(images),
                          "weights": ckpt.weights}))
    else:
        print(f"{args.split} bits/dim: {value:.4f}" + (" (the weights' moving average)" if
                                                        ckpt.weights == "average" else ""))
    return 0


def add_posterior_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("posterior", help="a conditional model as a digit classifier, by Bayes' rule",
                       formatter_class=FMT,
                       epilog="example:\n  python -m pixelcnn posterior --checkpoint checkpoints/conditional --split test\n\n"
                              "p(y | x) is proportional to p(x | y) p(y) (p(y) uniform), from one teacher-forced pass\n"
                              "per label; prints the accuracy against the true labels and log p(x) = logsumexp_y\n"
                              "(log p(x | y) + log p(y)) as bits/dim, the model's exact unconditional likelihood.")
    p.add_argument("--checkpoint", required=True, help="a conditional model's checkpoint file or run folder")
    p.add_argument("--split", choices=["train", "val", "test"], default="test")
    p.add_argument("--limit", type=positive_int, help="only the first N images of the split")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_data_args(p)
    p.set_defaults(handler=cmd_posterior)


def cmd_posterior(args: argparse.Namespace) -> int:
    ckpt = load_servable(args.checkpoint)
    images = load_data(args.data_dir, args.data_file)[args.split][: args.limit]
    labels = split_labels(args, len(images)) if ckpt.config.classes else None
    bar, _ = progress_printer()
    reading = generative_reading(ckpt.model, images, labels, progress=lambda f: bar.update(f, "one pass per label"))
    bar.close()
    predicted = np.asarray(reading["predicted"])
    shown = [predicted[labels == d] for d in range(ckpt.config.classes)]
    per_digit = [float((p == d).mean()) if len(p) else None for d, p in enumerate(shown)]  # None: none of d here
    if args.json:
        print(json.dumps({"split": args.split, "n_images": len(images), "accuracy": reading["accuracy"],
                          "per_digit_accuracy": per_digit, "marginal_bits_per_dim": reading["marginal_bits_per_dim"],
                          "given_label_bits_per_dim": reading["given_label_bits_per_dim"]}))
        return 0
    print(f"generative classifier accuracy on {len(images)} {args.split} images: {reading['accuracy']:.4f}")
    print("per digit: " + " ".join(f"{d}:{'-' if a is None else f'{a:.3f}'}({len(p)})"
                                   for d, (a, p) in enumerate(zip(per_digit, shown))))
    if None in per_digit:
        print(f"  (-: no test image of that digit among these {len(images)}; --limit raises how many are read)")
    print(f"{args.split} bits/dim unconditional (logsumexp over labels): {reading['marginal_bits_per_dim']:.4f}")
    return 0


def add_classifier_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("classifier", help="train the digit classifier behind the digit score", formatter_class=FMT,
                       epilog="example:\n  python -m pixelcnn classifier --out checkpoints/digits/classifier.pt")
    p.add_argument("--out", help="where to write it (default: checkpoints/digits/classifier.pt)")
    p.add_argument("--epochs", type=int_in(1, 50), default=2, help="passes over the 60,000 grey training images")
    p.add_argument("--data-dir", help="folder with the four MNIST IDX files (default: $PIXELCNN_DATA_DIR, else data/)")
    p.set_defaults(handler=cmd_classifier)


def cmd_classifier(args: argparse.Namespace) -> int:
    if args.out is None:
        CLASSIFIER_PATH.parent.mkdir(exist_ok=True)
    out = check_output_path(str(CLASSIFIER_PATH) if args.out is None else args.out, "--out")  # '' is refused
    bar, progress = progress_printer()
    record = build_classifier(out, args.data_dir, epochs=args.epochs, progress=progress)
    bar.close()
    print(json.dumps(record, indent=2))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the data, train, evaluate, posterior, classifier commands to the command line."""
    add_data_parser(sub)
    add_train_parser(sub)
    add_evaluate_parser(sub)
    add_posterior_parser(sub)
    add_classifier_parser(sub)
