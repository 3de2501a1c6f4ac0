"""The scheduler lock as an inline run holds it: across steps, shared with other threads between.

Design notes
------------
One re-entrant lock guards the scheduler's shared state. On the threads backend every vCPU
thread takes it around each change, as before. An inline run has a single thread touching that
state, so it takes the lock once when the run starts and keeps it (``Scheduler._run_owns_lock``);
the hand-over paths of the primitives, which run on that thread, then skip the lock altogether.
What the lock still has to do is keep *other* OS threads (an asyncio callback, a thread calling
``Event.set()`` or ``CancelScope.cancel()``, a metrics scrape) from changing the state in the
middle of a step, and let their changes in soon. Two ways in, both served at the run's next step
boundary (the loop reads one flag, ``attention``, per step):

* a *wake* that needs no answer (``Event.set``, an external wait's ``wake``, the asyncio bridge's
  done-callback) is posted (:meth:`SchedulerGuard.call_soon`): queued for the run thread, which
  runs it between two steps, and the caller goes on at once. It can never wait for the run
  thread, so an ``ExternalWait.arm`` that itself waits for a thread firing the wake cannot
  deadlock.
* a call that must answer or raise in its caller (``Lock.release``, ``spawn``,
  ``CancelScope.cancel``, ...) *knocks* (``with s._guard:``). Releasing the lock and re-taking it
  between steps would not let the caller in: the woken thread nearly always loses the race to
  the holder. So the caller, under a gate (a plain lock that orders the knockers), counts itself
  in ``knocks`` and blocks on the scheduler lock; at its next step boundary the loop releases
  the lock, passes through the gate (which the knocker holds until it has the lock, so the loop
  cannot win the race back) and takes the lock again, waiting for the knocker to finish.

Idle waits (timers, outside work) release the lock for their whole length, so both kinds go
straight in then. Consequences, stated in the docs: a call from another thread takes effect
between two steps, never inside one; a knocking call returns once it has; a step that never
yields keeps a knocking thread waiting, and a coroutine that blocks its thread until another
thread's knocking call has returned deadlocks (as with trio's ``from_thread``). Code on the run
thread itself, including a nested run of another scheduler, finds the lock already its own and
goes straight in.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vmkit.coroutine_scheduler._core._scheduler import Scheduler

__all__ = ["SchedulerGuard"]


class SchedulerGuard:
    """``with s._guard:``: the scheduler lock, from code that may run on any thread.

    Free, or already this thread's (the run thread, or a thread inside a ``with`` already): taken
    at once. Held by an inline run on another thread: knock, and get it at its next step boundary.
    """

    __slots__ = ("_gate", "_inbox", "_inbox_lock", "_lock", "_s", "attention", "knocks")

    def __init__(self, scheduler: Scheduler) -> None:
        self._s = scheduler
        #: Threads waiting for the lock an inline run holds (knocking).
        self.knocks = 0
        #: Set by a knock or a post: the inline run loop reads it between every two steps.
        self.attention = False
        self._lock = scheduler._lock
        self._gate = threading.Lock()
        self._inbox: list[tuple[Callable[..., object], tuple[Any, ...]]] = []
        # Guards the inbox and the moment the run stops owning the lock, so that nothing is
        # posted after the run's last look at the inbox.
        self._inbox_lock = threading.Lock()

    def __enter__(self) -> None:
        if not self._lock.acquire(False):
            self.knock()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    def knock(self) -> None:
        """Block until the lock is this thread's, counted in ``knocks`` meanwhile."""
        with self._gate:  # one knocker at a time; the run loop passes through it after us
            self.knocks += 1
            self.attention = True  # after the count: the loop clears the flag, then reads it
            try:
                self._lock.acquire()
            finally:
                self.knocks -= 1

    def call_soon(self, fn: Callable[..., object], *args: Any) -> None:
        """``fn(*args)`` under the scheduler lock: now if the lock is free or this thread's, else
        at the inline run's next step boundary, without waiting for it (never blocks on a run)."""
        lock = self._lock
        if lock.acquire(False):
            try:
                fn(*args)
            finally:
                lock.release()
            return
        s = self._s
        with self._inbox_lock:
            posted = s._run_owns_lock
            if posted:
                self._inbox.append((fn, args))
                self.attention = True
        if posted:
            s._backend.woken_from_outside()  # an idle wait of the run ends now
            return
        with self:  # no inline run holds it (a vCPU thread of the threads backend does)
            fn(*args)

    # -- the inline run's side (its thread, the lock held) ----------------------------------

    def serve(self) -> None:
        """Between two steps: run what was posted, then let the knocking threads have the lock.

        The loop holds the lock once (it took it when the run started). A knocker holds the gate
        until it has the lock, so passing through the gate after releasing guarantees it got in;
        taking the lock again then waits until it is done.
        """
        self.attention = False  # before reading what it announces (see knock, call_soon)
        if self._inbox:
            self._run_posted()
        if self.knocks:
            lock = self._lock
            lock.release()
            try:
                with self._gate:
                    pass
            finally:
                lock.acquire()

    def run_ended(self) -> None:
        """The run stops owning the lock (still held): nothing is posted after this; what was
        posted before runs now."""
        with self._inbox_lock:
            self._s._run_owns_lock = False
        self._run_posted()

    def _run_posted(self) -> None:
        with self._inbox_lock:
            posted = self._inbox
            self._inbox = []
        for fn, args in posted:
            fn(*args)
