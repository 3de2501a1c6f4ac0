"""Lock, Condition, Event, Semaphore and BoundedSemaphore for scheduler coroutines.

Design notes
------------
Each primitive is a little state plus a :class:`ParkingLot`. Every state change that can decide
whether somebody waits happens under the scheduler lock (in a park guard, or in a release that
holds the lock; an inline run's thread holds it throughout), so the primitives are correct on
the threads backend, and a waiter never polls: it parks, and the releaser hands it what it
waited for.

* Lock: FIFO and handed over. ``release`` with waiters passes ownership to the oldest one, which
  resumes owning the lock, so a newcomer cannot barge in ahead of it and nobody retries. A
  contended ``acquire`` yields its own ``ACQUIRE`` trap and ``__aexit__`` wakes the waiter
  itself: the hand-over is the benchmarked path, and every Python call is a tenth of its cost.
* Semaphore: the same hand-over of one unit per ``release``.
* Event: ``set`` wakes every waiter; waiting on a set event returns at once.
* Condition: ``wait`` releases the lock, parks, and re-acquires the lock before returning, even
  when cancelled (the re-acquisition cannot be interrupted), as ``threading.Condition`` promises.

Checkpoints: a wait that parks is a cancellation checkpoint; taking a free lock or semaphore unit
does not yield (as in asyncio), so an uncontended ``async with lock`` costs no switch.
Release methods are plain calls and may be used from OS threads: during an inline run they take
effect between two steps (``Event.set`` is posted and returns at once; the others wait for the
step boundary, see ``_guard.py``).
"""

from __future__ import annotations

import types
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from vmkit.coroutine_scheduler._core import _coroutine as _co
from vmkit.coroutine_scheduler._core._errors import Cancelled, UsageError
from vmkit.coroutine_scheduler._core._lot import PARKED, READY, ParkingLot
from vmkit.coroutine_scheduler._core._traps import ACQUIRE, park, running

if TYPE_CHECKING:
    from vmkit.coroutine_scheduler._core._scheduler import Scheduler

__all__ = ["BoundedSemaphore", "Condition", "Event", "Lock", "Semaphore"]

_READY = _co.READY
_NOTHING = _co._NOTHING


class _Parking:
    """What every primitive has: the parking lot its waiters wait in, and its statistics."""

    __slots__ = ("_lot",)

    _lot: ParkingLot

    def statistics(self) -> dict[str, int]:
        """``waiters`` now, and ``parked_total``: the waits that had to park so far."""
        return {"waiters": len(self._lot), "parked_total": self._lot.parked_total}


