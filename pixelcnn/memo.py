"""A bounded, thread-safe memo shared by every browser session of one dashboard server."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Hashable, TypeVar

T = TypeVar("T")


class SharedMemo:
    """Least-recently-used results, computed once per key even when many sessions ask at the same time.

    The first caller of a key computes it; callers arriving meanwhile wait for
    that result instead of repeating the work, which is what keeps a room of
    students asking for the same 100 samples from queueing 20 copies of it.
    """

    def __init__(self, max_entries: int = 32):
        self.max_entries = max_entries
        self._results: OrderedDict[Hashable, object] = OrderedDict()
        self._pending: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> object | None:
        with self._lock:
            if key in self._results:
                self._results.move_to_end(key)
                return self._results[key]
        return None

    def get_or_compute(self, key: Hashable, compute: Callable[[], T]) -> tuple[T, bool]:
        """(result, whether this call computed it)."""
        while True:
            with self._lock:
                if key in self._results:
                    self._results.move_to_end(key)
                    return self._results[key], False  # type: ignore[return-value]
                pending = self._pending.get(key)
                if pending is None:
                    pending = self._pending[key] = threading.Lock()
                    pending.acquire()
                    break
            with pending:  # another session is computing this key: wait for it, then look again
                pass
        try:
            result = compute()
            with self._lock:
                self._results[key] = result
                while len(self._results) > self.max_entries:
                    self._results.popitem(last=False)
            return result, True
        finally:
            with self._lock:
                del self._pending[key]
            pending.release()

    def __len__(self) -> int:
        with self._lock:
            return len(self._results)
