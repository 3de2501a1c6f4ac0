"""A monotonic nanosecond timer usable as a context manager and as a decorator.

Design note: the timer reads an injectable clock (``time.perf_counter_ns`` by default) so tests can
drive it with a fake clock instead of sleeping. Elapsed time is kept as an integer number of
nanoseconds; conversion to other units happens only when a value is read, so no precision is lost
to repeated float arithmetic.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from types import TracebackType
from typing import ParamSpec, TypeVar

from vmkit.perf_bench._units import convert_time

__all__ = ["Clock", "Timer"]

Clock = Callable[[], int]
"""A monotonic clock returning integer nanoseconds."""

_P = ParamSpec("_P")
_R = TypeVar("_R")


class Timer:
    """Measure elapsed time with a monotonic nanosecond clock.

    Use it as a context manager (``with Timer() as t: ...``), call ``start()``/``stop()`` directly,
    or decorate a function (``@timer``): every call then adds to ``total_ns`` and ``calls``.
    """

    __slots__ = ("_clock", "_start", "calls", "elapsed_ns", "total_ns")

    def __init__(self, clock: Clock = time.perf_counter_ns) -> None:
        self._clock = clock
        self._start: int | None = None
        self.elapsed_ns = 0
        """Duration of the last completed interval."""
        self.total_ns = 0
        """Sum of every completed interval."""
        self.calls = 0
        """Number of completed intervals."""

    @property
    def running(self) -> bool:
        """Whether an interval is open."""
        return self._start is not None

    def start(self) -> None:
        """Open an interval.

        Raises:
            RuntimeError: if the timer is already running.
        """
        if self._start is not None:
            raise RuntimeError("timer is already running; call stop() first")
        self._start = self._clock()

    def stop(self) -> int:
        """Close the interval and return its length in nanoseconds.

        Raises:
            RuntimeError: if the timer was not started.
        """
        end = self._clock()
        if self._start is None:
            raise RuntimeError("timer was not started; call start() first")
        self.elapsed_ns = end - self._start
        self._start = None
        self.total_ns += self.elapsed_ns
        self.calls += 1
        return self.elapsed_ns

    def elapsed(self, unit: str = "s") -> float:
        """The last interval in ``unit`` (ns, us, ms or s)."""
        return convert_time(self.elapsed_ns, "ns", unit)

    @property
    def ns(self) -> int:
        """The last interval in nanoseconds."""
        return self.elapsed_ns

    @property
    def us(self) -> float:
        """The last interval in microseconds."""
        return self.elapsed_ns / 1e3

    @property
    def ms(self) -> float:
        """The last interval in milliseconds."""
        return self.elapsed_ns / 1e6

    @property
    def s(self) -> float:
        """The last interval in seconds."""
        return self.elapsed_ns / 1e9

    def __enter__(self) -> Timer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __call__(self, func: Callable[_P, _R]) -> Callable[_P, _R]:
        """Decorate ``func`` so that each call is timed and added to this timer.

        Each call keeps its own start time, so recursive calls are timed too (their
        intervals overlap, and each counts in ``total_ns``).
        """
        clock = self._clock

        @functools.wraps(func)
        def timed(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            start = clock()
            try:
                return func(*args, **kwargs)
            finally:
                self.elapsed_ns = clock() - start
                self.total_ns += self.elapsed_ns
                self.calls += 1

        return timed

    def __repr__(self) -> str:
        return f"Timer(elapsed_ns={self.elapsed_ns}, calls={self.calls}, total_ns={self.total_ns})"
