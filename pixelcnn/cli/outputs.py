"""Output paths of the command line: checked before any work, written whole or not at all."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..store.files import atomic_write


def _existing_ancestor(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def check_output_path(path: str | None, flag: str, *, folder: bool = False) -> Path:
    """``path`` as an output file (or, with ``folder``, a folder that may exist or be created).

    Raises a one-line :class:`ConfigError` for what could not be written: an
    empty name, a folder where a file is wanted or the reverse, a missing
    parent folder, a read-only place.
    """
    what = "folder" if folder else "file"
    if path is None or not str(path).strip():
        raise ConfigError(f"{flag} is empty; name a {what}")
    target = Path(path).expanduser()
    if folder:
        if target.exists() and not target.is_dir():
            raise ConfigError(f"{flag} {path} is a file; choose a folder")
        place = _existing_ancestor(target)
    else:
        if target.is_dir() or str(path).endswith(("/", os.sep)):
            raise ConfigError(f"{flag} {path} is a folder; name a file in it")
        place = target.parent
        if not place.is_dir():
            raise ConfigError(f"{flag} {path}: the folder {place} does not exist; create it first")
    if not os.access(place, os.W_OK) or not _can_create_in(place):
        raise ConfigError(f"{flag} {path}: {place} is not writable (read-only?); choose another place")
    return target


def _can_create_in(folder: Path) -> bool:
    """Whether a file can be created in ``folder``, tried for real: permission bits say yes to root on
    ``/proc`` or a read-only mount."""
    import tempfile

    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".pixelcnn-probe-"):
            return True
    except OSError:
        return False


def save_npy(array: np.ndarray, path: str | os.PathLike) -> None:
    """Save ``array`` to exactly ``path`` (``np.save`` would append ``.npy``), atomically."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    atomic_write(Path(path), lambda f: f.write(buffer.getvalue()))
