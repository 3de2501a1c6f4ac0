"""The scheduler: vCPUs, placement, the global queue, picking, stealing, waking and ending.

Design notes
------------
This is Go's runtime scheduler (``runtime/proc.go``) and Tokio's multi-thread runtime transposed to
Python coroutines, with trio's and curio's ideas of traps and instruments.

What lives where, and why this module keeps what it keeps: everything that is the same on every
backend and that a coroutine can observe (which coroutine runs next, where a woken one goes, what a
finished one leaves behind) is here, so both backends follow one set of rules by construction.
The rest is delegated, one concern per module:

* ``_inline.py`` / ``_threads.py``: how the vCPUs get CPU time (the run loops), behind the
  ``Backend`` protocol of ``_backend.py``;
* ``_trap_table.py``: what each trap does (one method per opcode);
* ``_timers.py``: the sleepers, by deadline.

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
  re-entrant scheduler lock, taken before any vCPU lock. An inline run holds it from start to
  end and lets other threads in between steps (``_guard.py``); code that may run on any thread
  takes it through ``_guard``, code that runs only in a run loop takes ``_lock`` directly.

Backends: ``Scheduler`` builds one backend object (``backend="inline"`` or ``"threads"``) and
calls it at the four points where they differ (``run``, ``work_available``, ``cancel_queued``,
``all_done``); no method here tests which backend it is. ``_step`` is the general path of one step
(instruments, cancel delivery) that the threads backend and the inline backend's instrumented turn
share; the inline switch path has its own copy of it, flattened for speed, in ``_inline.py``.
"""

from __future__ import annotations

import itertools
import logging
import math
import operator
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Sequence
from time import perf_counter_ns
from typing import Any, Literal, NoReturn

from vmkit.coroutine_scheduler._core import _coroutine as _co
from vmkit.coroutine_scheduler._core._backend import BACKENDS, Backend, BackendName
from vmkit.coroutine_scheduler._core._cancel import CancelScope
from vmkit.coroutine_scheduler._core._clock import Clock, MonotonicClock
from vmkit.coroutine_scheduler._core._coroutine import Coroutine
from vmkit.coroutine_scheduler._core._errors import (
    Cancelled,
    DeadlockError,
    RunTimeoutError,
    UsageError,
)
from vmkit.coroutine_scheduler._core._guard import SchedulerGuard
from vmkit.coroutine_scheduler._core._inline import InlineBackend
from vmkit.coroutine_scheduler._core._instruments import Instrument
from vmkit.coroutine_scheduler._core._stats import LoadImbalance, SchedulerStats, VCPUStats
from vmkit.coroutine_scheduler._core._threads import ThreadsBackend
from vmkit.coroutine_scheduler._core._timers import Timers
from vmkit.coroutine_scheduler._core._trap_table import TrapTable
from vmkit.coroutine_scheduler._core._traps import running
from vmkit.coroutine_scheduler._core._vcpu import VCPU
from vmkit.coroutine_scheduler._logging import get_logger

__all__ = ["BACKENDS", "PLACEMENTS", "Scheduler"]

_log = get_logger(__name__)

PLACEMENTS = ("round_robin", "random", "global", "first")
_BACKEND_TYPES: dict[BackendName, Callable[[Scheduler], Backend]] = {
    "inline": InlineBackend,
    "threads": ThreadsBackend,
}
Placement = Literal["round_robin", "random", "global", "first"]

_READY = _co.READY
_RUNNING = _co.RUNNING
_DEAD = _co.DEAD
_NOTHING = _co._NOTHING


def _debug_enabled() -> bool:
    """Whether debug events would be emitted; asked once per run, never per switch."""
    return _log.is_enabled_for(logging.DEBUG)


def _coprimes(n: int) -> tuple[int, ...]:
    return tuple(i for i in range(1, n + 1) if math.gcd(i, n) == 1) or (1,)


def _positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UsageError(f"Scheduler({name}=...) needs an integer >= {minimum}, got {value!r}")
    return value


def _explain(co: Coroutine, exc: BaseException) -> None:
    """Add a note to a failure whose cause is not where it surfaced (an asyncio call)."""
    if type(exc) is RuntimeError and "no running event loop" in str(exc):
        exc.add_note(
            f"coroutine #{co.id} {co.name!r} called an asyncio API, which needs an asyncio "
            f"event loop; scheduler coroutines use this package's sleep(), primitives and "
            f"channels (asyncio can run a scheduler: `await asyncio.to_thread(s.run)`)"
        )