class Lock(_Parking):
    """A mutual-exclusion lock for coroutines, FIFO, with ownership handed to the next waiter."""

    __slots__ = ("_locked",)

    def __init__(self) -> None:
        self._locked = False
        self._lot = ParkingLot("Lock.acquire")

    def __repr__(self) -> str:
        return f"<Lock {'locked' if self._locked else 'unlocked'} waiters={len(self._lot)}>"

    def locked(self) -> bool:
        """Whether some coroutine holds the lock."""
        return self._locked

    @types.coroutine
    def acquire(self) -> Generator[Any, Any, None]:
        """Take the lock, waiting (FIFO) while another coroutine holds it (``await`` it)."""
        # A generator rather than ``async def``: the park trap is yielded from this frame, one
        # frame less on the hand-over path than awaiting ``park()``.
        lot = self._lot
        s = lot._s
        if s is None or s is not running.scheduler:
            s = lot.bind()
        if not self._locked:
            if s._run_owns_lock:  # the inline run thread: the scheduler lock is already its own
                self._locked = True
                return
            with s._lock:  # the threads backend: decided again under the lock
                if not self._locked:
                    self._locked = True
                    return
        ticket = [False]  # ticked when the lock is handed to this waiter
        try:
            # Served by TrapTable._acquire: takes the lock if it was released meanwhile, else
            # parks in the lot with the ticket as its payload.
            yield (ACQUIRE, self, ticket)
        except Cancelled:
            if not ticket[0]:
                raise
            # Handed over, then cancelled before it ran: it holds the lock and returns; the
            # cancellation is raised again at its next checkpoint.

    def _take_or_park(self) -> Any:
        if self._locked:
            return PARKED
        self._locked = True
        return None

    def release(self) -> None:
        """Release the lock: the oldest waiter, if any, resumes owning it.

        Raises:
            UsageError: the lock is not held.
        """
        # The hand-over is written once, in __aexit__ (the path ``async with`` takes).
        self.__aexit__(None, None, None)

    __aenter__ = acquire

    def __aexit__(self, exc_type: object, exc: object, tb: object) -> Any:
        # The release. The oldest live entry gets the lock through its ticket; stale (withdrawn)
        # ones go.
        lot = self._lot
        s = lot._s
        if s is None:
            raise UsageError("Lock.release() of a lock that was never acquired")
        if not (s._run_owns_lock and running.scheduler is s):
            with s._guard:  # another thread, or the threads backend
                self._release_locked(s)
            return READY
        # The inline run thread, which holds the scheduler lock for the whole run: the hand-over
        # path the benchmark measures, with ParkingLot.wake_locked written out (two frames less).
        if not self._locked:
            raise UsageError("Lock.release() of an unlocked lock")
        entries = lot._entries
        while entries:
            entry = entries.popleft()
            co = entry[1]
            if co._wait_key is not entry:
                continue  # withdrawn (cancelled): stale
            entry[2][0] = True  # the ticket: the waiter resumes owning the lock
            # Queued at the back of this vCPU: only this thread touches the local queues.
            s._n_blocked -= 1
            co._state = _READY
            co._wait_key = _NOTHING
            v = running.vcpu
            co._vcpu = v.id
            q = v._local
            q.append(co)
            if len(q) > s._cap:
                s._spill(v)
            return READY
        self._locked = False
        return READY

    def _release_locked(self, s: Scheduler) -> None:
        """The release, the scheduler lock held, on any thread."""
        if not self._locked:
            raise UsageError("Lock.release() of an unlocked lock")
        lot = self._lot
        entry = lot.pop_first_locked()
        if entry is None:
            self._locked = False
            return
        entry[2][0] = True  # the ticket: the waiter resumes owning the lock
        lot.wake_locked(s, entry)


class Semaphore(_Parking):
    """A counter of ``value`` units: ``acquire`` takes one, waiting (FIFO) while none is left.

    Raises:
        UsageError: ``value`` is negative.
    """

    __slots__ = ("_bound", "_value")

    def __init__(self, value: int = 1) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UsageError(f"a Semaphore needs an integer value >= 0, got {value!r}")
        self._value = value
        self._bound: int | None = None
        self._lot = ParkingLot(f"{type(self).__name__}.acquire")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} value={self._value} waiters={len(self._lot)}>"

    @property
    def value(self) -> int:
        """Units free now."""
        return self._value

    async def acquire(self) -> None:
        """Take a unit, waiting while none is free."""
        s = self._lot.bind()
        with s._lock:
            if self._value and self._lot.first_locked() is None:
                self._value -= 1
                return
        await park(self._lot, self._take_or_park)

    def _take_or_park(self) -> Any:
        if self._value and self._lot.first_locked() is None:
            self._value -= 1
            return None
        return PARKED

    def release(self) -> None:
        """Give a unit back: the oldest waiter, if any, resumes holding it."""
        s = self._lot.scheduler
        if s is None:
            self._add_unit()  # nobody ever waited here, so nobody can be woken
            return
        with s._guard:
            if not self._lot.unpark_locked(s, 1):
                self._add_unit()

    def _add_unit(self) -> None:
        if self._bound is not None and self._value >= self._bound:
            raise UsageError(f"{type(self).__name__} released more times than acquired")
        self._value += 1

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.release()


