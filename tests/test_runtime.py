"""Process settings the entry points apply (pixelcnn.runtime)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_dashboards_imports_are_frozen_out_of_every_collection():
    """After ``freeze_imported_objects`` a full collection (Streamlit runs one after every script run) walks a
    small fraction of what the imports created; a second call freezes nothing more."""
    code = ("import gc, torch, streamlit\n"
            "from pixelcnn.runtime import freeze_imported_objects\n"
            "before = len(gc.get_objects())\n"
            "freeze_imported_objects()\n"
            "frozen = gc.get_freeze_count()\n"
            "assert frozen > 100_000 and len(gc.get_objects()) < before / 20, (before, frozen, len(gc.get_objects()))\n"
            "junk = [[] for _ in range(1000)]\n"
            "freeze_imported_objects()\n"
            "assert gc.get_freeze_count() == frozen\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)

