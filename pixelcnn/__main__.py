"""Command line: ``python -m pixelcnn {data,train,evaluate,sample,receptive-field}``.

Bad arguments or input print one line on stderr and exit with code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence

from .errors import ConfigError, PixelCNNError
from .store.files import load_npy, read_bounded
from .cli.outputs import check_output_path, save_npy
from .sampling import MAX_SAMPLES

COMPRESSED_BYTES = 1 << 30  # a compressed file that decompress reads whole

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line on stderr (exit 2), not a usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"error: {message} (see {self.prog} --help)\n")
        raise SystemExit(EXIT_USAGE)


MAX_SEED = 2**31 - 1


def _int_in(low: int, high: int | None = None):
    """An argparse type: a whole number in [low, high]."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f"in [{low}, {high}]" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"expected a number {bounds}, got {value}")
        return value

    return parse


_positive_int = _int_in(1)
_nonnegative_int = _int_in(0)
_seed = _int_in(0, MAX_SEED)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text}")
    return value


def _settings_text(settings: dict[str, Any]) -> str:
    """Training settings as their flags: ``--minutes 5 --batch-size 64 --amp``."""
    from dataclasses import fields

    from .options import flag_of
    from .training.config import TrainConfig

    by_name = {f.name: f for f in fields(TrainConfig)}
    return " ".join(flag_of(by_name[name]) + ("" if value is True else f" {value:g}" if isinstance(value, float)
                                              else f" {value}") for name, value in settings.items())


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="folder with the four MNIST IDX files (default: $PIXELCNN_DATA_DIR, else data/)")
    p.add_argument("--data-file", help="the course's mnist_colored.pkl instead of the IDX files")


MODEL_OPTIONS = ("kind", "hidden", "n_blocks", "first_kernel", "block_kernel", "classes", "norm")


