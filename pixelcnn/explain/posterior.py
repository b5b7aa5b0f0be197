"""A class-conditional model read backwards: which label explains an image best (Bayes' rule), and the
model's exact unconditional likelihood.

For a model of p(x | y), ten teacher-forced passes of one image give
log p(x | y) for every label y. Then

    p(y | x) = p(x | y) p(y) / p(x),    log p(x) = logsumexp_y (log p(x | y) + log p(y)),

the first a digit classifier that was never trained to classify (a *generative* classifier), the second
the likelihood of the mixture over labels, an exact unconditional figure to set beside the "no label"
one (the same network shown the "no label" row, a separate approximation the label dropout trains).
p(y) is uniform over the labels (each digit is between 9.0% and 11.3% of MNIST).

Not to be confused with :mod:`pixelcnn.explain.digits`, the small discriminative classifier behind the digit
score of samples.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..runtime import micro_batch_size


def _conditional(model: torch.nn.Module) -> int:
    classes = model.config.classes
    if not classes:
        raise ConfigError("this model is unconditional (no --classes): it has no p(x | y) to invert")
    return classes


@torch.inference_mode()
def label_log_likelihoods(model: torch.nn.Module, images: np.ndarray, batch_size: int | None = None,
                          progress=None) -> np.ndarray:
    """log p(x | y) in nats for every image and every label: float64 (N, classes).

    Args:
        model: a class-conditional model (``config.classes`` > 0), put in eval mode for the call.
        images: uint8 (N, H, W, C) with values 0..levels-1.
        batch_size: images per pass (each pass runs them under every label at once).
        progress: called with the fraction done.
    """
    classes = _conditional(model)
    cfg = model.config
    device = next(model.parameters()).device
    if batch_size is None:
        batch_size = max(1, micro_batch_size(256, cfg.hidden, cfg.image_size) // classes)
    x_all = torch.from_numpy(np.ascontiguousarray(np.asarray(images).transpose(0, 3, 1, 2)))
    out = np.empty((len(x_all), classes), dtype=np.float64)
    was_training = model.training
    model.eval()
    for start in range(0, len(x_all), batch_size):
        x = x_all[start:start + batch_size].to(device).long()
        n = len(x)
        labels = torch.arange(classes, device=device).repeat_interleave(n)  # label-major: y0 for all, y1 ...
        logits = model(x.repeat(classes, 1, 1, 1), labels)
        nll = F.cross_entropy(logits.double(), x.repeat(classes, 1, 1, 1), reduction="none").sum(dim=(1, 2, 3))
        out[start:start + n] = -nll.view(classes, n).T.cpu().numpy()
        if progress is not None:
            progress(min(start + n, len(x_all)) / len(x_all))
    model.train(was_training)
    if not np.isfinite(out).all():
        raise ConfigError("the model's likelihoods are not finite (its weights overflow); use another checkpoint")
    return out


def label_posterior(log_likelihoods: np.ndarray) -> np.ndarray:
    """p(y | x) under a uniform prior, from :func:`label_log_likelihoods`: (N, classes), rows summing to 1."""
    shifted = log_likelihoods - log_likelihoods.max(axis=1, keepdims=True)
    weights = np.exp(shifted)
    return weights / weights.sum(axis=1, keepdims=True)


def marginal_log_likelihood(log_likelihoods: np.ndarray) -> np.ndarray:
    """log p(x) = logsumexp_y (log p(x | y) + log p(y)) in nats, p(y) uniform: (N,)."""
    classes = log_likelihoods.shape[1]
    top = log_likelihoods.max(axis=1)
    return top + np.log(np.exp(log_likelihoods - top[:, None]).sum(axis=1)) - math.log(classes)


def bits_per_dim_of(log_likelihood_nats: np.ndarray, dims: int) -> float:
    """Mean -log2 p per dimension of images whose log-likelihoods (nats, one per image) are given."""
    return float(-np.mean(log_likelihood_nats) / dims / math.log(2.0))


def generative_reading(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray | None = None,
                       progress=None) -> dict:
    """What a conditional model says of labelled images: the bits/dim given the true label, the exact
    unconditional bits/dim (the mixture over labels), the generative classifier's accuracy, its answers and
    their probabilities.

    Args:
        model: a class-conditional model.
        images: uint8 (N, H, W, C).
        labels: the true labels (N,), or None (then no accuracy and no bits given the label).

    Returns:
        a dict with ``n_images``, ``marginal_bits_per_dim``, ``predicted`` (N,) and ``confidence`` (N,), and
        with labels also ``given_label_bits_per_dim`` and ``accuracy``.
    """
    table = label_log_likelihoods(model, images, progress=progress)
    cfg = model.config
    dims = cfg.channels * cfg.image_size ** 2
    posterior = label_posterior(table)
    predicted = posterior.argmax(axis=1)
    result = {"n_images": len(table), "marginal_bits_per_dim": bits_per_dim_of(marginal_log_likelihood(table), dims),
              "predicted": predicted.tolist(), "confidence": posterior.max(axis=1).tolist()}
    if labels is not None:
        labels = np.asarray(labels).astype(np.int64)
        result["given_label_bits_per_dim"] = bits_per_dim_of(table[np.arange(len(table)), labels], dims)
        result["accuracy"] = float((predicted == labels).mean())
    return result


def which_digit(model: torch.nn.Module, image: np.ndarray) -> dict:
    """"Which digit does the model think this is?" for one image (H, W, C): its bits/dim under each label
    (``bits``, a list of classes floats), p(y | x) (``posterior``) and the ``answer``, the label of fewest
    bits."""
    table = label_log_likelihoods(model, np.asarray(image)[None])
    cfg = model.config
    bits = (-table[0] / (cfg.channels * cfg.image_size ** 2) / math.log(2.0)).tolist()
    posterior = label_posterior(table)[0]
    return {"bits": bits, "posterior": posterior.tolist(), "answer": int(posterior.argmax())}
