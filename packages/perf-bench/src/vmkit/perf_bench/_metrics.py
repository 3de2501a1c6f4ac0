"""One measured value of one metric, with its unit and which direction is better.

Design note: a benchmark returns a list of ``Metrics`` per run, one per metric it measures. A
``Metrics`` is a single observation; the framework gathers many of them (over values and worker
processes) into a distribution before it says anything. Timing observations also carry the number
of operations they covered and the elapsed time, so throughput and latency are derived, never stored
twice and never out of step.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from vmkit.perf_bench._units import convert_time, is_time_unit

__all__ = ["Direction", "Metrics"]


class Direction(enum.Enum):
    """Which way a metric improves."""

    LOWER = "lower"
    """Lower is better (times, pauses, sizes)."""
    HIGHER = "higher"
    """Higher is better (throughput, hit rates, speed-ups)."""

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b``."""
        return a < b if self is Direction.LOWER else a > b


@dataclass(frozen=True, slots=True)
class Metrics:
    """A single observation of a named metric.

    Args:
        name: metric name, unique within its benchmark (``snake_case``).
        value: the observed value in ``unit``.
        unit: ``ns``/``us``/``ms``/``s`` for times, or any label (``MIPS``, ``%``, ``B``, ``x``).
        direction: whether lower or higher values are better.
        operations: how many operations the observation covered, when that is meaningful.
        elapsed_ns: how long the observation took, when that is meaningful.
    """

    name: str
    value: float
    unit: str
    direction: Direction = Direction.LOWER
    operations: int | None = None
    elapsed_ns: int | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a metric needs a non-empty name")
        if not math.isfinite(self.value):
            raise ValueError(f"metric {self.name!r} has a non-finite value {self.value!r}")
        if self.operations is not None and self.operations <= 0:
            raise ValueError(f"metric {self.name!r}: operations must be positive")

    @classmethod
    def timing(cls, name: str, elapsed_ns: int, operations: int = 1, unit: str = "ns") -> Metrics:
        """Latency per operation, ``elapsed_ns / operations`` in ``unit``; lower is better.

        Raises:
            ValueError: if ``operations`` is not positive or ``unit`` is not a time unit.
        """
        if operations <= 0:
            raise ValueError(f"metric {name!r}: operations must be positive, got {operations}")
        if not is_time_unit(unit):
            raise ValueError(f"metric {name!r}: {unit!r} is not a time unit (ns, us, ms, s)")
        per_op = convert_time(elapsed_ns / operations, "ns", unit)
        return cls(name, per_op, unit, Direction.LOWER, operations, elapsed_ns)

    @classmethod
    def rate(
        cls, name: str, count: float, elapsed_ns: int, unit: str = "ops/s", scale: float = 1.0
    ) -> Metrics:
        """Throughput: ``count / seconds / scale`` in ``unit`` (``scale=1e6`` gives millions/s).

        Raises:
            ValueError: if ``elapsed_ns`` is not positive.
        """
        if elapsed_ns <= 0:
            raise ValueError(f"metric {name!r}: elapsed time must be positive, got {elapsed_ns}")
        value = count / (elapsed_ns / 1e9) / scale
        operations = int(count) if count >= 1 else None
        return cls(name, value, unit, Direction.HIGHER, operations, elapsed_ns)

    @property
    def latency_ns(self) -> float | None:
        """Nanoseconds per operation, when operations and elapsed time are known."""
        if self.operations is None or self.elapsed_ns is None:
            return None
        return self.elapsed_ns / self.operations

    @property
    def throughput(self) -> float | None:
        """Operations per second, when operations and elapsed time are known."""
        if self.operations is None or not self.elapsed_ns:
            return None
        return self.operations / (self.elapsed_ns / 1e9)
