"""Process-level settings that make PyTorch fast on small CPU machines, bfloat16 autocast where it is
fast, and device choice."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import sys
from typing import Iterator

import torch

from .errors import ConfigError

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_tuned = False
_frozen = False


def tune_cpu_allocator() -> bool:
    """Keep freed activation memory in glibc's heap instead of returning it to the OS.

    By default glibc serves every block over 128 KiB with a fresh ``mmap`` and
    unmaps it on free, so each activation tensor is page-faulted in anew: on a
    small VM that costs as much as the convolutions. Raising the mmap threshold
    to its maximum (32 MiB) and never trimming lets blocks be reused. Returns
    whether the setting took effect (only on Linux with glibc).
    """
    global _tuned
    if _tuned:
        return True
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    _tuned = bool(mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**30))
    return _tuned


def freeze_imported_objects() -> None:
    """Exempt every object alive now (the modules' classes, functions and constants that importing torch,
    numpy and Streamlit created, some 200,000) from all future garbage collections; once per process.

    Streamlit runs a full collection after every script run (``runner.postScriptGC``), and Python runs its
    own now and then; walking torch's objects alone took 0.15-0.3 s on the 2-core machine, held the
    interpreter lock, and so delayed the frames of every interaction by as much. Frozen objects are still
    freed by reference counting; only cycles among them would stay, and import-time objects live as long
    as the process anyway. Call it from an entry point after its imports, before any work.
    """
    global _frozen
    if not _frozen:
        gc.collect()
        gc.freeze()
        _frozen = True


INTERACTIVE_THREADS = 1
_flushing = False  # whether prepare_cpu turned the denormal flush on (PyTorch has no getter for it)


def prepare_cpu(interactive: bool = False) -> None:
    """Process-wide CPU settings, applied by entry points (the CLI, the dashboard, the trainer), never by
    library calls: :func:`tune_cpu_allocator`, denormal floats flushed to zero, and with ``interactive``
    one intra-op thread.

    Trained weights produce denormal intermediates; x86 handles those in
    microcode, and sampling 20 images from the trained ``paper`` model measured
    96 s with them against 2 s without. Flushing them changes results by less
    than 1e-38. The flush is a per-thread CPU flag (threads inherit it from the
    thread that starts them), so the dashboard applies it in every script run.

    Why one thread for interactive work: a dashboard's computations (a sample is
    thousands of tiny per-pixel operations, a receptive field one small forward and
    backward pass) gain little from a second thread on an idle machine (100
    samples: 1.82 s with one, 1.84 s with two), and lose several times over
    when the cores are shared: every OpenMP region then waits for a thread that
    is not scheduled (189 s against 2.0 s under load on 2 cores). One thread per
    computation also shares the cores fairly between visitors computing at once.
    Training keeps every core: its operations are large.
    """
    global _flushing
    tune_cpu_allocator()
    _flushing = torch.set_flush_denormal(True)
    if interactive:
        torch.set_num_threads(INTERACTIVE_THREADS)


@contextlib.contextmanager
def intra_op_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` intra-op threads, then restore the caller's number.

    For engine calls whose work size decides the thread count regardless of the
    caller: the per-pixel loop of sampling is made of operations too small for a
    second thread to pay, and too many for a second thread's waits to be cheap.
    """
    before = torch.get_num_threads()
    if before == n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def denormals_flushed() -> Iterator[None]:
    """Run the block with denormal floats flushed to zero, then restore the entry points' setting.

    For computations whose every last bit must be reproducible (the codec's encoder and decoder), whoever
    calls them: the flush changes an intermediate only below 1e-38, but a logit's last bit with it.
    """
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(_flushing)


def bf16_is_fast(device: torch.device) -> bool:
    """Whether bfloat16 autocast speeds up training on ``device``: CUDA, or a CPU with native bfloat16
    (AVX-512 BF16 or AMX; oneDNN reports it). Elsewhere bfloat16 is emulated and slower than float32."""
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    """bfloat16 autocast for a forward pass when ``amp`` asks for it and :func:`bf16_is_fast` on ``device``;
    otherwise nothing. The weights, the optimizer and the loss stay float32."""
    if amp and bf16_is_fast(device):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


MAX_BLOCK_BYTES = 32 * 1024 * 1024
MAX_MICRO_BATCH = 64


def micro_batch_size(batch_size: int, hidden: int, image_size: int = 28) -> int:
    """How many images of a batch go through forward and backward at once.

    The largest power of two up to 64 whose widest activation stays under
    32 MiB: under :func:`tune_cpu_allocator`'s threshold every activation is
    then reused from the heap, and on 2 CPU cores slices of 64 measured faster
    than whole batches of 128 (``python -m pixelcnn.bench``). Gradients are
    accumulated over the slices, so the update is that of the whole batch.
    """
    per_image = hidden * image_size * image_size * 4
    size = 1
    while size * 2 <= min(batch_size, MAX_MICRO_BATCH) and size * 2 * per_image <= MAX_BLOCK_BYTES:
        size *= 2
    return size


def pick_device(name: str = "auto") -> torch.device:
    """``auto``: cuda, then mps, then cpu. An explicit name must be available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda (or cuda:N) or mps")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda asked for, but no CUDA GPU is available; use --device cpu")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("--device mps asked for, but MPS is not available; use --device cpu")
    return device
