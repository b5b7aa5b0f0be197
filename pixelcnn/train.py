"""Moved to :mod:`pixelcnn.training` (the loop in :mod:`pixelcnn.training.trainer`); this name stays
importable for one release."""

from .training.trainer import *  # noqa: F401,F403
