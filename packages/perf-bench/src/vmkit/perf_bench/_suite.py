"""``BenchmarkSuite``: a named set of benchmarks and the way to run them.

Design note: a suite is rebuilt in every worker process from its import spec
(``module:function``), so a suite must be cheap to build and must not measure anything while it is
being built. Benchmarks are registered by instance or by class (a class is instantiated with no
arguments), which lets a module declare benchmarks with ``@suite.register`` as a decorator.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from vmkit.perf_bench._benchmark import Benchmark
from vmkit.perf_bench._environment import collect_environment
from vmkit.perf_bench._logging import get_logger
from vmkit.perf_bench._result import SuiteResult, build_benchmark_result
from vmkit.perf_bench._runner import BenchmarkError, Progress, RunOptions, run_schedule
from vmkit.perf_bench._timer import Clock

__all__ = ["BenchmarkSuite", "UnknownBenchmarkError"]

logger = get_logger(__name__)

_B = TypeVar("_B", bound="Benchmark | type[Benchmark]")


class UnknownBenchmarkError(KeyError):
    """A benchmark name that the suite does not have."""

    def __str__(self) -> str:
        return str(self.args[0])


class BenchmarkSuite:
    """A named, ordered set of benchmarks.

    Args:
        name: the suite's name (``--suite NAME``).
        description: one line for ``perf-bench list``.
        import_spec: ``module:function`` that rebuilds this suite in a worker process; set by the
            registry when the suite is loaded by name.
        quick_overrides: changes to ``RunOptions.quick_defaults()`` for this suite's ``--quick``
            (a suite of costly benchmarks may take fewer values); options given explicitly on
            the command line still win.
    """

    def __init__(
        self,
        name: str,
        description: str = "",
        *,
        import_spec: str | None = None,
        quick_overrides: Mapping[str, Any] | None = None,
    ):
        self.name = name
        self.description = description
        self.import_spec = import_spec
        self.quick_overrides: dict[str, Any] = dict(quick_overrides or {})
        self._benchmarks: dict[str, Benchmark] = {}
        self._on_request: set[str] = set()

    def register(self, benchmark: _B, *, on_request: bool = False) -> _B:
        """Add a benchmark (an instance, or a class built with no arguments); usable as decorator.

        Args:
            benchmark: what to add.
            on_request: leave it out of a run that names no benchmarks (for a costly
                benchmark of a question few runs ask); ``--bench NAME`` runs it.

        Raises:
            ValueError: if the name is missing or already taken.
        """
        instance = benchmark() if isinstance(benchmark, type) else benchmark
        name = getattr(instance, "name", "")
        if not name:
            raise ValueError(f"{type(instance).__name__} has no 'name'; set the class attribute")
        if name in self._benchmarks:
            raise ValueError(f"suite {self.name!r} already has a benchmark called {name!r}")
        self._benchmarks[name] = instance
        if on_request:
            self._on_request.add(name)
        return benchmark

    def on_request(self, name: str) -> bool:
        """Whether the benchmark ``name`` runs only when named."""
        return name in self._on_request

    @property
    def benchmarks(self) -> tuple[Benchmark, ...]:
        """The benchmarks in registration order."""
        return tuple(self._benchmarks.values())

    def get(self, name: str) -> Benchmark:
        """The benchmark called ``name``.

        Raises:
            UnknownBenchmarkError: if there is none (the message lists the known names).
        """
        try:
            return self._benchmarks[name]
        except KeyError:
            known = ", ".join(self._benchmarks) or "none"
            raise UnknownBenchmarkError(
                f"suite {self.name!r} has no benchmark {name!r}; known: {known}"
            ) from None

    def select(self, names: Iterable[str] | None = None) -> list[Benchmark]:
        """The named benchmarks, in suite order (when ``names`` is empty or ``None``: all but
        those registered on request)."""
        wanted = list(names or [])
        if not wanted:
            return [b for b in self.benchmarks if b.name not in self._on_request]
        for name in wanted:
            self.get(name)
        return [b for b in self.benchmarks if b.name in wanted]

    def run(
        self,
        names: Iterable[str] | None = None,
        options: RunOptions | None = None,
        *,
        clock: Clock = time.perf_counter_ns,
        progress: Progress | None = None,
        environment: Mapping[str, object] | None = None,
    ) -> SuiteResult:
        """Run the selected benchmarks and return the full result.

        Args:
            names: benchmarks to run (all by default).
            options: how much to measure (``RunOptions()`` by default).
            clock: clock for inline runs; tests pass a fake one.
            progress: progress callback (description, done, total).
            environment: environment metadata to record (collected when ``None``).

        Raises:
            UnknownBenchmarkError: for an unknown name.
            BenchmarkError: if a benchmark fails or none can run here.
        """
        options = options or RunOptions()
        selected = self.select(names)
        skipped: dict[str, str] = {}
        runnable: list[Benchmark] = []
        for benchmark in selected:
            reason = benchmark.available()
            if reason is None:
                runnable.append(benchmark)
            else:
                skipped[benchmark.name] = reason
                logger.warning("benchmark_skipped", bench=benchmark.name, reason=reason)
        if not runnable:
            raise BenchmarkError(f"no benchmark of suite {self.name!r} can run here: {skipped}")
        started = _now()
        runs = run_schedule(
            runnable, options, suite_spec=self.import_spec, clock=clock, progress=progress
        )
        finished = _now()
        results = tuple(
            build_benchmark_result(b.name, b.description, runs[b.name], b.targets, options)
            for b in runnable
        )
        env = dict(environment) if environment is not None else collect_environment()
        probes = [r.probe_ns for b in runnable for r in runs[b.name] if r.probe_ns > 0]
        if probes:
            # The machine's speed during this run, sampled in every worker process.
            env["machine_probe_ns"] = probes
        return SuiteResult(self.name, options, env, started, finished, results, skipped)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
