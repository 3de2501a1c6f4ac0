"""Cancel scopes: cancellation with deadlines and shields, in trio's manner.

Design notes
------------
A :class:`CancelScope` is entered with ``async with`` in a coroutine. Scopes form one tree per
scheduler: a scope's parent is the scope its coroutine was in when it entered it, and a task
group's children start inside the group's scope, so cancelling a scope reaches every coroutine
below it, across task groups, but not through a shielded scope.

The rule (level-triggered, as trio's): a coroutine is *cancelled* while some scope around it has
been cancelled and no shielded scope lies between it and that scope; ``cancel(coroutine)`` cancels
the coroutine's own outermost, implicit scope. A cancelled coroutine gets :class:`Cancelled` at
its next checkpoint: the next step after a ``yield``/``yield_now()``, or any trap that would wait
(``sleep``, ``wait``, ``join``, a lock, a channel...); a waiting one is woken for it. Catching
Cancelled does not end the cancellation: it is raised again at every following checkpoint until
the coroutine leaves the cancelled scope (whose exit absorbs it) or ends. Cleanup that must wait
goes in a shielded scope. A value already handed to a waking coroutine (a lock passed to it, a
channel item) is delivered before the Cancelled, so nothing is lost.

State lives on the coroutine as one flag, ``_cancel_requested``, which the switch path already
tests; it is recomputed (under the scheduler lock) when a scope around the coroutine is
cancelled, entered or left, or changes its shield, so the cost is paid by cancellation, never by a
switch.

Deadlines are kept in the scheduler's ``_deadlines`` heap (a :class:`Timers` of scopes) on the
scheduler's clock, real or virtual; reaching one cancels the scope.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from vmkit.coroutine_scheduler._core._errors import Cancelled, DeadlineExceeded, UsageError
from vmkit.coroutine_scheduler._core._traps import current, running

if TYPE_CHECKING:
    from types import TracebackType

    from vmkit.coroutine_scheduler._core._coroutine import Coroutine
    from vmkit.coroutine_scheduler._core._scheduler import Scheduler

__all__ = ["CancelScope", "fail_after", "fail_at", "is_cancelled", "move_on_after", "move_on_at"]


def is_cancelled(co: Coroutine) -> bool:
    """Whether ``co`` is cancelled now: the walk that ``_cancel_requested`` caches."""
    scope = co._scope
    while scope is not None:
        if co._cancel_root and scope._owner is not co:
            return True  # past its own scopes, and cancel() was called on it
        if scope._cancel_called:
            return True
        if scope._shield:
            return False
        scope = scope._parent
    return co._cancel_root


class CancelScope:
    """A region of a coroutine that can be cancelled as a whole, by hand or at a deadline.

    Use it as ``async with CancelScope() as scope:``; ``scope.cancel()`` (from anywhere: another
    coroutine, an OS thread) cancels every coroutine inside it, including the children of task
    groups opened inside it. The scope's exit absorbs the Cancelled it caused
    (:attr:`cancelled_caught`); a cancellation from further out goes on.

    Args:
        deadline: when, on the scheduler's clock, the scope cancels itself (``math.inf``: never).
        shield: protect the inside from cancellations outside the scope.
        relative: seconds from entry, on the scheduler's clock, instead of ``deadline``.
        fail: raise :class:`DeadlineExceeded` on exit when the scope was cancelled (fail_after).

    Raises:
        UsageError: entered twice, or exited in another order than entered.
    """

    __slots__ = (
        "_cancel_called",
        "_children",
        "_coroutines",
        "_deadline",
        "_entered",
        "_fail",
        "_owner",
        "_parent",
        "_relative",
        "_scheduler",
        "_shield",
        "_timer_token",
        "cancelled_caught",
    )

    def __init__(
        self,
        *,
        deadline: float = math.inf,
        shield: bool = False,
        relative: float | None = None,
        fail: bool = False,
    ) -> None:
        if relative is not None and (math.isnan(relative) or relative < 0):
            raise UsageError(f"a timeout needs seconds >= 0, got {relative!r}")
        if math.isnan(deadline):
            raise UsageError("a deadline cannot be NaN")
        self._deadline = deadline
        self._relative = relative
        self._shield = bool(shield)
        self._fail = fail
        self._cancel_called = False
        self._entered = False
        self._owner: Coroutine | None = None
        self._parent: CancelScope | None = None
        self._scheduler: Scheduler | None = None
        self._children: set[CancelScope] = set()
        self._coroutines: set[Coroutine] = set()
        self._timer_token = 0
        #: True once the scope's exit absorbed a Cancelled it caused.
        self.cancelled_caught = False

    def __repr__(self) -> str:
        state = "cancelled" if self._cancel_called else "active" if self._entered else "new"
        shield = " shielded" if self._shield else ""
        return f"<CancelScope {state}{shield} deadline={self._deadline}>"

    # -- public ----------------------------------------------------------------------------

    @property
    def cancel_called(self) -> bool:
        """Whether the scope was cancelled (by :meth:`cancel` or its deadline)."""
        return self._cancel_called

    @property
    def deadline(self) -> float:
        """When the scope cancels itself, on the scheduler's clock (``math.inf``: never)."""
        return self._deadline

    @deadline.setter
    def deadline(self, value: float) -> None:
        if math.isnan(value):
            raise UsageError("a deadline cannot be NaN")
        s = self._scheduler
        if s is None:
            self._deadline = value
            self._relative = None
            return
        with s._guard:
            self._deadline = value
            self._arm_deadline(s)

    @property
    def shield(self) -> bool:
        """Whether cancellations from outside stop at this scope."""
        return self._shield

    @shield.setter
    def shield(self, value: bool) -> None:
        s = self._scheduler
        if s is None:
            self._shield = bool(value)
            return
        with s._guard:
            self._shield = bool(value)
            if self._entered:
                for co in self._members():
                    _refresh(s, co)

    def cancel(self) -> None:
        """Cancel every coroutine in the scope (from any coroutine or thread); idempotent."""
        s = self._scheduler
        if s is None:
            self._cancel_called = True  # not entered yet: it starts cancelled
            return
        with s._guard:
            self._cancel_locked(s)

    # -- async context manager ------------------------------------------------------------

    async def __aenter__(self) -> CancelScope:
        co = await current()
        s: Scheduler = co._owner  # type: ignore[assignment]
        with s._lock:
            if self._entered:
                raise UsageError("a CancelScope can be entered only once; make a new one")
            self._entered = True
            self._scheduler = s
            self._owner = co
            parent = co._scope
            self._parent = parent
            if parent is not None:
                parent._coroutines.discard(co)
                parent._children.add(self)
            self._coroutines.add(co)
            co._scope = self
            if self._relative is not None:
                self._deadline = s._clock.now() + self._relative
            if self._cancel_called:
                self._cancel_called = False
                self._cancel_locked(s)
            else:
                self._arm_deadline(s)
                _refresh(s, co)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        s = self._scheduler
        co = self._owner
        assert s is not None
        assert co is not None
        with s._lock:
            if co._scope is not self:
                raise UsageError(
                    "cancel scopes must be exited in the reverse order they were entered, by the "
                    "coroutine that entered them"
                )
            self._leave(s, co)
            still_cancelled = co._cancel_requested
        if isinstance(exc, Cancelled) and self._cancel_called and not still_cancelled:
            self.cancelled_caught = True
            s._count_cancel_caught(self._fail)
            if self._fail:
                raise DeadlineExceeded(self._deadline) from exc
            return True
        return False

    # -- scheduler side (caller holds the scheduler lock) ---------------------------------

    def _leave(self, s: Scheduler, co: Coroutine) -> None:
        parent = self._parent
        co._scope = parent
        self._coroutines.discard(co)
        if parent is not None:
            parent._children.discard(self)
            parent._coroutines.add(co)
        if self._timer_token:
            s._deadlines.cancel(self)
        _refresh(s, co)

    def _arm_deadline(self, s: Scheduler) -> None:
        if self._timer_token:
            s._deadlines.cancel(self)
        if not self._entered or self._cancel_called or self._deadline == math.inf:
            return
        if self._deadline <= s._clock.now():
            self._cancel_locked(s)
        else:
            s._deadlines.add(self, self._deadline)

    def _cancel_locked(self, s: Scheduler) -> None:
        if self._cancel_called:
            return
        self._cancel_called = True
        if self._timer_token:
            s._deadlines.cancel(self)
        if not self._entered:
            return
        v = running.vcpu
        for co in self._members():
            if not co._cancel_requested and is_cancelled(co):
                s._deliver_cancel(v, co)

    def _members(self) -> list[Coroutine]:
        """The coroutines below this scope, not counting those behind a shielded inner scope."""
        found: list[Coroutine] = []
        stack = [self]
        while stack:
            scope = stack.pop()
            found.extend(scope._coroutines)
            stack.extend(c for c in scope._children if not c._shield)
        return found


