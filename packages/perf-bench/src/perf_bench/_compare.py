"""Comparing two runs: which metrics really changed, and by how much.

Design note: a change is reported as better or worse only when it is both statistically
significant (two-sided Mann-Whitney U on the pooled values, ``p < alpha``) and practically
relevant (the medians differ by at least ``min_effect``). Significance alone is not enough: with
many values, a 0.3% drift between two runs of the same build is "significant" and meaningless.
Relevance alone is not enough either: with few, noisy values a 10% difference can be chance.

Ratios are direction-aware: ``ratio > 1`` always means the new run is better (for a lower-is-better
metric it is base/new, for a higher-is-better one new/base), so the suite's geometric mean of ratios
is a single "how much better overall" figure that mixes times and throughputs correctly.
"""

from __future__ import annotations

import enum
import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from perf_bench._mannwhitney import mann_whitney_u
from perf_bench._metrics import Direction
from perf_bench._result import SuiteResult

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_MIN_EFFECT",
    "Change",
    "Comparison",
    "MetricComparison",
    "compare",
    "condition_notes",
]

DEFAULT_ALPHA = 0.05
"""Significance level: the usual 5% false-alarm rate per metric."""

DEFAULT_MIN_EFFECT = 0.05
"""Smallest relative change of the median worth reporting: 5%. Two runs of the same build on a
shared 2-core machine drift by a few percent (frequency, neighbours), so a smaller threshold turns
CI red for nothing; a JIT being switched off changes its metrics by far more."""


class Change(enum.Enum):
    """Verdict of one metric's comparison."""

    BETTER = "better"
    WORSE = "worse"
    SAME = "same"
    """Not significant, or smaller than the minimum effect."""
    MISSING = "missing"
    """Present in only one of the two runs."""


@dataclass(frozen=True, slots=True)
class MetricComparison:
    """One metric compared between a base and a new run."""

    benchmark: str
    metric: str
    unit: str
    direction: Direction
    base_median: float | None
    new_median: float | None
    change: float | None
    """Relative change of the median, ``new / base - 1`` (sign as measured, not as judged)."""
    ratio: float | None
    """Direction-aware ratio: above 1 means the new run is better."""
    p_value: float | None
    test: str
    verdict: Change
    note: str = ""


@dataclass(frozen=True, slots=True)
class Comparison:
    """Every metric's comparison, the geometric mean of ratios, and whether anything regressed."""

    rows: tuple[MetricComparison, ...]
    geometric_mean: float | None
    """Geometric mean of direction-aware ratios over metrics in both runs (> 1: new is better)."""
    alpha: float
    min_effect: float
    notes: tuple[str, ...] = ()
    """Differences between the two runs' conditions that a reader should weigh."""

    @property
    def regressions(self) -> list[MetricComparison]:
        """Metrics that got significantly and relevantly worse."""
        return [r for r in self.rows if r.verdict is Change.WORSE]

    @property
    def improvements(self) -> list[MetricComparison]:
        """Metrics that got significantly and relevantly better."""
        return [r for r in self.rows if r.verdict is Change.BETTER]


def _compare_metric(  # noqa: PLR0917 - private helper, called once with every field
    benchmark: str,
    metric: str,
    base_values: list[float],
    new_values: list[float],
    unit: str,
    direction: Direction,
    alpha: float,
    min_effect: float,
) -> MetricComparison:
    base_median = statistics.median(base_values)
    new_median = statistics.median(new_values)
    test = mann_whitney_u(base_values, new_values)
    change: float | None = None
    ratio: float | None = None
    if base_median != 0:
        change = new_median / base_median - 1
    if base_median > 0 and new_median > 0:
        ratio = (
            base_median / new_median if direction is Direction.LOWER else new_median / base_median
        )
    significant = test.p_value < alpha
    relevant = change is not None and abs(change) >= min_effect
    if base_median == 0 and new_median != 0:
        relevant = True
    if significant and relevant:
        verdict = Change.BETTER if direction.better(new_median, base_median) else Change.WORSE
        note = ""
    else:
        verdict = Change.SAME
        note = "not significant" if not significant else f"below {min_effect:.0%} effect"
    return MetricComparison(
        benchmark,
        metric,
        unit,
        direction,
        base_median,
        new_median,
        change,
        ratio,
        test.p_value,
        test.method,
        verdict,
        note,
    )


