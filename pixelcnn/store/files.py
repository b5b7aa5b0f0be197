"""Reading files that anyone may have placed: regular files only, up to a size bound, JSON to a bounded depth.

A run folder is read on every page rerun for every visitor, and the CLI reads
whatever path it is given, so a FIFO (a read that never returns), /dev/zero or
a 30 GB sparse file (memory), or a deeply nested JSON value (RecursionError)
must each end in one line, not in a hang, a crash or a traceback.
"""

from __future__ import annotations

import glob
import json
import math
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from ..errors import ConfigError

JSON_BYTES = 1 << 20  # a config, a job record, a results file: a few kilobytes each
JSON_DEPTH = 32


def read_bounded(path: str | os.PathLike, limit: int) -> bytes:
    """A regular file's bytes; a ConfigError (one line) for a FIFO, a device, a folder, a missing file or
    a file over ``limit`` bytes."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{path}: not a regular file")
        if info.st_size > limit:
            raise ConfigError(f"{path}: {info.st_size:,} bytes, more than the {limit:,} read here")
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as err:
        raise ConfigError(f"{path}: cannot be read ({err.strerror or err})") from None
    if len(data) > limit:  # it grew after the check
        raise ConfigError(f"{path}: more than the {limit:,} bytes read here")
    return data


def is_number(value: Any) -> bool:
    """Whether a value read from a file is a finite number (not a bool, which JSON and Python let pass)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def read_tail(path: str | os.PathLike, max_bytes: int) -> bytes:
    """The whole lines among the last ``max_bytes`` of a regular file (all of it if it is shorter); b"" for a
    FIFO, a device, a folder or a file that cannot be read."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return b""
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - max_bytes))
            tail = f.read(max_bytes)
    except OSError:
        return b""
    return tail[tail.find(b"\n") + 1:] if size > max_bytes else tail


def depth(value: Any) -> int:
    """How deeply lists and objects nest in a JSON value (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in children)
    return deepest


def parse_json(text: str | bytes, where: str, max_depth: int = JSON_DEPTH) -> Any:
    """JSON text as a value; a ConfigError naming ``where`` if it is not JSON or nests deeper than
    ``max_depth``."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ConfigError(f"{where}: JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise ConfigError(f"{where}: not valid JSON ({err})") from None
    if depth(value) > max_depth:
        raise ConfigError(f"{where}: JSON nested deeper than {max_depth} levels")
    return value


def read_json(path: str | os.PathLike, limit: int = JSON_BYTES, max_depth: int = JSON_DEPTH) -> Any:
    """A small JSON file's value, read with :func:`read_bounded` and :func:`parse_json`."""
    return parse_json(read_bounded(Path(path), limit), str(path), max_depth)


def load_npy(path: str | os.PathLike):
    """A ``.npy`` file's array, memory-mapped (read as it is used, so a large file costs no memory up front);
    a ConfigError (one line) for a file that is not a regular file, empty, an ``.npz`` archive, not ``.npy``,
    holding objects, or declaring more data than it holds."""
    import numpy as np

    where = str(path)
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{where}: not a regular file")
        with open(path, "rb") as f:
            start = f.read(6)
            if start[:2] == b"PK":
                raise ConfigError(f"{where}: an .npz archive, not an .npy file (np.save writes .npy)")
            if start != b"\x93NUMPY":
                raise ConfigError(f"{where}: not an .npy file" + (" (it is empty)" if not start else ""))
            f.seek(0)
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(f)
            offset = f.tell()
    except OSError as err:
        raise ConfigError(f"{where}: cannot be read ({err.strerror or err})") from None
    except ValueError as err:
        raise ConfigError(f"{where}: not a readable .npy header ({err})") from None
    if dtype.hasobject:
        raise ConfigError(f"{where}: holds Python objects, not numbers")
    if any(not isinstance(n, int) or n < 0 for n in shape):
        raise ConfigError(f"{where}: declares the shape {shape}, with a negative dimension: forged or damaged")
    needed = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if needed > info.st_size - offset:
        raise ConfigError(f"{where}: declares {shape} {dtype} ({needed:,} bytes) but holds "
                          f"{info.st_size - offset:,} bytes: truncated or forged")
    if needed == 0:
        return np.zeros(shape, dtype=dtype)
    return np.load(path, mmap_mode="r", allow_pickle=False)


TEMPORARY_SUFFIX = ".tmp"


def temporary_prefix(path: Path) -> str:
    """The start of the name of :func:`atomic_write`'s temporary file for ``path`` (hidden, beside it)."""
    return f".{path.name}."


def atomic_write(path: Path, write: Any) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, fsync it, then rename it into place.

    A crash at any moment leaves either the old file or the new one, never a torn one.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=temporary_prefix(path), suffix=TEMPORARY_SUFFIX, dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        tmp.chmod(0o644)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def being_written(path: Path) -> bool:
    """Whether :func:`atomic_write` is writing ``path`` now: its temporary file, not yet renamed, lies beside it."""
    path = Path(path)
    return any(path.parent.glob(glob.escape(temporary_prefix(path)) + "*" + TEMPORARY_SUFFIX))


def read_json_object(path: str | Path) -> dict[str, Any]:
    """A JSON file holding an object, or {} if it is missing, unreadable, not a small regular file, nested
    too deeply, or holds anything else (see :mod:`pixelcnn.store.files`)."""
    try:
        value = read_json(path)
    except ConfigError:
        return {}
    return value if isinstance(value, dict) else {}