class BoundedSemaphore(Semaphore):
    """A Semaphore that refuses to be released above its initial value (a UsageError)."""

    __slots__ = ()

    def __init__(self, value: int = 1) -> None:
        super().__init__(value)
        self._bound = value


class Event(_Parking):
    """A flag coroutines can wait for: ``set`` wakes them all; ``clear`` makes them wait again."""

    __slots__ = ("_flag",)

    def __init__(self) -> None:
        self._flag = False
        self._lot = ParkingLot("Event.wait")

    def __repr__(self) -> str:
        return f"<Event {'set' if self._flag else 'unset'} waiters={len(self._lot)}>"

    def is_set(self) -> bool:
        """Whether the flag is set."""
        return self._flag

    def set(self) -> None:
        """Set the flag and wake every waiter (from a coroutine or any thread)."""
        self._flag = True
        s = self._lot.scheduler
        if s is not None:
            # A wake needs no answer: from another thread during an inline run it is posted,
            # done between two steps, and this call never waits for the run.
            s._guard.call_soon(self._lot.unpark_locked, s, None)

    def clear(self) -> None:
        """Unset the flag."""
        self._flag = False

    async def wait(self) -> None:
        """Return once the flag is set (at once if it is)."""
        if self._flag:
            return
        self._lot.bind()
        await park(self._lot, self._park_unless_set)

    def _park_unless_set(self) -> Any:
        return None if self._flag else PARKED


class Condition(_Parking):
    """Wait for a state change while holding ``lock`` (a new :class:`Lock` if None)."""

    __slots__ = ("_lock",)

    def __init__(self, lock: Lock | None = None) -> None:
        self._lock = lock if lock is not None else Lock()
        self._lot = ParkingLot("Condition.wait")

    def __repr__(self) -> str:
        return f"<Condition {self._lock!r} waiters={len(self._lot)}>"

    @property
    def lock(self) -> Lock:
        """The lock the condition's state is guarded by."""
        return self._lock

    def locked(self) -> bool:
        """Whether the lock is held."""
        return self._lock.locked()

    async def acquire(self) -> None:
        """Acquire the underlying lock."""
        await self._lock.acquire()

    def release(self) -> None:
        """Release the underlying lock."""
        self._lock.release()

    async def wait(self) -> None:
        """Release the lock, wait for :meth:`notify`, and re-acquire the lock before returning.

        Raises:
            UsageError: the lock is not held.
        """
        lock = self._lock
        if not lock.locked():
            raise UsageError("Condition.wait() needs the condition's lock held")
        self._lot.bind()
        released = False

        def release_and_park() -> Any:
            # Runs under the scheduler lock with the parking itself: a notify between the
            # release and the wait cannot be missed.
            nonlocal released
            lock.release()
            released = True
            return PARKED

        try:
            await park(self._lot, release_and_park)
        finally:
            if released:
                # Re-acquire even when cancelled: the caller's ``async with`` will release it.
                # Parked, it waits like any acquirer, with a ticket the release fills when it
                # hands the lock over.
                await park(lock._lot, lock._take_or_park, [False], cancellable=False)

    async def wait_for(self, predicate: Any) -> Any:
        """Wait until ``predicate()`` is true (checked with the lock held); return its value."""
        result = predicate()
        while not result:
            await self.wait()
            result = predicate()
        return result

    def notify(self, n: int = 1) -> int:
        """Wake up to ``n`` waiters (the lock should be held); return how many."""
        s = self._lot.scheduler
        if s is None:
            return 0
        with s._guard:
            return self._lot.unpark_locked(s, n)

    def notify_all(self) -> int:
        """Wake every waiter; return how many."""
        s = self._lot.scheduler
        if s is None:
            return 0
        with s._guard:
            return self._lot.unpark_locked(s, None)

    async def __aenter__(self) -> None:
        await self._lock.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self._lock.release()
