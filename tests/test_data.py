import gzip
import hashlib
import http.server
import pickle
import shutil
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from pixelcnn.store import data as data_mod
from pixelcnn.store.data import (MNIST_FILES, IdxFile, cache_path, colorize, download_mnist, load_colored_mnist,
                           load_course_pickle, read_idx, split)
from pixelcnn.errors import DataError


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


SMALL = IdxFile("small-images-idx3-ubyte", 2051, (5, 28, 28), "", "")


def test_read_idx_raw_and_gzip(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28)).astype(np.uint8)
    raw = tmp_path / "raw"
    raw.write_bytes(idx_bytes(images, 2051))
    gz = tmp_path / "raw.gz"
    gz.write_bytes(gzip.compress(idx_bytes(images, 2051)))
    assert np.array_equal(read_idx(raw, SMALL), images)
    assert np.array_equal(read_idx(gz, SMALL), images)


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:-10], "truncated"),
    (lambda b: b[:6], "too short"),
    (lambda b: (2049).to_bytes(4, "big") + b[4:], "magic"),
    (lambda b: b[:4] + (6).to_bytes(4, "big") + b[8:], "shape"),
    (lambda b: b + b"xx", "truncated or padded"),
    (lambda b: b"\x1f\x8b" + b[2:100], "corrupt"),
])
def test_read_idx_rejects_damaged_files(tmp_path, damage, message):
    images = np.zeros((5, 28, 28), dtype=np.uint8)
    path = tmp_path / "bad"
    path.write_bytes(damage(idx_bytes(images, 2051)))
    with pytest.raises(DataError, match=message) as info:
        read_idx(path, SMALL)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def reference_colorize(grey: np.ndarray, seed: int) -> np.ndarray:
    """The issue's recipe, written out step by step, image by image."""
    rng = np.random.default_rng(seed)
    n = len(grey)
    bg = rng.integers(0, 4, (n, 3))
    fg = rng.integers(0, 4, (n, 3))
    while True:
        bad = [i for i in range(n) if np.abs(fg[i] - bg[i]).sum() < 3]
        if not bad:
            break
        fg[bad] = rng.integers(0, 4, (len(bad), 3))
    out = np.zeros((n, 28, 28, 3), dtype=np.uint8)
    for i in range(n):
        a = grey[i].astype(np.float64) / 255
        for ch in range(3):
            out[i, :, :, ch] = np.rint((1 - a) * bg[i, ch] + a * fg[i, ch])
    return out


def test_colorize_follows_the_recipe():
    grey = np.random.default_rng(3).integers(0, 256, (300, 28, 28)).astype(np.uint8)
    colored = colorize(grey, seed=5)
    assert colored.dtype == np.uint8 and colored.shape == (300, 28, 28, 3)
    assert np.array_equal(colored, reference_colorize(grey, 5))
    assert colored.max() <= 3


def test_colorize_background_and_stroke_differ():
    grey = np.zeros((200, 28, 28), dtype=np.uint8)
    grey[:, 10:18, 10:18] = 255
    colored = colorize(grey, 0).astype(int)
    bg, fg = colored[:, 0, 0], colored[:, 14, 14]
    assert (np.abs(fg - bg).sum(axis=1) >= 3).all()


