"""The command line: ``python -m pixelcnn COMMAND``, assembled from the command groups of :mod:`pixelcnn.cli`.

    data, train, evaluate, posterior, classifier     cli/train.py
    sample, receptive-field, bits, predict, score    cli/draw.py
    compress, decompress                             cli/codec.py
    report, results, notebook                        cli/report.py

Bad arguments or input print one line on stderr and exit with code 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .cli import codec, draw, report, train
from .cli.args import EXIT_USAGE, Parser
from .errors import PixelCNNError
from .runtime import prepare_cpu

INTERACTIVE_COMMANDS = {"sample", "receptive-field", "bits", "predict", "score", "compress", "decompress"}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m pixelcnn", description="PixelCNN on colored MNIST.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for group in (train, draw, codec, report):
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    prepare_cpu(interactive=args.command in INTERACTIVE_COMMANDS)
    try:
        return args.handler(args)
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
