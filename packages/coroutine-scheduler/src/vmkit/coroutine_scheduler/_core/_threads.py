"""The threads backend: one OS thread per vCPU, the same picking rules, locks around queues.

Design notes
------------
Each vCPU thread loops: every ``global_queue_interval`` ticks fire due timers and serve the global
queue first, otherwise pick as usual (``Scheduler._pick``) and run one step through the general
path (``Scheduler._step``: instruments, cancel delivery). On the GIL build it is correct but not
parallel; on free-threaded CPython it runs in parallel (nothing relies on the GIL for the
scheduler's own data: every shared structure is under a lock).

Idle vCPUs wait on a condition built on the scheduler lock, so whoever makes work runnable while
holding that lock can wake one (:meth:`ThreadsBackend.work_available`); ``idle_poll`` bounds the
wait as a safety net. When every vCPU is idle and only sleepers remain, the last one to go idle
sleeps on the clock until the next deadline (a virtual clock jumps the whole way; a real one
sleeps in pieces of at most 50 ms so that a timeout is seen soon).

Deadlock: an idle vCPU that sees every live coroutine parked (``_n_blocked == len(alive)``, no
sleeper) records them and stops the run; the calling thread raises :class:`DeadlockError` after
joining the vCPU threads. A cancel of a coroutine that is READY or RUNNING elsewhere only sets a
flag (:meth:`ThreadsBackend.cancel_queued`): the coroutine's own vCPU delivers it at its next step
or park, since arming it from here would race with that vCPU resuming it.

Time accounting: a vCPU's busy time is the wall time of the run minus its idle waits; on the GIL
build that includes waiting for the GIL while it had work.
"""

from __future__ import annotations

import threading
import time
from time import perf_counter_ns
from typing import TYPE_CHECKING

from vmkit.coroutine_scheduler._core._clock import VirtualClock
from vmkit.coroutine_scheduler._core._errors import DeadlockError, UsageError
from vmkit.coroutine_scheduler._core._traps import running

if TYPE_CHECKING:
    from vmkit.coroutine_scheduler._core._backend import BackendName
    from vmkit.coroutine_scheduler._core._coroutine import Coroutine
    from vmkit.coroutine_scheduler._core._scheduler import Scheduler
    from vmkit.coroutine_scheduler._core._vcpu import VCPU

__all__ = ["ThreadsBackend"]


