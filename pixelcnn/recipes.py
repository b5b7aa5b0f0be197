"""Re-make the shipped models in one call: every training of ``checkpoints/`` side by side on one
accelerator, resumable, then ``report`` on each, and each model's folder packed into one archive (the
device machine returns a few files, not folders).

    python -m pixelcnn.recipes --out OUT [--only paper gated] [--dry-run]

Run it again with the same ``--out`` after an interruption: a run that has a
checkpoint resumes (its schedule continues), a finished one is only reported.
The recipes are the training commands; the targets they aim at are in the
README (issue "Better models").
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
from pathlib import Path

COMMON = ["--lr-schedule", "cosine", "--grad-clip", "1.0", "--amp", "--device", "cuda", "--live-samples", "0",
          "--checkpoint-minutes", "1"]
RECIPES: dict[str, list[str]] = {
    "paper": ["--preset", "paper", "--epochs", "60", "--batch-size", "128", "--lr", "1e-3"],
    "gated": ["--preset", "gated", "--hidden", "96", "--n-blocks", "12", "--epochs", "60", "--batch-size", "128",
              "--lr", "1e-3"],
    "rgb": ["--preset", "rgb", "--epochs", "40", "--batch-size", "128", "--lr", "1e-3"],
    "lecture": ["--preset", "lecture", "--epochs", "60", "--batch-size", "128", "--lr", "1e-3"],
}
KEPT = ("checkpoint.pt", "config.json", "metrics.jsonl", "results.json", "curves.svg", "samples.png",
        "field-random.png", "field-trained.png")


def train_command(name: str, folder: Path) -> list[str]:
    """The training command of one recipe: a fresh run, or ``--resume`` where a checkpoint exists."""
    base = [sys.executable, "-m", "pixelcnn", "train", "--out", str(folder)]
    if (folder / "checkpoint.pt").is_file():
        return base + ["--resume"]
    return base + RECIPES[name] + COMMON


def pack(folder: Path, archive: Path) -> None:
    """The files a shipped model keeps, as one tar archive."""
    with tarfile.open(archive, "w") as tar:
        for name in KEPT:
            if (folder / name).is_file():
                tar.add(folder / name, arcname=f"{folder.name}/{name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pixelcnn.recipes", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder for the runs and the archives")
    parser.add_argument("--only", nargs="+", choices=list(RECIPES), default=list(RECIPES))
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    args = parser.parse_args(argv)
    out = Path(args.out)
    runs = {name: out / "runs" / name for name in args.only}
    commands = {name: train_command(name, folder) for name, folder in runs.items()}
    if args.dry_run:
        for command in commands.values():
            print(" ".join(command))
        return 0
    for folder in runs.values():
        folder.parent.mkdir(parents=True, exist_ok=True)
    jobs = {name: subprocess.Popen(command) for name, command in commands.items()}  # side by side on one GPU
    failed = [name for name, job in jobs.items() if job.wait() != 0]
    for name, folder in runs.items():
        if name in failed:
            continue
        subprocess.run([sys.executable, "-m", "pixelcnn", "report", "--checkpoint", str(folder)], check=True)
        pack(folder, out / f"{name}.tar")
    print(f"packed: {', '.join(n for n in runs if n not in failed) or 'nothing'}; failed: {', '.join(failed) or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
