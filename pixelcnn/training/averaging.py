"""Polyak averaging: an exponential moving average of the weights, kept beside them as a run trains.

openai/pixel-cnn evaluates and samples with such an average (decay 0.9995): it smooths the last steps'
noise out of the weights, which a constant learning rate otherwise leaves in them. The average is a
model of its own, so it is validated, tested and saved as one; averaging weights never changes which
inputs a weight reads, so every mask's guarantee holds for the average as it does for the raw weights.
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn


def average_decay(decay: float, step: int) -> float:
    """The decay for the update after ``step`` steps: ``decay``, but (1 + step) / (10 + step) while that is
    smaller (TensorFlow's ExponentialMovingAverage with num_updates), so the first steps' random weights
    do not linger in the average of a short run."""
    return min(decay, (1.0 + step) / (10.0 + step))


class WeightAverage:
    """An exponential moving average of ``model``'s parameters with ``decay``.

    ``model`` here is a copy in evaluation mode that needs no gradients: evaluate or sample it as any
    model. :meth:`update` after each optimizer step moves it ``1 - decay`` of the way to the weights.
    """

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Move the average toward ``model``'s weights after ``step`` steps had been averaged."""
        weight = 1.0 - average_decay(self.decay, step)
        for average, current in zip(self.model.parameters(), model.parameters()):
            average.lerp_(current.detach(), weight)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in self.model.state_dict().items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)
