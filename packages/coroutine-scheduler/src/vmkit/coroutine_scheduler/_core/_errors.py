"""Errors raised by the scheduler, and the exception thrown into cancelled coroutines."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vmkit.coroutine_scheduler._core._coroutine import Coroutine

__all__ = [
    "BrokenResourceError",
    "Cancelled",
    "ClosedResourceError",
    "DeadlineExceeded",
    "DeadlockError",
    "EndOfChannel",
    "InvalidTransitionError",
    "RunTimeoutError",
    "SchedulerError",
    "TrapOutsideSchedulerError",
    "UsageError",
]


class SchedulerError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidTransitionError(SchedulerError):
    """A coroutine was asked to move between two states that are not linked in its state machine."""


class UsageError(SchedulerError):
    """The scheduler was used in a way it does not support (joining yourself, a bad argument...)."""


class TrapOutsideSchedulerError(UsageError):
    """A trap (``sleep``, ``wait``...) ran outside a coroutine driven by a :class:`Scheduler`."""


def _describe(coroutines: Sequence[Coroutine]) -> str:
    shown = ", ".join(c.describe() for c in coroutines[:10])
    more = f" and {len(coroutines) - 10} more" if len(coroutines) > 10 else ""
    return shown + more


class DeadlockError(SchedulerError):
    """Every live coroutine waits (on a key or a join) and none sleeps: nothing can ever wake them.

    Attributes:
        coroutines: the coroutines that were waiting, in id order.
    """

    def __init__(self, coroutines: Sequence[Coroutine]) -> None:
        self.coroutines = tuple(coroutines)
        super().__init__(
            f"deadlock: all {len(self.coroutines)} live coroutine(s) wait and none can wake them: "
            f"{_describe(self.coroutines)}"
        )


class RunTimeoutError(SchedulerError, TimeoutError):
    """``Scheduler.run(timeout=...)`` ran out of time; the coroutines still alive are attached.

    The scheduler stops cleanly between two steps: the coroutines keep their state, so ``run`` may
    be called again to continue, or ``Scheduler.close()`` ends them.

    Attributes:
        alive: the coroutines that had not ended, in id order.
        timeout: the time limit in seconds.
    """

    def __init__(self, timeout: float, alive: Sequence[Coroutine]) -> None:
        self.timeout = timeout
        self.alive = tuple(alive)
        super().__init__(
            f"run() timed out after {timeout:g} s with {len(self.alive)} coroutine(s) alive: "
            f"{_describe(self.alive)}"
        )


class Cancelled(BaseException):
    """Thrown into a coroutine by ``cancel()``; a coroutine that lets it escape ends cancelled.

    It derives from BaseException, as asyncio's CancelledError does since Python 3.8, so that an
    ``except Exception`` in user code does not swallow a cancellation by accident.
    """


class DeadlineExceeded(SchedulerError, TimeoutError):
    """A ``fail_after``/``fail_at`` scope reached its deadline (or was cancelled) before its end.

    Attributes:
        deadline: the scope's deadline on the scheduler's clock.
    """

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        super().__init__(f"the deadline ({deadline:g} on the scheduler's clock) passed")


class EndOfChannel(Exception):
    """Receiving from a channel whose every sending end is closed and whose buffer is empty."""


class ClosedResourceError(SchedulerError):
    """Using a channel end (or other resource) after closing it yourself."""


class BrokenResourceError(SchedulerError):
    """Sending on a channel whose receiving end was closed: nobody will ever read it."""
