"""Trap handling: one small method per opcode, found through a table.

Design notes
------------
A coroutine that yields something other than None has asked the scheduler for something (see
``_traps.py``). :meth:`TrapTable.handle` serves that request and, while the answer lets the
coroutine go on at once (``spawn``, ``notify``, ``current``...), resumes it and serves the next
one, so a burst of cheap traps costs no trip through the run queue.

Why a table of methods, not an if-chain: each opcode's rule (what it checks, how it parks, what it
answers) reads as one short method, the dispatch is one dict lookup whatever the opcode, and a new
trap lands as an opcode in ``_traps.py``, one method here and one line in ``_handlers``. The
primitives planned next (Lock, Event, Semaphore, Queue, task groups, cancel scopes) park and wake
through the same pieces the existing handlers use, on both backends:

* park: under the scheduler lock, move the coroutine to WAITING with a wait key that names what it
  waits on, put it where its waker will find it, count it in ``_n_blocked`` (or in the timers) and
  return False; the run loop then forgets it.
* wake: ``Scheduler._wake(v, co, runnext)`` from any handler running on vCPU ``v`` makes it READY
  on ``v`` and tells the backend that work arrived (the threads backend then wakes an idle vCPU);
  ``Coroutine._resume_with`` / ``_resume_throw`` choose what the parked ``await`` returns.
* withdraw: ``cancel`` takes a parked coroutine out of wherever it waits through
  ``_withdrawers``, keyed by the type of its wait key; a new kind of wait adds one entry.

Handler contract: ``handler(v, co, trap) -> bool``; True means ``co`` continues at once (its
answer is armed with ``_resume_with``/``_resume_throw``), False that it was parked or queued.
Handlers run on the vCPU's own thread and take the scheduler lock for shared state.
"""

from __future__ import annotations

import types
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vmkit.coroutine_scheduler._core import _coroutine as _co
from vmkit.coroutine_scheduler._core._cancel import is_cancelled
from vmkit.coroutine_scheduler._core._coroutine import Coroutine
from vmkit.coroutine_scheduler._core._errors import Cancelled, UsageError
from vmkit.coroutine_scheduler._core._external import is_external_wait, serve_external
from vmkit.coroutine_scheduler._core._lot import PARKED, LotWait
from vmkit.coroutine_scheduler._core._timers import SleepWait
from vmkit.coroutine_scheduler._core._traps import (
    ACQUIRE,
    CANCEL,
    CURRENT,
    JOIN,
    NOTIFY,
    PARK,
    SLEEP,
    SPAWN,
    TRAP_CODES,
    WAIT,
)

if TYPE_CHECKING:
    from vmkit.coroutine_scheduler._core._scheduler import Scheduler
    from vmkit.coroutine_scheduler._core._vcpu import VCPU

__all__ = ["Handler", "JoinWait", "TrapTable"]

_READY = _co.READY
_WAITING = _co.WAITING
_DEAD = _co.DEAD

#: ``handler(v, co, trap)``: serve ``trap`` yielded by ``co`` on ``v``; True if ``co`` goes on.
Handler = Callable[["VCPU", Coroutine, tuple[Any, ...]], bool]


def _not_a_trap(co: Coroutine, trap: Any) -> str:
    """Why ``trap`` cannot be served, naming what was awaited and what to use instead."""
    if hasattr(trap, "_asyncio_future_blocking"):
        return (
            f"coroutine #{co.id} {co.name!r} awaited an asyncio future or task ({trap!r:.80}), "
            f"which only an asyncio event loop can drive: use this package's sleep(), "
            f"synchronization primitives and channels inside scheduler coroutines, and run the "
            f"scheduler from asyncio with `await asyncio.to_thread(scheduler.run)`"
        )
    return (
        f"coroutine #{co.id} {co.name!r} yielded {trap!r:.60}, which is not a trap: "
        f"yield None (or nothing) to give up the vCPU, or await/yield a "
        f"vmkit.coroutine_scheduler trap such as sleep() or wait()"
    )


class JoinWait:
    """The wait key of a coroutine parked in ``join``: names what it waits for."""

    __slots__ = ("target",)

    def __init__(self, target: Coroutine) -> None:
        self.target = target

    def __repr__(self) -> str:
        return f"join(#{self.target.id})"


