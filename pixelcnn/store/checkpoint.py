"""Checkpoints: one file holding weights, config, data spec and summary, written atomically.

Files are read with ``torch.load(weights_only=True)``, which admits tensors
and plain containers only, so a checkpoint carrying code is refused before
anything in it runs.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from ..errors import CheckpointError, ConfigError
from ..models import PixelCNNConfig, build_model
from .files import atomic_write

FORMAT = "pixelcnn-checkpoint"
VERSION = 1
CHECKPOINT_NAME = "checkpoint.pt"


@dataclass
class Checkpoint:
    """What a checkpoint file holds, with the model already built and loaded (eval mode)."""

    model: nn.Module
    config: PixelCNNConfig
    summary: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    optimizer: dict[str, Any] | None = None
    path: Path | None = None
    weights: str = "raw"  # which weights ``model`` holds: "raw", or "average" (see :mod:`pixelcnn.training.averaging`)
    average: dict[str, torch.Tensor] | None = None  # the averaged weights, checked, for a run to resume with


def save_checkpoint(path: str | os.PathLike, model: nn.Module, *, summary: dict | None = None,
                    data: dict | None = None, train: dict | None = None,
                    optimizer: dict | None = None, average: dict | None = None) -> None:
    """Write ``model`` and its metadata to ``path`` atomically. ``optimizer`` is a state_dict, for resuming;
    ``average`` the state_dict of the weights' moving average (:mod:`pixelcnn.training.averaging`), kept beside them."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "summary": summary or {},
        "data": data or {},
        "train": train or {},
    }
    if optimizer is not None:
        payload["optimizer"] = optimizer
    if average is not None:
        payload["average_state_dict"] = average
    try:
        atomic_write(Path(path), lambda f: torch.save(payload, f))
    except OSError as err:
        raise CheckpointError(f"could not write {path} ({err.strerror or err}); "
                              f"the previous checkpoint is untouched") from None


def _describe_load_failure(path: Path, err: BaseException) -> str:
    text = str(err)
    if "GLOBAL" in text or "Unsupported" in text:
        return f"{path}: refused, it holds objects other than tensors (possibly code); nothing in it was run"
    if isinstance(err, EOFError) or "zip archive" in text or "central directory" in text:
        return f"{path}: truncated checkpoint; use an intact checkpoint.pt written by pixelcnn"
    return f"{path}: not a readable checkpoint ({type(err).__name__}); use a checkpoint.pt written by pixelcnn"


MAX_CHECKPOINT_BYTES = 1 << 30
MAX_PARAMETERS = 64_000_000


def _is_zip(path: Path) -> bool:
    """``zipfile.is_zipfile``, which itself raises on some damaged end records (a forged ZIP64 disk count)."""
    try:
        return zipfile.is_zipfile(path)
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def _check_archive(path: Path) -> None:
    """Refuse a damaged or inflating archive before ``torch.load`` reads it.

    ``torch.save`` stores every member uncompressed, so a compressed member (which
    could inflate a 1 MB file into gigabytes) is foreign; the CRC of every member
    is checked, which ``torch.load`` does not do, so a flipped bit is refused.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if any(m.compress_type != zipfile.ZIP_STORED for m in members):
                raise CheckpointError(f"{path}: holds compressed members, which pixelcnn never writes; "
                                      f"use a checkpoint.pt written by pixelcnn")
            if sum(m.file_size for m in members) > min(MAX_CHECKPOINT_BYTES, path.stat().st_size):
                raise CheckpointError(f"{path}: its members claim more bytes than the file holds; "
                                      f"the file is damaged or forged")
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as err:
        raise CheckpointError(f"{path}: damaged archive ({type(err).__name__}); use an intact checkpoint.pt") from None
    if bad is not None:
        raise CheckpointError(f"{path}: damaged (checksum of {bad} fails); use an intact or earlier checkpoint.pt")


def _meta_state(config: PixelCNNConfig) -> dict[str, torch.Tensor]:
    """The weights a model of ``config`` holds, as shapes only: built on the meta device, no memory."""
    with torch.device("meta"):
        return build_model(config).state_dict()


def check_trainable(config: PixelCNNConfig) -> int:
    """The parameters of a model of ``config``; a one-line :class:`ConfigError` if that is over the limit
    loading enforces, so training never builds a model whose checkpoint would then be refused."""
    parameters = sum(t.numel() for t in _meta_state(config).values())
    if parameters > MAX_PARAMETERS:
        raise ConfigError(f"width {config.hidden} with {config.n_blocks} blocks is {parameters:,} parameters, "
                          f"over pixelcnn's limit of {MAX_PARAMETERS:,}; use a smaller width or fewer blocks")
    return parameters


def _check_state_shapes(path: Path, config: PixelCNNConfig, state: dict[str, torch.Tensor]) -> None:
    """Compare the stored weights with the config's model, built on the meta device (no memory), and
    bound the model's size, all before a real model is allocated."""
    expected = _meta_state(config)
    parameters = sum(t.numel() for t in expected.values())
    if parameters > MAX_PARAMETERS:
        raise CheckpointError(f"{path}: its config asks for {parameters:,} parameters, over pixelcnn's limit of "
                              f"{MAX_PARAMETERS:,}; use a smaller model")
    if set(expected) != set(state) or any(tuple(state[k].shape) != tuple(v.shape) for k, v in expected.items()):
        raise CheckpointError(f"{path}: the weights do not fit the config stored with them; "
                              f"the file is damaged or was edited")


