"""Results: per-metric distributions with statistics, verdicts and warnings; whole-suite results.

Design note: a result keeps every raw value, grouped by worker process, warm-ups included but
marked. Statistics, verdicts and warnings are derived from the raw values when a result is built
(or loaded from JSON), never stored as independent truth, so a results file cannot disagree with
itself. The pooled values of a metric are all non-warm-up values of all processes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vmkit.perf_bench._metrics import Direction
from vmkit.perf_bench._runner import ProcessRun, RunOptions
from vmkit.perf_bench._serialize import benchmark_to_json, suite_to_json, to_csv
from vmkit.perf_bench._stats import Summary, spread_warnings, summarize
from vmkit.perf_bench._targets import Outcome, Target

__all__ = [
    "BenchmarkResult",
    "MetricResult",
    "ProcessValues",
    "SuiteResult",
    "SuiteSummary",
    "build_benchmark_result",
]


@dataclass(frozen=True, slots=True)
class ProcessValues:
    """One metric's values from one worker process."""

    process: int
    loops: int
    warmups: tuple[float, ...]
    values: tuple[float, ...]
    operations: int | None = None
    """Operations covered by each value, when the metric counts them."""


@dataclass(frozen=True, slots=True)
class MetricResult:
    """The distribution of one metric, its statistics and its verdict against a target."""

    name: str
    unit: str
    direction: Direction
    runs: tuple[ProcessValues, ...]
    summary: Summary
    target: Target | None
    outcome: Outcome
    warnings: tuple[str, ...]

    @property
    def values(self) -> list[float]:
        """All measured values (warm-ups excluded), process by process."""
        return [v for run in self.runs for v in run.values]

    @classmethod
    def build(
        cls,
        name: str,
        unit: str,
        direction: Direction,
        runs: Sequence[ProcessValues],
        target: Target | None,
        *,
        confidence: float = 0.95,
        resamples: int = 2000,
        seed: int = 0,
    ) -> MetricResult:
        """Compute statistics, verdict and warnings from the raw values.

        Raises:
            ValueError: if there are no values, or the target's unit does not fit the metric's.
        """
        pooled = [v for run in runs for v in run.values]
        groups = [run.values for run in runs]
        summary = summarize(pooled, confidence, resamples, seed, groups)
        warnings = spread_warnings(pooled)
        if len(pooled) < 5:
            warnings.append(f"only {len(pooled)} values; the interval is wide (use more --repeat)")
        outcome = Outcome.REPORTED
        if target is not None:
            try:
                outcome = target.evaluate(summary.ci_low, summary.ci_high, unit)
            except ValueError as exc:
                raise ValueError(f"metric {name!r}: target does not fit: {exc}") from exc
        return cls(name, unit, direction, tuple(runs), summary, target, outcome, tuple(warnings))


@dataclass(frozen=True, slots=True)
class SuiteSummary:
    """Counts of metric verdicts, and the overall verdict."""

    benchmarks: int
    total: int
    passed: int
    failed: int
    inconclusive: int
    reported: int
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class BenchmarkResult:
    """All metrics of one benchmark."""

    name: str
    description: str
    metrics: tuple[MetricResult, ...]

    @property
    def outcome(self) -> Outcome:
        """Fail if any metric fails, else inconclusive if any is, else pass (or reported)."""
        return Outcome.combine([m.outcome for m in self.metrics])

    def metric(self, name: str) -> MetricResult:
        """The metric called ``name``.

        Raises:
            KeyError: if there is none.
        """
        for m in self.metrics:
            if m.name == name:
                return m
        raise KeyError(f"benchmark {self.name!r} has no metric {name!r}")

    def print(self) -> None:
        """Print this benchmark's table to the terminal."""
        from vmkit.perf_bench._report import print_text  # rich: only when printing

        print_text([self])

    def to_csv(self) -> str:
        """This benchmark's metrics as CSV (header included)."""
        return to_csv([self])

    def to_json(self) -> dict[str, Any]:
        """This benchmark as JSON-ready data (the ``benchmarks`` item of the schema)."""
        return benchmark_to_json(self)


@dataclass(frozen=True, slots=True)
class SuiteResult:
    """A whole run: options, environment, every benchmark's result and what was skipped."""

    suite: str
    options: RunOptions
    environment: Mapping[str, Any]
    started_at: str
    finished_at: str
    benchmarks: tuple[BenchmarkResult, ...]
    skipped: Mapping[str, str] = field(default_factory=dict)

    def benchmark(self, name: str) -> BenchmarkResult:
        """The benchmark called ``name``.

        Raises:
            KeyError: if there is none.
        """
        for b in self.benchmarks:
            if b.name == name:
                return b
        raise KeyError(f"no benchmark {name!r} in this result")

    def summary(self) -> SuiteSummary:
        """Counts of metrics by verdict."""
        outcomes = [m.outcome for b in self.benchmarks for m in b.metrics]
        return SuiteSummary(
            benchmarks=len(self.benchmarks),
            total=len(outcomes),
            passed=outcomes.count(Outcome.PASS),
            failed=outcomes.count(Outcome.FAIL),
            inconclusive=outcomes.count(Outcome.INCONCLUSIVE),
            reported=outcomes.count(Outcome.REPORTED),
            outcome=Outcome.combine(outcomes),
        )

    def report(self, width: int | None = None) -> str:
        """The text report as a string: laid out for a terminal ``width`` columns wide, or by
        default the complete layout for files and logs."""
        from vmkit.perf_bench._report import render_text  # rich: only when rendering

        return render_text(self, width=width)

    def print(self) -> None:
        """Print the text report to the terminal."""
        from vmkit.perf_bench._report import print_text  # rich: only when printing

        print_text(self)

    def to_csv(self) -> str:
        """Every metric's statistics as CSV."""
        return to_csv(self.benchmarks)

    def to_json(self) -> dict[str, Any]:
        """The whole result as data following ``schema/result-v1.json``."""
        return suite_to_json(self)


def build_benchmark_result(
    name: str,
    description: str,
    runs: Sequence[ProcessRun],
    targets: Mapping[str, Target],
    options: RunOptions,
) -> BenchmarkResult:
    """Gather one benchmark's process runs into per-metric distributions."""
    first = (runs[0].values or runs[0].warmups)[0]
    metrics: list[MetricResult] = []
    for index, template in enumerate(first):
        per_process = [
            ProcessValues(
                process=run.process,
                loops=run.loops,
                warmups=tuple(w[index].value for w in run.warmups),
                values=tuple(v[index].value for v in run.values),
                operations=run.values[0][index].operations if run.values else None,
            )
            for run in runs
        ]
        metrics.append(
            MetricResult.build(
                template.name,
                template.unit,
                template.direction,
                per_process,
                targets.get(template.name),
                confidence=options.confidence,
                resamples=options.resamples,
                seed=options.seed,
            )
        )
    return BenchmarkResult(name, description, tuple(metrics))
