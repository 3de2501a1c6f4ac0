"""Coroutines as the scheduler sees them: a wrapped generator plus a small state machine.

Design note
-----------
A :class:`Coroutine` wraps anything with the generator shape (``send`` and ``throw``): a plain
generator, an ``async def`` coroutine object, or a guest program offered by another package as a
generator that yields ``None`` after each slice and returns its exit status.

State machine (the only legal transitions)::

    CREATED -> READY -> RUNNING -> READY      (it yielded: back to a run queue)
                                -> WAITING    (sleep, wait, join)  -> READY (woken)
                                -> DEAD       (returned or raised)
    CREATED, READY, WAITING -> DEAD           (closed or cancelled before it ran again)

Invariants:

* A coroutine is in at most one place: a run queue (READY), a vCPU (RUNNING), or a wait list / the
  timer heap / a join list (WAITING). DEAD ones are nowhere.
* Only the run loop moves READY -> RUNNING -> READY. That pair is the switch path, so the loop
  writes the state field directly (the transition is legal by construction); every other change goes
  through :meth:`Coroutine._transition`, which rejects an illegal move with a clear error.
* ``_send`` is what the loop calls to resume the coroutine. It is normally the generator's own
  ``send`` (the fast path: one C call). To resume with a value or an exception, a trap handler swaps
  in a one-shot method that restores ``_send`` and then delivers; so the switch path never tests
  "is there something to deliver?".

Trade-off: storing bound methods in slots makes a reference cycle per coroutine (the cycle
collector frees it); the alternative, a test per switch, costs every switch.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Callable
from typing import Any, Protocol

from vmkit.coroutine_scheduler._core._errors import Cancelled, InvalidTransitionError, UsageError

__all__ = ["LEGAL_TRANSITIONS", "Coroutine", "CoroutineState", "GeneratorLike"]


class GeneratorLike(Protocol):
    """The shape the scheduler drives: a generator, a coroutine object, or a look-alike."""

    def send(self, value: Any, /) -> Any:
        """Resume with ``value``; return what it yields next, or raise StopIteration."""

    def throw(self, exc: BaseException, /) -> Any:
        """Resume by raising ``exc`` at the suspension point."""


class CoroutineState(enum.Enum):
    """Where a coroutine is in its life."""

    CREATED = "created"
    READY = "ready"
    RUNNING = "running"
    WAITING = "waiting"
    DEAD = "dead"

    # Members are singletons: identity hashing (C) instead of Enum's hash of the name (Python),
    # since every transition and every state-keyed lookup hashes a state.
    __hash__ = object.__hash__

    def can_transition_to(self, other: CoroutineState) -> bool:
        """Whether the state machine links this state to ``other``."""
        return other in LEGAL_TRANSITIONS[self]


_S = CoroutineState
LEGAL_TRANSITIONS: dict[CoroutineState, frozenset[CoroutineState]] = {
    _S.CREATED: frozenset({_S.READY, _S.DEAD}),
    _S.READY: frozenset({_S.RUNNING, _S.DEAD}),
    _S.RUNNING: frozenset({_S.READY, _S.WAITING, _S.DEAD}),
    _S.WAITING: frozenset({_S.READY, _S.DEAD}),
    _S.DEAD: frozenset(),
}

CREATED = _S.CREATED
READY = _S.READY
RUNNING = _S.RUNNING
WAITING = _S.WAITING
DEAD = _S.DEAD

_NOTHING: Any = object()


class Coroutine:
    """One coroutine: its generator, state, outcome and accounting.

    Args:
        target: a generator, a coroutine object, or any object with ``send`` and ``throw``.
        name: a label for logs and errors; defaults to the target's ``__qualname__``.
        coroutine_id: its number; schedulers number their coroutines from 1.

    Raises:
        UsageError: ``target`` does not have the generator shape.
    """

    __slots__ = (
        "__weakref__",
        "_cancel_requested",
        "_cancel_root",
        "_exception",
        "_gen_send",
        "_gen_throw",
        "_group",
        "_joiners",
        "_owner",
        "_result",
        "_run_ns",
        "_scope",
        "_send",
        "_state",
        "_switches",
        "_target",
        "_timer_token",
        "_value",
        "_vcpu",
        "_wait_key",
        "id",
        "name",
    )

    def __init__(self, target: GeneratorLike, *, name: str | None = None, coroutine_id: int = 0):
        send = getattr(target, "send", None)
        throw = getattr(target, "throw", None)
        if not callable(send) or not callable(throw):
            hint = ""
            if callable(target):
                hint = " (did you pass the function instead of calling it?)"
            raise UsageError(
                f"a coroutine needs a generator, a coroutine object or an object with send() and "
                f"throw(); got {type(target).__name__} {target!r:.60}{hint}"
            )
        self.id = coroutine_id
        if name is None:
            name = getattr(target, "__qualname__", None) or type(target).__name__
        self.name: str = name
        self._target = target
        self._gen_send: Callable[[Any], Any] = send
        self._gen_throw: Callable[[BaseException], Any] = throw
        self._send: Callable[[Any], Any] = send
        self._state = CREATED
        self._result: Any = None
        self._exception: BaseException | None = None
        self._run_ns = 0
        self._switches = 0
        self._value: Any = _NOTHING
        self._joiners: list[Coroutine] | None = None
        self._wait_key: Any = _NOTHING
        self._timer_token = 0
        self._vcpu = 0
        #: True while the coroutine is cancelled (level-triggered, see ``_cancel.py``): set by
        #: cancel() or a cancelled scope around it, cleared only when it leaves that scope.
        self._cancel_requested = False
        #: cancel() was called on the coroutine itself (its outermost, implicit scope).
        self._cancel_root = False
        #: Innermost cancel scope it is in (a task group's scope for the group's children).
        self._scope: Any = None
        #: The task group it was spawned into, told when it ends.
        self._group: Any = None
        self._owner: object | None = None

    # -- public read-only view -------------------------------------------------------------

    @property
    def state(self) -> CoroutineState:
        """The current state."""
        return self._state

    @property
    def done(self) -> bool:
        """Whether the coroutine has ended (DEAD), normally or not."""
        return self._state is DEAD

    @property
    def result(self) -> Any:
        """The value it returned; re-raises its exception if it failed.

        Raises:
            UsageError: it has not ended yet.
        """
        if self._state is not DEAD:
            raise UsageError(f"{self.describe()} has no result yet: it is {self._state.name}")
        if self._exception is not None:
            raise self._exception
        return self._result

    @property
    def exception(self) -> BaseException | None:
        """The exception it ended with, or None (also None while it is alive)."""
        return self._exception

    @property
    def cancelled(self) -> bool:
        """Whether it ended because a Cancelled escaped it."""
        return isinstance(self._exception, Cancelled)

    @property
    def run_ns(self) -> int:
        """Nanoseconds spent running its steps (0 when the scheduler's statistics are off)."""
        return self._run_ns

    @property
    def switches(self) -> int:
        """How many times it was switched in (steps run)."""
        return self._switches

    def describe(self) -> str:
        """A short label: ``#id 'name' (STATE)``, plus the key it waits on, if any."""
        extra = ""
        if self._wait_key is not _NOTHING:
            extra = f" on {self._wait_key!r:.40}"
        return f"#{self.id} {self.name!r} ({self._state.name}{extra})"

    def __repr__(self) -> str:
        return f"<Coroutine {self.describe()}>"

    # -- scheduler side ---------------------------------------------------------------------

    def _transition(self, new: CoroutineState) -> None:
        """Move to ``new``, rejecting a move the state machine does not allow."""
        old = self._state
        if new not in LEGAL_TRANSITIONS[old]:
            raise InvalidTransitionError(
                f"coroutine #{self.id} {self.name!r}: illegal transition {old.name} -> {new.name}"
            )
        self._state = new

    def _resume_with(self, value: Any) -> None:
        """Arrange for the next step to send ``value`` instead of None."""
        self._value = value
        self._send = self._send_pending

    def _resume_throw(self, exc: BaseException) -> None:
        """Arrange for the next step to raise ``exc`` at the suspension point."""
        self._value = exc
        self._send = self._throw_pending

    def _arm_cancel(self) -> None:
        """Arrange for the next step to raise Cancelled.

        Not over a value or exception a wake has already armed (a lock handed over, a channel
        item): that is delivered first, so nothing is lost, and its one-shot method re-arms the
        cancel afterwards while ``_cancel_requested`` holds.
        """
        if self._send is self._gen_send:
            self._send = self._send_cancel

    def _disarm_cancel(self) -> None:
        """The coroutine left its cancelled scope: its next step runs normally again."""
        if self._send is not self._gen_send and self._value is _NOTHING:
            self._send = self._gen_send

    def _send_pending(self, _ignored: Any) -> Any:
        value = self._value
        self._value = _NOTHING
        self._send = self._gen_send
        result = self._gen_send(value)
        if self._cancel_requested:
            self._arm_cancel()
        return result

    def _throw_pending(self, _ignored: Any) -> Any:
        exc = self._value
        self._value = _NOTHING
        self._send = self._gen_send
        result = self._gen_throw(exc)
        if self._cancel_requested:
            self._arm_cancel()
        return result

    def _send_cancel(self, _ignored: Any) -> Any:
        self._value = _NOTHING
        self._send = self._gen_send
        result = self._gen_throw(Cancelled(f"coroutine #{self.id} {self.name!r} was cancelled"))
        # Level-triggered: caught and carried on, it is raised again at the next step.
        if self._cancel_requested:
            self._arm_cancel()
        return result

    def _close(self, exc: BaseException) -> None:
        """End it without running it again: close the generator, record ``exc``, go DEAD."""
        close = getattr(self._target, "close", None)
        if callable(close):
            # A broken close() must not stop the others from closing.
            with contextlib.suppress(Exception):
                close()
        self._exception = exc
        # It waits for nothing any more: an entry it left in a parking lot goes stale, so a
        # later release or set (another thread's, after a deadlock) skips it.
        self._wait_key = _NOTHING
        self._transition(DEAD)
