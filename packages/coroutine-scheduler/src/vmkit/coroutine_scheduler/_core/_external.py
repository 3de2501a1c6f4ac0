"""External waits: a coroutine parked until something outside the scheduler wakes it.

Design notes
------------
Another package's objects can make a scheduler coroutine wait without either package importing
the other: a coroutine (or plain generator) yields any object that has

* ``arm(wake) -> bool``: remember ``wake`` (a callable with no arguments, safe to call from any
  thread, at most once useful, and never waiting for the run: from another thread during an
  inline run it is posted and done between two steps) and return True to wait, or False when
  what is awaited already happened (then the coroutine goes on at once). ``arm`` must not call
  ``wake`` itself;
* ``deadline``: None, or a ``time.monotonic()`` reading at which the wait ends anyway;
* ``disarm()``: forget ``wake`` (the wait ended by its deadline or by cancellation).

The yield evaluates to True when woken and False when the deadline passed. This is how
async-executor's guest threads block in a futex wait on the scheduler: the guest thread's
coroutine is parked (it consumes no slices) until another guest thread's FUTEX_WAKE calls
``wake``.

The waiter parks in a private parking lot and is counted as waiting for *outside* work
(``_n_external``), as ``from_asyncio`` does, so a run whose coroutines all wait on external
events is not reported as a deadlock: the thing waited on has its own idea of deadlock (the guest
does). A deadline rides in the scheduler's deadline heap as a small object with the cancel
scope's two members, so both backends' idle waits and timer firing serve it unchanged.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from vmkit.coroutine_scheduler._core._lot import PARKED, ParkingLot
from vmkit.coroutine_scheduler._core._traps import PARK

if TYPE_CHECKING:
    from collections.abc import Callable

    from vmkit.coroutine_scheduler._core._coroutine import Coroutine
    from vmkit.coroutine_scheduler._core._scheduler import Scheduler
    from vmkit.coroutine_scheduler._core._trap_table import TrapTable
    from vmkit.coroutine_scheduler._core._vcpu import VCPU

__all__ = ["ExternalWait", "is_external_wait", "serve_external"]


@runtime_checkable
class ExternalWait(Protocol):
    """What a coroutine may yield to wait for an event outside the scheduler (see the module
    note): ``arm(wake)``, ``deadline`` and ``disarm()``."""

    @property
    def deadline(self) -> float | None:
        """``time.monotonic()`` at which the wait ends anyway (None: no deadline)."""

    def arm(self, wake: Callable[[], None]) -> bool:
        """Remember ``wake``; True to wait, False when the event already happened."""

    def disarm(self) -> None:
        """Forget the waker: the wait ended without it (deadline, cancellation)."""


def is_external_wait(obj: Any) -> bool:
    """Whether ``obj`` follows the external-wait protocol (checked on the class, cheaply)."""
    cls = type(obj)
    return callable(getattr(cls, "arm", None)) and callable(getattr(cls, "disarm", None))


class _ExternalLot(ParkingLot):
    """Where one coroutine waits for one external event."""

    __slots__ = ("timeout", "wait", "woken")

    def __init__(self, wait: Any) -> None:
        super().__init__(f"external wait ({type(wait).__name__})")
        self.wait = wait
        self.timeout: _Timeout | None = None
        #: Set when ``wake`` ran before the coroutine was parked: it then does not park.
        self.woken = False

    def withdraw_locked(self, co: Coroutine) -> bool:
        s = self._s
        assert s is not None
        s._n_external -= 1
        if self.timeout is not None:
            s._deadlines.cancel(self.timeout)  # type: ignore[arg-type]
        self.wait.disarm()
        return super().withdraw_locked(co)


class _Timeout:
    """An external wait's deadline in the scheduler's deadline heap (duck-typed like a cancel
    scope: a timer token, and ``_cancel_locked`` called under the lock when it is due)."""

    __slots__ = ("_timer_token", "lot")

    def __init__(self, lot: _ExternalLot) -> None:
        self._timer_token = 0
        self.lot = lot

    def _cancel_locked(self, s: Scheduler) -> None:
        lot = self.lot
        entry = lot.pop_first_locked()
        if entry is None:
            return  # woken (or withdrawn) meanwhile
        s._n_external -= 1
        lot.wait.disarm()
        lot.unpark_entry_locked(s, entry, False)


def serve_external(table: TrapTable, v: VCPU, co: Coroutine, wait: Any) -> bool:
    """Park ``co`` until ``wait`` wakes it or its deadline passes; True if it goes on at once."""
    s: Scheduler = table._s
    lot = _ExternalLot(wait)
    lot._s = s

    def wake() -> None:  # from any thread, any number of times; never waits for the run
        s._guard.call_soon(wake_locked)

    def wake_locked() -> None:
        entry = lot.pop_first_locked()
        if entry is None:
            lot.woken = True  # not parked yet: the guard below sees it
            return
        s._n_external -= 1
        if lot.timeout is not None:
            s._deadlines.cancel(lot.timeout)  # type: ignore[arg-type]
        lot.unpark_entry_locked(s, entry, True)

    try:
        armed = wait.arm(wake)
    except Exception as exc:
        co._resume_throw(exc)
        return True
    if not armed:
        co._resume_with(True)
        return True
    deadline = wait.deadline

    def park_unless_woken() -> Any:  # under the scheduler lock
        if lot.woken:
            return True
        s._n_external += 1
        if deadline is not None:
            lot.timeout = _Timeout(lot)
            at = s._clock.now() + (deadline - time.monotonic())
            s._deadlines.add(lot.timeout, at)  # type: ignore[arg-type]
        return PARKED

    return table._park(v, co, (PARK, lot, park_unless_woken, None, True))
