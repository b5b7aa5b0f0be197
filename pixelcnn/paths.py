"""Where the project's own folders are: the one definition of the project root."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_DIR = PROJECT_ROOT / "checkpoints"  # the trained models shipped with the project
