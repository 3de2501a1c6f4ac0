"""A bridge from scheduler coroutines to asyncio: await work that only an asyncio loop can run.

Design notes
------------
A scheduler coroutine cannot await an asyncio future: only an asyncio event loop drives those.
The sound arrangement is two loops on two threads: the application's asyncio loop keeps running
(it runs the scheduler with ``await asyncio.to_thread(scheduler.run)``), and a coroutine that
needs asyncio work hands it over with ``await from_asyncio(coro, loop)``:

* the work is submitted to the loop with ``asyncio.run_coroutine_threadsafe``;
* the coroutine parks in a parking lot, counted as waiting for *outside* work, so that a run
  whose every coroutine waits only for asyncio is not reported as a deadlock (the inline backend
  waits in real time for the wake, the threads backend keeps its vCPUs idle);
* the future's done-callback, on the asyncio loop's thread, wakes it through the global queue
  and tells the backend (``woken_from_outside``); while an inline run holds the scheduler lock
  the wake is posted instead and done at the run's next step boundary, so the asyncio loop
  never waits for a step (``_guard.py``);
* cancelling the coroutine cancels the asyncio task.

Calling it with the loop of the current thread would wait forever (that loop is blocked in
``Scheduler.run``): that is refused with a message saying what to do instead.
"""

from __future__ import annotations

import types
from collections.abc import Awaitable, Generator
from typing import TYPE_CHECKING, Any, TypeVar

from vmkit.coroutine_scheduler._core._errors import Cancelled, UsageError
from vmkit.coroutine_scheduler._core._lot import PARKED, ParkingLot
from vmkit.coroutine_scheduler._core._traps import PARK

if TYPE_CHECKING:
    import asyncio
    import concurrent.futures

    from vmkit.coroutine_scheduler._core._coroutine import Coroutine
    from vmkit.coroutine_scheduler._core._scheduler import Scheduler

__all__ = ["from_asyncio"]

T = TypeVar("T")


class _OutsideLot(ParkingLot):
    """Where a coroutine waits for one asyncio future; withdrawing it cancels the future."""

    __slots__ = ("future",)

    def __init__(self, future: concurrent.futures.Future[Any]) -> None:
        super().__init__("asyncio work (from_asyncio)")
        self.future = future

    def withdraw_locked(self, co: Coroutine) -> bool:
        s = self._s
        assert s is not None
        s._n_external -= 1
        withdrawn = super().withdraw_locked(co)
        # After the withdrawal: cancelling runs the done-callback here and now, which must find
        # the waiter gone rather than wake it.
        self.future.cancel()
        return withdrawn


async def _await(awaitable: Awaitable[T]) -> T:  # a coroutine run_coroutine_threadsafe takes
    return await awaitable


@types.coroutine
def from_asyncio(
    awaitable: Awaitable[T], loop: asyncio.AbstractEventLoop
) -> Generator[Any, Any, T]:
    """Run ``awaitable`` on the asyncio ``loop`` (running in another thread) and return its
    result to the calling coroutine (``await from_asyncio(fetch(url), loop)``).

    Raises:
        UsageError: ``loop`` is not running, or runs on this thread (it would never get to run
            the work while the scheduler holds the thread).
        Exception: what the asyncio work raised (``asyncio.CancelledError`` if it was cancelled
            on the asyncio side).
    """
    import asyncio  # here: importing the package must not pull asyncio in

    try:
        current = asyncio.get_running_loop()
    except RuntimeError:
        current = None
    problem = None
    if current is loop:
        problem = UsageError(
            "from_asyncio() with the asyncio loop of this very thread would wait forever: that "
            "loop is blocked in Scheduler.run(); run the scheduler with "
            "`await asyncio.to_thread(scheduler.run)` and pass that loop"
        )
    elif not loop.is_running():
        problem = UsageError(
            "from_asyncio() needs an asyncio loop that is running (in another thread)"
        )
    if problem is not None:
        if asyncio.iscoroutine(awaitable):
            awaitable.close()  # it will never run: no "never awaited" warning later
        raise problem
    coro = awaitable if asyncio.iscoroutine(awaitable) else _await(awaitable)
    future = asyncio.run_coroutine_threadsafe(coro, loop)
    lot = _OutsideLot(future)
    s: Scheduler = lot.bind()

    def park_unless_done() -> Any:
        if future.done():
            return None
        s._n_external += 1
        return PARKED

    def wake(_: concurrent.futures.Future[Any]) -> None:  # on the asyncio loop's thread
        # Posted when an inline run holds the lock: the asyncio loop never waits for a step.
        s._guard.call_soon(wake_locked)

    def wake_locked() -> None:
        entry = lot.pop_first_locked()
        if entry is None:
            return  # not parked yet (its guard will see the result) or withdrawn
        s._n_external -= 1
        lot.wake_locked(s, entry)

    future.add_done_callback(wake)
    try:
        yield (PARK, lot, park_unless_done, None, True)
    except Cancelled:
        if not future.done() or future.cancelled():
            future.cancel()
            raise
        # Done and then cancelled before it ran: the result is not lost; the cancellation is
        # raised again at the next checkpoint.
    return future.result()
