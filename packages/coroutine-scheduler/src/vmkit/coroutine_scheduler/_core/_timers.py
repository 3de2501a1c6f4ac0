"""Timers: the coroutines parked in ``sleep``, by deadline.

Design notes
------------
A binary heap of ``(deadline, token, coroutine)`` entries with lazy deletion, as asyncio's
``_scheduled`` and Go's per-P timer heap before its timer rework. Why a heap: adding a sleeper and
taking the earliest are O(log n), and the run loops only ever ask "which deadlines have passed?"
and "when is the next one?".

Cancelling a sleeper does not search the heap (O(n)): it zeroes the coroutine's ``_timer_token``,
and an entry whose token no longer matches its coroutine's is stale and skipped when it reaches the
top. The token is a fresh number per ``add``, so an entry left over from an earlier sleep of the
same coroutine can never wake it from a later one. ``count`` is the number of live sleepers (not
of heap entries); when it reaches 0 the stale entries are dropped at once.

Why a class and not the scheduler's own fields: the deadlock check, the idle wait of both backends
and the future ``sleep``-based primitives (timeouts on a Lock or a Queue) all ask the same three
questions, and the lazy-deletion rule must be applied the same way everywhere.

Locking: none here. The scheduler lock guards a ``Timers`` (the threads backend reads ``count``
without it, as a hint, then takes the lock to act). Time is passed in (``now``): the scheduler's
clock stays the one place time is read.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Generic, Protocol, TypeVar


class _Timed(Protocol):
    """What can wait in a Timers heap: a sleeping coroutine, or a cancel scope's deadline."""

    _timer_token: int


T = TypeVar("T", bound=_Timed)

__all__ = ["SleepWait", "Timers"]


class SleepWait:
    """The wait key of a coroutine parked in ``sleep``: names its deadline (for ``describe``)."""

    __slots__ = ("deadline",)

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def __repr__(self) -> str:
        return f"sleep(until {self.deadline:.6f})"


class Timers(Generic[T]):
    """Sleeping coroutines (or scope deadlines) ordered by deadline (the caller holds the
    scheduler lock)."""

    __slots__ = ("_heap", "_seq", "count")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, T]] = []
        self._seq = itertools.count(1)
        #: Live sleepers (cancelled ones excluded); read without the lock as a hint.
        self.count = 0

    def __repr__(self) -> str:
        return f"<Timers sleeping={self.count} entries={len(self._heap)}>"

    def add(self, co: T, deadline: float) -> None:
        """Park ``co`` until ``deadline``."""
        token = next(self._seq)
        co._timer_token = token
        heapq.heappush(self._heap, (deadline, token, co))
        self.count += 1

    def cancel(self, co: T) -> None:
        """Forget the sleeper ``co`` (its heap entry goes stale)."""
        co._timer_token = 0
        self.count -= 1
        if not self.count:
            self._heap.clear()

    def due(self, now: float) -> bool:
        """Whether the earliest entry (maybe stale: then a pop finds nothing) has passed."""
        heap = self._heap
        return bool(heap) and heap[0][0] <= now

    def pop_due(self, now: float) -> list[T]:
        """Remove and return the sleepers whose deadline is ``<= now``, earliest first."""
        heap = self._heap
        due: list[T] = []
        while heap and heap[0][0] <= now:
            _deadline, token, co = heapq.heappop(heap)
            if co._timer_token != token:
                continue  # cancelled: a stale entry
            co._timer_token = 0
            self.count -= 1
            due.append(co)
        if not self.count:
            heap.clear()
        return due

    def next_deadline(self) -> float | None:
        """The earliest live deadline, or None if nothing sleeps (drops stale entries on top)."""
        heap = self._heap
        while heap and heap[0][2]._timer_token != heap[0][1]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def clear(self) -> None:
        """Forget every sleeper (the scheduler closes them)."""
        self._heap.clear()
        self.count = 0
