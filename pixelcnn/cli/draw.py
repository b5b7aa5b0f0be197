"""Sample, receptive-field, bits, predict, score: what a model draws and sees."""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from ..errors import ConfigError
from ..explain.digits import CLASSIFIER_PATH, digit_score, load_classifier
from ..explain.pixels import bits_per_value, predict
from ..explain.receptive import gradient_field
from ..figures import bits_image, field_image, image_grid, save_png
from ..models import PRESETS
from ..runtime import pick_device
from ..sampling import MAX_SAMPLES, sample
from .args import (add_colours_arg, add_data_args, add_drawing_arg, add_image_args, add_label_args, add_model_args, asked_labels,
    check_file_outputs, int_in, load_drawing, load_image,
    load_model, load_npy_images, nonnegative_int, positive_float, progress_printer, seed_value)
from .outputs import save_npy

FMT = argparse.RawDescriptionHelpFormatter




def score_text(result: dict, reference: dict) -> str:
    """One line: the digit score, its reference points and the digits read."""
    refs = ", ".join(f"{name} {value:.2f}" for name, value in reference.items())
    digits = " ".join(f"{d}:{count}" for d, count in enumerate(result["histogram"]))
    return f"digit score: {result['score']:.2f} of {result['n']} images ({refs}); digits read: {digits}"


def add_sample_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample", help="draw a 10x10 grid of samples", formatter_class=FMT,
                       epilog="examples:\n  python -m pixelcnn sample --checkpoint checkpoints/paper/checkpoint.pt "
                              "--n 100 --seed 0 --out samples.png\n"
                              "  python -m pixelcnn sample --checkpoint checkpoints/conditional --per-digit "
                              "--guidance 1 --out digits.png\n"
                              "  python -m pixelcnn sample --preset tiny --init-seed 0 --n 16 --out random.png")
    add_model_args(p)
    p.add_argument("--n", type=int_in(1, MAX_SAMPLES), default=100, help="number of samples (default 100)")
    p.add_argument("--seed", type=seed_value, default=0, help="sampling seed (default 0)")
    p.add_argument("--method", choices=["cached", "naive"], default="cached",
                   help="cached (fast, default) or naive (one full forward pass per pixel: slow)")
    p.add_argument("--temperature", type=positive_float, default=1.0)
    add_label_args(p)
    p.add_argument("--out", required=True, help="PNG of the grid")
    p.add_argument("--npy", help="also save the samples, uint8 (n, 28, 28, 3), as .npy")
    p.add_argument("--device", default="auto")
    p.set_defaults(handler=cmd_sample)


def cmd_sample(args: argparse.Namespace) -> int:
    check_file_outputs(args)
    model = load_model(args, pick_device(args.device))
    bar, _ = progress_printer()
    start = time.perf_counter()
    labels = asked_labels(args, model, args.n)
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


def add_receptive_field_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("receptive-field", help="gradient receptive field of one conditional", formatter_class=FMT,
                       epilog="example:\n  python -m pixelcnn receptive-field --row 14 --col 14 --channel 0 "
                              "--preset paper --init-seed 0 --out field.png")
    add_model_args(p)
    p.add_argument("--row", type=nonnegative_int, default=14)
    p.add_argument("--col", type=nonnegative_int, default=14)
    p.add_argument("--channel", type=nonnegative_int, default=0)
    p.add_argument("--images", type=int_in(1, 64), default=4,
                   help="average over this many random input images (default 4)")
    p.add_argument("--out", required=True, help="PNG of the 28x28 field, target in red")
    p.add_argument("--npy", help="also save the field, float (28, 28), as .npy")
    p.add_argument("--linear", action="store_true", help="brightness linear in |gradient| (default: log scale)")
    p.set_defaults(handler=cmd_receptive_field)


def cmd_receptive_field(args: argparse.Namespace) -> int:
    check_file_outputs(args)
    model = load_model(args)
    cfg = model.config
    rng = np.random.default_rng(0)
    images = rng.integers(0, cfg.levels, (args.images, cfg.image_size, cfg.image_size, cfg.channels))
    field = gradient_field(model, images, args.row, args.col, args.channel)
    save_png(field_image(field, args.row, args.col, log=not args.linear), args.out)
    if args.npy:
        save_npy(field, args.npy)
    print(f"nonzero positions: {int((field > 0).sum())} -> {args.out}")
    return 0


