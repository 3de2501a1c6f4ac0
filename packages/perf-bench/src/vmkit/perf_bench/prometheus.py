"""Prometheus metrics of benchmark runs: a progress monitor, a custom collector, a small server.

Design note
-----------
* A suite run reports progress through its ``progress`` callback (after each worker process) and
  its results once, when it ends; those are the only live data there are. :class:`SuiteMonitor`
  is such a callback (it can pass each call on to another, e.g. the progress bar) and also
  keeps the latest :class:`SuiteResult` given to :meth:`SuiteMonitor.record`. It needs nothing
  beyond the standard library, so a run can always be monitored.
* :class:`BenchCollector` reads the monitors only when Prometheus scrapes: progress while a suite
  runs, then every metric's median and confidence interval and its verdict from the latest result.
* Values keep their benchmark units (MIPS, ratios, counts ...) in a ``unit`` label, except times,
  which are converted to seconds (Prometheus's base unit) and labelled ``seconds``.
* ``prometheus-client`` is an optional extra: imported only when metrics are asked for, and a
  missing one is reported with the extra to install.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from vmkit.perf_bench._metrics_server import (
    DEFAULT_ADDR,
    EXTRA_HINT,
    DefaultRegistry,
    MetricsServer,
    MetricsUnavailableError,
    prometheus_client_module,
    start_metrics_server,
)
from vmkit.perf_bench._result import SuiteResult
from vmkit.perf_bench._targets import Outcome
from vmkit.perf_bench._units import convert_time, is_time_unit

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import CollectorRegistry

__all__ = [
    "DEFAULT_ADDR",
    "EXTRA_HINT",
    "BenchCollector",
    "MetricsServer",
    "MetricsUnavailableError",
    "SuiteMonitor",
    "start_metrics_server",
]

Progress = Callable[[str, int, int], None]


class SuiteMonitor:
    """Progress and latest result of one suite's runs; usable as the run's progress callback.

    Args:
        suite: the suite's name (the ``suite`` label).
        forward: another progress callback to pass every call on to (a progress bar).
        clock: seconds since the epoch, for the finish timestamp (tests pass a fake one).
    """

    def __init__(
        self, suite: str, forward: Progress | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.suite = suite
        self._forward = forward
        self._clock = clock
        self._lock = threading.Lock()
        self._current = ""
        self._done = 0
        self._total = 0
        self._completed_runs = 0
        self._result: SuiteResult | None = None
        self._finished_at: float | None = None

    def __call__(self, description: str, done: int, total: int) -> None:
        """Record progress: ``done`` of ``total`` worker processes, now at ``description``."""
        with self._lock:
            # A new run starts again at 0: completed processes accumulate over runs.
            step = done - self._done if done >= self._done else done
            self._completed_runs += step
            self._current, self._done, self._total = description, done, total
        if self._forward is not None:
            self._forward(description, done, total)

    def record(self, result: SuiteResult) -> None:
        """Keep ``result`` as the latest finished run of this suite."""
        with self._lock:
            self._result = result
            self._finished_at = self._clock()

    def snapshot(self) -> tuple[str, int, int, int, SuiteResult | None, float | None]:
        """(current description, done, total, completed processes, result, finished at)."""
        with self._lock:
            return (
                self._current,
                self._done,
                self._total,
                self._completed_runs,
                self._result,
                self._finished_at,
            )


def _in_base_unit(value: float, unit: str) -> tuple[float, str]:
    if is_time_unit(unit):
        return convert_time(value, unit, "s"), "seconds"
    return value, unit


class BenchCollector:
    """Collects the progress and latest results of suite runs from :class:`SuiteMonitor` s.

    Args:
        monitors: the monitors to read (one per suite).
        registry: where to register; the global ``prometheus_client.REGISTRY`` by default, None
            for no registration (tests, or registering yourself).

    Raises:
        MetricsUnavailableError: prometheus-client is not installed.
    """

    def __init__(
        self,
        monitors: SuiteMonitor | Iterable[SuiteMonitor],
        *,
        registry: CollectorRegistry | DefaultRegistry | None = DefaultRegistry.REGISTRY,
    ) -> None:
        client = prometheus_client_module()
        self._core = client.core
        self._monitors = [monitors] if isinstance(monitors, SuiteMonitor) else list(monitors)
        names = [m.suite for m in self._monitors]
        if len(set(names)) != len(names):
            raise ValueError(f"one monitor per suite, got suites {names}")
        if isinstance(registry, DefaultRegistry):
            client.REGISTRY.register(self)
        elif registry is not None:
            registry.register(self)

    def describe(self) -> list[Metric]:
        """The families this collector exports, without samples (for registry name checks)."""
        return list(self._families([]))

    def collect(self) -> Iterator[Metric]:
        """Read every monitor now and yield the metric families."""
        yield from self._families(self._monitors)

    def _families(self, monitors: list[SuiteMonitor]) -> Iterator[Metric]:
        core = self._core
        counter, gauge = core.CounterMetricFamily, core.GaugeMetricFamily
        metric_labels = ["suite", "benchmark", "metric", "unit"]
        completed = counter(
            "perf_bench_process_runs_total",
            "Worker process runs (one benchmark, one process) completed.",
            labels=["suite"],
        )
        planned = gauge(
            "perf_bench_process_runs_planned",
            "Worker process runs the current (or last) suite run consists of.",
            labels=["suite"],
        )
        done = gauge(
            "perf_bench_process_runs_done",
            "Worker process runs of the current (or last) suite run done so far.",
            labels=["suite"],
        )
        current = gauge(
            "perf_bench_current_run_info",
            "What the suite is running now (value 1; the run is in the description label).",
            labels=["suite", "description"],
        )
        finished = gauge(
            "perf_bench_last_result_timestamp_seconds",
            "When the latest result of the suite was recorded (Unix time).",
            labels=["suite"],
        )
        median = gauge(
            "perf_bench_metric_median",
            "Median of a benchmark metric in the latest result (times in seconds).",
            labels=metric_labels,
        )
        ci_low = gauge(
            "perf_bench_metric_ci_low",
            "Lower bound of the median's bootstrap confidence interval (latest result).",
            labels=metric_labels,
        )
        ci_high = gauge(
            "perf_bench_metric_ci_high",
            "Upper bound of the median's bootstrap confidence interval (latest result).",
            labels=metric_labels,
        )
        values = gauge(
            "perf_bench_metric_values",
            "Values measured for a benchmark metric in the latest result (warm-ups excluded).",
            labels=["suite", "benchmark", "metric"],
        )
        outcome = gauge(
            "perf_bench_metric_outcome",
            "Verdict of a metric against its target in the latest result: 1 for the verdict.",
            labels=["suite", "benchmark", "metric", "outcome"],
        )
        by_outcome = gauge(
            "perf_bench_metrics",
            "Metrics of the latest result, by verdict.",
            labels=["suite", "outcome"],
        )
        for monitor in monitors:
            suite = monitor.suite
            description, n_done, n_total, n_completed, result, at = monitor.snapshot()
            completed.add_metric([suite], n_completed)
            planned.add_metric([suite], n_total)
            done.add_metric([suite], n_done)
            if n_total and n_done < n_total:
                current.add_metric([suite, description], 1)
            if result is None or at is None:
                continue
            finished.add_metric([suite], at)
            counts = dict.fromkeys(Outcome, 0)
            for bench in result.benchmarks:
                for m in bench.metrics:
                    counts[m.outcome] += 1
                    s = m.summary
                    mid, unit = _in_base_unit(s.median, m.unit)
                    key = [suite, bench.name, m.name, unit]
                    median.add_metric(key, mid)
                    ci_low.add_metric(key, _in_base_unit(s.ci_low, m.unit)[0])
                    ci_high.add_metric(key, _in_base_unit(s.ci_high, m.unit)[0])
                    values.add_metric([suite, bench.name, m.name], s.n)
                    for verdict in Outcome:
                        outcome.add_metric(
                            [suite, bench.name, m.name, verdict.value],
                            1 if verdict is m.outcome else 0,
                        )
            for verdict, n in counts.items():
                by_outcome.add_metric([suite, verdict.value], n)
        yield from (
            completed, planned, done, current, finished, median, ci_low, ci_high, values,
            outcome, by_outcome,
        )  # fmt: skip
