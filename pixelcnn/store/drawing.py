"""Your own digit as colored MNIST: a drawing or a photo (PNG, JPEG, GIF, WebP, BMP) made into a 28x28 stroke map
the way MNIST's digits were made, then colored as the data set is.

MNIST (LeCun et al.): each digit's strokes were scaled to fit a 20x20 box, keeping their aspect ratio,
with anti-aliasing (grey levels at the edges), then placed in a 28x28 field so that their centre of mass
lies at its centre. :func:`stroke_map` does the same to any image: the background is told from the border
(a dark digit on light paper or the reverse), a transparent drawing's opacity is its ink. Then
:func:`paint` colors the strokes with a background and a stroke colour, as
:func:`~pixelcnn.store.data.colorize` colors the data set.

Every refusal is one line saying what to do (:class:`~pixelcnn.errors.DataError`): not an image, an
animated one, one over :data:`MAX_PIXELS`, a file over :data:`MAX_FILE_BYTES`, a blank one.
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import DataError
from .data import LEVELS, MIN_COLOUR_DISTANCE, paint_digits

MAX_FILE_BYTES = 32 * 2**20
MAX_PIXELS = 40_000_000  # a 40-megapixel photo decodes in about 120 MB; larger ones are refused before decoding
FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP")
WORKING_SIDE = 560  # the image is reduced to this before the strokes are found: 20 x 28
BOX, SIDE = 20, 28
CENTRE = 14.0  # where MNIST's digits have their centre of mass (row and column index: 13.99 and 14.00 on average)
INK = 0.1  # a pixel darker (or lighter) than the background by this share of the range is ink
MIN_INK_PIXELS = 4  # inked pixels at the 20x20 scale, and three times that at the working scale: fewer is a speck


def open_image(data: bytes, name: str = "the image") -> Image.Image:
    """The image in ``data``, checked before its pixels are decoded: one line for anything unusable."""
    if len(data) > MAX_FILE_BYTES:
        raise DataError(f"{name} is {len(data) / 2**20:.0f} MB; use an image file under {MAX_FILE_BYTES >> 20} MB")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombWarning,
                Image.DecompressionBombError):
            raise DataError(f"{name} is not an image this tool reads; use a PNG or JPEG") from None
    if image.format not in FORMATS:
        raise DataError(f"{name} is a {image.format} image; use a PNG or JPEG")
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise DataError(f"{name} is {width}x{height} ({width * height / 1e6:.0f} megapixels); use one under "
                        f"{MAX_PIXELS // 1_000_000} megapixels (a digit needs far fewer)")
    if getattr(image, "n_frames", 1) > 1:
        raise DataError(f"{name} is animated ({image.n_frames} frames); save the frame you want as a PNG")
    return image


def _ink(image: Image.Image, name: str) -> np.ndarray:
    """Ink in [0, 1] (float, at most WORKING_SIDE on a side), whatever the polarity or transparency."""
    if image.format == "JPEG":
        image.draft("L", (WORKING_SIDE, WORKING_SIDE))  # decodes at a reduced scale: fast, little memory
    try:
        image.load()
    except (OSError, ValueError, Image.DecompressionBombError):
        raise DataError(f"{name} is damaged or truncated; save it again as a PNG or JPEG") from None
    image.thumbnail((WORKING_SIDE, WORKING_SIDE), Image.Resampling.BOX)
    if "A" in image.getbands() or "transparency" in image.info:
        alpha = np.asarray(image.convert("RGBA").getchannel("A"), dtype=np.float32) / 255.0
        if alpha.max() - alpha.min() > 0.5:  # a transparent drawing: its opacity is its ink
            return alpha
    grey = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    background = float(np.median(border))
    ink = background - grey if background > 0.5 else grey - background  # dark on light, or light on dark
    return np.clip(ink, 0.0, None)


def stroke_map(data: bytes, name: str = "the image") -> np.ndarray:
    """The digit in an image file as MNIST draws one: (28, 28) uint8, 0 the background, 255 full ink, the
    strokes scaled into a 20x20 box (aspect kept, anti-aliased) and centred by their mass."""
    ink = _ink(open_image(data, name), name)
    top = float(ink.max())
    if top < 0.15:
        raise DataError(f"{name} is blank (one colour, no strokes); draw or photograph a digit, dark on light "
                        f"or light on dark")
    ink = np.where(ink >= INK * top, ink / top, 0.0)
    if (ink >= 0.5).sum() < 3 * MIN_INK_PIXELS:
        raise DataError(f"{name} has too little ink to read as a digit; draw it larger or with a thicker stroke")
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    crop = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    scale = BOX / max(crop.shape)
    height, width = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    small = np.asarray(Image.fromarray(crop.astype(np.float32), "F").resize((width, height),
                                                                             Image.Resampling.LANCZOS))
    small = np.clip(small, 0.0, 1.0)
    if (small > 0.5).sum() < MIN_INK_PIXELS:
        raise DataError(f"{name} has too little ink to read as a digit; draw it larger or with a thicker stroke")
    mass = small.sum()
    centre_r = (small.sum(axis=1) * np.arange(height)).sum() / mass
    centre_c = (small.sum(axis=0) * np.arange(width)).sum() / mass
    top_row = int(np.clip(round(CENTRE - centre_r), 0, SIDE - height))
    left_col = int(np.clip(round(CENTRE - centre_c), 0, SIDE - width))
    out = np.zeros((SIDE, SIDE), dtype=np.float32)
    out[top_row:top_row + height, left_col:left_col + width] = small
    return np.rint(out * 255).astype(np.uint8)


def paint(strokes: np.ndarray, background: tuple[int, int, int], stroke: tuple[int, int, int]) -> np.ndarray:
    """A stroke map (28, 28) uint8 colored as the data set is: ``rint((1 - a) * background + a * stroke)``
    per channel with ``a = strokes / 255``; (28, 28, 3) uint8 values 0..3."""
    colours = np.array([background, stroke])
    if colours.shape != (2, 3) or colours.min() < 0 or colours.max() >= LEVELS:
        raise DataError(f"colours are three values 0..{LEVELS - 1} each, got {background} and {stroke}")
    return paint_digits(strokes[None], colours[:1], colours[1:])[0]


def random_colours(seed: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """A background and a stroke colour as the data set draws them: at least 3 apart (L1)."""
    rng = np.random.default_rng(seed)
    while True:
        background, stroke = rng.integers(0, LEVELS, 3), rng.integers(0, LEVELS, 3)
        if np.abs(background - stroke).sum() >= MIN_COLOUR_DISTANCE:
            return tuple(int(v) for v in background), tuple(int(v) for v in stroke)


def colours_far_enough(background: tuple[int, int, int], stroke: tuple[int, int, int]) -> bool:
    """Whether the two colours are at least 3 apart (L1), as every image of the data set's are."""
    return sum(abs(a - b) for a, b in zip(background, stroke)) >= MIN_COLOUR_DISTANCE