def add_bits_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bits", help="where the bits go: -log2 p of every value of one image", formatter_class=FMT,
                       epilog="examples:\n  python -m pixelcnn bits --checkpoint checkpoints/paper --split test "
                              "--index 0 --out heat.png\n"
                              "  python -m pixelcnn bits --checkpoint checkpoints/rgb --image digit.npy --npy bits.npy\n"
                              "\nThe last line is the image's bits/dim, what evaluate reports for that image alone.")
    add_model_args(p)
    add_image_args(p)
    p.add_argument("--out", help="PNG of the bits per value: the three channels and their sum")
    p.add_argument("--npy", help="save the bits, float32 (28, 28, 3), as .npy")
    add_data_args(p)
    p.set_defaults(handler=cmd_bits)


def cmd_bits(args: argparse.Namespace) -> int:
    check_file_outputs(args)
    model = load_model(args)
    bits = bits_per_value(model, load_image(args))
    if args.out:
        save_png(bits_image(bits), args.out)
    if args.npy:
        save_npy(bits, args.npy)
    per_channel = ", ".join(f"{name} {value:.4f}" for name, value in zip("RGB", bits.mean(axis=(0, 1))))
    print(f"bits/dim per channel: {per_channel}")
    print(f"bits/dim: {bits.mean():.4f}")
    return 0


def add_predict_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="what the model predicts at one pixel of an image", formatter_class=FMT,
                       epilog="example:\n  python -m pixelcnn predict --checkpoint checkpoints/paper --split test "
                              "--index 0 --row 14 --col 14 --json")
    add_model_args(p)
    add_image_args(p)
    p.add_argument("--row", type=nonnegative_int, required=True)
    p.add_argument("--col", type=nonnegative_int, required=True)
    p.add_argument("--temperature", type=positive_float, default=1.0,
                   help="the distributions as sampling at this temperature draws from (bits stay at 1)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    add_data_args(p)
    p.set_defaults(handler=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    model = load_model(args)
    result = predict(model, load_image(args), args.row, args.col, args.temperature)
    if args.json:
        print(json.dumps(result))
        return 0
    for channel, (value, probs, bits) in enumerate(zip(result["values"], result["probabilities"], result["bits"])):
        bars = "  ".join(f"{level}: {p:.3f}" for level, p in enumerate(probs))
        print(f"{'RGB'[channel]} (true {value}, {bits:.3f} bits)  {bars}")
    return 0


def add_score_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="do samples look like digits? the digit score of a model or of images",
                       formatter_class=FMT,
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
    add_drawing_arg(source)
    add_colours_arg(p)
    p.add_argument("--init-seed", type=seed_value, default=0, help="seed of the random weights (default 0)")
    p.add_argument("--n", type=int_in(1, MAX_SAMPLES), default=100, help="samples to draw (default 100)")
    p.add_argument("--seed", type=seed_value, default=0, help="sampling seed (default 0)")
    p.add_argument("--temperature", type=positive_float, default=1.0)
    add_label_args(p)
    p.add_argument("--classifier", help="the classifier's weights (default: checkpoints/digits/classifier.pt)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.set_defaults(handler=cmd_score)


def cmd_score(args: argparse.Namespace) -> int:
    classifier, record = load_classifier(args.classifier or CLASSIFIER_PATH)
    labels = None
    if args.images or args.drawing:
        if args.digit is not None or args.per_digit:
            raise ConfigError("--digit and --per-digit choose what a model draws; they do not apply to --images")
        images = load_npy_images(args.images, batch=True) if args.images else load_drawing(args)[None]
    else:
        model = load_model(args)
        labels = asked_labels(args, model, args.n)
        images = sample(model, args.n, seed=args.seed, temperature=args.temperature, labels=labels,
                        guidance=args.guidance)
    result = digit_score(classifier, images, asked=labels)
    reference = record.get("reference", {})
    if args.json:
        print(json.dumps({**result, "reference": reference}))
    else:
        print(score_text(result, reference))
        if labels is not None:
            print(f"read as the digit asked for: {result['asked_for']:.2f} (guidance {args.guidance:g}, "
                  f"temperature {args.temperature:g})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the sample, receptive-field, bits, predict, score commands to the command line."""
    add_sample_parser(sub)
    add_receptive_field_parser(sub)
    add_bits_parser(sub)
    add_predict_parser(sub)
    add_score_parser(sub)
