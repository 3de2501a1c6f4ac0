"""``AotBenchmark``: ahead-of-time compilation, code-cache size, warm start over a cold JIT.

Design note: async-executor has no AOT compiler or persistent code cache yet (issue 4, part 5:
``async-executor aot PROGRAM -o CACHE`` and ``run --code-cache CACHE``). Until it does, this
benchmark reports itself unavailable with that reason through ``available()``, so a report lists
it under "skipped" instead of printing numbers nobody measured. ``run`` refuses to measure.

What it will measure once the cache exists: the AOT compile time of the whole program, the cache
file's size in bytes, and the speed-up of a warm start (loading the cache) over a cold JIT start
of the same checked workload, in the same value.
"""

from __future__ import annotations

from collections.abc import Sequence

from perf_bench._benchmark import Benchmark, RunContext
from perf_bench._metrics import Metrics
from perf_bench.suites._vm_engines import aot_unavailable_reason

__all__ = ["AotBenchmark", "AotUnavailableError"]


class AotUnavailableError(RuntimeError):
    """AOT compilation was asked for, but async-executor does not provide it."""


class AotBenchmark(Benchmark):
    """AOT compile time, code-cache size on disk, warm-start speed-up (unavailable for now)."""

    name = "AotBenchmark"
    description = (
        "ahead-of-time compile time of a whole program, code-cache size on disk, warm-start "
        "speed-up over a cold JIT start"
    )

    def available(self) -> str | None:
        """Why AOT cannot be measured (async-executor has no AOT yet)."""
        return aot_unavailable_reason()

    def run(self, ctx: RunContext) -> Sequence[Metrics]:
        """Refuse: there is nothing to measure until async-executor ships AOT.

        Raises:
            AotUnavailableError: always, with the reason.
        """
        raise AotUnavailableError(aot_unavailable_reason() or "AotBenchmark is not implemented")
