"""The server-wide memo and its compute slots: many visitors share one result and take turns computing."""

import threading
import time

import pytest

from pixelcnn.serve.memo import ComputeSlots, SharedMemo


def test_one_key_asked_by_many_sessions_is_computed_once():
    memo, calls = SharedMemo(), []

    def compute():
        calls.append(1)
        time.sleep(0.2)
        return "samples"

    results = []
    threads = [threading.Thread(target=lambda: results.append(memo.get_or_compute("k", compute)[0]))
               for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert results == ["samples"] * 8 and len(calls) == 1


def test_no_more_computations_run_at_once_than_there_are_slots_and_the_rest_hear_their_place():
    """Review finding: ten sessions drawing at once shared two cores ten ways (41 to 49 s each, 3.5 GB)."""
    memo = SharedMemo(max_entries=64, slots=ComputeSlots(2))
    running, peak, heard, lock = [0], [0], {}, threading.Lock()

    def compute(i):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.15)
        with lock:
            running[0] -= 1
        return i

    def visitor(i):
        heard[i] = []
        assert memo.get_or_compute(i, lambda: compute(i), lambda ahead: heard[i].append(ahead))[0] == i

    threads = []
    for i in range(6):
        threads.append(threading.Thread(target=visitor, args=(i,)))
        threads[-1].start()
        time.sleep(0.02)  # arrivals in order
    [t.join() for t in threads]
    assert peak[0] == 2
    assert heard[0] == [] and heard[1] == []  # two free slots: no wait
    assert heard[5] and heard[5][0] == 5 and heard[5] == sorted(heard[5], reverse=True), heard
    assert min(heard[5]) >= 1


def test_a_visitor_who_leaves_gives_up_the_place_in_the_queue():
    slots = ComputeSlots(1)
    release, order = threading.Event(), []

    def first():
        with slots.hold():
            release.wait(5)
            order.append("first")

    def leaver(ahead):
        raise KeyboardInterrupt  # what a stopped script run raises in its thread

    holder = threading.Thread(target=first)
    holder.start()
    time.sleep(0.05)
    with pytest.raises(KeyboardInterrupt):
        with slots.hold(leaver):
            order.append("leaver")
    def later():
        with slots.hold():
            order.append("later")

    waiter = threading.Thread(target=later)
    waiter.start()
    release.set()
    holder.join()
    waiter.join(5)
    assert order == ["first", "later"]


def test_the_lecturers_request_goes_ahead_of_the_rooms():
    slots = ComputeSlots(1)
    release, order, threads = threading.Event(), [], []

    def request(name, first=False, hold=False):
        with slots.hold(first=first):
            order.append(name)
            if hold:
                release.wait(5)

    for name, first, hold in (("running", False, True), ("room 1", False, False), ("room 2", False, False),
                              ("lecturer", True, False), ("lecturer again", True, False)):
        threads.append(threading.Thread(target=request, args=(name, first, hold)))
        threads[-1].start()
        time.sleep(0.05)
    release.set()
    [t.join(5) for t in threads]
    assert order == ["running", "lecturer", "lecturer again", "room 1", "room 2"], order