def build_parser() -> argparse.ArgumentParser:
    from dataclasses import fields

    from .models import KINDS, PRESETS, PixelCNNConfig
    from .options import add_options
    from .training.config import PRESET_TRAINING, TrainConfig

    parser = _Parser(prog="python -m pixelcnn", description="PixelCNN on colored MNIST.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    fmt = argparse.RawDescriptionHelpFormatter

    p = sub.add_parser("data", help="fetch, verify and colorize MNIST", formatter_class=fmt,
                       epilog="example:\n  python -m pixelcnn data --data-dir data/")
    _add_data_args(p)

    p = sub.add_parser("train", help="train a PixelCNN into a run folder", formatter_class=fmt,
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
    _add_data_args(p)

    p = sub.add_parser("evaluate", help="bits/dim of a checkpoint on a split", formatter_class=fmt,
                       epilog="example:\n  python -m pixelcnn evaluate --checkpoint checkpoints/paper/checkpoint.pt --split test")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--split", choices=["train", "val", "test"], default="test")
    p.add_argument("--limit", type=_positive_int, help="only the first N images of the split")
    p.add_argument("--weights", choices=["raw", "average"], default="raw",
                   help="the trained weights, or their moving average (a run trained with --ema-decay)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--device", default="auto")
    _add_data_args(p)

    p = sub.add_parser("sample", help="draw a 10x10 grid of samples", formatter_class=fmt,
                       epilog="examples:\n  python -m pixelcnn sample --checkpoint checkpoints/paper/checkpoint.pt "
                              "--n 100 --seed 0 --out samples.png\n"
                              "  python -m pixelcnn sample --checkpoint checkpoints/conditional --per-digit "
                              "--guidance 1 --out digits.png\n"
                              "  python -m pixelcnn sample --preset tiny --init-seed 0 --n 16 --out random.png")
    _add_model_args(p)
    p.add_argument("--n", type=_int_in(1, MAX_SAMPLES), default=100, help="number of samples (default 100)")
    p.add_argument("--seed", type=_seed, default=0, help="sampling seed (default 0)")
    p.add_argument("--method", choices=["cached", "naive"], default="cached",
                   help="cached (fast, default) or naive (one full forward pass per pixel: slow)")
    p.add_argument("--temperature", type=_positive_float, default=1.0)
    _add_label_args(p)
    p.add_argument("--out", required=True, help="PNG of the grid")
    p.add_argument("--npy", help="also save the samples, uint8 (n, 28, 28, 3), as .npy")
    p.add_argument("--device", default="auto")

    p = sub.add_parser("receptive-field", help="gradient receptive field of one conditional", formatter_class=fmt,
                       epilog="example:\n  python -m pixelcnn receptive-field --row 14 --col 14 --channel 0 "
                              "--preset paper --init-seed 0 --out field.png")
    _add_model_args(p)
    p.add_argument("--row", type=_nonnegative_int, default=14)
    p.add_argument("--col", type=_nonnegative_int, default=14)
    p.add_argument("--channel", type=_nonnegative_int, default=0)
    p.add_argument("--images", type=_int_in(1, 64), default=4,
                   help="average over this many random input images (default 4)")
    p.add_argument("--out", required=True, help="PNG of the 28x28 field, target in red")
    p.add_argument("--npy", help="also save the field, float (28, 28), as .npy")
    p.add_argument("--linear", action="store_true", help="brightness linear in |gradient| (default: log scale)")

    p = sub.add_parser("bits", help="where the bits go: -log2 p of every value of one image", formatter_class=fmt,
                       epilog="examples:\n  python -m pixelcnn bits --checkpoint checkpoints/paper --split test "
                              "--index 0 --out heat.png\n"
                              "  python -m pixelcnn bits --checkpoint checkpoints/rgb --image digit.npy --npy bits.npy\n"
                              "\nThe last line is the image's bits/dim, what evaluate reports for that image alone.")
    _add_model_args(p)
    _add_image_args(p)
    p.add_argument("--out", help="PNG of the bits per value: the three channels and their sum")
    p.add_argument("--npy", help="save the bits, float32 (28, 28, 3), as .npy")
    _add_data_args(p)

    p = sub.add_parser("predict", help="what the model predicts at one pixel of an image", formatter_class=fmt,
                       epilog="example:\n  python -m pixelcnn predict --checkpoint checkpoints/paper --split test "
                              "--index 0 --row 14 --col 14 --json")
    _add_model_args(p)
    _add_image_args(p)
    p.add_argument("--row", type=_nonnegative_int, required=True)
    p.add_argument("--col", type=_nonnegative_int, required=True)
    p.add_argument("--temperature", type=_positive_float, default=1.0,
                   help="the distributions as sampling at this temperature draws from (bits stay at 1)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    _add_data_args(p)

    p = sub.add_parser("score", help="do samples look like digits? the digit score of a model or of images",
                       formatter_class=fmt,
                       epilog="examples:\n  python -m pixelcnn score --checkpoint checkpoints/paper --n 100 --seed 0\n"
                              "  python -m pixelcnn score --checkpoint checkpoints/conditional --per-digit --guidance 1\n"
                              "  python -m pixelcnn score --images samples.npy\n\n"
                              "The score is the share of images that a small MNIST classifier reads as one digit\n"
                              "with probability >= 0.9 (see pixelcnn/digits.py); real colored test images and\n"
                              "random noise are printed beside it.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="a checkpoint file or run folder: score n of its samples")
    source.add_argument("--preset", choices=sorted(PRESETS), help="random weights of this preset")
    source.add_argument("--images", help="a .npy of colored images (N, 28, 28, 3) in 0..3, e.g. from sample --npy")
    p.add_argument("--init-seed", type=_seed, default=0, help="seed of the random weights (default 0)")
    p.add_argument("--n", type=_int_in(1, MAX_SAMPLES), default=100, help="samples to draw (default 100)")
    p.add_argument("--seed", type=_seed, default=0, help="sampling seed (default 0)")
    p.add_argument("--temperature", type=_positive_float, default=1.0)
    _add_label_args(p)
    p.add_argument("--classifier", help="the classifier's weights (default: checkpoints/digits/classifier.pt)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")

    p = sub.add_parser("posterior", help="a conditional model as a digit classifier, by Bayes' rule",
                       formatter_class=fmt,
                       epilog="example:\n  python -m pixelcnn posterior --checkpoint checkpoints/conditional --split test\n\n"
                              "p(y | x) is proportional to p(x | y) p(y) (p(y) uniform), from one teacher-forced pass\n"
                              "per label; prints the accuracy against the true labels and log p(x) = logsumexp_y\n"
                              "(log p(x | y) + log p(y)) as bits/dim, the model's exact unconditional likelihood.")
    p.add_argument("--checkpoint", required=True, help="a conditional model's checkpoint file or run folder")
    p.add_argument("--split", choices=["train", "val", "test"], default="test")
    p.add_argument("--limit", type=_positive_int, help="only the first N images of the split")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    _add_data_args(p)

    p = sub.add_parser("classifier", help="train the digit classifier behind the digit score", formatter_class=fmt,
                       epilog="example:\n  python -m pixelcnn classifier --out checkpoints/digits/classifier.pt")
    p.add_argument("--out", help="where to write it (default: checkpoints/digits/classifier.pt)")
    p.add_argument("--epochs", type=_int_in(1, 50), default=2, help="passes over the 60,000 grey training images")
    p.add_argument("--data-dir", help="folder with the four MNIST IDX files (default: $PIXELCNN_DATA_DIR, else data/)")

    p = sub.add_parser("compress", help="bits are bytes: compress images with a model (lossless)",
                       formatter_class=fmt,
                       epilog="examples:\n  python -m pixelcnn compress --checkpoint checkpoints/paper --index 0 --out one.pxz\n"
                              "  python -m pixelcnn compress --checkpoint checkpoints/paper --split test --out test.pxz\n"
                              "  python -m pixelcnn compress --checkpoint checkpoints/paper --images samples.npy --out s.pxz\n"
                              "\nPrints the file's size in bits/dim beside -log2 p(x) under the model (what bits and\n"
                              "evaluate report) and beside PNG, gzip, bzip2 and lzma of the same images. A conditional\n"
                              "model codes test images given their label (stored in the file).")
    p.add_argument("--checkpoint", required=True, help="a checkpoint file or run folder")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--index", type=_nonnegative_int, help="one image of --split (default: test) by index")
    what.add_argument("--images", help="a .npy of colored images (N, 28, 28, 3) or one (28, 28, 3), values 0..3")
    what.add_argument("--all", action="store_true", help="the whole --split (see --limit)")
    p.add_argument("--split", choices=["train", "val", "test"], default="test")
    p.add_argument("--limit", type=_positive_int, help="with --all: only the first N images")
    p.add_argument("--out", required=True, help=f"the compressed file (e.g. test{'.pxz'})")
    p.add_argument("--json", action="store_true", help="print the sizes as one JSON object")
    _add_data_args(p)

    p = sub.add_parser("decompress", help="the images of a compressed file, bit for bit", formatter_class=fmt,
                       epilog="example:\n  python -m pixelcnn decompress --checkpoint checkpoints/paper one.pxz "
                              "--npy one.npy --png one.png\n\nA file made with another model, a damaged "
                              "or a foreign file is refused with one line (exit 2).")
    p.add_argument("--checkpoint", required=True, help="the checkpoint the file was compressed with")
    p.add_argument("file", help="a file written by compress")
    p.add_argument("--npy", help="write the images, uint8 (N, 28, 28, 3), as .npy")
    p.add_argument("--png", help="write the images as a PNG (a grid of 10 a row)")

    p = sub.add_parser("notebook", help="the exercise as a documented Jupyter notebook", formatter_class=fmt,
                       epilog="examples:\n  python -m pixelcnn notebook --out exercise.ipynb\n"
                              "  python -m pixelcnn notebook --out exercise.ipynb --execute\n"
                              "  python -m pixelcnn notebook --out exercise.ipynb --execute --train --steps 300\n"
                              "\nWithout --train its figures come from the shipped paper checkpoint. --execute runs\n"
                              "it in a fresh kernel (pip install nbclient ipykernel), in the project folder.")
    p.add_argument("--out", required=True, help="the .ipynb to write")
    p.add_argument("--execute", action="store_true", help="run every cell and keep the outputs")
    p.add_argument("--train", action="store_true", help="train a model in the notebook instead of using paper's")
    p.add_argument("--preset", choices=["tiny", "live", "lecture", "paper"], default="tiny",
                   help="with --train: the model's size (default tiny)")
    p.add_argument("--steps", type=_positive_int, default=300, help="with --train: optimizer steps (default 300)")
    p.add_argument("--test-limit", type=_positive_int, help="test images for the test bits/dim (default: all)")

    p = sub.add_parser("report", help="the exercise's images for a checkpoint", formatter_class=fmt,
                       epilog="example:\n  python -m pixelcnn report --checkpoint checkpoints/paper\n\n"
                              "Writes curves.svg (train and validation bits/dim), samples.png (100 samples),\n"
                              "field-random.png and field-trained.png (receptive field at (14, 14, 0)),\n"
                              "and results.json (test bits/dim on all 10,000 test images and on the first 500).")
    p.add_argument("--checkpoint", required=True, help="a run folder (or its checkpoint.pt)")
    p.add_argument("--out", help="folder for the images (default: the checkpoint's folder)")
    p.add_argument("--seed", type=_seed, default=0, help="sampling seed (default 0)")
    p.add_argument("--init-seed", type=_seed, default=0, help="seed of the random weights (default 0)")
    p.add_argument("--no-measure", action="store_true", help="images only: skip results.json (test bits/dim)")
    _add_data_args(p)

    p = sub.add_parser("results", help="the README's results table from shipped models' results.json",
                       formatter_class=fmt,
                       epilog="example:\n  python -m pixelcnn results checkpoints/paper checkpoints/lecture")
    p.add_argument("folders", nargs="+", help="run folders measured by `report`")
    p.add_argument("--val-every", type=_positive_int,
                   help="instead, validation bits/dim at every N-th epoch, one column per folder")
    p.add_argument("--conditional", action="store_true",
                   help="instead, the readings of conditional models (given the label, no label, the mixture, "
                        "the generative classifier, the asked-for digit score at each guidance)")
    return parser


def _add_model_args(p: argparse.ArgumentParser) -> None:
    from .models import PRESETS

    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="a checkpoint file or run folder")
    source.add_argument("--preset", choices=sorted(PRESETS), help="random weights of this preset")
    p.add_argument("--init-seed", type=_seed, default=0, help="seed of the random weights (default 0)")


def _add_label_args(p: argparse.ArgumentParser) -> None:
    which = p.add_mutually_exclusive_group()
    which.add_argument("--digit", type=_int_in(0, 9), help="a conditional model draws this digit (default: any)")
    which.add_argument("--per-digit", action="store_true",
                       help="a conditional model draws one row per digit (--n a multiple of 10)")
    p.add_argument("--guidance", type=_guidance, default=0.0,
                   help="classifier-free guidance weight w: logits cond + w (cond - uncond) (default 0)")


def _guidance(text: str) -> float:
    from .sampling import MAX_GUIDANCE

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value <= MAX_GUIDANCE:
        raise argparse.ArgumentTypeError(f"expected a number in [0, {MAX_GUIDANCE:g}], got {text}")
    return value


def _asked_labels(args: argparse.Namespace, model, n: int):
    """The labels that --digit or --per-digit ask for (None for neither), checked against the model."""
    import numpy as np


    if args.digit is None and not args.per_digit:
        if args.guidance:
            raise ConfigError("--guidance needs a digit to guide towards: add --digit D or --per-digit")
        return None
    classes = model.config.classes
    if not classes:
        raise ConfigError("this model is unconditional: it draws no chosen digit (train one with --classes 10)")
    if args.per_digit:
        if n % classes:
            raise ConfigError(f"--per-digit draws one row per digit: --n must be a multiple of {classes}, got {n}")
        return np.repeat(np.arange(classes), n // classes)
    if args.digit >= classes:
        raise ConfigError(f"--digit must be below {classes}, the labels this model knows")
    return np.full(n, args.digit)


def load_servable(path: str, device: Any = "cpu", weights: str = "raw"):
    """A checkpoint's model, refused with one line unless this tool can feed and serve it."""
    from .store.checkpoint import load_checkpoint
    from .serve.limits import check_servable

    ckpt = load_checkpoint(path, device=device, weights=weights)
    check_servable(ckpt.config)
    return ckpt


def _add_image_args(p: argparse.ArgumentParser) -> None:
    image = p.add_mutually_exclusive_group(required=True)
    image.add_argument("--split", choices=["train", "val", "test"], help="an image of this split (with --index)")
    image.add_argument("--image", help="an image as .npy: integers 0..3 of shape (28, 28, 3)")
    p.add_argument("--index", type=_nonnegative_int, default=0, help="which image of --split (default 0)")


def load_npy_images(path: str, batch: bool | None):
    """Colored images from a .npy file, checked: uint8 (28, 28, 3) in 0..3, or (N, 28, 28, 3) with ``batch``;
    with ``batch=None`` either, returned as (N, 28, 28, 3)."""
    import numpy as np

    from .store.data import IMAGE_SHAPE, LEVELS
    from .errors import DataError

    try:
        images = load_npy(path)  # memory-mapped: the checks below read it a slice at a time
    except ConfigError as err:
        raise DataError(str(err)) from None
    if batch is None:  # either shape, returned as a batch
        images, batch = (images[None] if images.ndim == 3 else images), True
    shape, wanted = (images.shape[1:], f"(N, {', '.join(map(str, IMAGE_SHAPE))})") if batch \
        else (images.shape, str(IMAGE_SHAPE))
    refused = DataError(f"{path}: expected integers 0..{LEVELS - 1} of shape {wanted}, got {images.dtype} "
                        f"{images.shape}")
    if shape != IMAGE_SHAPE or (batch and images.ndim != 4) or images.dtype.kind not in "ui" or images.size == 0:
        raise refused
    flat = images.reshape(-1, *IMAGE_SHAPE)
    out = np.empty(flat.shape, dtype=np.uint8)
    for start in range(0, len(flat), 4096):
        part = np.asarray(flat[start:start + 4096])
        if part.min() < 0 or part.max() >= LEVELS:
            raise refused
        out[start:start + 4096] = part
    return out.reshape(images.shape)


def _load_image(args: argparse.Namespace):
    """The image that --split/--index or --image names, checked: uint8 (28, 28, 3) in 0..3."""
    from .store.data import load_data
    from .errors import DataError

    if args.image is not None:
        return load_npy_images(args.image, batch=False)
    images = load_data(args.data_dir, args.data_file)[args.split]
    if args.index >= len(images):
        raise DataError(f"--index {args.index} is past the {len(images)} images of {args.split}")
    return images[args.index]


def _load_model(args: argparse.Namespace, device: str = "cpu"):
    from .models import get_preset
    from .models import random_model

    if args.checkpoint:
        return load_servable(args.checkpoint, device).model
    return random_model(get_preset(args.preset), args.init_seed).to(device)


def _check_file_outputs(args: argparse.Namespace) -> None:
    """Refuse unwritable ``--out`` and ``--npy`` files (those given) before any work is done."""
    for flag, path in (("--out", args.out), ("--npy", args.npy)):
        if path is not None:
            check_output_path(path, flag)


def _progress_printer():
    from .cli.progress import ProgressBar

    bar = ProgressBar()
    return bar, lambda fraction, text: bar.update(fraction, text)


def cmd_data(args: argparse.Namespace) -> int:
    from .store.data import cache_path, load_data, load_labels, resolve_data_dir

    bar, progress = _progress_printer()
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


def train_configs(args: argparse.Namespace) -> tuple[Any, Any]:
    """The model and training settings a parsed ``train`` command asks for: preset or ``--config``, then the
    options given; with ``--resume``, the run's stored budget extended by those given."""
    from dataclasses import fields, replace

    from .models import PixelCNNConfig, get_preset
    from .options import given_options
    from .training.config import TrainConfig, preset_train_config, read_config_file, resume_config

    model_config, config = get_preset(args.preset or "paper"), preset_train_config(args.preset)
    if args.config:
        model_config, config = read_config_file(args.config)
    model_config = replace(model_config, **given_options(args, PixelCNNConfig, MODEL_OPTIONS))
    given = given_options(args, TrainConfig, [f.name for f in fields(TrainConfig)])
    return model_config, resume_config(args.out, given) if args.resume else config.with_budget(**given)


def cmd_train(args: argparse.Namespace) -> int:
    from .store.data import load_data, load_labels
    from .cli.progress import ProgressBar, format_seconds
    from .store.metrics import METRICS_NAME, read_events
    from .store.checkpoint import check_trainable
    from .training.state import check_run_dir, stored_model_config
    from .training.trainer import train

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
    data_bar, progress = _progress_printer()
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
    state = {"train": None, "val": None}

    def on_event(event: dict[str, Any]) -> None:
        if not main_rank:
            return
        kind = event["event"]
        if kind == "start":
            state["total"], state["first"] = event["total_steps"], event["step"]
            state["t0"], state["budget"] = time.monotonic(), event.get("budget_seconds")
        elif kind in ("train", "val"):
            state[kind] = event["bits_per_dim"]
            step, total, budget = event["step"], state["total"], state["budget"]
            done = step - state["first"]
            rate = (time.monotonic() - state["t0"]) / max(done, 1)
            text = f"step {step}" + ("" if budget else f"/{total}") + f"  train {state['train'] or 0:.4f}"
            if state["val"] is not None:
                text += f"  val {state['val']:.4f}"
            if budget:
                left, fraction = budget - event["elapsed"], event["elapsed"] / budget
            else:
                left, fraction = rate * (total - step), step / total
            text += f"  bits/dim  ETA {format_seconds(max(left, 0))}"
            bar.update(min(fraction, 1.0), text)
        elif kind == "test":
            bar.update(1.0, "evaluated on the test set")

    summary = train(args.out, model_config, config, data, resume=args.resume, callback=on_event,
                    stop=stop, data_spec=spec)
    bar.close()
    if not main_rank:
        return 0 if summary["status"] == "finished" else 1
    if summary["status"] == "stopped":
        print(f"stopped at step {summary['step']}; checkpoint saved. Continue with: "
              f"python -m pixelcnn train --out {args.out} --resume")
        return 1
    if summary["status"] == "failed":
        print(f"error: {summary['message']}", file=sys.stderr)
        return 1
    live = sum(e.get("seconds", 0.0) for e in read_events(Path(args.out) / METRICS_NAME) if e["event"] == "samples")
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


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .store.data import load_data
    from .runtime import pick_device
    from .training.evaluate import evaluate

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


def _split_labels(args: argparse.Namespace, n: int, split: str | None = None):
    """The true labels of the first ``n`` images of ``split`` (default --split); a conditional model is scored
    against them."""
    from .store.data import load_labels

    if args.data_file:
        raise ConfigError("a conditional model is scored given the digit labels, and the course pickle has none: "
                          "use the MNIST IDX files (--data-dir)")
    return load_labels(args.data_dir, required=True)[split or args.split][:n]


def _evaluate_conditional(args: argparse.Namespace, model, images, device) -> int:
    """Three readings of a conditional model: given the true labels, shown no label, and the exact mixture
    over labels (with the generative classifier's accuracy, which the same passes give)."""
    from .explain.posterior import generative_reading
    from .training.evaluate import evaluate

    labels = _split_labels(args, len(images))
    no_label = evaluate(model, images, device=device)
    bar, _ = _progress_printer()
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


def cmd_posterior(args: argparse.Namespace) -> int:
    import numpy as np

    from .store.data import load_data
    from .explain.posterior import generative_reading

    ckpt = load_servable(args.checkpoint)
    images = load_data(args.data_dir, args.data_file)[args.split][: args.limit]
    labels = _split_labels(args, len(images)) if ckpt.config.classes else None
    bar, _ = _progress_printer()
    reading = generative_reading(ckpt.model, images, labels, progress=lambda f: bar.update(f, "one pass per label"))
    bar.close()
    predicted = np.asarray(reading["predicted"])
    per_digit = [float((predicted[labels == d] == d).mean()) for d in range(ckpt.config.classes)]
    if args.json:
        print(json.dumps({"split": args.split, "n_images": len(images), "accuracy": reading["accuracy"],
                          "per_digit_accuracy": per_digit, "marginal_bits_per_dim": reading["marginal_bits_per_dim"],
                          "given_label_bits_per_dim": reading["given_label_bits_per_dim"]}))
        return 0
    print(f"generative classifier accuracy on {len(images)} {args.split} images: {reading['accuracy']:.4f}")
    print("per digit: " + " ".join(f"{d}:{a:.3f}" for d, a in enumerate(per_digit)))
    print(f"{args.split} bits/dim unconditional (logsumexp over labels): {reading['marginal_bits_per_dim']:.4f}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from .figures import image_grid, save_png
    from .runtime import pick_device
    from .sampling import sample

    _check_file_outputs(args)
    model = _load_model(args, pick_device(args.device))
    bar, _ = _progress_printer()
    start = time.perf_counter()
    labels = _asked_labels(args, model, args.n)
    images = sample(model, args.n, seed=args.seed, temperature=args.temperature, method=args.method,
                    progress=lambda fraction: bar.update(fraction, f"{args.method} sampling"),
                    labels=labels, guidance=args.guidance)
    seconds = time.perf_counter() - start
    bar.close()
    save_png(image_grid(images, ncols=args.n // model.config.classes if args.per_digit else 10), args.out)
    if args.npy:
        save_npy(images, args.npy)
    print(f"{args.n} samples ({args.method}) in {seconds:.2f} s -> {args.out}")
    return 0


def cmd_receptive_field(args: argparse.Namespace) -> int:
    import numpy as np

    from .figures import field_image, save_png
    from .explain.receptive import gradient_field

    _check_file_outputs(args)
    model = _load_model(args)
    cfg = model.config
    rng = np.random.default_rng(0)
    images = rng.integers(0, cfg.levels, (args.images, cfg.image_size, cfg.image_size, cfg.channels))
    field = gradient_field(model, images, args.row, args.col, args.channel)
    save_png(field_image(field, args.row, args.col, log=not args.linear), args.out)
    if args.npy:
        save_npy(field, args.npy)
    print(f"nonzero positions: {int((field > 0).sum())} -> {args.out}")
    return 0


def cmd_bits(args: argparse.Namespace) -> int:
    from .explain.pixels import bits_per_value
    from .figures import bits_image, save_png

    _check_file_outputs(args)
    model = _load_model(args)
    bits = bits_per_value(model, _load_image(args))
    if args.out:
        save_png(bits_image(bits), args.out)
    if args.npy:
        save_npy(bits, args.npy)
    per_channel = ", ".join(f"{name} {value:.4f}" for name, value in zip("RGB", bits.mean(axis=(0, 1))))
    print(f"bits/dim per channel: {per_channel}")
    print(f"bits/dim: {bits.mean():.4f}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from .explain.pixels import predict

    model = _load_model(args)
    result = predict(model, _load_image(args), args.row, args.col, args.temperature)
    if args.json:
        print(json.dumps(result))
        return 0
    for channel, (value, probs, bits) in enumerate(zip(result["values"], result["probabilities"], result["bits"])):
        bars = "  ".join(f"{level}: {p:.3f}" for level, p in enumerate(probs))
        print(f"{'RGB'[channel]} (true {value}, {bits:.3f} bits)  {bars}")
    return 0


def score_text(result: dict, reference: dict) -> str:
    """One line: the digit score, its reference points and the digits read."""
    refs = ", ".join(f"{name} {value:.2f}" for name, value in reference.items())
    digits = " ".join(f"{d}:{count}" for d, count in enumerate(result["histogram"]))
    return f"digit score: {result['score']:.2f} of {result['n']} images ({refs}); digits read: {digits}"


def cmd_score(args: argparse.Namespace) -> int:
    from .explain.digits import CLASSIFIER_PATH, digit_score, load_classifier
    from .sampling import sample

    classifier, record = load_classifier(args.classifier or CLASSIFIER_PATH)
    labels = None
    if args.images:
        if args.digit is not None or args.per_digit:
            raise ConfigError("--digit and --per-digit choose what a model draws; they do not apply to --images")
        images = load_npy_images(args.images, batch=True)
    else:
        model = _load_model(args)
        labels = _asked_labels(args, model, args.n)
        images = sample(model, args.n, seed=args.seed, temperature=args.temperature, labels=labels,
                        guidance=args.guidance)
    result = digit_score(classifier, images, asked=labels)
    reference = record.get("reference", {})
    if args.json:
        print(json.dumps({**result, "reference": reference}))
    else:
        print(score_text(result, reference))
        if labels is not None:
            print(f"read as the digit asked for: {result['asked_for']:.2f} (guidance {args.guidance:g})")
    return 0


def cmd_classifier(args: argparse.Namespace) -> int:
    from .explain.digits import CLASSIFIER_PATH, build_classifier

    if args.out is None:
        CLASSIFIER_PATH.parent.mkdir(exist_ok=True)
    out = check_output_path(str(CLASSIFIER_PATH) if args.out is None else args.out, "--out")  # '' is refused
    bar, progress = _progress_printer()
    record = build_classifier(out, args.data_dir, epochs=args.epochs, progress=progress)
    bar.close()
    print(json.dumps(record, indent=2))
    return 0


def cmd_compress(args: argparse.Namespace) -> int:
    import numpy as np

    from .store.files import atomic_write
    from .explain.codec import compress
    from .store.data import load_data, load_labels

    check_output_path(args.out, "--out")
    ckpt = load_servable(args.checkpoint)
    labels = None
    if args.images:
        images = load_npy_images(args.images, batch=None)
    else:
        split = load_data(args.data_dir, args.data_file)[args.split]
        chosen = slice(args.index, args.index + 1) if args.index is not None else slice(0, args.limit)
        if args.index is not None and args.index >= len(split):
            raise ConfigError(f"--index {args.index} is past the {len(split)} images of {args.split}")
        images = split[chosen]
        if ckpt.config.classes:
            labels = _split_labels(args, len(split))[chosen]
    bar, _ = _progress_printer()
    start = time.perf_counter()
    encoded = compress(ckpt.model, images, labels, progress=lambda f: bar.update(f, "compressing"))
    seconds = time.perf_counter() - start
    bar.close()
    atomic_write(Path(args.out), lambda f: f.write(encoded.data))
    sizes = encoded.sizes(images)
    if args.json:
        print(json.dumps({"n_images": len(images), "bytes": len(encoded.data), "header_bytes": encoded.header_bytes,
                          "seconds": seconds, "bits_per_dim": sizes}))
        return 0
    print(f"{len(images)} image(s) -> {args.out}: {len(encoded.data):,} bytes ({encoded.header_bytes} of header) "
          f"in {seconds:.1f} s")
    print(f"{'':<28}{'bits/dim':>10}{'bytes':>12}")
    dims = encoded.bits.size
    for name, label in (("model", "-log2 p(x) under the model"), ("streams", "the model's streams"),
                        ("file", "the file (with its header)"), ("png", "PNG (palette, optimised)"),
                        ("gzip", "gzip -9 of the raw values"), ("bzip2", "bzip2 -9 of the raw values"),
                        ("lzma", "lzma -9e of the raw values"), ("raw", "raw values (a byte each)")):
        print(f"{label:<28}{sizes[name]:>10.4f}{sizes[name] * dims / 8:>12,.0f}")
    return 0


def cmd_decompress(args: argparse.Namespace) -> int:
    from .explain.codec import decompress
    from .figures import image_grid, save_png

    if not (args.npy or args.png):
        raise ConfigError("say where the images go: --npy FILE and/or --png FILE")
    _check_file_outputs(argparse.Namespace(out=args.png, npy=args.npy))
    ckpt = load_servable(args.checkpoint)
    data = read_bounded(args.file, COMPRESSED_BYTES)
    bar, _ = _progress_printer()
    start = time.perf_counter()
    images, labels = decompress(ckpt.model, data, progress=lambda f: bar.update(f, "decompressing"))
    seconds = time.perf_counter() - start
    bar.close()
    if args.npy:
        save_npy(images, args.npy)
    if args.png:
        save_png(image_grid(images, ncols=min(10, len(images))), args.png)
    given = "" if labels is None else f", with their labels ({' '.join(map(str, labels[:10]))}{' ...' * (len(labels) > 10)})"
    print(f"{len(images)} image(s) decoded in {seconds:.1f} s, checksum verified{given}")
    return 0


def cmd_notebook(args: argparse.Namespace) -> int:
    from .notebooks.writer import write_notebook
    from .paths import PROJECT_ROOT

    out = check_output_path(args.out, "--out")
    parameters = {"MODE": "train" if args.train else "shipped", "PRESET": args.preset, "STEPS": args.steps,
                  "TEST_LIMIT": args.test_limit}
    start = time.perf_counter()
    notebook = write_notebook(out, parameters, run=args.execute, workdir=PROJECT_ROOT)
    cells = len(notebook["cells"])
    done = f"executed in {time.perf_counter() - start:.0f} s" if args.execute else "not executed (open it and run it)"
    print(f"wrote {out}: {cells} cells, {done}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    import numpy as np

    from .store.files import atomic_write
    from .figures import curves_svg, field_image, image_grid, save_png
    from .store.metrics import METRICS_NAME, curves, read_events
    from .explain.receptive import gradient_field
    from .models import random_model
    from .sampling import sample

    if args.out is not None:
        check_output_path(args.out, "--out", folder=True)
    ckpt = load_servable(args.checkpoint)
    folder = ckpt.path.parent
    out = Path(args.out) if args.out is not None else check_output_path(str(folder), "--checkpoint's folder",
                                                                         folder=True)
    out.mkdir(parents=True, exist_ok=True)
    events = read_events(folder / METRICS_NAME)
    written = []
    if any(e["event"] == "train" for e in events):
        start = next((e for e in events if e["event"] == "start"), {})
        svg = curves_svg(curves(events), start.get("steps_per_epoch"))
        atomic_write(out / "curves.svg", lambda f: f.write(svg.encode()))
        written.append("curves.svg")
    samples = sample(ckpt.model, 100, seed=args.seed)
    save_png(image_grid(samples), out / "samples.png")
    written.append("samples.png")
    cfg = ckpt.config
    if cfg.classes:  # one row per digit at each guidance weight: legibility against diversity
        from .explain.results import GUIDANCE_SHOWN, asked_for_samples

        for guidance in GUIDANCE_SHOWN:
            images, _ = asked_for_samples(ckpt.model, guidance, seed=args.seed)
            name = f"samples-per-digit-w{guidance:g}.png"
            save_png(image_grid(images, ncols=len(images) // cfg.classes), out / name)
            written.append(name)
    images = np.random.default_rng(0).integers(0, cfg.levels, (4, cfg.image_size, cfg.image_size, cfg.channels))
    for name, model in (("field-random.png", random_model(cfg, args.init_seed)), ("field-trained.png", ckpt.model)):
        field = gradient_field(model, images, 14, 14, 0)
        save_png(field_image(field, 14, 14, log=True), out / name)
        written.append(f"{name} ({int((field > 0).sum())} nonzero)")
    if not args.no_measure:
        from .store.data import load_data
        from .explain.results import RESULTS_NAME, measure, write_results

        test = load_data(args.data_dir, args.data_file)["test"]
        results = measure(ckpt, test, samples, _split_labels(args, len(test), "test") if cfg.classes else None)
        write_results(out, results)
        written.append(f"{RESULTS_NAME} (test {results['test_bits_per_dim']:.4f} bits/dim, "
                       f"digit score {results['digit_score']:.2f})")
    print(f"wrote to {out}: " + ", ".join(written))
    return 0


def cmd_results(args: argparse.Namespace) -> int:
    from .explain.results import conditional_table, read_results, results_table, validation_table

    if args.val_every:
        print(validation_table([Path(f) for f in args.folders], args.val_every))
        return 0
    if args.conditional:
        print(conditional_table([Path(f) for f in args.folders]))
        return 0
    missing = [f for f in args.folders if not read_results(f)]
    if missing:
        raise ConfigError(f"no results.json in {', '.join(missing)}; run `python -m pixelcnn report --checkpoint "
                          f"{missing[0]}` first")
    print(results_table([Path(f) for f in args.folders]))
    return 0


COMMANDS = {"data": cmd_data, "train": cmd_train, "evaluate": cmd_evaluate, "sample": cmd_sample,
            "receptive-field": cmd_receptive_field, "bits": cmd_bits, "predict": cmd_predict, "score": cmd_score,
            "classifier": cmd_classifier, "posterior": cmd_posterior,
            "compress": cmd_compress, "decompress": cmd_decompress, "notebook": cmd_notebook,
            "report": cmd_report, "results": cmd_results}


INTERACTIVE_COMMANDS = {"sample", "receptive-field", "bits", "predict", "score", "compress", "decompress"}


def main(argv: Sequence[str] | None = None) -> int:
    from .runtime import prepare_cpu

    args = build_parser().parse_args(argv)
    prepare_cpu(interactive=args.command in INTERACTIVE_COMMANDS)
    try:
        return COMMANDS[args.command](args)
    except PixelCNNError as err:
        sys.stderr.write(f"error: {err}\n")
        return EXIT_USAGE
    except OSError as err:  # a write that failed after the checks (disk full, a folder gone read-only)
        where = f"{err.filename}: " if err.filename else ""
        sys.stderr.write(f"error: {where}{err.strerror or err}; nothing half-written was left behind\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
