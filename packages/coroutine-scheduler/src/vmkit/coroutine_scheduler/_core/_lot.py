"""Parking lots: the FIFO wait queue every synchronization primitive is built on (trio's idea).

Design notes
------------
A coroutine parks with the ``park`` trap; the handler runs the primitive's ``guard`` under the
scheduler lock, and only if the guard says so does the coroutine become WAITING in the lot. Waking
(:meth:`ParkingLot.unpark`) is a plain call, so ``Lock.release`` or ``Event.set`` need no trap
and may be called from an OS thread: it takes the scheduler lock, hands the woken coroutine its
value and queues it on the waker's vCPU (its next-to-run slot), or on the global queue when the
waker is not one of this scheduler's vCPUs.

Because the guard and the wake both run under the scheduler lock, a primitive's state changes
and its parking decisions are atomic on the threads backend too: no wake-up can be lost between
"it is locked" and "I wait".

Each park gets a fresh :class:`LotWait` entry, which is also the coroutine's wait key. Withdrawing
a waiter (cancellation) just makes the entry stale (the coroutine's wait key moves on); stale
entries are skipped when they reach the head, so cancelling one of 10,000 waiters is O(1).

A lot binds to the scheduler of its first user; using it from a second scheduler is an error
(its state is guarded by the first one's lock).
"""

from __future__ import annotations

from collections import deque
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from vmkit.coroutine_scheduler._core import _coroutine as _co
from vmkit.coroutine_scheduler._core._errors import TrapOutsideSchedulerError, UsageError
from vmkit.coroutine_scheduler._core._traps import running

if TYPE_CHECKING:
    from vmkit.coroutine_scheduler._core._coroutine import Coroutine
    from vmkit.coroutine_scheduler._core._scheduler import Scheduler

__all__ = ["PARKED", "READY", "LotWait", "ParkingLot"]

_READY = _co.READY
_NOTHING = _co._NOTHING


class _Parked:
    def __repr__(self) -> str:
        return "PARKED"


#: What a guard returns to make the coroutine wait.
PARKED: Any = _Parked()


class Ready(tuple[()]):
    """An awaitable that is already done (``await READY`` returns None at once, in C): what the
    primitives' ``__aexit__`` returns, so leaving ``async with`` creates no coroutine frame."""

    __slots__ = ()

    __await__ = tuple.__iter__


READY: Any = Ready()


class LotWait(tuple[Any, ...]):
    """One parked coroutine: ``(lot, co, payload, cancellable)``: its lot, what it carries,
    whether cancellation may interrupt it.

    It is the coroutine's wait key while it waits, so ``describe()`` names the primitive. A
    tuple subclass because it is made on every park: built in C, with no ``__init__`` frame.
    """

    __slots__ = ()

    lot: ParkingLot = property(itemgetter(0))  # type: ignore[assignment]
    co: Coroutine = property(itemgetter(1))  # type: ignore[assignment]
    payload: Any = property(itemgetter(2))
    cancellable: bool = property(itemgetter(3))  # type: ignore[assignment]

    def __repr__(self) -> str:
        return str(self[0].name)


