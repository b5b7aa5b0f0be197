"""Re-make the shipped models in one call, on a GPU or on the CPU: every training of ``checkpoints/``,
resumable, then ``report`` on each, and each model's folder packed into one archive (the device machine
returns a few files, not folders).

    python -m pixelcnn.recipes --out OUT [--only paper gated] [--minutes 120] [--device cpu] [--dry-run]

Before it starts it prints what each training will do here: the images/s it
measures on this machine, and the steps, epochs and time the budget comes to.
With ``--minutes`` each model trains for that long (the cosine schedule follows
the clock) instead of its epochs. On a GPU the trainings run side by side; on
the CPU one after another, each with every core.

Run it again with the same ``--out`` after an interruption, a kill at any
moment included: a run that has a checkpoint resumes (its schedule continues),
a finished one is only reported.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
from pathlib import Path

from .errors import PixelCNNError
from .training.config import train_command

COMMON = ["--lr-schedule", "cosine", "--grad-clip", "1.0", "--amp", "--live-samples", "0",
          "--checkpoint-minutes", "1"]
RECIPES: dict[str, list[str]] = {
    "paper": ["--preset", "paper", "--epochs", "60", "--batch-size", "128", "--lr", "1e-3"],
    "gated": ["--preset", "gated", "--hidden", "96", "--n-blocks", "12", "--epochs", "60", "--batch-size", "128",
              "--lr", "1e-3"],
    "rgb": ["--preset", "rgb", "--epochs", "40", "--batch-size", "128", "--lr", "1e-3"],
    "lecture": ["--preset", "lecture", "--epochs", "60", "--batch-size", "128", "--lr", "1e-3"],
    # The class-conditional model at paper's width (the CPU-trained shipped one has the live preset's 96).
    "conditional": ["--preset", "paper", "--classes", "10", "--epochs", "60", "--batch-size", "128", "--lr", "1e-3"],
}
KEPT = ("checkpoint.pt", "config.json", "metrics.jsonl", "results.json", "curves.svg", "samples.png",
        "field-random.png", "field-trained.png")


def recipe_command(name: str, folder: Path, device: str = "cuda", minutes: float | None = None) -> list[str]:
    """The training command of one recipe on ``device``: a fresh run, with ``minutes`` in place of its epochs
    if given, or ``--resume`` where a checkpoint exists."""
    if (folder / "checkpoint.pt").is_file():
        return train_command(folder, "--resume")
    recipe = RECIPES[name]
    if minutes is not None:
        at = recipe.index("--epochs")
        recipe = recipe[:at] + ["--minutes", f"{minutes:g}"] + recipe[at + 2:]
    return train_command(folder, *recipe, *COMMON, "--device", device)


def plan_line(name: str, command: list[str], device: str) -> str:
    """What one recipe will do here: a fresh run's measured images/s and what its budget comes to, or the
    resume of a run already under way."""
    from .cli.train import parse_train_command, train_configs
    from .training.speed import expect, format_minutes, measure_training_speed

    if "--resume" in command:
        return f"{name}: resumes its run in {command[4]}, its schedule continuing"
    model_config, config = train_configs(parse_train_command(command[4:]))
    images_per_s = measure_training_speed(model_config, config, device=device)
    what = expect(config, images_per_s)
    return (f"{name}: {images_per_s:.1f} images/s measured on {device}, so {what.steps:,} steps "
            f"({what.epochs:.1f} epochs) in {format_minutes(what.seconds)}")


def pack(folder: Path, archive: Path) -> None:
    """The files a shipped model keeps, as one tar archive."""
    with tarfile.open(archive, "w") as tar:
        for name in KEPT:
            if (folder / name).is_file():
                tar.add(folder / name, arcname=f"{folder.name}/{name}")


def run_all(commands: dict[str, list[str]], side_by_side: bool) -> list[str]:
    """Run the trainings, side by side or one after another; the names of those that failed."""
    if side_by_side:
        jobs = {name: subprocess.Popen(command) for name, command in commands.items()}
        return [name for name, job in jobs.items() if job.wait() != 0]
    return [name for name, command in commands.items() if subprocess.run(command).returncode != 0]


def main(argv: list[str] | None = None) -> int:
    from .cli.outputs import check_output_path
    from .runtime import pick_device

    parser = argparse.ArgumentParser(prog="python -m pixelcnn.recipes", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder for the runs and the archives")
    parser.add_argument("--only", nargs="+", choices=list(RECIPES), default=list(RECIPES))
    parser.add_argument("--minutes", type=float, help="train each model this many minutes instead of its epochs")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="auto: cuda if there is one, else cpu (default auto)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and the commands only")
    parser.add_argument("--pack-to", help="folder for the archives (default: --out); on the device machine "
                                          "$OUT, whose files come back")
    parser.add_argument("--compile", action="store_true", help="train through torch.compile (worth it on a GPU "
                                                                "for runs longer than its minute of compiling)")
    args = parser.parse_args(argv)
    try:
        if args.minutes is not None and not 0 < args.minutes <= 7 * 24 * 60:
            raise PixelCNNError(f"--minutes must be above 0 and at most a week, got {args.minutes:g}")
        out = check_output_path(args.out, "--out", folder=True)
        packs = check_output_path(args.pack_to, "--pack-to", folder=True) if args.pack_to else out
        device = pick_device(args.device).type
        runs = {name: out / "runs" / name for name in args.only}
        commands = {name: recipe_command(name, folder, device, args.minutes) + (["--compile"] if args.compile else [])
                    for name, folder in runs.items()}
        for name, command in commands.items():
            print(plan_line(name, command, device), flush=True)
        if args.dry_run:
            for command in commands.values():
                print(" ".join(command))
            return 0
        for folder in runs.values():
            folder.parent.mkdir(parents=True, exist_ok=True)
    except (PixelCNNError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    failed = run_all(commands, side_by_side=device == "cuda")
    for name, folder in runs.items():
        if name in failed:
            continue
        subprocess.run([sys.executable, "-m", "pixelcnn", "report", "--checkpoint", str(folder)], check=True)
        packs.mkdir(parents=True, exist_ok=True)
        pack(folder, packs / f"{name}.tar")
    print(f"packed: {', '.join(n for n in runs if n not in failed) or 'nothing'}; failed: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
