"""The scheduler: vCPUs, the global queue, work stealing, traps, timers and the two run loops.

Design note
-----------
This is Go's runtime scheduler (``runtime/proc.go``) and Tokio's multi-thread runtime transposed to
Python coroutines, with trio's and curio's ideas of traps and instruments.

Picking the next coroutine on a vCPU (``_pick``), in order:

1. every ``global_queue_interval`` (61) ticks, one coroutine from the global queue, even when local
   work exists; otherwise a vCPU with a self-feeding local queue would starve the global one
   (Go: ``schedtick%61``; 61 is prime so the check does not fall into step with periodic work);
2. the next-to-run slot, at most ``lifo_limit`` times in a row (Tokio);
3. the head of the local queue;
4. a batch from the global queue: ``min(len, len/vcpus + 1, local_queue_size/2)`` coroutines
   (Go's ``globrunqget``), so that one pull does not take everything;
5. work stealing: the vCPUs are visited in a random order (random start, random stride coprime to
   their number, as Go's ``randomOrder``) and the first non-empty local queue loses its older half
   (rounded up) to the thief;
6. nothing: the vCPU idles.

Invariants:

* ``len(alive) == ready + running + blocked + sleeping``, where ``_n_blocked`` counts
  coroutines parked in ``wait``/``join`` and ``_timers.count`` those asleep. If every live
  coroutine is blocked, none can ever be woken by another coroutine: that is a deadlock and
  ``run`` says so.
* Only a vCPU's own thread appends to its local queue and slot; everything that wakes a coroutine
  wakes it onto the vCPU that handles the wake (the notifier's, the sleeper's, the joiner's).
* Shared state (global queue, wait lists, timers, the alive table, counters) is guarded by one
  re-entrant scheduler lock, taken before any vCPU lock.

Backends:

* ``inline``: one OS thread gives each vCPU a turn of up to ``quantum`` steps, round-robin. With a
  seeded ``random.Random`` per vCPU (victim order, random placement) and a :class:`VirtualClock`,
  a run is fully deterministic; the test suite relies on it. Busy and idle time are accounted as if
  each round of turns ran in parallel: a round lasts as long as its longest turn; a vCPU is busy for
  its own turn and idle for the rest of the round. Turns are timed with the thread's CPU clock
  (``thread_time_ns``, once per turn boundary, not per step), so the host preempting the process
  does not show up as one vCPU's work; per-coroutine run time uses ``perf_counter_ns`` per step.
* ``threads``: a vCPU's busy time is the wall time of the run minus its idle waits; on the GIL
  build that includes waiting for the GIL while it had work.
  One OS thread per vCPU, the same picking rules, locks around queues. On the GIL build it is
  correct but not parallel; on free-threaded CPython it runs in parallel.

The inline switch path (``_turn_fast``) is written for CPython's specialising interpreter: locals
for everything hot, one ``perf_counter_ns`` per step, counters batched per turn, no hook or log
call, no lock. Anything unusual (a trap, an empty queue, the global-queue tick, a next-to-run
coroutine) leaves it for the general code. Instruments select the general turn
(``_turn_general``) once per run, never per step.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Hashable, Iterable, Sequence
from time import perf_counter_ns
from typing import Any, Literal, NoReturn

import structlog

from vmkit.coroutine_scheduler._core import _coroutine as _co
from vmkit.coroutine_scheduler._core._clock import Clock, MonotonicClock, VirtualClock
from vmkit.coroutine_scheduler._core._coroutine import Coroutine
from vmkit.coroutine_scheduler._core._errors import (
    Cancelled,
    DeadlockError,
    RunTimeoutError,
    UsageError,
)
from vmkit.coroutine_scheduler._core._instruments import Instrument
from vmkit.coroutine_scheduler._core._stats import LoadImbalance, SchedulerStats, VCPUStats
from vmkit.coroutine_scheduler._core._timers import Timers
from vmkit.coroutine_scheduler._core._trap_table import TrapTable
from vmkit.coroutine_scheduler._core._traps import running
from vmkit.coroutine_scheduler._core._vcpu import VCPU

__all__ = ["BACKENDS", "PLACEMENTS", "Scheduler"]

_log = structlog.get_logger(__name__)

BACKENDS = ("inline", "threads")
PLACEMENTS = ("round_robin", "random", "global", "first")
Backend = Literal["inline", "threads"]
Placement = Literal["round_robin", "random", "global", "first"]

_READY = _co.READY
_RUNNING = _co.RUNNING
_WAITING = _co.WAITING
_DEAD = _co.DEAD
_NOTHING = _co._NOTHING


def _debug_enabled() -> bool:
    """Whether debug events would be emitted; asked once per run, never per switch."""
    bound = _log.bind()
    # Look on the class: structlog's generic BoundLogger turns any unknown attribute into a
    # logging method, so getattr on the instance would log an event instead of answering.
    if getattr(type(bound), "is_enabled_for", None) is None:
        return True  # a wrapper class that cannot tell: assume debug is on
    return bool(bound.is_enabled_for(logging.DEBUG))


def _coprimes(n: int) -> tuple[int, ...]:
    return tuple(i for i in range(1, n + 1) if math.gcd(i, n) == 1) or (1,)


def _positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UsageError(f"Scheduler({name}=...) needs an integer >= {minimum}, got {value!r}")
    return value


class Scheduler:
    """Runs coroutines on ``vcpus`` virtual CPUs with local run queues and work stealing.

    Args:
        vcpus: number of virtual CPUs.
        backend: ``"inline"`` (one OS thread, deterministic for a seed) or ``"threads"`` (one OS
            thread per vCPU).
        seed: seed of every random choice (victim order, ``placement="random"``); None draws one,
            readable afterwards as :attr:`seed`, so any run can be replayed.
        local_queue_size: capacity of each local run queue (Go and Tokio use 256: big enough to
            absorb bursts, small enough that a steal moves a bounded batch).
        global_queue_interval: every how many ticks a vCPU serves the global queue first (Go: 61).
        lifo_limit: how many times in a row the next-to-run slot may be served (Tokio: 3); 0
            disables the slot (woken coroutines then go to the back of the queue).
        quantum: steps per vCPU turn in the inline backend (128: the per-turn bookkeeping, a
            few microseconds with its CPU-clock reads, then costs a few tens of ns a step;
            smaller interleaves the vCPUs more finely at a higher cost per switch).
        placement: where ``spawn()`` called from outside a coroutine puts a new coroutine:
            ``"round_robin"`` over the vCPUs, ``"random"``, ``"global"`` (the global queue) or
            ``"first"`` (vCPU 0: a deliberately skewed start, to exercise stealing).
        work_stealing: let idle vCPUs steal; off, imbalance stays as placed (for experiments).
        statistics: time every step (``perf_counter_ns``: per-coroutine run time) and, inline,
            every turn (the thread's CPU clock: vCPU busy and idle time); the counters of
            steps, switches and steals are kept either way.
        clock: where ``sleep()`` reads time and waits (default: the real monotonic clock); tests
            pass a :class:`VirtualClock`.
        instruments: hooks called during the run (see :class:`Instrument`).
        idle_poll: longest time in seconds an idle vCPU thread waits before looking for work again
            (threads backend); a safety net, since new work also wakes idle vCPUs directly.

    Raises:
        UsageError: a parameter is out of range.
    """

    def __init__(
        self,
        vcpus: int = 4,
        *,
        backend: Backend = "inline",
        seed: int | None = None,
        local_queue_size: int = 256,
        global_queue_interval: int = 61,
        lifo_limit: int = 3,
        quantum: int = 128,
        placement: Placement = "round_robin",
        work_stealing: bool = True,
        statistics: bool = True,
        clock: Clock | None = None,
        instruments: Iterable[Instrument] = (),
        idle_poll: float = 0.002,
    ) -> None:
        n = _positive_int("vcpus", vcpus)
        if backend not in BACKENDS:
            raise UsageError(f"Scheduler(backend=...) must be one of {BACKENDS}, got {backend!r}")
        if placement not in PLACEMENTS:
            raise UsageError(
                f"Scheduler(placement=...) must be one of {PLACEMENTS}, got {placement!r}"
            )
        self._cap = _positive_int("local_queue_size", local_queue_size, 2)
        self._gqi = _positive_int("global_queue_interval", global_queue_interval)
        self._lifo_limit = _positive_int("lifo_limit", lifo_limit, 0)
        self._quantum = _positive_int("quantum", quantum)
        if not isinstance(idle_poll, int | float) or not idle_poll > 0:
            raise UsageError(f"Scheduler(idle_poll=...) needs seconds > 0, got {idle_poll!r}")
        if seed is None:
            seed = random.SystemRandom().getrandbits(63)
        elif isinstance(seed, bool) or not isinstance(seed, int):
            raise UsageError(f"Scheduler(seed=...) needs an integer or None, got {seed!r}")
        self._seed = seed
        self._backend: Backend = backend
        self._placement: Placement = placement
        self._work_stealing = bool(work_stealing)
        self._statistics = bool(statistics)
        self._clock: Clock = clock if clock is not None else MonotonicClock()
        self._hooks: tuple[Instrument, ...] = tuple(instruments)
        self._idle_poll = float(idle_poll)
        self._rng = random.Random(seed)
        self._vcpus = tuple(
            VCPU(i, random.Random(self._rng.getrandbits(64)), self._gqi) for i in range(n)
        )
        self._victims = tuple(tuple(u for u in self._vcpus if u is not v) for v in self._vcpus)
        self._strides = _coprimes(n - 1) if n > 1 else (1,)
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._global: deque[Coroutine] = deque()
        self._waiters: dict[Hashable, deque[Coroutine]] = {}
        self._timers = Timers()
        self._traps = TrapTable(self)
        self._alive: dict[int, Coroutine] = {}
        self._ids = itertools.count(1)
        self._next_placement = 0
        self._n_blocked = 0
        self._spawned = 0
        self._finished = 0
        self._failed = 0
        self._running = False
        self._debug = False
        # Threads backend only.
        self._stop = False
        self._n_idle = 0
        self._done = threading.Event()
        self._deadlocked: tuple[Coroutine, ...] | None = None
        self._failure: BaseException | None = None

    # -- public API ------------------------------------------------------------------------

    @property
    def seed(self) -> int:
        """The seed of this scheduler's random choices."""
        return self._seed

    @property
    def backend(self) -> Backend:
        """``"inline"`` or ``"threads"``."""
        return self._backend

    @property
    def vcpus(self) -> tuple[VCPU, ...]:
        """The virtual CPUs, by index."""
        return self._vcpus

    def __repr__(self) -> str:
        return (
            f"<Scheduler {self._backend} vcpus={len(self._vcpus)} seed={self._seed} "
            f"alive={len(self._alive)}>"
        )

    def alive(self) -> tuple[Coroutine, ...]:
        """The coroutines that have not ended, in id order."""
        with self._lock:
            return tuple(self._alive[k] for k in sorted(self._alive))

    def spawn(
        self, target: Any, *args: Any, name: str | None = None, vcpu: int | None = None
    ) -> Coroutine:
        """Create a coroutine and queue it to run.

        Args:
            target: a generator or coroutine object, or a function returning one (called with
                ``args``), or any object with ``send`` and ``throw``.
            name: label for logs and errors (default: the function's qualified name).
            vcpu: put it on this vCPU's queue, overriding the placement policy (only before
                ``run()``; while running, outside spawns go to the global queue).

        Raises:
            UsageError: ``target`` is not something that can run as a coroutine, or ``vcpu`` is
                out of range.
        """
        co = self._make(target, args, name)
        if vcpu is not None and (
            isinstance(vcpu, bool) or not isinstance(vcpu, int) or not 0 <= vcpu < len(self._vcpus)
        ):
            raise UsageError(
                f"spawn(vcpu=...) needs an index in 0..{len(self._vcpus) - 1}, got {vcpu!r}"
            )
        with self._lock:
            self._register(co)
            if self._running:
                where: VCPU | None = None
            elif vcpu is not None:
                where = self._vcpus[vcpu]
            else:
                where = self._place()
            co._transition(_READY)
            if where is None:
                self._global.append(co)
                if self._n_idle:
                    self._cond.notify()
            else:
                co._vcpu = where.id
                where._local.append(co)
                if len(where._local) > self._cap:
                    self._spill(where)
        self._spawned_event(co, None if where is None else where.id)
        return co

    def run(self, timeout: float | None = None) -> None:
        """Run until every coroutine has ended.

        A coroutine that raises ends DEAD with its exception (see :attr:`Coroutine.exception`);
        the others go on.

        Args:
            timeout: seconds of real time after which the run stops between two steps.

        Raises:
            DeadlockError: every live coroutine waits and none sleeps (they are closed first).
            RunTimeoutError: ``timeout`` passed; the coroutines stay as they were, so ``run`` may
                be called again, or ``close()`` ends them.
            UsageError: ``run`` is already running, or ``timeout`` is not a positive number.
        """
        if timeout is not None and (not isinstance(timeout, int | float) or not timeout > 0):
            raise UsageError(f"run(timeout=...) needs seconds > 0 or None, got {timeout!r}")
        with self._lock:
            if self._running:
                raise UsageError("Scheduler.run() is already running (it is not re-entrant)")
            self._running = True
        deadline = None if timeout is None else time.monotonic() + timeout
        self._debug = _debug_enabled()
        if self._debug:
            for v in self._vcpus:
                v._log = _log.bind(vcpu=v.id)
            _log.debug(
                "run_started",
                backend=self._backend,
                vcpus=len(self._vcpus),
                seed=self._seed,
                alive=len(self._alive),
            )
        for hook in self._hooks:
            hook.before_run()
        try:
            if self._backend == "inline":
                self._run_inline(deadline, timeout)
            else:
                self._run_threads(deadline, timeout)
        finally:
            with self._lock:
                self._running = False
            for hook in self._hooks:
                hook.after_run()
            if self._debug:
                _log.debug(
                    "run_finished",
                    alive=len(self._alive),
                    finished=self._finished,
                    failed=self._failed,
                )

    def stats(self) -> SchedulerStats:
        """A frozen snapshot of every counter, per vCPU and in total, with the load imbalance."""
        per = tuple(v.stats() for v in self._vcpus)
        return SchedulerStats(
            backend=self._backend,
            seed=self._seed,
            vcpus=per,
            totals=VCPUStats.total(per),
            imbalance=LoadImbalance.of([p.busy_ns for p in per]),
            spawned=self._spawned,
            finished=self._finished,
            failed=self._failed,
            alive=len(self._alive),
            global_queue_length=len(self._global),
        )

    def close(self) -> None:
        """End every live coroutine without running it: close its generator, mark it cancelled.

        Raises:
            UsageError: called while ``run()`` is running.
        """
        with self._lock:
            if self._running:
                raise UsageError("Scheduler.close() cannot be called while run() is running")
            self._close_all(list(self._alive.values()), "closed by Scheduler.close()")

    # -- creation and placement -----------------------------------------------------------

    def _make(self, target: Any, args: Sequence[Any], name: str | None) -> Coroutine:
        obj = target
        if not (hasattr(target, "send") and hasattr(target, "throw")):
            if not callable(target):
                raise UsageError(
                    f"spawn() needs a generator, a coroutine object, or a function returning one; "
                    f"got {type(target).__name__} {target!r:.60}"
                )
            if name is None:
                name = getattr(target, "__qualname__", None)
            obj = target(*args)
        elif args:
            raise UsageError(
                f"spawn() got arguments {tuple(args)!r:.60} with an already-created "
                f"{type(target).__name__}; pass the function instead, or no arguments"
            )
        return Coroutine(obj, name=name)

    def _register(self, co: Coroutine) -> None:
        co.id = next(self._ids)
        co._owner = self
        self._alive[co.id] = co
        self._spawned += 1

    def _place(self) -> VCPU | None:
        policy = self._placement
        if policy == "round_robin":
            v = self._vcpus[self._next_placement % len(self._vcpus)]
            self._next_placement += 1
            return v
        if policy == "random":
            return self._vcpus[int(self._rng.random() * len(self._vcpus))]
        if policy == "first":
            return self._vcpus[0]
        return None

    def _spawned_event(self, co: Coroutine, vcpu: int | None) -> None:
        for hook in self._hooks:
            hook.on_spawn(co, vcpu)
        # Outside a run there is no switch path to protect: let structlog filter the event.
        if self._debug or not self._running:
            _log.debug("coroutine_spawned", coroutine=co.id, name=co.name, vcpu=vcpu)

    # -- queues ------------------------------------------------------------------------------

    def _push_local(self, v: VCPU, co: Coroutine) -> None:
        """Append ``co`` to ``v``'s queue; when full, spill the older half to the global queue."""
        with v._lock:
            q = v._local
            q.append(co)
            if len(q) <= self._cap:
                return
        self._spill(v)

    def _spill(self, v: VCPU) -> None:
        with v._lock:
            q = v._local
            half = len(q) // 2
            batch = [q.popleft() for _ in range(half)]
        v._spills += len(batch)
        with self._lock:
            self._global.extend(batch)
            if self._n_idle:
                self._cond.notify()

    def _push_runnext(self, v: VCPU, co: Coroutine) -> None:
        if not self._lifo_limit:
            self._push_local(v, co)
            return
        with v._lock:
            if v._runnext is None:
                v._runnext = co
                return
        # Occupied: queue behind it rather than displace it (Go displaces), so that several
        # coroutines woken in a row run in the order they were woken.
        self._push_local(v, co)

    def _pick(self, v: VCPU, check_global: bool, may_steal: bool = True) -> Coroutine | None:
        """The next coroutine for ``v`` (see the module note for the order), or None.

        The inline backend passes ``may_steal=False`` once a turn has run a step: in the parallel
        time it models, the other vCPUs are busy during that turn, and a vCPU that stole from
        them mid-turn would run ahead of them (so uniform work would look unbalanced).
        """
        gq = self._global
        if check_global and gq:
            with self._lock:
                co = gq.popleft() if gq else None
            if co is not None:
                v._global_pulls += 1
                v._lifo_streak = 0
                return co
        with v._lock:
            rn = v._runnext
            q = v._local
            if rn is not None:
                v._runnext = None
                if v._lifo_streak < self._lifo_limit:
                    v._lifo_streak += 1
                    return rn
                # The slot was served too often in a row: it waits its turn at the back.
                q.append(rn)
            v._lifo_streak = 0
            if q:
                return q.popleft()
        if gq:
            co = self._pull_global(v)
            if co is not None:
                return co
        if may_steal and self._work_stealing and len(self._vcpus) > 1:
            return self._steal(v)
        return None

    def _pull_global(self, v: VCPU) -> Coroutine | None:
        with self._lock:
            gq = self._global
            n = len(gq)
            if not n:
                return None
            take = min(n, n // len(self._vcpus) + 1, self._cap // 2)
            batch = [gq.popleft() for _ in range(take)]
        v._global_pulls += take
        if take > 1:
            with v._lock:
                v._local.extend(batch[1:])
        return batch[0]

    def _steal(self, v: VCPU) -> Coroutine | None:
        """Take the older half of some other vCPU's queue; victims are visited in random order."""
        v._steal_attempts += 1
        victims = self._victims[v.id]
        k = len(victims)
        rng = v._rng
        strides = self._strides
        start = int(rng.random() * k)
        stride = strides[int(rng.random() * len(strides))]
        for i in range(k):
            u = victims[(start + i * stride) % k]
            if not u._local:
                continue
            with u._lock:
                q = u._local
                n = len(q) - len(q) // 2
                if not n:
                    continue
                if n <= 8:
                    batch = [q.popleft() for _ in range(n)]
                else:
                    items = list(q)
                    q.clear()
                    q.extend(items[n:])
                    del items[n:]
                    batch = items
                u._steals_out += n
            v._steals_in += n
            if n > 1:
                with v._lock:
                    v._local.extend(batch[1:])
            for hook in self._hooks:
                hook.on_steal(v.id, u.id, n)
            if self._debug:
                v._log.debug("steal", victim=u.id, count=n)
            return batch[0]
        return None

    # -- waking, timers, ending ------------------------------------------------------------

    def _wake(self, v: VCPU, co: Coroutine, runnext: bool) -> None:
        """Make a WAITING coroutine READY on ``v`` (caller holds the scheduler lock)."""
        co._transition(_READY)
        co._wait_key = _NOTHING
        co._vcpu = v.id
        if runnext:
            self._push_runnext(v, co)
        else:
            self._push_local(v, co)
        if self._n_idle:
            self._cond.notify()

    def _work_available(self) -> None:
        """Runnable work appeared where another vCPU may take it: wake an idle one, if any."""
        if self._n_idle:
            with self._cond:
                self._cond.notify()

    def _cancel_queued(self, co: Coroutine) -> None:
        """Cancel ``co``, READY in a queue or RUNNING on another vCPU (caller holds the lock)."""
        if self._backend == "inline":
            co._arm_cancel()  # READY in some queue: nothing runs concurrently
        else:
            co._cancel_requested = True  # its next step (or park) delivers it

    def _fire_timers(self, v: VCPU | None) -> None:
        """Wake every sleeper whose deadline has passed (onto ``v``, or its own vCPU if None)."""
        with self._lock:
            if not self._timers.count:
                return
            for co in self._timers.pop_due(self._clock.now()):
                self._wake(v if v is not None else self._vcpus[co._vcpu], co, runnext=False)

    def _next_deadline(self) -> float | None:
        with self._lock:
            return self._timers.next_deadline()

    def _finish(self, v: VCPU, co: Coroutine, value: Any, exc: BaseException | None) -> None:
        with self._lock:
            co._result = value
            co._exception = exc
            co._transition(_DEAD)
            del self._alive[co.id]
            if exc is None:
                self._finished += 1
            else:
                self._failed += 1
            joiners = co._joiners
            co._joiners = None
            if joiners:
                for j in joiners:
                    self._n_blocked -= 1
                    if exc is None:
                        j._resume_with(value)
                    else:
                        j._resume_throw(exc)
                    self._wake(v, j, runnext=False)
            if not self._alive and self._backend == "threads":
                self._stop = True
                self._done.set()
                self._cond.notify_all()
        # Drop the references that tie the coroutine to its frame, so finished work is freed.
        co._send = co._gen_send
        for hook in self._hooks:
            hook.on_exit(co)
        if self._debug:
            if exc is None:
                v._log.debug("coroutine_finished", coroutine=co.id, name=co.name)
            else:
                v._log.debug("coroutine_failed", coroutine=co.id, name=co.name, error=repr(exc))

    def _close_all(self, coroutines: list[Coroutine], why: str) -> None:
        """Close ``coroutines`` (caller holds the lock and no run loop is active)."""
        for co in sorted(coroutines, key=lambda c: c.id):
            if co._state is _DEAD:
                continue
            if co._state is _RUNNING:  # only after an internal error stopped a run mid-step
                co._state = _READY
            co._close(Cancelled(why))
            self._alive.pop(co.id, None)
            self._failed += 1
        for v in self._vcpus:
            v._local.clear()
            v._runnext = None
        self._global.clear()
        self._waiters.clear()
        self._timers.clear()
        self._n_blocked = 0

    # -- inline backend ----------------------------------------------------------------------

    def _run_inline(self, deadline: float | None, timeout: float | None) -> None:
        vcpus = self._vcpus
        turn = self._turn_general if self._hooks else self._turn_fast
        statistics = self._statistics
        monotonic = time.monotonic
        cpu = time.thread_time_ns
        previous = running.scheduler
        running.scheduler = self
        try:
            while self._alive:
                if self._timers.count and self._timers.due(self._clock.now()):
                    self._fire_timers(None)
                round_steps = 0
                if statistics:
                    lengths = []
                    # One CPU-clock read per turn boundary (N + 1 per round): the clock is a
                    # system call, about ten times a perf_counter_ns.
                    t0 = cpu()
                    for v in vcpus:
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
                        round_steps += turn(v)
                if not round_steps and self._alive:
                    self._nothing_runnable(deadline)
                if deadline is not None and monotonic() >= deadline:
                    self._timed_out(timeout)
        finally:
            running.scheduler = previous

    def _nothing_runnable(self, deadline: float | None) -> None:
        """No vCPU ran a step in a whole round: sleep until the next timer, or it is a deadlock."""
        if self._global or any(v._local or v._runnext is not None for v in self._vcpus):
            return  # pragma: no cover - defensive: someone will pick it up next round
        wake_at = self._next_deadline()
        if wake_at is None:
            self._raise_deadlock()
        delay = wake_at - self._clock.now()
        if deadline is not None and not isinstance(self._clock, VirtualClock):
            delay = min(delay, deadline - time.monotonic())
        t0 = perf_counter_ns()
        self._clock.sleep(delay)  # real wait with the default clock: every coroutine sleeps
        if self._statistics:
            slept = perf_counter_ns() - t0
            for v in self._vcpus:
                v._idle_ns += slept

    def _raise_deadlock(self) -> NoReturn:
        with self._lock:
            stuck = sorted(self._alive.values(), key=lambda c: c.id)
            error = DeadlockError(stuck)
            if self._debug:
                _log.debug("deadlock_detected", coroutines=[c.id for c in stuck])
            self._close_all(stuck, "closed after a deadlock")
        raise error

    def _timed_out(self, timeout: float | None) -> NoReturn:
        alive = self.alive()
        if self._debug:
            _log.debug("run_timed_out", timeout=timeout, alive=[c.id for c in alive])
        raise RunTimeoutError(timeout or 0.0, alive)

    def _turn_fast(self, v: VCPU) -> int:
        """Up to ``quantum`` steps on ``v``: the switch path (no instruments)."""
        local = v._local
        popleft = local.popleft
        append = local.append
        pick = self._pick
        finish = self._finish
        handle = self._traps.handle
        # Without statistics the clock is ``int``: ``int()`` is 0, a C call cheaper than a
        # clock read, and the loop stays one piece of code.
        perf = perf_counter_ns if self._statistics else int
        running_state = _RUNNING
        ready_state = _READY
        countdown = v._countdown
        last = v._last
        steps = self._quantum
        switches = 0
        fast = True
        co: Coroutine | None
        t0 = perf()
        for i in range(steps):
            countdown -= 1
            if countdown and local and v._runnext is None:
                co = popleft()
            else:
                if not countdown:
                    countdown = self._gqi
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
                    self._push_local(v, co)
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
        steps = 0
        pick = self._pick
        step = self._step
        while steps < self._quantum:
            v._countdown -= 1
            if v._countdown <= 0:
                v._countdown = self._gqi
                co = pick(v, True, not steps)
            else:
                co = pick(v, False, not steps)
            if co is None:
                break
            step(v, co)
            steps += 1
        return steps

    def _step(self, v: VCPU, co: Coroutine) -> None:
        """Run one step of ``co`` on ``v`` (general path, both backends)."""
        if co._cancel_requested:
            co._arm_cancel()
        hooks = self._hooks
        v._current = co
        if co is not v._last:
            v._switches += 1
            v._last = co
        for hook in hooks:
            hook.before_step(v.id, co)
        timing = self._statistics
        co._state = _RUNNING
        t0 = perf_counter_ns() if timing else 0
        try:
            trap = co._send(None)
        except StopIteration as stop:
            self._account(v, co, t0, timing)
            self._finish(v, co, stop.value, None)
            return
        except (Exception, Cancelled) as exc:
            self._account(v, co, t0, timing)
            self._finish(v, co, None, exc)
            return
        self._account(v, co, t0, timing)
        if trap is None:
            co._state = _READY
            if co._cancel_requested:
                co._arm_cancel()
            self._push_local(v, co)
        else:
            self._traps.handle(v, co, trap)

    def _account(self, v: VCPU, co: Coroutine, t0: int, timing: bool) -> None:
        if timing:
            co._run_ns += perf_counter_ns() - t0
        co._switches += 1
        v._executions += 1
        v._current = None
        for hook in self._hooks:
            hook.after_step(v.id, co)

    # -- threads backend ---------------------------------------------------------------------

    def _run_threads(self, deadline: float | None, timeout: float | None) -> None:
        if not self._alive:
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
            for v in self._vcpus
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
            with self._lock:
                error = DeadlockError(deadlocked)
                self._close_all(list(deadlocked), "closed after a deadlock")
            raise error
        if not finished:
            self._timed_out(timeout)

    def _deadlock_report(self) -> tuple[Coroutine, ...] | None:
        return self._deadlocked

    def _thread_main(self, v: VCPU) -> None:
        running.scheduler = self
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
            v._busy_ns += perf_counter_ns() - started - (v._idle_ns - idle_before)

    def _vcpu_loop(self, v: VCPU) -> None:
        pick = self._pick
        step = self._step
        gqi = self._gqi
        countdown = gqi
        while not self._stop:
            countdown -= 1
            check_global = countdown <= 0
            if check_global:
                countdown = gqi
                if self._timers.count:
                    self._fire_timers(v)
            co = pick(v, check_global)
            if co is None:
                if self._timers.count:
                    self._fire_timers(v)
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
                self._clock.sleep(clock_sleep)  # real wait with the default clock
        finally:
            v._idle_ns += perf_counter_ns() - t0

    def _idle_wait(self) -> float:
        """Wait on the condition if there is reason to; return how long to sleep on the clock."""
        with self._cond:
            if self._stop or self._global:
                return 0.0
            if self._alive and self._n_blocked == len(self._alive):
                self._deadlocked = tuple(sorted(self._alive.values(), key=lambda c: c.id))
                if self._debug:
                    _log.debug("deadlock_detected", coroutines=[c.id for c in self._deadlocked])
                self._stop = True
                self._done.set()
                self._cond.notify_all()
                return 0.0
            wait = self._idle_poll
            if self._timers.count:
                wake_at = self._next_deadline()
                delay = 0.0 if wake_at is None else wake_at - self._clock.now()
                if delay <= 0:
                    return 0.0
                if self._n_idle + 1 == len(self._vcpus):
                    # Every vCPU is idle and only timers remain: let the clock pass. A virtual
                    # clock jumps the whole way; a real one sleeps in bounded pieces so that a
                    # stop request (timeout) is seen soon.
                    if isinstance(self._clock, VirtualClock):
                        return delay
                    return min(delay, 0.05)
                wait = min(wait, delay)
            self._n_idle += 1
            try:
                self._cond.wait(wait)  # real wait: idle until work, a timer or the end
            finally:
                self._n_idle -= 1
            return 0.0
