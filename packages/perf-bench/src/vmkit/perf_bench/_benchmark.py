"""The interface a benchmark implements, and a base class for timed micro-operations.

Design note: a benchmark is an object with a ``run(ctx)`` method that performs one measurement and
returns one ``Metrics`` per metric it measures. The framework owns everything around that call:
which process it runs in, how many times, which runs are warm-ups, how many loops a short
operation needs, and the statistics. A benchmark therefore never sleeps, never repeats itself and
never averages; it measures once, honestly, and lets the framework do the rest.

``setup`` runs once per worker process before any measurement and ``teardown`` once after, both
untimed; expensive preparation (building a guest program, filling caches that the benchmark is
not about) belongs there. ``ctx.loops`` is 1 unless the benchmark sets ``calibrate = True``, in
which case the framework finds a loop count that makes one ``run`` last at least the minimum time
per value, and the benchmark must do ``ctx.loops`` times its unit of work and report per-operation
figures. ``ctx.quick`` asks for a smaller workload (``--quick``). ``available()`` lets a benchmark
say why it cannot run on this machine instead of failing half-way.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar

from vmkit.perf_bench._metrics import Metrics
from vmkit.perf_bench._targets import Target
from vmkit.perf_bench._timer import Clock, Timer

__all__ = ["Benchmark", "MicroBenchmark", "RunContext"]

_NO_TARGETS: Mapping[str, Target] = MappingProxyType({})


@dataclass(slots=True)
class RunContext:
    """What a benchmark's ``run`` gets: the loop count, the clock and the run's parameters."""

    loops: int = 1
    """How many times to repeat the unit of work in this run (1 unless calibrated)."""
    quick: bool = False
    """Whether a smaller workload was asked for."""
    clock: Clock = time.perf_counter_ns
    """Monotonic nanosecond clock to time with (a fake one in tests)."""
    process: int = 0
    """Index of the worker process this run belongs to."""

    def timer(self) -> Timer:
        """A fresh ``Timer`` on this context's clock."""
        return Timer(self.clock)


class Benchmark(abc.ABC):
    """A benchmark: measures one or more metrics per ``run``.

    Subclasses set ``name`` (unique within the suite), optionally ``description``, ``targets``
    (metric name -> ``Target``) and ``calibrate``, and implement ``run``.
    """

    name: ClassVar[str]
    description: str = ""
    """One line for reports; an instance may refine it (e.g. to say how it was configured)."""
    calibrate: ClassVar[bool] = False
    """Whether the framework should calibrate ``ctx.loops`` to reach the minimum time per value."""
    targets: ClassVar[Mapping[str, Target]] = _NO_TARGETS

    def available(self) -> str | None:
        """Why this benchmark cannot run here, or ``None`` when it can."""
        return None

    def setup(self, ctx: RunContext) -> None:  # noqa: B027 - optional hook, empty by design
        """Prepare, once per worker process, untimed."""

    @abc.abstractmethod
    def run(self, ctx: RunContext) -> Sequence[Metrics]:
        """Measure once and return one observation per metric (the same metrics every time)."""

    def teardown(self) -> None:  # noqa: B027 - optional hook, empty by design
        """Release what ``setup`` acquired, once per worker process."""


class MicroBenchmark(Benchmark):
    """A short operation timed in a calibrated loop; reports the ``time`` per operation in ns.

    Subclasses implement ``loop(loops)``, which performs the operation
    ``loops * operations_per_loop`` times; unrolling a few operations per iteration keeps the
    ``for`` loop's own cost (about 10 ns on CPython 3.11) a small share of each figure.
    """

    calibrate = True
    operations_per_loop: ClassVar[int] = 1
    metric: ClassVar[str] = "time"

    @abc.abstractmethod
    def loop(self, loops: int) -> None:
        """Perform the operation ``loops * operations_per_loop`` times."""

    def run(self, ctx: RunContext) -> Sequence[Metrics]:
        """Time ``loop(ctx.loops)`` and report nanoseconds per operation."""
        start = ctx.clock()
        self.loop(ctx.loops)
        elapsed = ctx.clock() - start
        return [Metrics.timing(self.metric, elapsed, ctx.loops * self.operations_per_loop)]
