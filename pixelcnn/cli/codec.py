"""Compress, decompress: bits are bytes."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ..errors import ConfigError
from ..explain.codec import compress, decompress
from ..figures import image_grid, save_png
from ..store.data import load_data
from ..store.files import atomic_write, read_bounded
from .args import (add_colours_arg, add_data_args, add_drawing_arg, check_file_outputs, load_drawing, load_npy_images, load_servable, nonnegative_int, positive_int, progress_printer,
    split_labels)
from .outputs import save_npy

FMT = argparse.RawDescriptionHelpFormatter




COMPRESSED_BYTES = 1 << 30  # a compressed file that decompress reads whole


def add_compress_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compress", help="bits are bytes: compress images with a model (lossless)",
                       formatter_class=FMT,
                       epilog="examples:\n  python -m pixelcnn compress --checkpoint checkpoints/paper --index 0 --out one.pxz\n"
                              "  python -m pixelcnn compress --checkpoint checkpoints/paper --split test --out test.pxz\n"
                              "  python -m pixelcnn compress --checkpoint checkpoints/paper --images samples.npy --out s.pxz\n"
                              "\nPrints the file's size in bits/dim beside -log2 p(x) under the model (what bits and\n"
                              "evaluate report) and beside PNG, gzip, bzip2 and lzma of the same images. A conditional\n"
                              "model codes test images given their label (stored in the file).")
    p.add_argument("--checkpoint", required=True, help="a checkpoint file or run folder")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--index", type=nonnegative_int, help="one image of --split (default: test) by index")
    what.add_argument("--images", help="a .npy of colored images (N, 28, 28, 3) or one (28, 28, 3), values 0..3")
    add_drawing_arg(what)
    what.add_argument("--all", action="store_true", help="the whole --split (see --limit)")
    p.add_argument("--split", choices=["train", "val", "test"], default="test")
    p.add_argument("--limit", type=positive_int, help="with --all: only the first N images")
    add_colours_arg(p)
    p.add_argument("--out", required=True, help=f"the compressed file (e.g. test{'.pxz'})")
    p.add_argument("--json", action="store_true", help="print the sizes as one JSON object")
    add_data_args(p)
    p.set_defaults(handler=cmd_compress)


def cmd_compress(args: argparse.Namespace) -> int:
    check_file_outputs(args)
    ckpt = load_servable(args.checkpoint)
    labels = None
    if args.images:
        images = load_npy_images(args.images, batch=None)
    elif args.drawing:
        images = load_drawing(args)[None]
    else:
        split = load_data(args.data_dir, args.data_file)[args.split]
        chosen = slice(args.index, args.index + 1) if args.index is not None else slice(0, args.limit)
        if args.index is not None and args.index >= len(split):
            raise ConfigError(f"--index {args.index} is past the {len(split)} images of {args.split}")
        images = split[chosen]
        if ckpt.config.classes:
            labels = split_labels(args, len(split))[chosen]
    bar, _ = progress_printer()
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


def add_decompress_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("decompress", help="the images of a compressed file, bit for bit", formatter_class=FMT,
                       epilog="example:\n  python -m pixelcnn decompress --checkpoint checkpoints/paper one.pxz "
                              "--npy one.npy --png one.png\n\nA file made with another model, a damaged "
                              "or a foreign file is refused with one line (exit 2).")
    p.add_argument("--checkpoint", required=True, help="the checkpoint the file was compressed with")
    p.add_argument("file", help="a file written by compress")
    p.add_argument("--npy", help="write the images, uint8 (N, 28, 28, 3), as .npy")
    p.add_argument("--png", help="write the images as a PNG (a grid of 10 a row)")
    p.set_defaults(handler=cmd_decompress)


def cmd_decompress(args: argparse.Namespace) -> int:
    if not (args.npy or args.png):
        raise ConfigError("say where the images go: --npy FILE and/or --png FILE")
    check_file_outputs(args)
    ckpt = load_servable(args.checkpoint)
    data = read_bounded(args.file, COMPRESSED_BYTES)
    bar, _ = progress_printer()
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


def register(sub: argparse._SubParsersAction) -> None:
    """Add the compress, decompress commands to the command line."""
    add_compress_parser(sub)
    add_decompress_parser(sub)
