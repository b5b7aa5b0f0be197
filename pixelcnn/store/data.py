"""Colored MNIST: reading, verified download, colorization, splits and an on-disk cache.

The colorization is fixed so that every install produces the same dataset and
bits/dim are comparable: see :func:`colorize`.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import DataError
from ..paths import PROJECT_ROOT
from .files import atomic_write
from .numpy_pickle import load_numpy_pickle

Progress = Callable[[float, str], None]

CACHE_VERSION = 1
N_TRAIN = 55_000
LEVELS = 4
IMAGE_SHAPE = (28, 28, 3)
TRAIN_SEED = 0
TEST_SEED = 1

# The digest (see _digest) of the colored training and test arrays that the original MNIST files give.
# A cache is trusted only if it holds exactly these arrays, so a rewritten cache is rebuilt, whatever
# digest it claims.
COLORED_DIGEST = "0673bdad1e6ba6666344596ad58fa7a3"

MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)


@dataclass(frozen=True)
class IdxFile:
    """One IDX file: its header, the MD5 and size of the original ``.gz``, and the SHA-256 of its content."""

    name: str
    magic: int
    shape: tuple[int, ...]
    gz_md5: str
    raw_sha256: str
    gz_bytes: int = 0

    @property
    def raw_bytes(self) -> int:
        return 4 + 4 * len(self.shape) + int(np.prod(self.shape))


MNIST_FILES = {
    "train_images": IdxFile("train-images-idx3-ubyte", 2051, (60_000, 28, 28),
                            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", 9_912_422),
    "train_labels": IdxFile("train-labels-idx1-ubyte", 2049, (60_000,),
                            "d53e105ee54ea40749a09fcbcd1e9432",
                            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", 28_881),
    "test_images": IdxFile("t10k-images-idx3-ubyte", 2051, (10_000, 28, 28),
                           "9fb629c4189551a2d022fa330f9573f3",
                           "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", 1_648_877),
    "test_labels": IdxFile("t10k-labels-idx1-ubyte", 2049, (10_000,),
                           "ec29112dd5afa0611ce80d1b7f02629c",
                           "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", 4_542),
}


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """``data_dir``, else ``$PIXELCNN_DATA_DIR``, else ``data/`` in the project."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get("PIXELCNN_DATA_DIR")
    return Path(env).expanduser() if env else PROJECT_ROOT / "data"


def missing_files_message(data_dir: Path) -> str:
    names = ", ".join(f.name + ".gz" for f in MNIST_FILES.values())
    return (f"MNIST not found in {data_dir} and it could not be downloaded; put the four files "
            f"({names}) there, or point PIXELCNN_DATA_DIR / --data-dir at the folder that holds them")


def find_idx(data_dir: Path, spec: IdxFile) -> Path | None:
    """The raw or gzipped file for ``spec`` in ``data_dir``, if present."""
    for candidate in (data_dir / spec.name, data_dir / (spec.name + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def parse_idx(data: bytes, spec: IdxFile, source: str) -> np.ndarray:
    """Check an IDX file's header against ``spec`` and return its uint8 array."""
    ndim = len(spec.shape)
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{source}: too short for an IDX header ({len(data)} bytes); "
                        f"replace it with the original {spec.name}")
    magic = int.from_bytes(data[:4], "big")
    if magic != spec.magic:
        raise DataError(f"{source}: not an MNIST {spec.name} file (magic {magic}, expected {spec.magic}); "
                        f"replace it with the original")
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if dims != spec.shape:
        raise DataError(f"{source}: shape {dims}, expected {spec.shape}; replace it with the original {spec.name}")
    expected = header + int(np.prod(spec.shape))
    if len(data) != expected:
        raise DataError(f"{source}: {len(data)} bytes, expected {expected} (truncated or padded); "
                        f"delete it and fetch it again")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(spec.shape)


def read_idx_bytes(path: Path, limit: int) -> bytes:
    """The content of a raw or gzipped file, refused once it passes ``limit`` bytes: a gzip bomb is
    stopped after ``limit + 1`` bytes of output, not inflated whole."""
    try:
        with open(path, "rb") as f:
            gzipped = f.read(2) == b"\x1f\x8b"
        opener = gzip.open if gzipped else open
        with opener(path, "rb") as f:
            data = f.read(limit + 1)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path}: unreadable or corrupt ({err}); delete it and fetch it again") from None
    if len(data) > limit:
        raise DataError(f"{path}: over {limit:,} bytes, expected exactly {limit:,} (truncated or padded); "
                        f"delete it and fetch it again")
    return data