def own_digit(data: bytes, background: tuple[int, int, int], stroke: tuple[int, int, int],
              name: str = "the image") -> np.ndarray:
    """An image file as a colored MNIST image: (28, 28, 3) uint8 values 0..3."""
    if not colours_far_enough(background, stroke):
        raise DataError(f"the background {background} and the stroke {stroke} are less than 3 apart; the data "
                        f"set's colours always are, so the model has never seen such an image: pick others")
    return paint(stroke_map(data, name), background, stroke)


def pack_image(image: np.ndarray) -> str:
    """A colored image (28, 28, 3) in 0..3 as 784 URL-safe base64 characters (two bits a value), for an
    address."""
    flat = image.reshape(-1).astype(np.uint8)
    packed = (flat[0::4] << 6) | (flat[1::4] << 4) | (flat[2::4] << 2) | flat[3::4]
    return base64.urlsafe_b64encode(packed.tobytes()).decode("ascii")


def unpack_image(text: str) -> np.ndarray:
    """The image :func:`pack_image` packed; a one-line DataError for text that is not one."""
    size = SIDE * SIDE * 3 // 4
    try:
        packed = np.frombuffer(base64.urlsafe_b64decode(text.encode("ascii")), dtype=np.uint8)
    except (ValueError, TypeError, UnicodeEncodeError, binascii.Error):
        raise DataError("the address's image is not a packed image; copy the whole link again") from None
    if len(packed) != size:
        raise DataError(f"the address's image has {len(packed)} bytes, not {size}; copy the whole link again")
    flat = np.stack([(packed >> 6) & 3, (packed >> 4) & 3, (packed >> 2) & 3, packed & 3], axis=1).reshape(-1)
    return flat.reshape(SIDE, SIDE, 3).astype(np.uint8)
