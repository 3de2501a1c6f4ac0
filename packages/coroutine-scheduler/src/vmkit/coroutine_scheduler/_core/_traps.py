"""Traps: what a coroutine yields to ask the scheduler for something.

Design note
-----------
A trap is a small tuple ``(OPCODE, args...)`` yielded up through every ``await``/``yield from``
to the run loop, as in curio and trio's low-level traps. The run loop tests one thing on the switch
path: ``if trap is None`` (a bare ``yield``: give up the vCPU and go to the back of the queue).
Anything else goes to the scheduler's trap handler, off the fast path.

Each public trap is a ``types.coroutine`` generator function, so the same object works three ways:

* ``await sleep(1)`` in ``async def`` code;
* ``yield from sleep(1)`` in a plain generator (the value of the expression is the trap's result);
* ``x = yield sleep(1)`` in a plain generator: the run loop sees a trap generator, takes its tuple
  and sends the result straight back to the yielding generator.

No trap is an object with a Python ``__next__`` or ``__await__``: each costs one generator frame.
``yield_now`` is the hot one (it is a context switch) and yields ``None``, exactly as a bare yield
does, so it needs no dispatch at all.

Misuse: every trap except ``yield_now`` checks, when it first runs, that the current thread is
inside a scheduler's run loop, and raises :class:`TrapOutsideSchedulerError` otherwise (for example
``await sleep(1)`` under asyncio). ``yield_now`` is exempt because a bare yield is also asyncio's
own "let others run" and the check would cost every switch.
"""

from __future__ import annotations

import math
import threading
import types
from collections.abc import Callable, Generator, Hashable
from typing import TYPE_CHECKING, Any

from vmkit.coroutine_scheduler._core._errors import TrapOutsideSchedulerError, UsageError

if TYPE_CHECKING:
    from vmkit.coroutine_scheduler._core._coroutine import Coroutine

__all__ = [
    "ACQUIRE",
    "CANCEL",
    "CURRENT",
    "JOIN",
    "NOTIFY",
    "PARK",
    "SLEEP",
    "SPAWN",
    "TRAP_CODES",
    "WAIT",
    "cancel",
    "current",
    "join",
    "notify",
    "park",
    "running",
    "sleep",
    "spawn",
    "wait",
    "yield_now",
]

SPAWN = 1
SLEEP = 2
WAIT = 3
NOTIFY = 4
JOIN = 5
CANCEL = 6
CURRENT = 7
PARK = 8
#: ``(ACQUIRE, lock, ticket)``: take a Lock or park in its lot (``Lock.acquire``'s own trap, so
#: its hand-over path runs no guard function: see ``TrapTable._acquire``).
ACQUIRE = 9


class _Running(threading.local):
    """Per OS thread: the scheduler whose run loop this thread is executing, if any, and the vCPU
    it is serving (set per turn by the inline backend, once per thread by the threads backend),
    so that code running in a coroutine can wake others onto its own vCPU without a trap."""

    scheduler: Any = None
    vcpu: Any = None


running = _Running()


def _check(trap: str) -> None:
    if running.scheduler is None:
        raise TrapOutsideSchedulerError(
            f"{trap}() was awaited outside a coroutine-scheduler run loop; spawn the coroutine "
            f"with Scheduler.spawn() and call Scheduler.run() (asyncio and trio cannot run it)"
        )


@types.coroutine
def yield_now() -> Generator[None, Any, None]:
    """Give up the vCPU: go to the back of the local run queue. Same as a bare ``yield``."""
    yield


@types.coroutine
def sleep(seconds: float) -> Generator[Any, Any, None]:
    """Suspend for at least ``seconds`` on the scheduler's clock; ``sleep(0)`` is ``yield_now``.

    Raises:
        UsageError: ``seconds`` is negative or not a number.
    """
    _check("sleep")
    if not isinstance(seconds, int | float) or math.isnan(seconds) or seconds < 0:
        raise UsageError(f"sleep() needs a number of seconds >= 0, got {seconds!r}")
    if seconds == 0:
        yield
        return
    yield (SLEEP, seconds)


@types.coroutine
def wait(key: Hashable, guard: Callable[[], bool] | None = None) -> Generator[Any, Any, bool]:
    """Park until ``notify(key)`` wakes this coroutine (futex-like).

    Args:
        key: any hashable value naming what is waited for.
        guard: called by the scheduler, under its lock, when it handles the trap; the coroutine
            parks only if it returns true. This is the futex's "compare": check the condition
            there and a notify between your check and the park cannot be lost.

    Returns:
        True if woken by ``notify``, False if ``guard`` said there was no need to wait.
    """
    _check("wait")
    woken: bool = yield (WAIT, key, guard)
    return woken


@types.coroutine
def notify(key: Hashable, n: int | None = 1) -> Generator[Any, Any, int]:
    """Wake up to ``n`` coroutines waiting on ``key`` (all of them if ``n`` is None), oldest first.

    The woken coroutines run next on this vCPU (its next-to-run slot); the caller keeps running.

    Returns:
        How many were woken.
    """
    _check("notify")
    if n is not None and (not isinstance(n, int) or n < 1):
        raise UsageError(f"notify() needs n >= 1 or None (all), got {n!r}")
    count: int = yield (NOTIFY, key, n)
    return count


@types.coroutine
def spawn(target: Any, *args: Any, name: str | None = None) -> Generator[Any, Any, Coroutine]:
    """Start a new coroutine on this vCPU's run queue and return it at once.

    ``target`` is a generator or coroutine object, or a function returning one (called with
    ``args``).
    """
    _check("spawn")
    child: Coroutine = yield (SPAWN, target, args, name, None)
    return child


@types.coroutine
def join(coroutine: Coroutine) -> Generator[Any, Any, Any]:
    """Wait for ``coroutine`` to end; return its result or re-raise its exception.

    Raises:
        UsageError: joining the calling coroutine itself, or one from another scheduler.
    """
    _check("join")
    return (yield (JOIN, coroutine))


@types.coroutine
def cancel(coroutine: Coroutine) -> Generator[Any, Any, bool]:
    """Ask ``coroutine`` to stop: Cancelled is raised in it when it next runs (once).

    A waiting or sleeping coroutine is woken for it. Returns False if it had already ended.

    Raises:
        UsageError: cancelling the calling coroutine itself (return or raise instead).
    """
    _check("cancel")
    done: bool = yield (CANCEL, coroutine)
    return done


@types.coroutine
def current() -> Generator[Any, Any, Coroutine]:
    """Return the calling coroutine's :class:`Coroutine`."""
    _check("current")
    me: Coroutine = yield (CURRENT,)
    return me


@types.coroutine
def park(
    lot: Any, guard: Callable[[], Any] | None = None, payload: Any = None, cancellable: bool = True
) -> Generator[Any, Any, Any]:
    """Wait in ``lot`` (a :class:`ParkingLot`) until it unparks this coroutine; the building
    block of the synchronization primitives (not for direct use).

    ``guard`` runs under the scheduler lock when the trap is served: it returns ``PARKED`` to
    wait, or a value to return at once (it may raise). ``payload`` rides along with the waiter
    (a channel sender's item). A non-``cancellable`` wait is not interrupted by cancellation.
    """
    # No _check(): the primitives bind their lot first, which checks (and this is a hot path).
    return (yield (PARK, lot, guard, payload, cancellable))


#: Code objects of the trap functions, so that the run loop can recognise ``yield sleep(1)``.
TRAP_CODES = frozenset(
    f.__code__ for f in (yield_now, sleep, wait, notify, spawn, join, cancel, current, park)
)
