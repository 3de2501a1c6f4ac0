"""Clocks for ``sleep``: the real monotonic clock, and a virtual one for tests and simulations.

The scheduler reads time only through a clock object (``now()`` in seconds, ``sleep(seconds)``),
like trio's Clock and pyperf's injectable timers, so tests can exercise timers without waiting.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "MonotonicClock", "VirtualClock"]


class Clock(Protocol):
    """What the scheduler needs from a clock."""

    def now(self) -> float:
        """The current time in seconds (any origin; only differences matter)."""

    def sleep(self, seconds: float) -> None:
        """Block until ``now()`` has advanced by ``seconds``: the scheduler has nothing to run."""


class MonotonicClock:
    """The real clock: ``time.monotonic`` and a real ``time.sleep``."""

    __slots__ = ()

    def now(self) -> float:
        """Seconds on the monotonic clock."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Sleep for real (only called when every live coroutine is asleep)."""
        if seconds > 0:
            time.sleep(seconds)  # real wait: nothing is runnable until the next timer


class VirtualClock:
    """A clock that only moves when the scheduler sleeps on it (it jumps, it never waits).

    Runs that sleep become instant and exactly repeatable, in the spirit of trio's MockClock with
    ``autojump_threshold=0``.
    """

    __slots__ = ("_now",)

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        """The virtual time in seconds."""
        return self._now

    def sleep(self, seconds: float) -> None:
        """Jump forward by ``seconds`` without waiting."""
        if seconds > 0:
            self._now += seconds

    def advance(self, seconds: float) -> None:
        """Move the clock forward by hand."""
        self.sleep(seconds)