_coroutine_id = operator.attrgetter("id")


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

    #: True while an inline run's thread holds the lock across steps (set by the inline
    #: backend): code on that thread, the primitives' hand-over paths, skips the lock.
    _run_owns_lock = False

    def __init__(
        self,
        vcpus: int = 4,
        *,
        backend: BackendName = "inline",
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
        #: The lock for code that may run on any thread: it knocks when an inline run holds
        #: the lock (see ``_guard.py``).
        self._guard = SchedulerGuard(self)
        self._global: deque[Coroutine] = deque()
        self._waiters: dict[Hashable, deque[Coroutine]] = {}
        self._timers: Timers[Coroutine] = Timers()
        #: Cancel scopes with a deadline (see ``_cancel.py``), on the same clock as sleepers.
        self._deadlines: Timers[CancelScope] = Timers()
        self._traps = TrapTable(self)
        self._alive: dict[int, Coroutine] = {}
        self._ids = itertools.count(1)
        self._next_placement = 0
        self._n_blocked = 0
        #: Parked coroutines waiting for work outside the scheduler (asyncio): while there are
        #: some, a run with nothing to do waits for them instead of reporting a deadlock.
        self._n_external = 0
        self._spawned = 0
        self._finished = 0
        self._failed = 0
        #: Failures nobody joined yet (not in a task group): raised by run() at its end.
        self._unobserved: dict[int, Coroutine] = {}
        self._cancels_delivered = 0
        self._scopes_moved_on = 0
        self._deadlines_exceeded = 0
        self._running = False
        self._debug = False
        self._backend: Backend = _BACKEND_TYPES[backend](self)
        #: Whether a wake must tell the backend (threads: an idle vCPU may sleep); the inline
        #: backend gives every vCPU its turn anyway, so its hand-over paths skip the call.
        self._signal_work = self._backend.name == "threads"
        #: Whether only the run thread touches the vCPUs' local queues (inline: one thread runs
        #: every vCPU, and wakes from other threads go to the global queue), so the hand-over
        #: path may queue a woken waiter without the vCPU lock (about 200 ns a ``with`` here).
        self._unshared_queues = self._backend.name == "inline"

    # -- public API ------------------------------------------------------------------------

    @property
    def seed(self) -> int:
        """The seed of this scheduler's random choices."""
        return self._seed

    @property
    def backend(self) -> BackendName:
        """``"inline"`` or ``"threads"``."""
        return self._backend.name

    @property
    def vcpus(self) -> tuple[VCPU, ...]:
        """The virtual CPUs, by index."""
        return self._vcpus

    def __repr__(self) -> str:
        return (
            f"<Scheduler {self._backend.name} vcpus={len(self._vcpus)} seed={self._seed} "
            f"alive={len(self._alive)}>"
        )

    def alive(self) -> tuple[Coroutine, ...]:
        """The coroutines that have not ended, in id order.

        Never waits for a run (a metrics scrape calls it from its own thread): the table is
        copied in one C call, which no other thread can interleave with.
        """
        return tuple(sorted(self._alive.values(), key=_coroutine_id))

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
        with self._guard:
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
                self._backend.work_available()
            else:
                co._vcpu = where.id
                where._local.append(co)
                if len(where._local) > self._cap:
                    self._spill(where)
        self._spawned_event(co, None if where is None else where.id)
        return co

    def run(self, timeout: float | None = None, *, raise_failures: bool = True) -> None:
        """Run until every coroutine has ended.

        A coroutine that raises ends DEAD with its exception (see :attr:`Coroutine.exception`);
        the others go on. A failure nobody handled (no ``join`` of it, no task group around it)
        is raised when the run ends: the exception itself, with a note naming the coroutine, or
        an ExceptionGroup of them when several failed. Cancelled is not a failure.

        Args:
            timeout: seconds of real time after which the run stops between two steps.
            raise_failures: False keeps unhandled failures only on the coroutines (for a
                supervisor that collects them).

        Raises:
            Exception: the unhandled failure of a coroutine (ExceptionGroup: several).
            DeadlockError: every live coroutine waits and none sleeps (they are closed first).
            RunTimeoutError: ``timeout`` passed; the coroutines stay as they were, so ``run`` may
                be called again, or ``close()`` ends them.
            UsageError: ``run`` is already running, or ``timeout`` is not a positive number.
        """
        if timeout is not None and (not isinstance(timeout, int | float) or not timeout > 0):
            raise UsageError(f"run(timeout=...) needs seconds > 0 or None, got {timeout!r}")
        with self._guard:
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
                backend=self._backend.name,
                vcpus=len(self._vcpus),
                seed=self._seed,
                alive=len(self._alive),
            )
        for hook in self._hooks:
            hook.before_run()
        try:
            try:
                self._backend.run(deadline, timeout)
            except DeadlockError as deadlock:
                # A coroutine that died unobserved often is why the others wait forever (it
                # held what they wait for): say so rather than hide its exception.
                cause = self._unobserved_failure()
                if cause is not None:
                    deadlock.add_note(
                        f"before the deadlock, a coroutine failed and nobody joined it: "
                        f"{type(cause).__name__}: {cause} (the cause of this error)"
                    )
                    raise deadlock from cause
                raise
            if raise_failures:
                self._raise_unobserved()
            else:
                with self._guard:
                    self._unobserved.clear()
        finally:
            with self._guard:
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

    def _raise_unobserved(self) -> None:
        failure = self._unobserved_failure()
        if failure is not None:
            raise failure

    def _unobserved_failure(self) -> Exception | None:
        """The failures nobody joined, taken: one exception, an ExceptionGroup, or None."""
        with self._guard:
            failed = [self._unobserved[k] for k in sorted(self._unobserved)]
            self._unobserved.clear()
        if not failed:
            return None
        errors: list[Exception] = []
        for co in failed:
            exc = co._exception
            assert isinstance(exc, Exception)
            note = f"raised by coroutine #{co.id} {co.name!r}, which nobody joined"
            if note not in getattr(exc, "__notes__", ()):
                exc.add_note(note)
            errors.append(exc)
        if len(errors) == 1:
            return errors[0]
        return ExceptionGroup(f"{len(errors)} coroutines failed and nobody joined them", errors)

    def stats(self) -> SchedulerStats:
        """A frozen snapshot of every counter, per vCPU and in total, with the load imbalance."""
        per = tuple(v.stats() for v in self._vcpus)
        return SchedulerStats(
            backend=self._backend.name,
            seed=self._seed,
            vcpus=per,
            totals=VCPUStats.total(per),
            imbalance=LoadImbalance.of([p.busy_ns for p in per]),
            spawned=self._spawned,
            finished=self._finished,
            failed=self._failed,
            alive=len(self._alive),
            global_queue_length=len(self._global),
            blocked=self._n_blocked,
            cancellations=self._cancels_delivered,
            scopes_moved_on=self._scopes_moved_on,
            deadlines_exceeded=self._deadlines_exceeded,
        )

    def close(self) -> None:
        """End every live coroutine without running it: close its generator, mark it cancelled.

        Raises:
            UsageError: called while ``run()`` is running.
        """
        with self._guard:
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
        # Outside a run there is no switch path to protect: let the logger filter the event.
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
            self._backend.work_available()

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

    def _wake_any(self, v: VCPU | None, co: Coroutine, runnext: bool) -> None:
        """``_wake`` onto ``v``, or onto the global queue when the waker runs on no vCPU of this
        scheduler (an OS thread, code outside the run loop); caller holds the scheduler lock."""
        if v is not None and running.scheduler is self:
            self._wake(v, co, runnext)
            return
        co._transition(_READY)
        co._wait_key = _NOTHING
        self._global.append(co)
        self._backend.woken_from_outside()

    def _deliver_cancel(self, v: VCPU | None, co: Coroutine) -> None:
        """``co`` has just become cancelled: flag it, and wake it if it waits (caller holds the
        scheduler lock). A wait that must not be interrupted (a task group waiting for its
        children) keeps it parked; the flag is seen at its next checkpoint."""
        co._cancel_requested = True
        state = co._state
        if state is _DEAD:
            return
        self._cancels_delivered += 1
        if state is _co.WAITING:
            if self._traps.withdraw(v, co):
                co._arm_cancel()
                self._wake_any(v, co, runnext=False)
        else:
            self._backend.cancel_queued(co)

    def _count_cancel_caught(self, failed: bool) -> None:
        with self._lock:
            if failed:
                self._deadlines_exceeded += 1
            else:
                self._scopes_moved_on += 1

    def _wake(self, v: VCPU, co: Coroutine, runnext: bool) -> None:
        """Make a WAITING coroutine READY on ``v`` (caller holds the scheduler lock)."""
        co._state = _READY  # WAITING -> READY: every caller takes it from where it waited
        co._wait_key = _NOTHING
        co._vcpu = v.id
        if runnext:
            self._push_runnext(v, co)
        else:
            self._push_local(v, co)
        self._backend.work_available()

    def _fire_timers(self, v: VCPU | None) -> None:
        """Wake every sleeper whose deadline has passed (onto ``v``, or its own vCPU if None)."""
        with self._lock:
            if not (self._timers.count or self._deadlines.count):
                return
            now = self._clock.now()
            if self._timers.count:
                for co in self._timers.pop_due(now):
                    self._wake(v if v is not None else self._vcpus[co._vcpu], co, runnext=False)
            if self._deadlines.count:
                previous = running.vcpu
                running.vcpu = v if v is not None else self._vcpus[0]
                try:
                    for scope in self._deadlines.pop_due(now):
                        scope._cancel_locked(self)
                finally:
                    running.vcpu = previous

    def _timers_due(self) -> bool:
        """Whether a sleeper or a scope deadline is due (a hint: read without the lock)."""
        now = self._clock.now()
        return (self._timers.count > 0 and self._timers.due(now)) or (
            self._deadlines.count > 0 and self._deadlines.due(now)
        )

    def _next_deadline(self) -> float | None:
        with self._lock:
            a = self._timers.next_deadline()
            b = self._deadlines.next_deadline()
            if a is None:
                return b
            return a if b is None else min(a, b)

    def _finish(self, v: VCPU, co: Coroutine, value: Any, exc: BaseException | None) -> None:
        if exc is not None:
            _explain(co, exc)
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
            self._settle(co, exc, bool(joiners))
            if joiners:
                for j in joiners:
                    self._n_blocked -= 1
                    if exc is None:
                        j._resume_with(value)
                    else:
                        j._resume_throw(exc)
                    self._wake(v, j, runnext=False)
            if not self._alive:
                self._backend.all_done()
        # Drop the references that tie the coroutine to its frame, so finished work is freed.
        co._send = co._gen_send
        for hook in self._hooks:
            hook.on_exit(co)
        if self._debug:
            if exc is None:
                v._log.debug("coroutine_finished", coroutine=co.id, name=co.name)
            else:
                v._log.debug("coroutine_failed", coroutine=co.id, name=co.name, error=repr(exc))

    def _settle(self, co: Coroutine, exc: BaseException | None, joined: bool) -> None:
        """Leave ``co``'s cancel scope and hand its outcome on: to its task group, or, for a
        failure nobody joins, to the failures ``run()`` raises (caller holds the lock)."""
        scope = co._scope
        if scope is not None:
            scope._coroutines.discard(co)
            co._scope = None
        group = co._group
        if group is not None:
            group._child_done(self, co, exc)
        elif exc is not None and not joined and not isinstance(exc, Cancelled):
            self._unobserved[co.id] = co

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
        self._deadlines.clear()
        self._n_blocked = 0
        self._n_external = 0

    # -- running steps, ending a run (shared by the backends) ----------------------------------

    def _raise_deadlock(self) -> NoReturn:
        with self._lock:
            stuck = sorted(self._alive.values(), key=lambda c: c.id)
            error = DeadlockError(stuck)
            if self._debug:
                _log.debug("deadlock_detected", coroutines=[c.id for c in stuck])
            self._close_all(stuck, "closed after a deadlock")
        raise error

    @staticmethod
    def _event(event: str, **fields: Any) -> None:
        """A debug event on the scheduler's logger, for the backends (callers check _debug)."""
        _log.debug(event, **fields)

    def _timed_out(self, timeout: float | None) -> NoReturn:
        alive = self.alive()
        if self._debug:
            _log.debug("run_timed_out", timeout=timeout, alive=[c.id for c in alive])
        raise RunTimeoutError(timeout or 0.0, alive)

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
