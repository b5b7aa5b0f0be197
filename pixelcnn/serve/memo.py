"""A bounded, thread-safe memo shared by every browser session of one dashboard server, and the slots that
bound how many heavy computations the server runs at once."""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict, deque
from typing import Callable, Hashable, Iterator, TypeVar

T = TypeVar("T")


def compute_slots_setting() -> int:
    """Heavy computations a server runs at once: ``$PIXELCNN_COMPUTE_SLOTS``, else 2 (one per core here)."""
    try:
        return max(1, int(os.environ.get("PIXELCNN_COMPUTE_SLOTS", "2")))
    except ValueError:
        return 2


class ComputeSlots:
    """At most ``slots`` computations at once; the others wait their turn in arrival order (the lecturer's
    requests, with ``first``, ahead of the room's).

    The memory budget bounds one drawing; these slots bound the server: ten
    sessions asking for samples at once take turns instead of sharing two
    cores ten ways, so each waits its turn and the pages of everyone else stay
    fast. A waiting caller hears how many computations are ahead of it.
    """

    def __init__(self, slots: int):
        self.slots = slots
        self._active = 0
        self._queue: deque[object] = deque()
        self._first: set[object] = set()
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def hold(self, waiting: Callable[[int], None] = lambda ahead: None, poll_s: float = 0.5,
             first: bool = False) -> Iterator[None]:
        """Hold a slot for the ``with`` block. While none is free, ``waiting(ahead)`` is called about every
        ``poll_s`` seconds with the computations running or queued before this one; if it raises (the
        visitor left), the place in the queue is given up. ``first`` goes to the head of the queue (the
        lecturer's own requests, ahead of the room's)."""
        ticket = object()
        with self._cond:
            if first:  # behind the lecturer's earlier requests, ahead of the room's
                self._queue.insert(sum(1 for t in self._queue if t in self._first), ticket)
                self._first.add(ticket)
            else:
                self._queue.append(ticket)
            try:
                while self._active >= self.slots or self._queue[0] is not ticket:
                    waiting(self._active + self._queue.index(ticket))
                    self._cond.wait(poll_s)
            except BaseException:
                self._queue.remove(ticket)
                self._first.discard(ticket)
                self._cond.notify_all()
                raise
            self._queue.popleft()
            self._first.discard(ticket)
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()


class SharedMemo:
    """Least-recently-used results, computed once per key even when many sessions ask at the same time.

    The first caller of a key computes it; callers arriving meanwhile wait for
    that result instead of repeating the work, which is what keeps a room of
    students asking for the same 100 samples from queueing 20 copies of it.
    """

    def __init__(self, max_entries: int = 32, slots: ComputeSlots | None = None):
        self.max_entries = max_entries
        self.slots = slots
        self._results: OrderedDict[Hashable, object] = OrderedDict()
        self._pending: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> object | None:
        with self._lock:
            if key in self._results:
                self._results.move_to_end(key)
                return self._results[key]
        return None

    def get_or_compute(self, key: Hashable, compute: Callable[[], T],
                       waiting: Callable[[int], None] = lambda ahead: None, first: bool = False) -> tuple[T, bool]:
        """(result, whether this call computed it). With ``slots``, a computation first waits for a free
        slot (at the head of the queue if ``first``), hearing ``waiting(ahead)`` meanwhile."""
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
            with self.slots.hold(waiting, first=first) if self.slots else contextlib.nullcontext():
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
