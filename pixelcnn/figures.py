"""Images and figures made from arrays, shared by the dashboard and the CLI."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

from .checkpoint import atomic_write

SEPARATOR = 128
TARGET_COLOR = (230, 40, 40)


def to_rgb(images: np.ndarray, levels: int = 4) -> np.ndarray:
    """Values 0..levels-1 scaled to 0..255, as uint8."""
    return (images.astype(np.float64) * (255.0 / (levels - 1))).round().astype(np.uint8)


def image_grid(images: np.ndarray, ncols: int = 10, pad: int = 1, levels: int = 4) -> np.ndarray:
    """Tile images (N, H, W, 3) with values 0..levels-1 into one RGB uint8 array with thin grey separators."""
    n, h, w, c = images.shape
    nrows = -(-n // ncols)
    grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), SEPARATOR, dtype=np.uint8)
    rgb = to_rgb(images, levels)
    for i in range(n):
        r, col = divmod(i, ncols)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        grid[y:y + h, x:x + w] = rgb[i]
    return grid


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement, so single pixels stay crisp."""
    return image.repeat(factor, axis=0).repeat(factor, axis=1)


def field_image(field: np.ndarray, row: int, col: int, scale: int = 10, binary: bool = False) -> np.ndarray:
    """A receptive field (H, W) as an RGB uint8 image: brighter is stronger, the target pixel outlined in red."""
    values = (field > 0).astype(np.float64) if binary else field.astype(np.float64)
    top = values.max()
    grey = (values / top * 255).round().astype(np.uint8) if top > 0 else np.zeros(values.shape, np.uint8)
    rgb = upscale(np.stack([grey] * 3, axis=-1), scale)
    y, x = row * scale, col * scale
    rgb[y:y + scale, x:x + scale] = TARGET_COLOR
    rgb[y + 2:y + scale - 2, x + 2:x + scale - 2] = grey[row, col]
    return rgb


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def save_png(image: np.ndarray, path: str | os.PathLike) -> None:
    """Write an RGB uint8 array as PNG, atomically."""
    data = png_bytes(image)
    atomic_write(Path(path), lambda f: f.write(data))