def test_split_sizes():
    train = np.zeros((60_000, 1), dtype=np.uint8)
    test = np.zeros((10_000, 1), dtype=np.uint8)
    parts = split(train, test)
    assert {k: len(v) for k, v in parts.items()} == {"train": 55_000, "val": 5_000, "test": 10_000}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def mirrors(tmp_path, mnist_dir):
    """Three loopback mirrors: one serving a corrupted file, one with nothing (404s), one good."""
    roots = {name: tmp_path / name for name in ("corrupt", "empty", "good")}
    for root in roots.values():
        root.mkdir()
    for spec in MNIST_FILES.values():
        shutil.copy(mnist_dir / (spec.name + ".gz"), roots["good"] / (spec.name + ".gz"))
        damaged = bytearray((mnist_dir / (spec.name + ".gz")).read_bytes())
        damaged[len(damaged) // 2] ^= 0xFF
        (roots["corrupt"] / (spec.name + ".gz")).write_bytes(bytes(damaged))
    servers, urls = [], {}
    for name, root in roots.items():
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        urls[name] = f"http://127.0.0.1:{server.server_address[1]}/"
    yield urls
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_download_skips_corrupt_and_missing_mirrors(tmp_path, mirrors, mnist_dir):
    target = tmp_path / "data"
    seen = []
    download_mnist(target, mirrors=(mirrors["corrupt"], mirrors["empty"], mirrors["good"]),
                   progress=lambda fraction, text: seen.append(fraction))
    for spec in MNIST_FILES.values():
        got = (target / (spec.name + ".gz")).read_bytes()
        assert hashlib.md5(got).hexdigest() == spec.gz_md5
    assert seen and max(seen) == 1.0
    assert sorted(p.name for p in target.iterdir()) == sorted(spec.name + ".gz" for spec in MNIST_FILES.values())


@pytest.mark.slow
def test_download_offline_message_and_nothing_left_behind(tmp_path, mirrors):
    """Lecture finding: a failed download left an empty data/ folder behind; one that was there stays."""
    target = tmp_path / "new" / "data"
    with pytest.raises(DataError, match="put the four files") as info:
        download_mnist(target, mirrors=(mirrors["corrupt"], mirrors["empty"]))
    assert str(target) in str(info.value)
    assert not (tmp_path / "new").exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    with pytest.raises(DataError):
        download_mnist(kept, mirrors=(mirrors["empty"],))
    assert kept.is_dir() and list(kept.iterdir()) == []


def copy_of_mnist(mnist_dir: Path, folder: Path) -> Path:
    """A writable folder holding copies of the four real MNIST files (tests must not write to ../shared)."""
    folder.mkdir()
    for spec in MNIST_FILES.values():
        shutil.copy(mnist_dir / (spec.name + ".gz"), folder)
    return folder


@pytest.mark.slow
def test_load_uses_and_checks_the_cache(tmp_path, mnist_dir, monkeypatch):
    folder = copy_of_mnist(mnist_dir, tmp_path / "data")
    first = load_colored_mnist(folder)
    assert {k: v.shape for k, v in first.items()} == {
        "train": (55_000, 28, 28, 3), "val": (5_000, 28, 28, 3), "test": (10_000, 28, 28, 3)}
    cache = cache_path(folder)
    assert cache.exists()

    def fail(*args, **kwargs):
        raise AssertionError("colorize ran although the cache was valid")

    monkeypatch.setattr(data_mod, "colorize", fail)
    second = load_colored_mnist(folder)
    assert all(np.array_equal(first[k], second[k]) for k in first)

    monkeypatch.undo()
    raw = bytearray(cache.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    cache.write_bytes(bytes(raw))
    rebuilt = load_colored_mnist(folder)
    assert all(np.array_equal(first[k], rebuilt[k]) for k in first)


@pytest.mark.slow
def test_real_dataset_is_reproducible(mnist_dir):
    """Every install must color MNIST identically: the digest of the arrays is pinned."""
    data = load_colored_mnist(mnist_dir, download=False)
    h = hashlib.sha256()
    for key in ("train", "val", "test"):
        h.update(data[key].tobytes())
    assert h.hexdigest() == REAL_DIGEST
    grey = read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz", MNIST_FILES["test_images"])
    assert np.array_equal(data["test"][:500], reference_colorize(grey, 1)[:500])


REAL_DIGEST = "03748b896be366a485665c2b6287d8e01252d26231d37be0d46116b41cbb3c95"


def test_missing_files_without_download(tmp_path):
    with pytest.raises(DataError, match="PIXELCNN_DATA_DIR"):
        load_colored_mnist(tmp_path, download=False)


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_course_pickle_round_trip(tmp_path, monkeypatch):
    monkeypatch.setattr(data_mod, "N_TRAIN", 5)
    path = tmp_path / "mnist_colored.pkl"
    train = np.zeros((60_000, 28, 28, 3), dtype=np.uint8)
    train[:, 3, 4, 1] = 2
    test = np.ones((10_000, 28, 28, 3), dtype=np.uint8)
    with open(path, "wb") as f:
        pickle.dump({"train": train, "test": test}, f)
    loaded = load_course_pickle(path)
    assert loaded["train"].shape[0] == 5 and loaded["val"].shape[0] == 59_995
    assert loaded["train"][0, 3, 4, 1] == 2 and loaded["test"].sum() == 10_000 * 28 * 28 * 3


@pytest.mark.parametrize("payload", ["code", "code_in_dict", "wrong_shape", "values", "not_dict", "truncated"])
def test_course_pickle_refuses_bad_files(tmp_path, payload):
    marker = tmp_path / "marker"
    path = tmp_path / "bad.pkl"
    good = {"train": np.zeros((60_000, 28, 28, 3), np.uint8), "test": np.zeros((10_000, 28, 28, 3), np.uint8)}
    content = {
        "code": _Evil(marker),
        "code_in_dict": {"train": _Evil(marker), "test": good["test"]},
        "wrong_shape": {"train": np.zeros((10, 28, 28, 3), np.uint8), "test": good["test"]},
        "values": {"train": good["train"] + 7, "test": good["test"]},
        "not_dict": [1, 2, 3],
    }.get(payload)
    if payload == "truncated":
        path.write_bytes(pickle.dumps(good)[:1000])
    else:
        path.write_bytes(pickle.dumps(content))
    with pytest.raises(DataError) as info:
        load_course_pickle(path)
    assert "\n" not in str(info.value)
    assert not marker.exists()


@pytest.mark.slow
def test_a_corrupt_idx_file_is_fetched_again(tmp_path, mirrors, mnist_dir):
    folder = copy_of_mnist(mnist_dir, tmp_path / "data")
    damaged = folder / "t10k-images-idx3-ubyte.gz"
    damaged.write_bytes(damaged.read_bytes()[:5000])
    data = load_colored_mnist(folder, mirrors=(mirrors["empty"], mirrors["good"]))
    assert data["test"].shape == (10_000, 28, 28, 3)
    assert (folder / "t10k-images-idx3-ubyte.gz.corrupt").exists()
    assert hashlib.md5(damaged.read_bytes()).hexdigest() == MNIST_FILES["test_images"].gz_md5
    with pytest.raises(DataError):  # without download, a bad file is reported, never trusted
        damaged.write_bytes(b"garbage")
        cache_path(folder).unlink()
        load_colored_mnist(folder, download=False)


def test_the_cache_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    arrays = {"train": np.ones((2, 28, 28, 3), np.uint8), "test": np.zeros((1, 28, 28, 3), np.uint8)}
    path = tmp_path / "cache" / "colored.npz"
    data_mod._write_cache(path, arrays, "fingerprint")
    with np.load(path) as npz:
        assert np.array_equal(npz["train"], arrays["train"]) and str(npz["fingerprint"]) == "fingerprint"
    before = path.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(data_mod.np, "savez", disk_full)
    data_mod._write_cache(path, {"train": arrays["test"], "test": arrays["train"]}, "other")
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]