def read_checkpoint_file(path: str | os.PathLike, kind: str = FORMAT) -> dict[str, Any]:
    """The raw payload of a pixelcnn file of ``kind`` (a checkpoint, or the digit classifier's weights),
    checked as an archive, for format and for version; nothing in it runs."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file; use a checkpoint.pt written by pixelcnn")
    if not _is_zip(path):
        raise CheckpointError(f"{path}: not a pixelcnn checkpoint (truncated, or another format); "
                              f"nothing in it was run")
    _check_archive(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load raises many types for bad files; each becomes one line
        raise CheckpointError(_describe_load_failure(path, err)) from None
    if not isinstance(payload, dict) or payload.get("format") != kind:
        raise CheckpointError(f"{path}: not a pixelcnn checkpoint (another program's file?)")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {payload.get('version')!r}, "
                              f"this pixelcnn reads version {VERSION}; retrain or upgrade pixelcnn")
    return payload


WEIGHTS = ("raw", "average")


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu", weights: str = "raw") -> Checkpoint:
    """Load a checkpoint (a file, or a run folder holding ``checkpoint.pt``) into an eval-mode model.

    ``weights`` "average" loads the moving average of the weights that a run trained with ``--ema-decay``
    saved beside them; the checkpoint's ``weights`` says which ones its model holds.
    """
    if weights not in WEIGHTS:
        raise ConfigError(f"weights must be one of {', '.join(WEIGHTS)}, got {weights!r}")
    path = Path(path)
    payload = read_checkpoint_file(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    try:
        config = PixelCNNConfig.from_dict(payload.get("config"))
    except (ConfigError, TypeError) as err:
        raise CheckpointError(f"{path}: invalid model config ({err})") from None
    raw, average = payload.get("state_dict"), payload.get("average_state_dict")
    if weights == "average" and average is None:
        raise CheckpointError(f"{path}: holds no averaged weights (its run trained without --ema-decay); "
                              f"use its raw weights")
    _check_state(path, config, raw)
    if average is not None:
        _check_state(path, config, average)
    model = _model_holding(path, config, average if weights == "average" else raw).to(device).eval()

    def as_dict(key: str) -> dict:
        value = payload.get(key) or {}
        return value if isinstance(value, dict) else {}

    return Checkpoint(model=model, config=config, summary=as_dict("summary"), data=as_dict("data"),
                      train=as_dict("train"), optimizer=payload.get("optimizer"), path=path, weights=weights,
                      average=average)


def _check_state(path: Path, config: PixelCNNConfig, state: Any) -> None:
    """Refuse, with one line, stored weights that are not tensors, do not fit ``config`` or are not finite;
    no model is built for it (a checkpoint's second set of weights, the average, is checked the same way)."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: no usable weights in this checkpoint")
    _check_state_shapes(path, config, state)
    if not all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()):
        raise CheckpointError(f"{path}: weights contain NaN or infinity; use an earlier checkpoint")


def _model_holding(path: Path, config: PixelCNNConfig, state: dict[str, torch.Tensor]) -> nn.Module:
    """A model of ``config`` loaded with ``state``, already checked by :func:`_check_state`."""
    model = build_model(config)
    try:
        model.load_state_dict(state)
    except RuntimeError:
        raise CheckpointError(f"{path}: the weights do not fit the config stored with them; "
                              f"the file is damaged or was edited") from None
    return model