class TrapTable:
    """Serves the traps of one :class:`Scheduler` (created by it)."""

    __slots__ = ("_handlers", "_s", "_withdrawers")

    def __init__(self, scheduler: Scheduler) -> None:
        self._s = scheduler
        self._handlers: dict[Any, Handler] = {
            SPAWN: self._spawn,
            SLEEP: self._sleep,
            WAIT: self._wait,
            NOTIFY: self._notify,
            JOIN: self._join,
            CANCEL: self._cancel,
            CURRENT: self._current,
            PARK: self._park,
            ACQUIRE: self._acquire,
        }
        self._withdrawers: dict[type, Callable[[Coroutine], bool]] = {
            SleepWait: self._withdraw_sleeper,
            JoinWait: self._withdraw_joiner,
            LotWait: self._withdraw_parked,
        }

    # -- dispatch ----------------------------------------------------------------------------

    def handle(self, v: VCPU, co: Coroutine, trap: Any) -> None:
        """Serve a non-None trap, and the following ones while they let ``co`` go on at once."""
        handlers = self._handlers
        # The common case inline (a well-formed trap tuple); serve() handles the rest.
        handler = None
        if type(trap) is tuple and trap and type(trap[0]) is int:
            handler = handlers.get(trap[0])
        if handler is not None:
            if handler(v, co, trap):
                self.go_on(v, co)
        elif self.serve(v, co, trap):
            self.go_on(v, co)

    def go_on(self, v: VCPU, co: Coroutine) -> None:
        """``co`` continues at once (its answer is armed): run it on, serving its next traps,
        until it yields, parks or ends (the switch path calls this after an inline park)."""
        s = self._s
        handlers = self._handlers
        while True:
            try:
                trap = co._send(None)
            except StopIteration as stop:
                s._finish(v, co, stop.value, None)
                return
            except (Exception, Cancelled) as exc:
                s._finish(v, co, None, exc)
                return
            if trap is None:
                co._state = _READY  # RUNNING -> READY, legal by construction (the switch path's)
                s._push_local(v, co)
                return
            handler = None
            if type(trap) is tuple and trap and type(trap[0]) is int:
                handler = handlers.get(trap[0])
            if handler is not None:
                if not handler(v, co, trap):
                    return
            elif not self.serve(v, co, trap):
                return

    def serve(self, v: VCPU, co: Coroutine, trap: Any) -> bool:
        """Serve one trap; True if ``co`` continues at once, False if it was parked or queued."""
        if type(trap) is not tuple:
            if type(trap) is types.GeneratorType and trap.gi_code in TRAP_CODES:
                return self._from_generator(v, co, trap)
            if is_external_wait(trap):
                return serve_external(self, v, co, trap)
            co._resume_throw(UsageError(_not_a_trap(co, trap)))
            return True
        try:
            handler = self._handlers.get(trap[0] if trap else None)
        except TypeError:  # an unhashable first item: no opcode is unhashable
            handler = None
        if handler is None:
            co._resume_throw(
                UsageError(f"coroutine #{co.id} {co.name!r} yielded an unknown trap {trap!r:.60}")
            )
            return True
        return handler(v, co, trap)

    def _from_generator(self, v: VCPU, co: Coroutine, trap_gen: Any) -> bool:
        """``x = yield sleep(1)`` in a plain generator: run the trap's body to get its tuple."""
        try:
            inner = trap_gen.send(None)
        except StopIteration as stop:  # pragma: no cover - every trap yields once
            co._resume_with(stop.value)
            return True
        except Exception as exc:
            co._resume_throw(exc)
            return True
        finally:
            trap_gen.close()
        if inner is None:
            co._transition(_READY)
            self._s._push_local(v, co)
            return False
        return self.serve(v, co, inner)

    # -- one method per opcode ---------------------------------------------------------------

    def _spawn(self, v: VCPU, co: Coroutine, trap: tuple[Any, ...]) -> bool:
        _op, target, args, name, group = trap
        s = self._s
        try:
            if group is not None:
                group._check_open(s)
            child = s._make(target, args, name)
        except Exception as exc:
            co._resume_throw(exc)
            return True
        with s._lock:
            s._register(child)
            child._transition(_READY)
            child._vcpu = v.id
            if group is not None:
                group._adopt(s, child)
        s._push_local(v, child)
        s._backend.work_available()
        s._spawned_event(child, v.id)
        co._resume_with(child)
        return True

    def _wait(self, v: VCPU, co: Coroutine, trap: tuple[Any, ...]) -> bool:
        _op, key, guard = trap
        s = self._s
        with s._lock:
            if guard is not None:
                try:
                    must_wait = guard()
                except Exception as exc:
                    co._resume_throw(exc)
                    return True
                if not must_wait:
                    co._resume_with(False)
                    return True
            if self._cancel_now(co):
                return True
            co._transition(_WAITING)
            co._wait_key = key
            q = s._waiters.get(key)
            if q is None:
                q = s._waiters[key] = deque()
            q.append(co)
            s._n_blocked += 1
        return False

    def _notify(self, v: VCPU, co: Coroutine, trap: tuple[Any, ...]) -> bool:
        _op, key, n = trap
        s = self._s
        woken = 0
        with s._lock:
            q = s._waiters.get(key)
            while q and (n is None or woken < n):
                w = q.popleft()
                s._n_blocked -= 1
                w._resume_with(True)
                s._wake(v, w, runnext=True)
                woken += 1
            if q is not None and not q:
                del s._waiters[key]
        co._resume_with(woken)
        return True

    def _sleep(self, v: VCPU, co: Coroutine, trap: tuple[Any, ...]) -> bool:
        seconds = trap[1]
        s = self._s
        with s._lock:
            if self._cancel_now(co):
                return True
            deadline = s._clock.now() + seconds
            co._transition(_WAITING)
            co._wait_key = SleepWait(deadline)
            co._vcpu = v.id
            s._timers.add(co, deadline)
        return False

    def _join(self, v: VCPU, co: Coroutine, trap: tuple[Any, ...]) -> bool:
        target = trap[1]
        problem = self._check_target("join", co, target)
        if problem is not None:
            co._resume_throw(problem)
            return True
        s = self._s
        with s._lock:
            if target._state is _DEAD:
                if target._exception is not None:
                    s._unobserved.pop(target.id, None)  # joined: handled by the joiner
                    co._resume_throw(target._exception)
                else:
                    co._resume_with(target._result)
                return True
            if self._cancel_now(co):
                return True
            if target._joiners is None:
                target._joiners = []
            target._joiners.append(co)
            co._transition(_WAITING)
            co._wait_key = JoinWait(target)
            s._n_blocked += 1
        return False

    def _cancel(self, v: VCPU, co: Coroutine, trap: tuple[Any, ...]) -> bool:
        target = trap[1]
        problem = self._check_target("cancel", co, target)
        if problem is not None:
            co._resume_throw(problem)
            return True
        co._resume_with(self._cancel_target(v, target))
        return True

    def _current(self, v: VCPU, co: Coroutine, trap: tuple[Any, ...]) -> bool:
        co._resume_with(co)
        return True

    def _park(self, v: VCPU, co: Coroutine, trap: tuple[Any, ...]) -> bool:
        with self._s._lock:
            return self._park_locked(v, co, trap)

    def _park_locked(self, v: VCPU, co: Coroutine, trap: tuple[Any, ...]) -> bool:
        """The ``PARK`` trap, the scheduler lock held (the inline switch path calls it direct:
        its thread holds the lock for the whole run)."""
        _op, lot, guard, payload, cancellable = trap
        s = self._s
        if lot._s is None:
            lot._s = s
        elif lot._s is not s:
            co._resume_throw(UsageError(f"{lot.name} belongs to another scheduler"))
            return True
        if cancellable and co._cancel_requested:
            co._arm_cancel()
            return True
        if guard is not None:
            try:
                answer = guard()
            except Exception as exc:
                co._resume_throw(exc)
                return True
            if answer is not PARKED:
                co._resume_with(answer)
                return True
        co._state = _WAITING  # RUNNING -> WAITING: it is the coroutine serving this trap
        co._vcpu = v.id
        entry = LotWait((lot, co, payload, cancellable))
        co._wait_key = entry
        lot._entries.append(entry)
        lot.parked_total += 1
        s._n_blocked += 1
        return False

    def _acquire(self, v: VCPU, co: Coroutine, trap: tuple[Any, ...]) -> bool:
        with self._s._lock:
            return self._acquire_locked(v, co, trap)

    def _acquire_locked(self, v: VCPU, co: Coroutine, trap: tuple[Any, ...]) -> bool:
        """``Lock.acquire`` found the lock held: take it if it was released meanwhile, else park
        in its lot (the scheduler lock held). ``_park`` with the lock's guard written out, so a
        hand-over costs no guard call (a Python frame, about a tenth of a hand-over)."""
        _op, lock, ticket = trap
        lot = lock._lot
        s = self._s
        if lot._s is not s:  # Lock.acquire bound the lot before yielding this trap
            co._resume_throw(UsageError(f"{lot.name} belongs to another scheduler"))
            return True
        if co._cancel_requested:
            co._arm_cancel()
            return True
        if not lock._locked:
            lock._locked = True
            return True  # resumed with None: it holds the lock
        co._state = _WAITING  # RUNNING -> WAITING: it is the coroutine serving this trap
        co._vcpu = v.id
        entry = LotWait((lot, co, ticket, True))
        co._wait_key = entry
        lot._entries.append(entry)
        lot.parked_total += 1
        s._n_blocked += 1
        return False

    # -- helpers ------------------------------------------------------------------------------

    def _check_target(self, what: str, co: Coroutine, target: Any) -> UsageError | None:
        if not isinstance(target, Coroutine):
            return UsageError(
                f"{what}() needs a Coroutine (as spawn() returns), got {target!r:.60}"
            )
        if target._owner is not self._s:
            return UsageError(f"{what}(): {target.describe()} belongs to another scheduler")
        if target is co:
            hint = "it would wait forever" if what == "join" else "return or raise instead"
            return UsageError(f"coroutine #{co.id} {co.name!r} cannot {what} itself: {hint}")
        return None

    @staticmethod
    def _cancel_now(co: Coroutine) -> bool:
        """A cancel arrived while ``co`` ran on another vCPU: deliver it instead of parking."""
        if co._cancel_requested:
            co._arm_cancel()
            return True
        return False

    def withdraw(self, v: VCPU | None, co: Coroutine) -> bool:
        """Take the WAITING ``co`` out of wherever it waits, to deliver a cancel (caller holds
        the scheduler lock); False if its wait may not be interrupted (it stays parked)."""
        withdraw = self._withdrawers.get(type(co._wait_key), self._withdraw_waiter)
        return withdraw(co)

    def _cancel_target(self, v: VCPU, target: Coroutine) -> bool:
        """Cancel ``target`` (its outermost scope); wake it onto ``v`` if it is parked. False if
        already DEAD. Inside a shielded scope it is delivered when the shield is left."""
        s = self._s
        with s._lock:
            if target._state is _DEAD:
                return False
            target._cancel_root = True
            if not target._cancel_requested and is_cancelled(target):
                s._deliver_cancel(v, target)
        if s._debug:
            v._log.debug("coroutine_cancel_requested", coroutine=target.id, name=target.name)
        return True

    def _withdraw_sleeper(self, co: Coroutine) -> bool:
        self._s._timers.cancel(co)
        return True

    def _withdraw_joiner(self, co: Coroutine) -> bool:
        joiners = co._wait_key.target._joiners
        if joiners is not None and co in joiners:
            joiners.remove(co)
        self._s._n_blocked -= 1
        return True

    def _withdraw_parked(self, co: Coroutine) -> bool:
        if not co._wait_key.lot.withdraw_locked(co):
            return False
        self._s._n_blocked -= 1
        return True

    def _withdraw_waiter(self, co: Coroutine) -> bool:
        """Parked in ``wait(key)``: the key is the user's own hashable, any type."""
        s = self._s
        key = co._wait_key
        q = s._waiters.get(key)
        if q is not None and co in q:
            q.remove(co)
            if not q:
                del s._waiters[key]
        s._n_blocked -= 1
        return True
