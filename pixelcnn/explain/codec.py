"""Bits are bytes: lossless compression of images with a model, through an entropy coder.

A model that gives an image probability p(x) can store it in about -log2 p(x) bits: an entropy coder
(``constriction``'s range coder, Bamler 2022) turns each conditional p(x_i | x_<i) and the true value into
a share of one bit stream, and the decoder, holding the same model, computes the same conditionals from
the values it has already decoded, one pixel at a time, exactly as the sampler draws them.

Both sides run :func:`~pixelcnn.sampling.raster_walk`, the cached sampler's loop (one thread, float32
weights, denormals flushed, the same batch of images, the same order of steps), and turn its logits into
probabilities by the same float64 softmax: a last-bit difference between the two would derail the decoder. Across
machines whose CPUs run different kernels (AVX2 against AVX-512, another BLAS) the logits may differ in
their last bits; the decoder then reads other values, and the header's checksum of the images says so
instead of handing back wrong images.

The range coder is a queue (first in, first out), so the encoder and the decoder both walk in raster
order; an ANS coder (a stack) would have the encoder walk backwards. A class-conditional model codes
each image given its label, and the labels go first in the stream, log2(classes) bits each.

File layout (format 2), little-endian, a fixed binary header of 30 bytes and 12 more per chunk of images, so
that even one image's file is mostly its stream and "bits/dim is a file size" holds for it too (format 1's
JSON header was 261 of a one-image file's 305 bytes):

    MAGIC (6 bytes) | version (1) | flags (1: bit 0, labelled) | image count (4) | chunk size (2)
    | the model's identity (16 bytes)
    | per chunk: its stream's length in 32-bit words (4), the first 8 bytes of the SHA-256 of its images
      (and labels) (8)
    | the streams, one per chunk, as 32-bit words

Decoding checks each chunk against its checksum as soon as it is decoded, and a stream must hold at least
one word: a forged header cannot buy hours of work for a few bytes, and nothing read from the file is
printed, since the header holds no text.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from .pixels import Generation, field_offsets
from ..errors import PixelCNNError
from ..runtime import denormals_flushed
from ..sampling import MAX_SAMPLES, channel_slice, raster_walk

MAGIC = b"PXCNNZ"
VERSION = 2
SUFFIX = ".pxz"
CHUNK = 100  # images per stream: the cached walk's batch, the same on both sides
MAX_IMAGES = 1_000_000
HEAD = struct.Struct("<BBIH16s")  # version, flags, image count, chunk size, the model's identity
PER_CHUNK = struct.Struct("<I8s")  # a stream's words, its images' checksum
LABELLED = 1
LZMA_DICTIONARY = 64 << 20  # preset 9's dictionary


class CodecError(PixelCNNError):
    """A compressed file that cannot be decoded into the images it holds, or images that cannot be coded."""


def _coder():
    import constriction  # imported late: only the codec needs it

    return constriction


def model_identity(model: torch.nn.Module) -> str:
    """SHA-256 of a model's config and every weight (float32 bytes, state-dict order), its first 128 bits in
    hex: the model a file needs."""
    digest = hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


def images_checksum(images: np.ndarray, labels: np.ndarray | None) -> bytes:
    """SHA-256 (its first 64 bits) of the images (uint8, (N, H, W, C)) and, for a labelled file, their
    labels (int64): one chunk's checksum."""
    digest = hashlib.sha256(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
    if labels is not None:
        digest.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return digest.digest()[:8]


def _probabilities(logits: torch.Tensor) -> np.ndarray:
    """Logits (n, levels, g) -> probabilities (n * g, levels), float64, rows image-major then channel.

    C-contiguous on purpose: constriction reads a table's memory in C order whatever its strides, so the
    Fortran-ordered view that the permute leaves would be read as other probabilities.
    """
    probs = torch.softmax(logits.double(), dim=1).permute(0, 2, 1)
    return np.ascontiguousarray(probs.reshape(-1, probs.shape[-1]).numpy())


@dataclass
class Encoded:
    """What :func:`compress` made: the file's bytes, and for the figures the bits each value cost under
    the model (float64 (N, H, W, C), -log2 of its probability)."""

    data: bytes
    bits: np.ndarray

    @property
    def model_bits(self) -> float:
        """-log2 p(x) summed over the images: what an ideal coder would need."""
        return float(self.bits.sum())

    @property
    def header_bytes(self) -> int:
        """The bytes before the streams: magic, the fixed header and each chunk's length and checksum."""
        _, _, n_images, chunk, _ = HEAD.unpack_from(self.data, len(MAGIC))
        return len(MAGIC) + HEAD.size + PER_CHUNK.size * math.ceil(n_images / chunk)

    def sizes(self, images: np.ndarray) -> dict[str, float]:
        """Bits per dimension of this file, of its streams alone, of -log2 p(x) under the model, and of the
        general-purpose compressors (:func:`baseline_sizes`) on the same images."""
        dims = self.bits.size
        out = {"file": 8 * len(self.data) / dims, "streams": 8 * (len(self.data) - self.header_bytes) / dims,
               "model": self.model_bits / dims}
        out.update({name: 8 * size / dims for name, size in baseline_sizes(images).items()})
        return out


def _check_images(model: torch.nn.Module, images: np.ndarray, labels) -> tuple[np.ndarray, np.ndarray | None]:
    cfg = model.config
    images = np.asarray(images)
    shape = (cfg.image_size, cfg.image_size, cfg.channels)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[1:] != shape or images.dtype.kind not in "ui" or not 1 <= len(images) \
            <= MAX_IMAGES or images.min() < 0 or images.max() >= cfg.levels:
        raise CodecError(f"the images must be integers 0..{cfg.levels - 1} of shape (N, {', '.join(map(str, shape))})"
                         f", 1 <= N <= {MAX_IMAGES:,}; got {images.dtype} {images.shape}")
    if labels is None:
        return images.astype(np.uint8), None
    if not cfg.classes:
        raise CodecError("this model is unconditional: it codes images without labels")
    labels = np.asarray(labels)
    if labels.shape != (len(images),) or labels.dtype.kind not in "ui" or labels.min() < 0 \
            or labels.max() >= cfg.classes:
        raise CodecError(f"the labels must be {len(images)} integers in [0, {cfg.classes - 1}]")
    return images.astype(np.uint8), labels.astype(np.int64)


def _uniform(n: int, classes: int) -> np.ndarray:
    return np.full((n, classes), 1.0 / classes)


def _encode_chunk(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """One stream for up to :data:`CHUNK` images: (uint32 words, bits per value (n, H, W, C))."""
    constriction = _coder()
    family = constriction.stream.model.Categorical(perfect=False)
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).long()
    n = len(images)
    where, symbols, probabilities = [], [], []

    def choose(r: int, c: int, group: list[int], logits: torch.Tensor) -> torch.Tensor:
        values = x[:, channel_slice(group), r, c]
        symbols.append(values.reshape(-1).numpy())
        probabilities.append(_probabilities(logits))
        where.append((r, c, group))
        return values

    with denormals_flushed():
        raster_walk(model, n, choose, labels=labels)
    symbols = np.concatenate(symbols).astype(np.int32)
    probabilities = np.ascontiguousarray(np.concatenate(probabilities))
    encoder = constriction.stream.queue.RangeEncoder()
    if labels is not None:
        encoder.encode(labels.astype(np.int32), family, _uniform(n, model.config.classes))
    encoder.encode(symbols, family, probabilities)
    return encoder.get_compressed(), _value_bits(images.shape, where, symbols, probabilities)


def _value_bits(shape: tuple, where: list, symbols: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """-log2 of each coded value's probability, float64 (n, H, W, C), from the walk's steps in order:
    ``where`` (r, c, channels) per step, and the symbols and probability rows the coder was given (each
    step's rows image-major, then channel)."""
    n = shape[0]
    chosen = -np.log2(probabilities[np.arange(len(symbols)), symbols])
    bits = np.zeros(shape, dtype=np.float64)
    start = 0
    for r, c, group in where:
        stop = start + n * len(group)
        bits[:, r, c, group] = chosen[start:stop].reshape(n, len(group))
        start = stop
    return bits


def compress(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray | None = None,
             progress: Callable[[float], None] | None = None) -> Encoded:
    """Compress images with ``model`` into the bytes of one file.

    Args:
        model: any kind; put in eval mode for the call.
        images: uint8 (N, H, W, C) (or one image (H, W, C)) with values 0..levels-1.
        labels: for a conditional model, each image's label (N,), coded first; None codes the images
            under "no label".
        progress: called with the fraction of images done.
    """
    images, labels = _check_images(model, images, labels)
    streams, bits = [], []
    for start in range(0, len(images), CHUNK):
        part = slice(start, start + CHUNK)
        words, chunk_bits = _encode_chunk(model, images[part], None if labels is None else labels[part])
        streams.append(words)
        bits.append(chunk_bits)
        if progress is not None:
            progress(min(start + CHUNK, len(images)) / len(images))
    head = HEAD.pack(VERSION, LABELLED if labels is not None else 0, len(images), CHUNK,
                     bytes.fromhex(model_identity(model)))
    chunks = b"".join(PER_CHUNK.pack(len(words), images_checksum(images[start:start + CHUNK], None if labels is None
                                                                 else labels[start:start + CHUNK]))
                      for start, words in zip(range(0, len(images), CHUNK), streams))
    body = b"".join(np.asarray(words, dtype="<u4").tobytes() for words in streams)
    return Encoded(MAGIC + head + chunks + body, np.concatenate(bits))


def read_header(data: bytes) -> tuple[dict[str, Any], list[np.ndarray]]:
    """The header and the streams of a compressed file, checked; a one-line CodecError for a file that is
    not ours, of another version, truncated or damaged. The header's ``streams`` are the streams' lengths
    in words and its ``checksums`` each chunk's."""
    if not isinstance(data, (bytes, bytearray)) or not data.startswith(MAGIC):
        raise CodecError("not a file of `python -m pixelcnn compress` (its first bytes are not ours)")
    if len(data) < len(MAGIC) + 1:
        raise CodecError("the file is truncated: it ends inside its header")
    version = data[len(MAGIC)]
    if version != VERSION:
        raise CodecError(f"the file is of format version {version}; this tool reads version {VERSION}"
                         + ("; compress the images again" if version < VERSION else ""))
    if len(data) < len(MAGIC) + HEAD.size:
        raise CodecError("the file is truncated: it ends inside its header")
    _, flags, n_images, chunk, identity = HEAD.unpack_from(data, len(MAGIC))
    if flags & ~LABELLED or not 1 <= n_images <= MAX_IMAGES or not 1 <= chunk <= MAX_SAMPLES:
        raise CodecError("the file's header is damaged (its flags, image count or chunk size are out of range)")
    n_chunks = math.ceil(n_images / chunk)
    start = len(MAGIC) + HEAD.size
    if start + n_chunks * PER_CHUNK.size > len(data):
        raise CodecError(f"the file is truncated or damaged: its header claims {n_images:,} images in {n_chunks:,} "
                         f"streams, more than its {len(data):,} bytes can hold")
    lengths, checksums = zip(*(PER_CHUNK.unpack_from(data, start + i * PER_CHUNK.size) for i in range(n_chunks)))
    if min(lengths) < 1:
        raise CodecError("the file is damaged: a stream of images holds no bits")
    body = memoryview(data)[start + n_chunks * PER_CHUNK.size:]
    if len(body) != 4 * sum(lengths):
        what = "truncated" if len(body) < 4 * sum(lengths) else "longer than its header says"
        raise CodecError(f"the file is {what}: {len(body)} bytes of streams, its header says {4 * sum(lengths)}")
    streams, offset = [], 0
    for size in lengths:
        streams.append(np.frombuffer(body[offset:offset + 4 * size], dtype="<u4").astype(np.uint32))
        offset += 4 * size
    header = {"version": version, "n_images": n_images, "chunk": chunk, "labelled": bool(flags & LABELLED),
              "identity": identity.hex(), "streams": list(lengths), "checksums": list(checksums)}
    return header, streams


StepFn = Callable[[int, int, list, np.ndarray, np.ndarray], None]


def decompress(model: torch.nn.Module, data: bytes, progress: Callable[[float], None] | None = None,
               on_step: StepFn | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """The images (uint8 (N, H, W, C)) and labels (or None) of a file that :func:`compress` wrote.

    ``on_step(r, c, channels, values, probabilities)`` hears each decoded step of the first chunk: the
    values (n, len(channels)) read at pixel (r, c) and the probabilities (n * len(channels), levels) they
    were decoded with, for a view that shows the image filling in. Raises a one-line :class:`CodecError` for a
    file made with another model, a damaged file, or images that do not match the file's checksum.
    """
    header, streams = read_header(data)
    cfg = model.config
    if header["identity"] != model_identity(model):
        raise CodecError(f"the file was compressed with another model (identity {header['identity'][:12]}..., this "
                         f"one's {model_identity(model)[:12]}...); decode it with that checkpoint")
    if header["labelled"] and not cfg.classes:
        raise CodecError("the file holds labels and this model is unconditional; decode it with the model it names")
    constriction = _coder()
    family = constriction.stream.model.Categorical(perfect=False)
    images, labels = [], []
    n_images, chunk = header["n_images"], header["chunk"]
    for index, words in enumerate(streams):
        n = min(chunk, n_images - index * chunk)
        decoder = constriction.stream.queue.RangeDecoder(words)
        chunk_labels = None

        def choose(r: int, c: int, group: list[int], logits: torch.Tensor) -> torch.Tensor:
            probs = _probabilities(logits)
            values = np.asarray(decoder.decode(family, probs), dtype=np.int64).reshape(n, len(group))
            if index == 0 and on_step is not None:  # called within this chunk's walk: index is this chunk
                on_step(r, c, group, values, probs)
            return torch.from_numpy(values)

        try:
            if header["labelled"]:
                chunk_labels = np.asarray(decoder.decode(family, _uniform(n, cfg.classes)), dtype=np.int64)
            with denormals_flushed():
                decoded = raster_walk(model, n, choose, labels=chunk_labels)
        except Exception as err:  # noqa: BLE001 -- whatever a damaged stream makes the coder raise is one line
            raise CodecError(f"the file's stream {index} is damaged ({type(err).__name__})") from None
        if images_checksum(decoded, chunk_labels) != header["checksums"][index]:
            raise CodecError(f"the images of stream {index} do not match the file's checksum: the file was altered, "
                             f"or this machine computes the model's probabilities differently from the one that "
                             f"compressed it (other CPU kernels); decode it where it was compressed")
        images.append(decoded)
        if chunk_labels is not None:
            labels.append(chunk_labels)
        if progress is not None:
            progress((index + 1) / len(streams))
    return np.concatenate(images), np.concatenate(labels) if header["labelled"] else None


def decoding(model: torch.nn.Module, data: bytes) -> tuple[Generation, np.ndarray]:
    """Decode a file and record its first image's decoding step by step, for the player of
    :mod:`pixelcnn.serve.player`: the :class:`~pixelcnn.explain.pixels.Generation` whose steps are the decoder's (each
    pixel read from the bit stream with the distribution shown), and all the decoded images."""
    cfg = model.config
    steps, distributions = [], []

    def listen(r: int, c: int, group: list, values: np.ndarray, probabilities: np.ndarray) -> None:
        dist = np.zeros((cfg.channels, cfg.levels), dtype=np.float32)
        dist[group] = probabilities[:len(group)]  # image 0's rows come first
        steps.append((r, c, list(group)))
        distributions.append(dist)

    images, _ = decompress(model, data, on_step=listen)
    return Generation(image=images[0], steps=steps, distributions=np.stack(distributions),
                      field_offsets=field_offsets(cfg)), images


def baseline_sizes(images: np.ndarray) -> dict[str, int]:
    """Bytes that general-purpose compressors need for the raw values (uint8, one byte a value) of images
    (N, H, W, C), each at its strongest setting, and optimised palette PNGs of each image (summed)."""
    import bz2
    import gzip
    import io

    from PIL import Image

    images = np.asarray(images, dtype=np.uint8)
    raw = np.ascontiguousarray(images).tobytes()
    colours = [round(255 * v / 3) for code in range(64) for v in (code // 16, code // 4 % 4, code % 4)]
    png = 0
    for image in images.reshape(-1, *images.shape[-3:]):
        codes = (image[..., 0] * 16 + image[..., 1] * 4 + image[..., 2]).astype(np.uint8)
        palette = Image.frombytes("P", (codes.shape[1], codes.shape[0]), codes.tobytes())
        palette.putpalette(colours)
        buffer = io.BytesIO()
        palette.save(buffer, format="PNG", optimize=True)
        png += buffer.tell()
    return {"raw": len(raw), "png": png, "gzip": len(gzip.compress(raw, 9)), "bzip2": len(bz2.compress(raw, 9)),
            "lzma": len(lzma_strongest(raw))}


def lzma_strongest(raw: bytes) -> bytes:
    """``raw`` in xz at preset 9e, with the dictionary cut to the input's size: as many bytes as with preset
    9e's 64 MiB dictionary (only the size the header records differs), whose allocation alone takes about
    70 ms for a single image."""
    import lzma

    dictionary = min(LZMA_DICTIONARY, max(4096, 1 << max(len(raw) - 1, 1).bit_length()))
    return lzma.compress(raw, format=lzma.FORMAT_XZ, filters=[
        {"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME, "dict_size": dictionary}])
