"""Report, results, notebook: the exercise's deliverables and the README's tables."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..explain.receptive import gradient_field
from ..explain.results import (GUIDANCE_SHOWN, RESULTS_NAME, asked_for_samples, best_asked_for, conditional_table,
                               measure, read_results, recorded_asked_for, results_table, validation_by_minutes_table,
                               validation_table, write_results)
from ..figures import curves_svg, field_image, image_grid, save_png
from ..models import random_model
from ..notebooks.writer import write_notebook
from ..paths import PROJECT_ROOT
from ..sampling import sample
from ..store.data import load_data
from ..store.files import atomic_write
from ..store.metrics import METRICS_NAME, curves, read_events
from .args import add_data_args, load_servable, positive_int, seed_value, split_labels
from .outputs import check_output_path

FMT = argparse.RawDescriptionHelpFormatter
BEST_PER_DIGIT = "samples-per-digit-best.png"


def add_report_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="the exercise's images for a checkpoint", formatter_class=FMT,
                       epilog="example:\n  python -m pixelcnn report --checkpoint checkpoints/paper\n\n"
                              "Writes curves.svg (train and validation bits/dim), samples.png (100 samples),\n"
                              "field-random.png and field-trained.png (receptive field at (14, 14, 0)),\n"
                              "and results.json (test bits/dim on all 10,000 test images and on the first 500).\n"
                              "A conditional model also gets samples-per-digit-w0.png, -w1.png, -w3.png (one\n"
                              "row per digit at guidance 0, 1, 3) and samples-per-digit-best.png (at the guidance\n"
                              "and temperature where the most were read as the digit asked for).")
    p.add_argument("--checkpoint", required=True, help="a run folder (or its checkpoint.pt)")
    p.add_argument("--out", help="folder for the images (default: the checkpoint's folder)")
    p.add_argument("--seed", type=seed_value, default=0, help="sampling seed (default 0)")
    p.add_argument("--init-seed", type=seed_value, default=0, help="seed of the random weights (default 0)")
    p.add_argument("--no-measure", action="store_true", help="images only: skip results.json (test bits/dim)")
    add_data_args(p)
    p.set_defaults(handler=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
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
        test = load_data(args.data_dir, args.data_file)["test"]
        results = measure(ckpt, test, samples, split_labels(args, len(test), "test") if cfg.classes else None)
        write_results(out, results)
        written.append(f"{RESULTS_NAME} (test {results['test_bits_per_dim']:.4f} bits/dim, "
                       f"digit score {results['digit_score']:.2f})")
        if cfg.classes:
            written.append(save_best_per_digit(ckpt.model, out, args.seed))
    print(f"wrote to {out}: " + ", ".join(written))
    return 0


def save_best_per_digit(model, out: Path, seed: int) -> str:
    """One row per digit at the guidance and temperature where ``report`` read the most asked-for digits
    (with seed 0, the very samples it scored there); what it wrote."""
    w, t = best_asked_for(recorded_asked_for(out))
    images, _ = asked_for_samples(model, float(w), seed=seed, temperature=float(t))
    save_png(image_grid(images, ncols=len(images) // model.config.classes), out / BEST_PER_DIGIT)
    return f"{BEST_PER_DIGIT} (guidance {w}, T = {t})"


def add_results_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("results", help="the README's results table from shipped models' results.json",
                       formatter_class=FMT,
                       epilog="example:\n  python -m pixelcnn results checkpoints/paper checkpoints/lecture")
    p.add_argument("folders", nargs="+", help="run folders measured by `report`")
    view = p.add_mutually_exclusive_group()
    view.add_argument("--val-every", type=positive_int,
                      help="instead, validation bits/dim at every N-th epoch, one column per folder")
    view.add_argument("--val-every-minutes", type=positive_int, metavar="M",
                      help="instead, validation bits/dim at every M-th minute of training, one column per folder "
                           "(runs trained side by side for equal minutes: an equal-cost comparison)")
    view.add_argument("--conditional", action="store_true",
                      help="instead, the readings of conditional models (given the label, no label, the mixture, "
                           "the generative classifier, the asked-for digit score at each guidance)")
    p.set_defaults(handler=cmd_results)


def cmd_results(args: argparse.Namespace) -> int:
    if args.val_every:
        print(validation_table([Path(f) for f in args.folders], args.val_every))
        return 0
    if args.val_every_minutes:
        print(validation_by_minutes_table([Path(f) for f in args.folders], args.val_every_minutes))
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


def add_notebook_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("notebook", help="the exercise as a documented Jupyter notebook", formatter_class=FMT,
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
    p.add_argument("--steps", type=positive_int, default=300, help="with --train: optimizer steps (default 300)")
    p.add_argument("--test-limit", type=positive_int, help="test images for the test bits/dim (default: all)")
    p.set_defaults(handler=cmd_notebook)


def cmd_notebook(args: argparse.Namespace) -> int:
    out = check_output_path(args.out, "--out")
    parameters = {"MODE": "train" if args.train else "shipped", "PRESET": args.preset, "STEPS": args.steps,
                  "TEST_LIMIT": args.test_limit}
    start = time.perf_counter()
    notebook = write_notebook(out, parameters, run=args.execute, workdir=PROJECT_ROOT)
    cells = len(notebook["cells"])
    done = f"executed in {time.perf_counter() - start:.0f} s" if args.execute else "not executed (open it and run it)"
    print(f"wrote {out}: {cells} cells, {done}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the report, results, notebook commands to the command line."""
    add_report_parser(sub)
    add_results_parser(sub)
    add_notebook_parser(sub)
