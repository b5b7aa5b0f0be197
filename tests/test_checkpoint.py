import os
import pickle
import zipfile
from pathlib import Path

import pytest
import torch

from pixelcnn.store.checkpoint import load_checkpoint, read_checkpoint_file, save_checkpoint
from pixelcnn.errors import CheckpointError
from pixelcnn.models import PRESETS, PixelCNN


@pytest.fixture
def saved(tmp_path) -> Path:
    torch.manual_seed(0)
    model = PixelCNN(PRESETS["tiny"])
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, model, summary={"test_bits_per_dim": 0.5}, data={"source": "mnist-idx"})
    return path


class WritesMarker:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_round_trip(saved):
    ckpt = load_checkpoint(saved)
    torch.manual_seed(0)
    original = PixelCNN(PRESETS["tiny"])
    assert ckpt.config == PRESETS["tiny"] and not ckpt.model.training
    assert all(torch.equal(a, b) for a, b in zip(original.state_dict().values(), ckpt.model.state_dict().values()))
    assert ckpt.summary == {"test_bits_per_dim": 0.5} and ckpt.data == {"source": "mnist-idx"}
    assert load_checkpoint(saved.parent).config == ckpt.config  # a run folder works too


def bad_file(kind: str, saved: Path, tmp_path: Path) -> Path:
    path = tmp_path / f"{kind}.pt"
    payload = torch.load(saved, weights_only=True)
    if kind == "truncated":
        path.write_bytes(saved.read_bytes()[: saved.stat().st_size // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("hello")
    elif kind == "foreign":
        torch.save({"model": PixelCNN(PRESETS["tiny"]).state_dict(), "epoch": 3}, path)
    elif kind == "code_zip":
        torch.save({"format": "pixelcnn-checkpoint", "x": WritesMarker(str(tmp_path / "marker"))}, path)
    elif kind == "code_pickle":
        path.write_bytes(pickle.dumps(WritesMarker(str(tmp_path / "marker"))))
    elif kind == "wrong_shape":
        payload["config"]["hidden"] = 64
        torch.save(payload, path)
    elif kind == "bad_config":
        payload["config"]["hidden"] = "wide"
        torch.save(payload, path)
    elif kind == "future_version":
        payload["version"] = 99
        torch.save(payload, path)
    elif kind == "nan":
        payload["state_dict"]["output_logits.bias"][:] = float("nan")
        torch.save(payload, path)
    elif kind == "zip_not_torch":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("data.pkl", b"not a pickle")
    return path


@pytest.mark.parametrize("kind, words", [
    ("truncated", "truncated"), ("empty", "empty"), ("text", "not a pixelcnn checkpoint"),
    ("foreign", "not a pixelcnn checkpoint"), ("code_zip", "refused"), ("code_pickle", "nothing in it was run"),
    ("wrong_shape", "do not fit"), ("bad_config", "invalid model config"), ("future_version", "version"),
    ("nan", "NaN"), ("zip_not_torch", "checkpoint"),
])
def test_bad_checkpoints_give_one_line(saved, tmp_path, kind, words):
    path = bad_file(kind, saved, tmp_path)
    with pytest.raises(CheckpointError, match=words) as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "marker").exists()


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such"):
        read_checkpoint_file(tmp_path / "nope.pt")


def test_failed_save_leaves_the_old_checkpoint(saved, monkeypatch):
    before = saved.read_bytes()

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(CheckpointError, match="untouched"):
        save_checkpoint(saved, PixelCNN(PRESETS["tiny"]))
    assert saved.read_bytes() == before
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]
