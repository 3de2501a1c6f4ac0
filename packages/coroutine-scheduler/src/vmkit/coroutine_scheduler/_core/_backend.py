"""The backend protocol: what differs between running the vCPUs inline and on OS threads.

Design notes
------------
Everything a coroutine can observe (picking order, stealing, traps, parking, waking, timers,
failures) is the scheduler's and is the same on every backend. A backend decides only how the
vCPUs get CPU time, so the protocol is small, and each backend is one module that owns its loop:

* ``inline`` (``_inline.py``): one OS thread gives each vCPU a turn, round-robin; deterministic.
* ``threads`` (``_threads.py``): one OS thread per vCPU, idle vCPUs waiting on a condition.

Why these methods and nothing else: they are the points where the old single class tested
``if self._backend == ...``. ``run`` is the loop. The other three are the moments where the rest of
the scheduler must tell the backend something, and they are what the coming primitives (Lock,
Event, Semaphore, Queue, sleep with timeouts, task groups, cancel scopes) need to park a coroutine
and have another wake it, on either backend:

* a waker calls ``Scheduler._wake``, which queues the woken coroutine and calls
  :meth:`Backend.work_available` (threads: an idle vCPU may be asleep on the condition);
* a cancel of a coroutine that is not parked calls :meth:`Backend.cancel_queued` (threads: it may
  be running right now on another vCPU, so the cancel is delivered at its next step or park);
* the end of the last coroutine calls :meth:`Backend.all_done` (threads: stop the vCPU threads).

A backend is created by the scheduler with the scheduler as its only argument and reaches into its
private state (queues, lock, counters): the two are one unit split for reading, not a public
plug-in interface.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from vmkit.coroutine_scheduler._core._coroutine import Coroutine

__all__ = ["BACKENDS", "Backend", "BackendName"]

BackendName = Literal["inline", "threads"]
BACKENDS: tuple[BackendName, ...] = ("inline", "threads")


class Backend(Protocol):
    """How a scheduler's vCPUs get CPU time (see the module note)."""

    @property
    def name(self) -> BackendName:
        """``"inline"`` or ``"threads"``."""

    def run(self, deadline: float | None, timeout: float | None) -> None:
        """Run the vCPUs until no coroutine is alive.

        Args:
            deadline: ``time.monotonic()`` value at which to stop between two steps, or None.
            timeout: the ``run(timeout=...)`` it came from, for the error message.

        Raises:
            DeadlockError: every live coroutine is parked and none sleeps (they are closed).
            RunTimeoutError: ``deadline`` passed; the coroutines stay as they were.
        """

    def work_available(self) -> None:
        """Runnable work appeared where another vCPU may take it (global queue, a local queue).

        Called with or without the scheduler lock held; cheap when nobody is idle.
        """

    def cancel_queued(self, co: Coroutine) -> None:
        """Have Cancelled thrown into ``co`` at its next step.

        ``co`` is READY in some queue or RUNNING on another vCPU (not parked: the scheduler wakes
        parked ones itself). The caller holds the scheduler lock.
        """

    def all_done(self) -> None:
        """The last live coroutine has ended (the caller holds the scheduler lock)."""

    def woken_from_outside(self) -> None:
        """A coroutine was put on the global queue by a thread that runs no vCPU of this
        scheduler (an asyncio loop finishing awaited work, an ``Event.set`` from a thread): an
        idle run loop must look again, even one that waits only for such outside work."""