def compare(
    base: SuiteResult,
    new: SuiteResult,
    *,
    alpha: float = DEFAULT_ALPHA,
    min_effect: float = DEFAULT_MIN_EFFECT,
) -> Comparison:
    """Compare every metric of ``new`` against ``base``.

    Raises:
        ValueError: if ``alpha`` is not in (0, 1) or ``min_effect`` is negative.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    if min_effect < 0:
        raise ValueError(f"min_effect cannot be negative, got {min_effect}")
    rows: list[MetricComparison] = []
    new_metrics = {(b.name, m.name): m for b in new.benchmarks for m in b.metrics}
    seen: set[tuple[str, str]] = set()
    for b in base.benchmarks:
        for m in b.metrics:
            key = (b.name, m.name)
            seen.add(key)
            other = new_metrics.get(key)
            if other is None:
                rows.append(_missing(b.name, m.name, m.unit, m.direction, "only in base"))
                continue
            if other.unit != m.unit or other.direction is not m.direction:
                rows.append(
                    _missing(
                        b.name,
                        m.name,
                        m.unit,
                        m.direction,
                        f"unit or direction differs: {m.unit}/{m.direction.value} vs "
                        f"{other.unit}/{other.direction.value}",
                    )
                )
                continue
            rows.append(
                _compare_metric(
                    b.name, m.name, m.values, other.values, m.unit, m.direction, alpha, min_effect
                )
            )
    for (bench, metric), m in new_metrics.items():
        if (bench, metric) not in seen:
            rows.append(_missing(bench, metric, m.unit, m.direction, "only in new"))
    ratios = [r.ratio for r in rows if r.ratio is not None]
    geomean = math.exp(math.fsum(math.log(r) for r in ratios) / len(ratios)) if ratios else None
    return Comparison(tuple(rows), geomean, alpha, min_effect, tuple(condition_notes(base, new)))


def condition_notes(base: SuiteResult, new: SuiteResult) -> list[str]:
    """What differed between the conditions of two runs: options, Python, commit, machine load."""
    notes: list[str] = []
    old_options, new_options = base.options.to_dict(), new.options.to_dict()
    changed = [k for k in old_options if old_options[k] != new_options[k] and k != "seed"]
    if changed:
        pairs = ", ".join(f"{k} {old_options[k]} -> {new_options[k]}" for k in changed)
        notes.append(f"the runs measured differently: {pairs}")
    for label, path in (("Python", ("python", "version")), ("commit", ("git", "commit"))):
        a, b = _lookup(base.environment, path), _lookup(new.environment, path)
        if a != b:
            notes.append(f"{label} differs: {a} -> {b}")
    for name, run in (("base", base), ("new", new)):
        load = run.environment.get("load_average")
        cores = _lookup(run.environment, ("cpu", "available_cores"))
        if isinstance(load, list) and load and isinstance(cores, int) and load[0] > cores:
            notes.append(
                f"{name} ran on a busy machine (load {load[0]:g} on {cores} cores): "
                "its figures are inflated and noisy"
            )
    return notes


def _lookup(data: Mapping[str, Any], path: tuple[str, ...]) -> object:
    current: object = data
    for key in path:
        if not isinstance(current, Mapping):
            return None
        current = current.get(key)
    return current


def _missing(
    bench: str, metric: str, unit: str, direction: Direction, note: str
) -> MetricComparison:
    return MetricComparison(
        bench, metric, unit, direction, None, None, None, None, None, "", Change.MISSING, note
    )
