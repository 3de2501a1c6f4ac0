"""The inline backend: one OS thread gives each vCPU a turn of up to ``quantum`` steps.

Design notes
------------
Round-robin turns on the calling thread. With a seeded ``random.Random`` per vCPU (victim order,
random placement) and a :class:`VirtualClock`, a run is fully deterministic; the test suite relies
on it. Nothing runs concurrently, so the switch path takes no lock, and a cancel of a queued
coroutine is armed at once (:meth:`InlineBackend.cancel_queued`).

The scheduler lock: the run's thread takes it when the run starts and holds it to the end, so
the primitives' hand-over paths on this thread skip it (``Scheduler._run_owns_lock``). Other OS
threads get in between two steps: the loop reads ``SchedulerGuard.attention`` per step and lets
them (``_guard.py``); idle waits release it.

Time accounting: busy and idle time are accounted as if each round of turns ran in parallel: a round
lasts as long as its longest turn; a vCPU is busy for its own turn and idle for the rest of the
round. Turns are timed with the thread's CPU clock (``thread_time_ns``, once per turn boundary, not
per step), so the host preempting the process does not show up as one vCPU's work; per-coroutine
run time uses ``perf_counter_ns`` per step.

The switch path (:meth:`InlineBackend._turn_fast`) is written for CPython's specialising
interpreter: locals for everything hot (the scheduler's methods are bound once per turn, so moving
the loop out of the scheduler class costs nothing per step), one ``perf_counter_ns`` per step,
counters batched per turn, no hook or log call, no lock. Anything unusual (a trap, an empty queue,
the global-queue tick, a next-to-run coroutine) leaves it for the scheduler's general code.
Instruments select the general turn (:meth:`InlineBackend._turn_general`) once per run, never per
step.

A vCPU that runs out of work mid-turn ends its turn and looks for work (global queue, stealing) at
the start of its next one: in the parallel time this backend models, the other vCPUs are busy
during that turn, and stealing from them mid-turn would let it run ahead of them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from time import perf_counter_ns
from typing import TYPE_CHECKING

from vmkit.coroutine_scheduler._core import _coroutine as _co
from vmkit.coroutine_scheduler._core._clock import MonotonicClock, VirtualClock
from vmkit.coroutine_scheduler._core._errors import Cancelled
from vmkit.coroutine_scheduler._core._traps import ACQUIRE, PARK, running

if TYPE_CHECKING:
    from vmkit.coroutine_scheduler._core._backend import BackendName
    from vmkit.coroutine_scheduler._core._coroutine import Coroutine
    from vmkit.coroutine_scheduler._core._scheduler import Scheduler
    from vmkit.coroutine_scheduler._core._vcpu import VCPU

__all__ = ["InlineBackend"]

_READY = _co.READY
_RUNNING = _co.RUNNING


class InlineBackend:
    """Runs a scheduler's vCPUs in turns on the calling thread (created by the scheduler)."""

    __slots__ = ("_outside", "_s")

    name: BackendName = "inline"

    def __init__(self, scheduler: Scheduler) -> None:
        self._s = scheduler
        # Set by another thread that queued work (see woken_from_outside); the idle loop waits
        # on it while coroutines wait for outside work.
        self._outside = threading.Event()

    def woken_from_outside(self) -> None:
        """Wake the run loop if it idles waiting for outside work."""
        self._outside.set()

    def work_available(self) -> None:
        """Nothing to wake: every vCPU gets its turn anyway."""

    def cancel_queued(self, co: Coroutine) -> None:
        """``co`` is READY in some queue (or is the one running) and nothing runs concurrently:
        arm the cancel now."""
        co._arm_cancel()

    def all_done(self) -> None:
        """Nothing to stop: the loop ends when no coroutine is alive."""

    # -- the loop ----------------------------------------------------------------------------

    def run(self, deadline: float | None, timeout: float | None) -> None:
        """Give each vCPU a turn, round after round, until no coroutine is alive."""
        s = self._s
        previous = running.scheduler, running.vcpu
        running.scheduler = s
        # Held from here to the end, shared with other threads between steps (_guard.py).
        s._lock.acquire()
        s._run_owns_lock = True
        try:
            self._rounds(deadline, timeout)
        finally:
            try:
                s._guard.run_ended()
            finally:
                s._lock.release()
            running.scheduler, running.vcpu = previous

    def _rounds(self, deadline: float | None, timeout: float | None) -> None:
        s = self._s
        vcpus = s._vcpus
        timers = s._timers
        deadlines = s._deadlines
        turn = self._turn_general if s._hooks else self._turn_fast
        statistics = s._statistics
        monotonic = time.monotonic
        cpu = time.thread_time_ns
        while s._alive:
            if (timers.count or deadlines.count) and s._timers_due():
                s._fire_timers(None)
            round_steps = 0
            if statistics:
                lengths = []
                # One CPU-clock read per turn boundary (N + 1 per round): the clock is a
                # system call, about ten times a perf_counter_ns.
                t0 = cpu()
                for v in vcpus:
                    running.vcpu = v
                    steps = turn(v)
                    t1 = cpu()
                    lengths.append((v, steps, t1 - t0))
                    t0 = t1
                    round_steps += steps
                longest = max(d for _v, _s, d in lengths)
                for v, steps, d in lengths:
                    if steps:
                        v._busy_ns += d
                        v._idle_ns += longest - d
                    else:
                        v._idle_ns += longest
            else:
                for v in vcpus:
                    running.vcpu = v
                    round_steps += turn(v)
            if not round_steps and s._alive:
                self._nothing_runnable(deadline)
            if deadline is not None and monotonic() >= deadline:
                s._timed_out(timeout)

    def _nothing_runnable(self, deadline: float | None) -> None:
        """No vCPU ran a step in a whole round: sleep until the next timer, or it is a deadlock."""
        s = self._s
        if s._guard.attention:  # another thread posted or knocked: it may wake somebody
            s._guard.serve()
            return
        if s._global or any(v._local or v._runnext is not None for v in s._vcpus):
            return  # pragma: no cover - defensive: someone will pick it up next round
        wake_at = s._next_deadline()
        # Cleared while the lock is held: from here on, a wake from another thread (made
        # directly while the lock is released, or posted just before) sets it again.
        self._outside.clear()
        if s._n_external:
            # Someone waits for work outside the scheduler (an asyncio loop): not a deadlock.
            # Wait for it in real time, in short pieces so that a timeout is seen.
            slice_ = 0.05
            if wake_at is not None and not isinstance(s._clock, VirtualClock):
                slice_ = min(slice_, max(0.0, wake_at - s._clock.now()))
            if deadline is not None:
                slice_ = min(slice_, max(0.0, deadline - time.monotonic()))
            with self._lock_released():
                self._outside.wait(slice_)  # real wait: for another thread's wake
            return
        if wake_at is None:
            s._raise_deadlock()
        delay = wake_at - s._clock.now()
        if deadline is not None and not isinstance(s._clock, VirtualClock):
            delay = min(delay, deadline - time.monotonic())
        t0 = perf_counter_ns()
        with self._lock_released():
            if type(s._clock) is MonotonicClock:
                # Every coroutine sleeps: wait for the next timer, or for another thread's wake
                # (a spawn, an Event.set), whichever comes first.
                self._outside.wait(max(0.0, delay))  # real wait
            else:
                s._clock.sleep(delay)  # a virtual clock jumps; another clock decides
        if s._statistics:
            slept = perf_counter_ns() - t0
            for v in s._vcpus:
                v._idle_ns += slept

    @contextmanager
    def _lock_released(self) -> Iterator[None]:
        """Let go of the scheduler lock for an idle wait: other threads may wake work meanwhile."""
        lock = self._s._lock
        lock.release()
        try:
            yield
        finally:
            lock.acquire()

    # -- turns -------------------------------------------------------------------------------

    def _turn_fast(self, v: VCPU) -> int:  # noqa: PLR0912, PLR0915 - the switch path, flattened on purpose (its cost is the benchmark)
        """Up to ``quantum`` steps on ``v``: the switch path (no instruments)."""
        s = self._s
        local = v._local
        popleft = local.popleft
        append = local.append
        pick = s._pick
        finish = s._finish
        handle = s._traps.handle
        go_on = s._traps.go_on
        # The run thread holds the scheduler lock: the handlers' lock-held bodies, called direct.
        park = s._traps._park_locked
        acquire = s._traps._acquire_locked
        push_local = s._push_local
        guard = s._guard
        # Without statistics the clock is ``int``: ``int()`` is 0, a C call cheaper than a
        # clock read, and the loop stays one piece of code.
        perf = perf_counter_ns if s._statistics else int
        running_state = _RUNNING
        ready_state = _READY
        countdown = v._countdown
        last = v._last
        steps = s._quantum
        switches = 0
        fast = True
        co: Coroutine | None
        t0 = perf()
        for i in range(steps):
            if guard.attention:  # another thread posted a wake or waits for the scheduler lock
                guard.serve()
            countdown -= 1
            if countdown and local and v._runnext is None:
                co = popleft()
            else:
                if not countdown:
                    countdown = s._gqi
                    co = pick(v, True, not i)
                else:
                    co = pick(v, False, not i)
                if co is None:
                    steps = i
                    break
                fast = False
            if co is not last:
                switches += 1
                last = co
            co._state = running_state
            try:
                trap = co._send(None)
            except StopIteration as stop:
                co._run_ns += perf() - t0
                co._switches += 1
                finish(v, co, stop.value, None)
                t0 = perf()
                fast = True
                continue
            except (Exception, Cancelled) as exc:
                co._run_ns += perf() - t0
                co._switches += 1
                finish(v, co, None, exc)
                t0 = perf()
                fast = True
                continue
            t1 = perf()
            co._run_ns += t1 - t0
            t0 = t1
            co._switches += 1
            if trap is None:
                co._state = ready_state
                if fast:
                    append(co)
                else:
                    push_local(v, co)
                    fast = True
            elif type(trap) is tuple and trap and ((op := trap[0]) == PARK or op == ACQUIRE):
                # The primitives' traps, served here: one call less on every hand-over.
                if (park if op == PARK else acquire)(v, co, trap):
                    go_on(v, co)
                t0 = perf()
                fast = True
            else:
                handle(v, co, trap)
                t0 = perf()
                fast = True
        v._countdown = countdown
        v._last = last
        v._executions += steps
        v._switches += switches
        return steps

    def _turn_general(self, v: VCPU) -> int:
        """Up to ``quantum`` steps on ``v`` with instruments and optional timing."""
        s = self._s
        steps = 0
        pick = s._pick
        step = s._step
        quantum = s._quantum
        while steps < quantum:
            if s._guard.attention:
                s._guard.serve()
            v._countdown -= 1
            if v._countdown <= 0:
                v._countdown = s._gqi
                co = pick(v, True, not steps)
            else:
                co = pick(v, False, not steps)
            if co is None:
                break
            step(v, co)
            steps += 1
        return steps