def read_idx(path: Path, spec: IdxFile) -> np.ndarray:
    """Read a raw or gzipped IDX file and check it against ``spec``: header, size and, where ``spec``
    knows it, the SHA-256 of the original content (a re-gzipped file with other pixels is refused)."""
    data = read_idx_bytes(path, spec.raw_bytes)
    array = parse_idx(data, spec, str(path))
    if spec.raw_sha256 and hashlib.sha256(data).hexdigest() != spec.raw_sha256:
        raise DataError(f"{path}: its content differs from the original MNIST {spec.name} (SHA-256 mismatch); "
                        f"delete it and fetch it again")
    return array


def _download_one(url: str, target: Path, spec: IdxFile, progress: Progress | None, timeout: float) -> None:
    """Stream ``url`` into ``target`` with :func:`atomic_write`: renamed into place only once its MD5 matches."""

    def stream(out) -> None:
        md5 = hashlib.md5()
        with urllib.request.urlopen(url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            while chunk := response.read(1 << 16):
                done += len(chunk)
                if spec.gz_bytes and done > spec.gz_bytes:
                    raise DataError(f"{url}: sends more than the {spec.gz_bytes:,} bytes of {spec.name}.gz")
                out.write(chunk)
                md5.update(chunk)
                if progress and total:
                    progress(min(done / total, 1.0), f"downloading {target.name}")
        if md5.hexdigest() != spec.gz_md5:
            raise DataError(f"{url}: checksum mismatch")

    atomic_write(target, stream)


def download_mnist(data_dir: str | os.PathLike | None = None, *, mirrors: tuple[str, ...] = MIRRORS,
                   progress: Progress | None = None, timeout: float = 30.0) -> Path:
    """Fetch whichever of the four MNIST files are missing, verified against their MD5."""
    folder = resolve_data_dir(data_dir)
    created = [parent for parent in (folder, *folder.parents) if not parent.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"cannot create the data folder {folder} ({err.strerror}); "
                        f"choose a writable one with --data-dir or PIXELCNN_DATA_DIR") from None
    for spec in MNIST_FILES.values():
        if find_idx(folder, spec):
            continue
        target = folder / (spec.name + ".gz")
        for mirror in mirrors:
            try:
                _download_one(mirror + spec.name + ".gz", target, spec, progress, timeout)
                break
            except (OSError, urllib.error.URLError, DataError, ValueError):
                continue
        else:
            _remove_if_empty(created)
            raise DataError(missing_files_message(folder))
    return folder


def _remove_if_empty(folders: list[Path]) -> None:
    """Remove the folders a failed download created, innermost first, where they are still empty: a failed
    download leaves no empty ``data/`` behind to look like a data folder."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


MIN_COLOUR_DISTANCE = 3  # L1 distance, at least, between a digit's background and stroke colours


def paint_digits(grey: np.ndarray, background: np.ndarray, stroke: np.ndarray) -> np.ndarray:
    """Grey digits (N, H, W) uint8 in colours ``background`` and ``stroke`` (N, 3): each value is
    ``rint((1 - a) * background + a * stroke)`` with ``a = grey / 255``; (N, H, W, 3) uint8."""
    a = grey[..., None] / 255.0
    return np.rint((1.0 - a) * background[:, None, None, :] + a * stroke[:, None, None, :]).astype(np.uint8)


def colorize(grey: np.ndarray, seed: int) -> np.ndarray:
    """Color grey digits (N, 28, 28) uint8 into (N, 28, 28, 3) uint8 values 0..3.

    ``default_rng(seed)`` draws a background and a foreground color per image
    (each (N, 3) in 0..3); foregrounds within 3 of their background (L1) are
    redrawn, for exactly those images, until none is. Each image is painted by
    :func:`paint_digits`.
    """
    rng = np.random.default_rng(seed)
    n = len(grey)
    bg = rng.integers(0, LEVELS, (n, 3))
    fg = rng.integers(0, LEVELS, (n, 3))
    while True:
        close = np.flatnonzero(np.abs(fg - bg).sum(axis=1) < MIN_COLOUR_DISTANCE)
        if close.size == 0:
            break
        fg[close] = rng.integers(0, LEVELS, (close.size, 3))
    out = np.empty(grey.shape + (3,), dtype=np.uint8)
    for start in range(0, n, 5000):
        chunk = slice(start, start + 5000)
        out[chunk] = paint_digits(grey[chunk], bg[chunk], fg[chunk])
    return out


def split(train: np.ndarray, test: np.ndarray) -> dict[str, np.ndarray]:
    """train: first 55,000 of the training images; val: the last 5,000; test: the test images."""
    return {"train": train[:N_TRAIN], "val": train[N_TRAIN:], "test": test}


def _fingerprint(paths: list[Path]) -> str:
    parts = []
    for p in paths:
        st = p.stat()
        parts.append(f"{p.name}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for key in ("train", "test"):
        h.update(np.ascontiguousarray(arrays[key]).data)
    return h.hexdigest()


def cache_path(data_dir: Path) -> Path:
    """Where the colored arrays are cached: the data folder if writable, else ~/.cache/pixelcnn."""
    name = f"colored-mnist-v{CACHE_VERSION}.npz"
    if _writable(data_dir):
        return data_dir / name
    tag = hashlib.sha1(str(data_dir.resolve()).encode()).hexdigest()[:10]
    base = Path(os.environ.get("PIXELCNN_CACHE_DIR") or Path.home() / ".cache" / "pixelcnn")
    return base / f"colored-mnist-v{CACHE_VERSION}-{tag}.npz"


def _read_cache(path: Path, fingerprint: str) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None if the cache is absent, stale or fails any check."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            if str(npz["fingerprint"]) != fingerprint or int(npz["version"]) != CACHE_VERSION:
                return None
            arrays = {"train": npz["train"], "test": npz["test"]}
            digest = str(npz["digest"])
    except Exception:  # any unreadable cache is rebuilt, whatever went wrong
        return None
    for key, n in (("train", 60_000), ("test", 10_000)):
        a = arrays[key]
        if a.dtype != np.uint8 or a.shape != (n, 28, 28, 3):
            return None
    if digest != COLORED_DIGEST or _digest(arrays) != digest:
        return None
    return arrays


def _write_cache(path: Path, arrays: dict[str, np.ndarray], fingerprint: str) -> None:
    """Write the cache atomically; a cache that cannot be written (a read-only folder, a full disk) is skipped."""

    def write(f) -> None:
        np.savez(f, train=arrays["train"], test=arrays["test"], version=CACHE_VERSION,
                 fingerprint=fingerprint, digest=_digest(arrays))

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, write)
    except OSError:
        pass


def _writable(folder: Path) -> bool:
    # Root passes os.access on any folder, so a folder without write bits counts as read-only too.
    return os.access(folder, os.W_OK) and bool(folder.stat().st_mode & 0o222)


def _read_checked(folder: Path, spec: IdxFile, download: bool, mirrors: tuple[str, ...],
                  progress: Progress | None) -> np.ndarray:
    """Read one IDX file; one that fails its checks is moved aside and fetched again when that is possible."""
    path = find_idx(folder, spec)
    try:
        return read_idx(path, spec)
    except DataError as err:
        if not (download and _writable(folder)):
            raise
        reason = str(err)
    os.replace(path, path.with_name(path.name + ".corrupt"))
    try:
        download_mnist(folder, mirrors=mirrors, progress=progress)
    except DataError:
        raise DataError(f"{reason} (moved aside as {path.name}.corrupt; a fresh copy could not be downloaded, "
                        f"so put the original file there)") from None
    return read_idx(find_idx(folder, spec), spec)


def load_colored_mnist(data_dir: str | os.PathLike | None = None, *, download: bool = True,
                       progress: Progress | None = None, mirrors: tuple[str, ...] = MIRRORS) -> dict[str, np.ndarray]:
    """Colored MNIST as ``{'train', 'val', 'test'}``, each uint8 (N, 28, 28, 3) in 0..3.

    Reads the IDX files from the data folder (see :func:`resolve_data_dir`),
    downloading missing ones if ``download`` (a file that fails its checks is
    moved aside as ``*.corrupt`` and fetched again); the colored arrays are
    cached on disk and the cache is checked before it is trusted.
    """
    folder = resolve_data_dir(data_dir)
    images = [MNIST_FILES["train_images"], MNIST_FILES["test_images"]]
    paths = [find_idx(folder, spec) for spec in images]
    if None in paths and not download:
        raise DataError(missing_files_message(folder))
    if download and not all(find_idx(folder, spec) for spec in MNIST_FILES.values()):
        download_mnist(folder, mirrors=mirrors, progress=progress)  # the labels too, for the digit filter
        paths = [find_idx(folder, spec) for spec in images]
    fingerprint = _fingerprint(paths)
    cache = cache_path(folder)
    arrays = _read_cache(cache, fingerprint)
    if arrays is None:
        if progress:
            progress(0.0, "coloring MNIST (once)")
        grey = [_read_checked(folder, spec, download, mirrors, progress) for spec in images]
        arrays = {"train": colorize(grey[0], TRAIN_SEED), "test": colorize(grey[1], TEST_SEED)}
        _write_cache(cache, arrays, _fingerprint([find_idx(folder, spec) for spec in images]))
    if progress:
        progress(1.0, "data ready")
    return split(arrays["train"], arrays["test"])


def load_labels(data_dir: str | os.PathLike | None = None, required: bool = False) -> dict[str, np.ndarray] | None:
    """Digit labels for the same splits as :func:`load_colored_mnist`; None if the label files are absent
    (a :class:`DataError` instead with ``required``). A damaged label file always raises a DataError."""
    folder = resolve_data_dir(data_dir)
    specs = [MNIST_FILES["train_labels"], MNIST_FILES["test_labels"]]
    paths = [find_idx(folder, spec) for spec in specs]
    if None in paths:
        if required:
            raise DataError(missing_files_message(folder))
        return None
    return split(read_idx(paths[0], specs[0]), read_idx(paths[1], specs[1]))


def load_course_pickle(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The course's ``mnist_colored.pkl``: ``{'train': (60000, 28, 28, 3), 'test': (10000, 28, 28, 3)}``.

    Loaded with an unpickler that admits numpy arrays only, so a file carrying
    code is refused before anything in it runs. Same split rule as the IDX data.
    """
    path = Path(path)
    data = load_numpy_pickle(path, "use the course's mnist_colored.pkl")
    if not isinstance(data, dict) or not {"train", "test"} <= set(data):
        raise DataError(f"{path}: expected a dict with 'train' and 'test' arrays")
    for key, n in (("train", 60_000), ("test", 10_000)):
        a = data[key]
        if not isinstance(a, np.ndarray) or a.shape != (n, 28, 28, 3):
            shape = getattr(a, "shape", type(a).__name__)
            raise DataError(f"{path}: '{key}' has shape {shape}, expected ({n}, 28, 28, 3)")
        if a.dtype.kind not in "ui" or a.min() < 0 or a.max() >= LEVELS:
            raise DataError(f"{path}: '{key}' must hold integers 0..3")
    return split(data["train"].astype(np.uint8), data["test"].astype(np.uint8))


def load_data(data_dir: str | os.PathLike | None = None, data_file: str | os.PathLike | None = None,
              progress: Progress | None = None) -> dict[str, np.ndarray]:
    """The course pickle if ``data_file`` is given, else colored MNIST from the data folder."""
    if data_file is not None:
        return load_course_pickle(data_file)
    return load_colored_mnist(data_dir, progress=progress)


def synthetic_colored_mnist(n_train: int = 256, n_val: int = 64, n_test: int = 64,
                            seed: int = 0) -> dict[str, np.ndarray]:
    """Small stand-in data for fast tests: colored blobs on a background, (N, 28, 28, 3) in 0..3."""
    rng = np.random.default_rng(seed)
    out = {}
    for key, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        yy, xx = np.mgrid[:28, :28]
        cy, cx = rng.integers(8, 20, (2, n, 1, 1))
        radius = rng.integers(4, 9, (n, 1, 1))
        grey = (((yy - cy) ** 2 + (xx - cx) ** 2) < radius ** 2).astype(np.uint8) * 255
        out[key] = colorize(grey, seed + len(out))
    return out
