"""Virtual CPUs: a bounded local run queue, a next-to-run slot, and counters.

Design note
-----------
A vCPU is Go's P (processor) or a Tokio worker: it owns a local run queue that only its own thread
appends to, so the common case (run the head, put a yielder back at the tail) touches nothing
shared. Other vCPUs only ever *take* from it (work stealing, from the head, the oldest half).

* The queue is bounded (``local_queue_size``, 256 as in Go and Tokio). A full queue spills its older
  half to the scheduler's global queue (the newcomer stays), so one vCPU cannot hoard work.
* ``runnext`` (Go) / the LIFO slot (Tokio) holds a coroutine just woken by this vCPU (if the slot
  is free; otherwise the woken one queues at the tail, keeping wake order): it runs next,
  while its data is still warm, and a wait/notify pair ping-pongs without going round the queue.
  Like Tokio, the slot may be used only ``lifo_limit`` times in a row before the queue gets a turn,
  so two coroutines waking each other cannot starve the rest. It is never stolen.
* Locking (threads backend): ``_lock`` guards ``_local`` and ``_runnext``. Lock order is
  scheduler lock, then a vCPU lock; no code holds two vCPU locks at once. The inline backend's
  switch path is single-threaded and does not take the lock.

Counters are plain ints written by the vCPU's own thread (``_steals_out`` by thieves, under
``_lock``); :meth:`VCPU.stats` copies them into a frozen :class:`VCPUStats`.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from vmkit.coroutine_scheduler._core._stats import VCPUStats

if TYPE_CHECKING:
    from vmkit.coroutine_scheduler._core._coroutine import Coroutine

__all__ = ["VCPU"]


class VCPU:
    """One virtual CPU of a :class:`Scheduler` (created by the scheduler, not by users)."""

    __slots__ = (
        "_busy_ns",
        "_countdown",
        "_current",
        "_executions",
        "_global_pulls",
        "_idle_ns",
        "_last",
        "_lifo_streak",
        "_local",
        "_lock",
        "_log",
        "_rng",
        "_runnext",
        "_spills",
        "_steal_attempts",
        "_steals_in",
        "_steals_out",
        "_switches",
        "id",
    )

    def __init__(self, vcpu_id: int, rng: random.Random, countdown: int) -> None:
        self.id = vcpu_id
        self._local: deque[Coroutine] = deque()
        self._runnext: Coroutine | None = None
        self._lifo_streak = 0
        self._countdown = countdown
        self._current: Coroutine | None = None
        self._last: Coroutine | None = None
        self._lock = threading.Lock()
        self._rng = rng
        self._log: Any = None
        self._executions = 0
        self._switches = 0
        self._steals_in = 0
        self._steals_out = 0
        self._steal_attempts = 0
        self._global_pulls = 0
        self._spills = 0
        self._busy_ns = 0
        self._idle_ns = 0

    @property
    def current(self) -> Coroutine | None:
        """The coroutine running on this vCPU (kept by the threads backend and the general path)."""
        return self._current

    @property
    def queue_length(self) -> int:
        """Coroutines waiting in the local run queue and the next-to-run slot."""
        return len(self._local) + (self._runnext is not None)

    def stats(self) -> VCPUStats:
        """A frozen snapshot of this vCPU's counters."""
        return VCPUStats(
            vcpu=self.id,
            executions=self._executions,
            context_switches=self._switches,
            steals_in=self._steals_in,
            steals_out=self._steals_out,
            steal_attempts=self._steal_attempts,
            global_pulls=self._global_pulls,
            spills=self._spills,
            busy_ns=self._busy_ns,
            idle_ns=self._idle_ns,
            queue_length=self.queue_length,
        )

    def __repr__(self) -> str:
        return f"<VCPU {self.id} queue={self.queue_length}>"
