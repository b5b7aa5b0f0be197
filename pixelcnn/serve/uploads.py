"""A bound on what the server keeps of uploaded files, whoever sends them.

Streamlit keeps every file sent to its upload endpoint in memory until the
session that sent it ends, and the endpoint takes files from any open session,
also where no uploader is shown (lecture mode) and as many as a client sends.
:func:`bound_upload_store` wraps the server's upload store so that it keeps
at most ``files_per_session`` files of each session (the newest) and
``total_bytes`` in all (the oldest go first), and nothing at all while
``accepting()`` says no. A file dropped from the store reads as no upload.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable

UPLOAD_LIMIT_MB = 32
FILES_PER_SESSION = 3
TOTAL_UPLOAD_BYTES = 4 * UPLOAD_LIMIT_MB * 2**20

_MARK = "_pixelcnn_upload_bound"


class _Bound:
    """The wrapped store's bookkeeping: each kept file's (session, file id) and size, oldest first."""

    def __init__(self, store: Any, accepting: Callable[[], bool], files_per_session: int, total_bytes: int):
        self.store = store
        self.accepting = accepting
        self.files_per_session = files_per_session
        self.total_bytes = total_bytes
        self.kept: OrderedDict[tuple[str, str], int] = OrderedDict()
        self.lock = threading.Lock()
        self.add_file = store.add_file

    def held(self, key: tuple[str, str]) -> bool:
        session_id, file_id = key
        return bool(self.store.get_files(session_id, [file_id]))

    def add(self, session_id: str, file: Any) -> None:
        if not self.accepting():
            return
        with self.lock:
            self.add_file(session_id, file)
            key = (session_id, file.file_id)
            self.kept.pop(key, None)
            self.kept[key] = len(file.data)
            for stale in [k for k in self.kept if not self.held(k)]:
                del self.kept[stale]
            own = [k for k in self.kept if k[0] == session_id]
            for oldest in own[: max(0, len(own) - self.files_per_session)]:
                self.drop(oldest)
            while self.kept and sum(self.kept.values()) > self.total_bytes:
                self.drop(next(iter(self.kept)))

    def drop(self, key: tuple[str, str]) -> None:
        self.store.remove_file(*key)
        del self.kept[key]


def bound_upload_store(store: Any, accepting: Callable[[], bool], *, files_per_session: int = FILES_PER_SESSION,
                       total_bytes: int = TOTAL_UPLOAD_BYTES) -> None:
    """Make ``store`` (Streamlit's upload store: ``add_file``, ``get_files``, ``remove_file``) keep within the
    bounds above. Once per store: a second call only updates ``accepting``."""
    bound = getattr(store, _MARK, None)
    if bound is not None:
        bound.accepting = accepting
        return
    bound = _Bound(store, accepting, files_per_session, total_bytes)
    setattr(store, _MARK, bound)
    store.add_file = bound.add


def kept_upload_bytes(store: Any) -> int:
    """Bytes of uploaded files the bounded ``store`` holds now (0 for a store that was never bounded)."""
    bound = getattr(store, _MARK, None)
    if bound is None:
        return 0
    with bound.lock:
        return sum(size for key, size in bound.kept.items() if bound.held(key))
