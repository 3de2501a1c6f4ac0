"""A threaded guest as one coroutine per guest thread, for an M:N scheduler.

Design notes
------------
``executor.run()`` interleaves a guest's threads itself (see ``linux._threads``). A scheduler
such as coroutine-scheduler can instead run every guest thread as a coroutine of its own, spread
over its vCPUs and stolen between them like any other, without either package importing the
other. The protocol, all on this side:

* :meth:`ThreadedGuest.main` is the main thread's generator. When the guest creates a thread,
  the ``spawn`` callback given to :class:`ThreadedGuest` receives that thread's generator and a
  name, and hands it to the scheduler (``scheduler.spawn``).
* A thread's generator yields ``None`` when its slice is spent or it called ``sched_yield``
  (it wants to run again), and a :class:`GuestWait` when it blocks (a futex wait, a sleep).
  ``GuestWait`` follows the scheduler's external-wait protocol (``arm(wake)``, ``deadline``,
  ``disarm()``): the scheduler parks the coroutine, and a FUTEX_WAKE from another guest thread
  calls ``wake``. A blocked guest thread is parked, never polled. The yield's value is False
  when the deadline passed.
* Each generator returns when its thread exits (None) or when the process ends (the exit status;
  the main thread's generator always returns it, waiting for the process to end if its thread
  exits first).

The guest's threads share one hart and one address space (see ``linux._threads``), so a process
lock lets one of them run at a time: on the threads backend, two vCPUs may hold two threads of
the same guest, and the second waits for the first's slice to end. The GIL would serialise them
anyway; the lock makes every slice atomic, which is what makes AMOs and LR/SC exact on every
runner. Lock order: the process lock, then the scheduler's (a wake is called holding the first);
``disarm`` takes no lock, since the scheduler calls it holding its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from vmkit.async_executor.engine._defaults import DEFAULT_SLICE
from vmkit.async_executor.engine._executor import NO_LIMIT, ExecutorBase
from vmkit.async_executor.errors import BudgetExhausted
from vmkit.async_executor.linux._threads import (
    GuestDeadlock,
    GuestThread,
    ThreadState,
    ThreadSwitch,
)

if TYPE_CHECKING:
    from vmkit.async_executor.linux._kernel import Linux
    from vmkit.async_executor.machine._machine import Machine

__all__ = ["GuestWait", "ThreadedGuest"]

#: ``spawn(generator, name)``: give a new guest thread's generator to the scheduler.
SpawnCallback = Callable[[Generator[Any, Any, "int | None"], str], object]


class GuestWait:
    """What a blocked guest thread's generator yields: the scheduler's external-wait protocol."""

    __slots__ = ("_guest", "thread")

    def __init__(self, guest: ThreadedGuest, thread: GuestThread) -> None:
        self._guest = guest
        self.thread = thread

    def __repr__(self) -> str:
        return f"GuestWait(thread {self.thread.tid} in {self.thread.blocked_on})"

    @property
    def deadline(self) -> float | None:
        """When a timed wait ends, on ``time.monotonic()`` (None: untimed)."""
        ns = self.thread.deadline_ns
        return None if ns is None else ns / 1e9

    def arm(self, wake: Callable[[], None]) -> bool:
        """Remember ``wake`` for the thread's waker; False if it was woken (or the process
        ended) before the scheduler parked it."""
        with self._guest._lock:
            if self.thread.state is not ThreadState.BLOCKED or self._guest.ended:
                return False
            self.thread.waker = wake
            return True

    def disarm(self) -> None:
        """Forget the waker (the scheduler calls this holding its lock: no lock taken here)."""
        self.thread.waker = None


class ThreadedGuest:
    """Runs each thread of a loaded guest as its own generator (see the module note).

    Args:
        executor: the executor to run guest code with (any engine); bound to ``machine``.
        machine: a loaded program (with the Linux layer).
        spawn: called with each new guest thread's generator and a name.
        slice_instructions: guest instructions per slice before a thread yields.
        max_instructions: the whole guest's instruction budget (None: no limit).
        cpus: the CPUs the guest sees in sched_getaffinity, normally the scheduler's vCPUs
            (None: the host's).
    """

    def __init__(
        self,
        executor: ExecutorBase,
        machine: Machine[Linux],
        spawn: SpawnCallback,
        *,
        slice_instructions: int = DEFAULT_SLICE,
        max_instructions: int | None = None,
        cpus: int | None = None,
    ) -> None:
        if slice_instructions < 1:
            raise ValueError(f"slice_instructions must be >= 1, got {slice_instructions}")
        self.executor = executor
        self.machine = machine
        executor._bind(machine)
        self._spawn = spawn
        self._slice = slice_instructions
        self._budget = max_instructions
        self._limit = (
            NO_LIMIT if max_instructions is None else machine.hart.instret + max_instructions
        )
        self._lock = threading.Lock()
        #: Wakers of a main generator waiting for the process to end after its thread exited.
        self._end_wakers: list[Callable[[], None]] = []
        if cpus is not None:
            if cpus < 1:
                raise ValueError(f"cpus must be at least 1, got {cpus}")
            machine.linux.cpus = cpus
        self.threads = machine.linux.threads
        self.threads.external = True
        # The running thread's registers live in the hart until a first switch saves them.
        self.threads.save(machine.hart)
        self._started: set[int] = {self.threads.main.tid}
        #: The guest's exit status once it ended (None while it runs).
        self.status: int | None = None

    @property
    def ended(self) -> bool:
        """Whether the guest process has ended."""
        return self.status is not None

    def main(self) -> Generator[Any, Any, int]:
        """The main thread's generator: returns the guest's exit status when the process ends."""
        yield from self._thread(self.threads.main)
        while self.status is None:
            # The main thread exited (pthread_exit) while others run: wait for the end.
            yield _ProcessEnd(self)
        return self.status

    def _thread(self, thread: GuestThread) -> Generator[Any, Any, int | None]:
        while True:
            step, new = self._step(thread)
            for child in new:
                self._spawn(self._thread(child), f"guest thread {child.tid}")
            if step == "run":
                yield None
            elif step == "wait":
                woken = yield GuestWait(self, thread)
                if not woken:
                    with self._lock:
                        self.threads.wake_thread(thread, thread.timeout_result)
            else:
                return self.status if step == "ended" else None

    def _step(self, thread: GuestThread) -> tuple[str, list[GuestThread]]:
        """Run one slice of ``thread`` under the process lock; say what it does next: "run"
        (yield, then go on), "wait" (blocked), "exited" (its thread ended) or "ended" (the
        process ended), with the threads it created."""
        with self._lock:
            if self.ended:
                return "ended", []
            if thread.state is ThreadState.EXITED:
                return "exited", []
            if thread.state is ThreadState.BLOCKED:
                return "wait", []  # woken before it parked, then blocked again: wait again
            end = self._run(thread)
            new = [t for t in self.threads.live.values() if t.tid not in self._started]
            self._started.update(t.tid for t in new)
            step = self._after(thread, end)
            return step, new if step != "ended" else []

    def _run(self, thread: GuestThread) -> BaseException:
        """Switch ``thread`` in (a pending signal delivered first), run its slice through the
        executor base's loop (fault handlers, hooks, the wall-clock limit), switch it out."""
        machine = self.machine
        try:
            machine.linux.enter_thread(machine, thread)
        except Exception as exc:  # a fatal signal ends the process
            self.threads.save(machine.hart)
            return exc
        stop = min(self._limit, machine.hart.instret + self._slice)
        end = self.executor._run_to(machine, stop, self._budget)
        self.threads.save(machine.hart)
        return end

    def _after(self, thread: GuestThread, end: BaseException) -> str:
        """What ``thread`` does next after its slice ended with ``end`` (the process may end)."""
        if isinstance(end, ThreadSwitch):
            step = {
                ThreadState.EXITED: "exited",
                ThreadState.BLOCKED: "wait",
                ThreadState.RUNNABLE: "run",
            }[thread.state]
            if step != "run" and self._all_blocked_for_good():
                self._end(GuestDeadlock(self.threads._deadlock_message()))
                return "ended"
            return step
        if isinstance(end, BudgetExhausted):
            if self.machine.hart.instret < self._limit:
                return "run"
            end = BudgetExhausted(self._budget or 0, end.pc)
        self._end(end)
        return "ended"

    def _all_blocked_for_good(self) -> bool:
        live = self.threads.live.values()
        return bool(live) and all(
            t.state is ThreadState.BLOCKED and t.deadline_ns is None for t in live
        )

    def _end(self, end: BaseException) -> None:
        """The process ended (caller holds the process lock): record it and wake every
        parked thread so that its generator returns."""
        self.status = self.machine.terminate(end)
        self.executor._ran(self.machine, self.status)
        wakers = [t.waker for t in self.threads.live.values() if t.waker is not None]
        for other in self.threads.live.values():
            other.waker = None
        wakers += self._end_wakers
        self._end_wakers.clear()
        for waker in wakers:
            waker()


class _ProcessEnd:
    """The main generator's wait for the process to end after its own thread exited."""

    __slots__ = ("_guest",)

    def __init__(self, guest: ThreadedGuest) -> None:
        self._guest = guest

    deadline = None

    def arm(self, wake: Callable[[], None]) -> bool:
        guest = self._guest
        with guest._lock:
            if guest.ended:
                return False
            guest._end_wakers.append(wake)
            return True

    def disarm(self) -> None:
        """Nothing to forget: a late wake of an ended wait is ignored by the scheduler."""