class ThreadsBackend:
    """Runs each of a scheduler's vCPUs on its own OS thread (created by the scheduler)."""

    __slots__ = ("_cond", "_deadlocked", "_done", "_failure", "_n_idle", "_s", "_stop")

    name: BackendName = "threads"

    def __init__(self, scheduler: Scheduler) -> None:
        self._s = scheduler
        self._cond = threading.Condition(scheduler._lock)
        self._stop = False
        self._n_idle = 0
        self._done = threading.Event()
        self._deadlocked: tuple[Coroutine, ...] | None = None
        self._failure: BaseException | None = None

    def work_available(self) -> None:
        """Wake one idle vCPU, if any waits (the lock is re-entrant: callers may hold it)."""
        if self._n_idle:
            with self._cond:
                self._cond.notify()

    def woken_from_outside(self) -> None:
        """Wake an idle vCPU thread for the work another thread queued."""
        with self._cond:
            self._cond.notify()

    def cancel_queued(self, co: Coroutine) -> None:
        """``co`` may be running on another vCPU right now: flag it; its next step delivers it."""
        co._cancel_requested = True

    def all_done(self) -> None:
        """Stop every vCPU thread and release the waiting ``run``."""
        self._stop = True
        self._done.set()
        self._cond.notify_all()

    # -- the calling thread ------------------------------------------------------------------

    def run(self, deadline: float | None, timeout: float | None) -> None:
        """Start one thread per vCPU, wait for the end, a deadlock or the deadline; join them."""
        s = self._s
        if not s._alive:
            return
        self._stop = False
        self._done.clear()
        self._deadlocked = None
        self._failure = None
        threads = [
            threading.Thread(
                target=self._thread_main,
                args=(v,),
                name=f"coroutine-scheduler-vcpu-{v.id}",
                daemon=True,
            )
            for v in s._vcpus
        ]
        for t in threads:
            t.start()
        wait_for = None if deadline is None else max(0.0, deadline - time.monotonic())
        finished = self._done.wait(wait_for)  # real wait: the vCPU threads do the work
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        stuck = []
        for t in threads:
            t.join(timeout=10.0)  # real wait: a step that never yields cannot be interrupted
            if t.is_alive():
                stuck.append(t.name)
        if self._failure is not None:
            raise self._failure
        if stuck:
            raise UsageError(
                f"vCPU thread(s) {', '.join(stuck)} did not stop: a coroutine step never yields"
            )
        deadlocked = self._deadlock_report()
        if deadlocked is not None:
            with s._lock:
                error = DeadlockError(deadlocked)
                s._close_all(list(deadlocked), "closed after a deadlock")
            raise error
        if not finished:
            s._timed_out(timeout)

    def _deadlock_report(self) -> tuple[Coroutine, ...] | None:
        """What a vCPU thread recorded (a call, so that mypy does not narrow it to None)."""
        return self._deadlocked

    # -- each vCPU thread --------------------------------------------------------------------

    def _thread_main(self, v: VCPU) -> None:
        running.scheduler = self._s
        running.vcpu = v
        started = perf_counter_ns()
        idle_before = v._idle_ns
        try:
            self._vcpu_loop(v)
        except BaseException as exc:
            self._failure = exc
            with self._cond:
                self._stop = True
                self._done.set()
                self._cond.notify_all()
        finally:
            running.scheduler = None
            running.vcpu = None
            v._busy_ns += perf_counter_ns() - started - (v._idle_ns - idle_before)

    def _vcpu_loop(self, v: VCPU) -> None:
        s = self._s
        pick = s._pick
        step = s._step
        timers = s._timers
        deadlines = s._deadlines
        gqi = s._gqi
        countdown = gqi
        while not self._stop:
            countdown -= 1
            check_global = countdown <= 0
            if check_global:
                countdown = gqi
                if timers.count or deadlines.count:
                    s._fire_timers(v)
            co = pick(v, check_global)
            if co is None:
                if timers.count or deadlines.count:
                    s._fire_timers(v)
                    co = pick(v, False)
                if co is None:
                    self._idle(v)
                    continue
            step(v, co)

    def _idle(self, v: VCPU) -> None:
        """Nothing to run on ``v``: wait for work, a timer, the end of the run, or a deadlock."""
        t0 = perf_counter_ns()
        try:
            clock_sleep = self._idle_wait()
            if clock_sleep:
                self._s._clock.sleep(clock_sleep)  # real wait with the default clock
        finally:
            v._idle_ns += perf_counter_ns() - t0

    def _idle_wait(self) -> float:
        """Wait on the condition if there is reason to; return how long to sleep on the clock."""
        s = self._s
        with self._cond:
            if self._stop or s._global:
                return 0.0
            if (
                s._alive
                and s._n_blocked == len(s._alive)
                and not s._deadlines.count
                and not s._n_external
            ):
                self._deadlocked = tuple(sorted(s._alive.values(), key=lambda c: c.id))
                if s._debug:
                    s._event("deadlock_detected", coroutines=[c.id for c in self._deadlocked])
                self.all_done()
                return 0.0
            wait = s._idle_poll
            if s._timers.count or s._deadlines.count:
                wake_at = s._next_deadline()
                delay = 0.0 if wake_at is None else wake_at - s._clock.now()
                if delay <= 0:
                    return 0.0
                if self._n_idle + 1 == len(s._vcpus):
                    # Every vCPU is idle and only timers remain: let the clock pass. A virtual
                    # clock jumps the whole way; a real one sleeps in bounded pieces so that a
                    # stop request (timeout) is seen soon.
                    if isinstance(s._clock, VirtualClock):
                        return delay
                    return min(delay, 0.05)
                wait = min(wait, delay)
            self._n_idle += 1
            try:
                self._cond.wait(wait)  # real wait: idle until work, a timer or the end
            finally:
                self._n_idle -= 1
            return 0.0