def _refresh(s: Scheduler, co: Coroutine) -> None:
    """Recompute ``co``'s cancelled flag after its scopes changed; deliver or withdraw it."""
    now = is_cancelled(co)
    if now and not co._cancel_requested:
        s._deliver_cancel(running.vcpu, co)
    elif not now and co._cancel_requested:
        co._cancel_requested = False
        co._disarm_cancel()


def move_on_after(seconds: float, *, shield: bool = False) -> CancelScope:
    """A scope that cancels its inside after ``seconds`` and then carries on after it."""
    return CancelScope(relative=seconds, shield=shield)


def move_on_at(deadline: float, *, shield: bool = False) -> CancelScope:
    """A scope that cancels its inside at ``deadline`` (scheduler clock) and carries on."""
    return CancelScope(deadline=deadline, shield=shield)


def fail_after(seconds: float, *, shield: bool = False) -> CancelScope:
    """A scope that cancels its inside after ``seconds`` and raises :class:`DeadlineExceeded`."""
    return CancelScope(relative=seconds, shield=shield, fail=True)


def fail_at(deadline: float, *, shield: bool = False) -> CancelScope:
    """A scope that cancels its inside at ``deadline`` and raises :class:`DeadlineExceeded`."""
    return CancelScope(deadline=deadline, shield=shield, fail=True)
