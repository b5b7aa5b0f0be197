"""Argument types and the loaders every command shares: numbers in range, the model, image and label
options, and checked loading of checkpoints and .npy images."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError
from ..models import PRESETS, get_preset, random_model
from ..sampling import MAX_GUIDANCE
from ..serve.limits import check_servable
from ..store.checkpoint import CHECKPOINT_NAME, load_checkpoint
from ..store.data import IMAGE_SHAPE, LEVELS, load_data, load_labels
from ..store.files import load_npy, read_bounded
from .outputs import check_output_path
from .progress import ProgressBar

EXIT_USAGE = 2


class Parser(argparse.ArgumentParser):
    """argparse, but an error is one line on stderr (exit 2), not a usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"error: {message} (see {self.prog} --help)\n")
        raise SystemExit(EXIT_USAGE)


MAX_SEED = 2**31 - 1


def int_in(low: int, high: int | None = None):
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


positive_int = int_in(1)


nonnegative_int = int_in(0)


seed_value = int_in(0, MAX_SEED)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text}")
    return value


def add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="folder with the four MNIST IDX files (default: $PIXELCNN_DATA_DIR, else data/)")
    p.add_argument("--data-file", help="the course's mnist_colored.pkl instead of the IDX files")


def add_model_args(p: argparse.ArgumentParser) -> None:
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="a checkpoint file or run folder")
    source.add_argument("--preset", choices=sorted(PRESETS), help="random weights of this preset")
    p.add_argument("--init-seed", type=seed_value, default=0, help="seed of the random weights (default 0)")


def add_label_args(p: argparse.ArgumentParser) -> None:
    which = p.add_mutually_exclusive_group()
    which.add_argument("--digit", type=int_in(0, 9), help="a conditional model draws this digit (default: any)")
    which.add_argument("--per-digit", action="store_true",
                       help="a conditional model draws one row per digit (--n a multiple of 10)")
    p.add_argument("--guidance", type=guidance_value, default=0.0,
                   help="classifier-free guidance weight w: logits cond + w (cond - uncond) (default 0)")


def guidance_value(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value <= MAX_GUIDANCE:
        raise argparse.ArgumentTypeError(f"expected a number in [0, {MAX_GUIDANCE:g}], got {text}")
    return value


def asked_labels(args: argparse.Namespace, model, n: int):
    """The labels that --digit or --per-digit ask for (None for neither), checked against the model."""

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

    ckpt = load_checkpoint(path, device=device, weights=weights)
    check_servable(ckpt.config)
    return ckpt


def add_image_args(p: argparse.ArgumentParser) -> None:
    image = p.add_mutually_exclusive_group(required=True)
    image.add_argument("--split", choices=["train", "val", "test"], help="an image of this split (with --index)")
    image.add_argument("--image", help="an image as .npy: integers 0..3 of shape (28, 28, 3)")
    add_drawing_arg(image)
    p.add_argument("--index", type=nonnegative_int, default=0, help="which image of --split (default 0)")
    add_colours_arg(p)


DRAWING_HELP = ("your own digit: a PNG or JPEG of any size, dark on light or the reverse, made into a 28x28 "
                "colored image as MNIST's digits were made (see --colours)")


def add_drawing_arg(group: Any) -> None:
    """``--png FILE``: an image file of your own, beside ``--image``/``--images`` in their group."""
    group.add_argument("--png", dest="drawing", metavar="FILE", help=DRAWING_HELP)


def colour_pair(text: str) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """``0,0,0/3,2,0``: a background and a stroke colour, three values 0..3 each."""
    try:
        pair = tuple(tuple(int(v) for v in part.split(",")) for part in text.split("/"))
    except ValueError:
        pair = ()
    if len(pair) != 2 or any(len(c) != 3 or min(c) < 0 or max(c) >= LEVELS for c in pair):
        raise argparse.ArgumentTypeError(f"expected BACKGROUND/STROKE as R,G,B/R,G,B with values 0..{LEVELS - 1}, "
                                         f"e.g. 0,0,0/3,3,0; got {text!r}")
    return pair  # type: ignore[return-value]


def add_colours_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--colours", type=colour_pair, help="with --png: background and stroke colour, R,G,B/R,G,B "
                                                        "in 0..3, at least 3 apart as in the data (default: "
                                                        "drawn as the data set draws them, seed 0)")


def load_drawing(args: argparse.Namespace) -> np.ndarray:
    """The colored image (28, 28, 3) that ``--png`` (and ``--colours``) name."""
    from ..store.drawing import MAX_FILE_BYTES, own_digit, random_colours

    background, stroke = getattr(args, "colours", None) or random_colours(0)
    try:
        data = read_bounded(args.drawing, MAX_FILE_BYTES)
    except ConfigError as err:
        raise DataError(str(err)) from None
    return own_digit(data, background, stroke, name=args.drawing)


def load_npy_images(path: str, batch: bool | None):
    """Colored images from a .npy file, checked: uint8 (28, 28, 3) in 0..3, or (N, 28, 28, 3) with ``batch``;
    with ``batch=None`` either, returned as (N, 28, 28, 3)."""

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


def load_image(args: argparse.Namespace):
    """The image that --split/--index or --image names, checked: uint8 (28, 28, 3) in 0..3."""

    if args.image is not None:
        return load_npy_images(args.image, batch=False)
    if getattr(args, "drawing", None) is not None:
        return load_drawing(args)
    images = load_data(args.data_dir, args.data_file)[args.split]
    if args.index >= len(images):
        raise DataError(f"--index {args.index} is past the {len(images)} images of {args.split}")
    return images[args.index]


def load_model(args: argparse.Namespace, device: str = "cpu"):
    if args.checkpoint:
        return load_servable(args.checkpoint, device).model
    return random_model(get_preset(args.preset), args.init_seed).to(device)


INPUT_FLAGS = {"checkpoint": "--checkpoint", "image": "--image", "images": "--images", "file": "FILE",
               "drawing": "--png"}
OUTPUT_FLAGS = {"out": "--out", "npy": "--npy", "png": "--png"}


def check_file_outputs(args: argparse.Namespace) -> None:
    """Before any work is done, refuse output files (``--out``, ``--npy``, ``--png``, those given) that cannot be
    written, or that are a file the command reads (its checkpoint, a run folder's checkpoint, its images, the
    compressed file): writing one would destroy the input."""
    inputs = {}
    for name, flag in INPUT_FLAGS.items():
        value = getattr(args, name, None)
        if isinstance(value, str):
            inputs[flag] = [Path(value), Path(value) / CHECKPOINT_NAME] if name == "checkpoint" else [Path(value)]
    for name, flag in OUTPUT_FLAGS.items():
        path = getattr(args, name, None)
        if path is None:
            continue
        check_output_path(path, flag)
        for in_flag, candidates in inputs.items():
            if any(same_file(Path(path), candidate) for candidate in candidates):
                raise ConfigError(f"{flag} {path} is the file {in_flag} names, which this command reads: writing it "
                                  f"would destroy it; write to another file")


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (through links, ``..`` and hard links alike)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def progress_printer():
    bar = ProgressBar()
    return bar, lambda fraction, text: bar.update(fraction, text)


def split_labels(args: argparse.Namespace, n: int, split: str | None = None):
    """The true labels of the first ``n`` images of ``split`` (default --split); a conditional model is scored
    against them."""

    if args.data_file:
        raise ConfigError("a conditional model is scored given the digit labels, and the course pickle has none: "
                          "use the MNIST IDX files (--data-dir)")
    return load_labels(args.data_dir, required=True)[split or args.split][:n]
