"""Colored MNIST, its labels and a run's metrics, cached for every session of the server."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import streamlit as st

from pixelcnn.errors import PixelCNNError
from pixelcnn.figures import value_counts
from pixelcnn.store.data import load_colored_mnist, load_labels
from pixelcnn.store.metrics import METRICS_NAME, curves, read_events


@st.cache_resource(show_spinner="Loading colored MNIST...")
def _data(data_dir: str | None) -> dict[str, np.ndarray]:
    return load_colored_mnist(data_dir, download=False)


@st.cache_resource(show_spinner=False)
def _labels(data_dir: str | None) -> dict[str, np.ndarray] | None:
    return load_labels(data_dir)


def data_dir() -> str | None:
    return os.environ.get("PIXELCNN_DATA_DIR") or None


def dataset() -> dict[str, np.ndarray] | None:
    """Colored MNIST, or None when the files are not there yet (the Data page offers the download)."""
    try:
        return _data(data_dir())
    except PixelCNNError:
        return None


def forget_data() -> None:
    """Drop the cached data, after a download."""
    _data.clear()
    _labels.clear()


@st.cache_data(max_entries=32, show_spinner=False)
def value_counts_of(split: str, digit: str) -> np.ndarray:
    images = dataset()[split]
    if digit != "all":
        images = images[labels()[split] == int(digit)]
    return value_counts(images)


def labels() -> dict[str, np.ndarray] | None:
    """The digit labels, or None when they are absent or damaged (see :func:`labels_problem`)."""
    try:
        return _labels(data_dir())
    except PixelCNNError:
        return None


def labels_problem() -> str | None:
    """Why the label files cannot be used, if they are there but damaged."""
    try:
        _labels(data_dir())
    except PixelCNNError as err:
        return f"No digit filter: {err}"
    return None


@st.cache_data(max_entries=64, show_spinner=False)
def _events(path: str, size: int, mtime_ns: int) -> list[dict]:
    return read_events(path)


def events_of(run_dir: Path) -> list[dict]:
    """A run's metrics events, re-read only when the file changed."""
    path = run_dir / METRICS_NAME
    try:
        st_ = path.stat()
    except OSError:
        return []
    return _events(str(path), st_.st_size, st_.st_mtime_ns)


def curves_of(run_dir: Path) -> dict[str, list[tuple[float, float]]]:
    return curves(events_of(run_dir))
