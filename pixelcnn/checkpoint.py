"""Moved to :mod:`pixelcnn.store.checkpoint`; this name stays importable for one release."""

from .store.checkpoint import *  # noqa: F401,F403