class ParkingLot:
    """A FIFO of parked coroutines.

    Args:
        name: what the waiters wait for, shown in ``Coroutine.describe()`` and deadlock reports.
    """

    __slots__ = ("_entries", "_s", "name", "parked_total")

    def __init__(self, name: str = "parking lot") -> None:
        self.name = name
        self._s: Scheduler | None = None
        self._entries: deque[LotWait] = deque()
        #: Coroutines that ever parked here (statistics).
        self.parked_total = 0

    def __repr__(self) -> str:
        return f"<ParkingLot {self.name!r} waiters={len(self)}>"

    def __len__(self) -> int:
        """How many coroutines wait here now (stale entries of withdrawn waiters excluded).

        Callable from any thread without the scheduler lock (statistics are read that way):
        the copy is taken in one C call, so another vCPU parking or waking meanwhile cannot
        break the count's iteration.
        """
        return sum(1 for e in tuple(self._entries) if e.co._wait_key is e)

    def bind(self) -> Scheduler:
        """The scheduler whose coroutine calls this (binding the lot to it on first use).

        Raises:
            TrapOutsideSchedulerError: not called from a coroutine in a run loop.
            UsageError: the lot already belongs to another scheduler.
        """
        s: Scheduler | None = running.scheduler
        if s is None:
            raise TrapOutsideSchedulerError(
                f"{self.name} was used outside a coroutine-scheduler run loop"
            )
        if self._s is None:
            self._s = s
        elif self._s is not s:
            raise UsageError(f"{self.name} belongs to another scheduler")
        return s

    @property
    def scheduler(self) -> Scheduler | None:
        """The scheduler the lot is bound to, if any coroutine used it yet."""
        return self._s

    # -- scheduler side (caller holds the scheduler lock) ---------------------------------

    def first_locked(self) -> LotWait | None:
        """The oldest live waiter, or None (stale entries at the head are dropped)."""
        entries = self._entries
        while entries:
            entry: LotWait = entries[0]
            key: object = entry.co._wait_key
            if key is not entry:
                entries.popleft()  # withdrawn (cancelled): stale
                continue
            return entry
        return None

    def unpark_entry_locked(
        self, s: Scheduler, entry: LotWait, value: Any = None, exc: BaseException | None = None
    ) -> None:
        """Wake the waiter of ``entry`` with ``value`` (or raise ``exc`` in it)."""
        co = entry.co
        s._n_blocked -= 1
        if exc is not None:
            co._resume_throw(exc)
        else:
            co._resume_with(value)
        s._wake_any(running.vcpu, co, runnext=True)

    def pop_first_locked(self) -> LotWait | None:
        """Remove and return the oldest live waiter, or None (stale entries dropped)."""
        entries = self._entries
        while entries:
            entry: LotWait = entries.popleft()
            key: object = entry[1]._wait_key
            if key is entry:
                return entry
        return None

    def wake_locked(self, s: Scheduler, entry: LotWait) -> None:
        """Wake the (popped) waiter of ``entry`` onto the back of the waker's run queue, its
        park returning None: whatever it was handed travels in its payload (a ticket), so the
        fast switch path resumes it with a plain ``send(None)``.

        The hand-over path of the primitives: FIFO, and no pending value to deliver. A
        Cancelled that arrives before it runs is raised at its park; the primitive then finds
        the ticket filled and completes (the cancellation is raised again at the next
        checkpoint, since it is level-triggered), so nothing handed over is lost.
        """
        co = entry[1]
        s._n_blocked -= 1
        v = running.vcpu
        if v is not None and running.scheduler is s:
            # Scheduler._wake and _push_local, inlined: this is every hand-over's path.
            co._state = _READY
            co._wait_key = _NOTHING
            co._vcpu = v.id
            q = v._local
            if s._unshared_queues:
                q.append(co)
            else:
                with v._lock:  # threads: a thief may be taking from this queue
                    q.append(co)
            full = len(q) > s._cap
            if full:
                s._spill(v)
            if s._signal_work:
                s._backend.work_available()
        else:
            s._wake_any(None, co, runnext=False)

    def unpark_locked(
        self, s: Scheduler, n: int | None = 1, value: Any = None, exc: BaseException | None = None
    ) -> int:
        """Wake up to ``n`` waiters (all if None), oldest first; return how many."""
        woken = 0
        while n is None or woken < n:
            entry = self.pop_first_locked()
            if entry is None:
                break
            self.unpark_entry_locked(s, entry, value, exc)
            woken += 1
        return woken

    def withdraw_locked(self, co: Coroutine) -> bool:
        """Take ``co`` out (it was cancelled): False if its wait may not be interrupted."""
        entry = co._wait_key
        assert isinstance(entry, LotWait)
        if not entry.cancellable:
            return False
        co._wait_key = None  # the entry goes stale; the run loop resets the key on wake
        return True

    # -- public, from any coroutine or thread -----------------------------------------------

    def unpark(self, n: int | None = 1, value: Any = None) -> int:
        """Wake up to ``n`` waiters (all if None), oldest first, with ``value``; return how many."""
        s = self._s
        if s is None:
            return 0  # nobody ever parked here
        with s._guard:
            return self.unpark_locked(s, n, value)
