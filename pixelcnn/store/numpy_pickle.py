"""Pickles that may hold numpy arrays and nothing else: read without running anything a file carries."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

from ..errors import DataError


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """What a protocol 0-2 pickle of a numpy array calls to turn its data back into bytes; latin-1 alone."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits what pickles of numpy arrays need, for every pickle protocol, and nothing else.

    Protocols 0-2 rebuild an array's bytes with ``_codecs.encode(text, 'latin1')``
    (admitted for latin-1 only), 3 and 4 with ``_reconstruct``, and 5 with
    ``numpy._core.numeric._frombuffer``; no other global can be loaded.
    """

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) == ("_codecs", "encode"):
            return _latin1_encode
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load {module}.{name}")


def load_numpy_pickle(path: Path, what_to_use: str) -> object:
    """What the pickle at ``path`` holds, loaded by :class:`NumpyOnlyUnpickler`; a one-line DataError otherwise.

    ``what_to_use`` ends the message for a file that is not a readable pickle (which file the user wants).
    """
    try:
        return NumpyOnlyUnpickler(io.BytesIO(path.read_bytes())).load()
    except OSError as err:
        raise DataError(f"{path}: cannot read it ({err.strerror})") from None
    except pickle.UnpicklingError as err:
        raise DataError(f"{path}: refused, not a plain pickle of numpy arrays ({err})") from None
    except Exception as err:  # truncated or garbled pickles raise many types
        raise DataError(f"{path}: not a readable pickle ({type(err).__name__}); {what_to_use}") from None
