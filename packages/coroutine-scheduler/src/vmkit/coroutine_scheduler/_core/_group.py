"""Task groups (trio's nurseries, asyncio's TaskGroup): children that cannot outlive their parent.

Design notes
------------
``async with TaskGroup() as tg:`` opens a :class:`CancelScope` for the group; ``await
tg.spawn(f, ...)`` starts a child inside that scope. The block's end waits for every child. The
first failure (an exception other than Cancelled, in a child or in the block itself) cancels the
group's scope, so the siblings and the block are cancelled at their next checkpoint; when all
have ended the group raises that failure, or an ExceptionGroup when several failed. A Cancelled
caused by the group's own scope is absorbed; one from further out goes on.

The wait at the end is not interrupted by cancellation: the children must end first. If the parent
is cancelled while it waits (from a scope further out, or by ``cancel()`` on it), the cancellation
reaches the children through the scope tree, or, for ``cancel()``, the lot's withdraw cancels the
group's scope, and the parent gets its Cancelled at its next checkpoint after the group.

A child's failure is handled by its group: it is never reported again by ``Scheduler.run``.
"""

from __future__ import annotations

import types
from typing import TYPE_CHECKING, Any

from vmkit.coroutine_scheduler._core._cancel import CancelScope, _refresh
from vmkit.coroutine_scheduler._core._errors import Cancelled, UsageError
from vmkit.coroutine_scheduler._core._lot import PARKED, ParkingLot
from vmkit.coroutine_scheduler._core._traps import SPAWN, current, park

if TYPE_CHECKING:
    from collections.abc import Generator

    from vmkit.coroutine_scheduler._core._coroutine import Coroutine
    from vmkit.coroutine_scheduler._core._scheduler import Scheduler

__all__ = ["TaskGroup"]


class _GroupLot(ParkingLot):
    """Where the parent waits for the children: cancelling the parent cancels the children."""

    __slots__ = ("group",)

    def __init__(self, group: TaskGroup) -> None:
        super().__init__("task group end")
        self.group = group

    def withdraw_locked(self, co: Coroutine) -> bool:
        s = self._s
        assert s is not None
        self.group._scope._cancel_locked(s)
        return False


class TaskGroup:
    """Children spawned with :meth:`spawn` end before the ``async with`` block is left.

    Raises (from the block's end):
        Exception: the one failure of a child or of the block (ExceptionGroup: several).
        UsageError: spawning into a group that has closed, or from another scheduler.
    """

    __slots__ = ("_children", "_closed", "_errors", "_lot", "_parent", "_s", "_scope")

    def __init__(self) -> None:
        self._scope = CancelScope()
        self._children: set[Coroutine] = set()
        self._errors: list[Exception] = []
        self._lot = _GroupLot(self)
        self._s: Scheduler | None = None
        self._parent: Coroutine | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"<TaskGroup children={len(self._children)} failures={len(self._errors)}>"

    @property
    def cancel_scope(self) -> CancelScope:
        """The group's scope: ``tg.cancel_scope.cancel()`` cancels the block and every child."""
        return self._scope

    @property
    def children(self) -> tuple[Coroutine, ...]:
        """The children still running, in id order."""
        return tuple(sorted(self._children, key=lambda c: c.id))

    def spawn(
        self, target: Any, *args: Any, name: str | None = None
    ) -> Generator[Any, Any, Coroutine]:
        """Start a child in the group (``await tg.spawn(f, *args)``) and return it at once."""
        return _spawn_in(self, target, args, name)

    async def __aenter__(self) -> TaskGroup:
        if self._parent is not None:
            raise UsageError("a TaskGroup can be entered only once; make a new one")
        co = await current()
        self._parent = co
        self._s = co._owner  # type: ignore[assignment]
        self._lot._s = self._s
        await self._scope.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> bool:
        s = self._s
        assert s is not None
        if exc is not None and not isinstance(exc, Cancelled):
            if not isinstance(exc, Exception):
                return False  # KeyboardInterrupt, SystemExit...: not the group's to handle
            with s._lock:
                self._errors.append(exc)
                self._scope._cancel_locked(s)
        await park(self._lot, self._must_wait, cancellable=False)
        with s._lock:
            self._closed = True
        swallowed = await self._scope.__aexit__(exc_type, exc, tb)
        errors = self._errors
        if errors:
            body_error = exc if exc is not None and exc in errors else None
            if len(errors) == 1:
                if body_error is not None:
                    return False  # the block's own exception goes on unchanged
                raise errors[0]
            raise ExceptionGroup(f"{len(errors)} failures in a task group", errors)
        parent = self._parent
        assert parent is not None
        if parent._cancel_requested and exc is None:
            # The block's end is a checkpoint: cancelled from outside while it waited for the
            # children, the parent leaves the group cancelled.
            raise Cancelled(f"coroutine #{parent.id} {parent.name!r} was cancelled")
        return swallowed

    # -- scheduler side (caller holds the scheduler lock) ---------------------------------

    def _must_wait(self) -> Any:
        return PARKED if self._children else None

    def _check_open(self, s: Scheduler) -> None:
        if self._s is None:
            raise UsageError("spawn into a TaskGroup inside its `async with` block")
        if self._s is not s:
            raise UsageError("this TaskGroup belongs to another scheduler")
        if self._closed:
            raise UsageError("this TaskGroup has ended: it takes no new children")

    def _adopt(self, s: Scheduler, child: Coroutine) -> None:
        self._children.add(child)
        child._group = self
        child._scope = self._scope
        self._scope._coroutines.add(child)
        _refresh(s, child)

    def _child_done(self, s: Scheduler, child: Coroutine, exc: BaseException | None) -> None:
        self._children.discard(child)
        if exc is not None and not isinstance(exc, Cancelled):
            if isinstance(exc, Exception):
                self._errors.append(exc)
            self._scope._cancel_locked(s)
        if not self._children:
            self._lot.unpark_locked(s, None)


@types.coroutine
def _spawn_in(
    group: TaskGroup, target: Any, args: tuple[Any, ...], name: str | None
) -> Generator[Any, Any, Coroutine]:
    """The SPAWN trap with a group attached."""
    child: Coroutine = yield (SPAWN, target, args, name, group)
    return child
