"""Comparing two runs: which metrics really changed, and by how much.

Design note: the unit of independence is the worker process, not the value. Values measured in
one process share that process's draw (hash seed, memory layout, what got specialised first, the
machine's state while it ran), so they are not independent, and a test that treats them as
independent (Mann-Whitney U on the pooled values) reports differences between two runs of the
same build as significant far more often than its alpha says: it mistakes "these few processes
differ" for "the code differs".

The default method therefore works on the structure a run really has. A two-stage (hierarchical)
bootstrap resamples each run as it was measured, processes first, then values within each drawn
process, and gives an interval for the ratio of the medians, new over base. A metric is called
better or worse only when that whole interval lies outside the band of changes too small to
matter, ``[1 / (1 + min_effect), 1 + min_effect]``: a minimal-effect test, whose false-alarm rate
for changes no larger than ``min_effect`` is at most ``alpha / 2`` per direction. An interval
that excludes 1 but reaches into the band is "significant but below the minimum effect" and is
reported as such, without a verdict. Significance alone is not enough (with many values a 0.3%
drift is "significant" and meaningless), and a large point change alone is not either (with few,
noisy processes a 10% difference can be chance).

Two other methods remain available for comparison: ``processes`` (Mann-Whitney U on the
per-process medians, valid, but with few processes it has no power: 3 against 3 can never reach
p < 0.05) and ``values`` (Mann-Whitney U on pooled values, the too-liberal test described above,
kept so that the difference can be shown).

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
from datetime import datetime
from typing import Any, Literal

from vmkit.perf_bench._mannwhitney import mann_whitney_u
from vmkit.perf_bench._metrics import Direction
from vmkit.perf_bench._result import MetricResult, SuiteResult
from vmkit.perf_bench._stats import bootstrap_ratio_ci
from vmkit.perf_bench._units import convert, is_time_unit

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_METHOD",
    "DEFAULT_MIN_EFFECT",
    "METHODS",
    "Change",
    "Comparison",
    "MetricComparison",
    "compare",
    "condition_notes",
    "machine_drift",
]

DEFAULT_ALPHA = 0.05
"""Significance level: the usual 5% false-alarm rate per metric."""

DEFAULT_MIN_EFFECT = 0.05
"""Smallest relative change of the median worth reporting: 5%. Two runs of the same build on a
shared 2-core machine drift by a few percent (frequency, neighbours), so a smaller threshold turns
CI red for nothing; a JIT being switched off changes its metrics by far more. With the default
method the whole interval must clear it, so noise wider than 5% widens the interval instead of
raising false alarms."""

Method = Literal["bootstrap", "processes", "values"]
METHODS: tuple[Method, ...] = ("bootstrap", "processes", "values")
DEFAULT_METHOD: Method = "bootstrap"
"""Two-stage bootstrap interval of the ratio of medians, judged against the minimum effect."""


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
    change_low: float | None = None
    """Lower end of the interval of the relative change (bootstrap method), sign as measured."""
    change_high: float | None = None
    """Upper end of that interval."""


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
    method: Method = DEFAULT_METHOD
    """How significance was decided (see the module's design note)."""

    @property
    def regressions(self) -> list[MetricComparison]:
        """Metrics that got significantly and relevantly worse."""
        return [r for r in self.rows if r.verdict is Change.WORSE]

    @property
    def improvements(self) -> list[MetricComparison]:
        """Metrics that got significantly and relevantly better."""
        return [r for r in self.rows if r.verdict is Change.BETTER]


def _groups(metric: MetricResult) -> list[list[float]]:
    return [list(run.values) for run in metric.runs if run.values]


def machine_drift(base: SuiteResult, new: SuiteResult) -> float | None:
    """How much slower (> 1) or faster (< 1) the machine ran in ``new`` than in ``base``.

    The ratio of the median machine probes of the two runs (``environment.machine_probe_ns``,
    sampled in every worker process); None when either run has no probes.
    """
    medians = []
    for run in (base, new):
        probes = run.environment.get("machine_probe_ns")
        if not isinstance(probes, list) or not probes:
            return None
        medians.append(statistics.median(float(p) for p in probes))
    if medians[0] <= 0 or medians[1] <= 0:
        return None
    return medians[1] / medians[0]


def _speed_dependent(unit: str) -> bool:
    """Times and rates move with the machine's speed; shares, counts and ratios do not."""
    return is_time_unit(unit) or unit == "MIPS" or unit.endswith("/s")


def _min_difference(metric: MetricResult) -> float | None:
    """The metric's absolute minimum difference in its own unit (from its target), if any."""
    target = metric.target
    if target is None or target.min_difference is None:
        return None
    try:
        return convert(target.min_difference, target.unit, metric.unit)
    except ValueError:
        return None


def _relevant_interval(
    low: float, high: float, min_effect: float, drift: float | None, unit: str
) -> bool:
    """Whether a bootstrap ratio interval lies wholly beyond the minimum effect, and, for a time
    or rate metric on a machine that drifted by ``drift``, beyond that drift too."""
    band = 1 + min_effect
    relevant = high < 1 / band or low > band
    if relevant and drift is not None and _speed_dependent(unit):
        # The machine itself ran faster or slower by ``drift``: a time or rate metric must
        # change by more than that (and the minimum effect on top) to be the code's doing.
        wide = band * max(drift, 1 / drift)
        relevant = high < 1 / wide or low > wide
    return relevant


def _rank_test(base: MetricResult, new: MetricResult, method: Method) -> tuple[float, str]:
    """(p-value, test name) of the Mann-Whitney U test on values or per-process medians."""
    # Per-process medians are independent; pooled values are not (see the design note).
    if method == "values":
        result = mann_whitney_u(base.values, new.values)
    else:
        result = mann_whitney_u(
            [statistics.median(g) for g in _groups(base)],
            [statistics.median(g) for g in _groups(new)],
        )
    return result.p_value, f"{result.method} ({'values' if method == 'values' else 'processes'})"


def _why_same(
    significant: bool,
    small: bool,
    within_drift: bool,
    floor: float | None,
    unit: str,
    drift: float | None,
    min_effect: float,
) -> str:
    """Why a metric counts as unchanged, for the report's note."""
    if not significant:
        return "not significant"
    if small:
        return f"below {floor:g} {unit} difference"
    if within_drift:
        assert drift is not None
        return f"within the machine's {max(drift, 1 / drift):.2f}x drift"
    return f"below {min_effect:.0%} effect"


def _compare_metric(
    benchmark: str,
    base: MetricResult,
    new: MetricResult,
    alpha: float,
    min_effect: float,
    method: Method,
    resamples: int,
    seed: int,
    drift: float | None = None,
) -> MetricComparison:
    base_values, new_values = base.values, new.values
    base_median = statistics.median(base_values)
    new_median = statistics.median(new_values)
    direction = base.direction
    change: float | None = None
    ratio: float | None = None
    if base_median != 0:
        change = new_median / base_median - 1
    if base_median > 0 and new_median > 0:
        ratio = (
            base_median / new_median if direction is Direction.LOWER else new_median / base_median
        )
    interval = None
    if method == "bootstrap":
        interval = bootstrap_ratio_ci(
            _groups(base), _groups(new), 1 - alpha, resamples=resamples, seed=seed
        )
    change_low = change_high = None
    if interval is not None:
        p_value, test = interval.p_value, "bootstrap"
        change_low, change_high = interval.low - 1, interval.high - 1
        significant = not interval.low <= 1 <= interval.high
        relevant = _relevant_interval(interval.low, interval.high, min_effect, drift, base.unit)
    else:
        p_value, test = _rank_test(base, new, method)
        significant = p_value < alpha
        relevant = change is not None and abs(change) >= min_effect
        if base_median == 0 and new_median != 0:
            relevant = True
    floor = _min_difference(base)
    small = False
    if floor is not None and significant and relevant:
        # The smallest absolute change the interval allows must reach the metric's floor.
        if interval is not None:
            nearest = min(abs(interval.low - 1), abs(interval.high - 1)) * abs(base_median)
        else:
            nearest = abs(new_median - base_median)
        small = nearest < floor
    within_drift = (
        interval is not None
        and drift is not None
        and _speed_dependent(base.unit)
        and significant
        and not relevant
        and (interval.high < 1 / (1 + min_effect) or interval.low > 1 + min_effect)
    )
    if significant and relevant and not small:
        verdict = Change.BETTER if direction.better(new_median, base_median) else Change.WORSE
        note = ""
    else:
        verdict = Change.SAME
        note = _why_same(significant, small, within_drift, floor, base.unit, drift, min_effect)
    return MetricComparison(
        benchmark,
        base.name,
        base.unit,
        direction,
        base_median,
        new_median,
        change,
        ratio,
        p_value,
        test,
        verdict,
        note,
        change_low,
        change_high,
    )


def compare(
    base: SuiteResult,
    new: SuiteResult,
    *,
    alpha: float = DEFAULT_ALPHA,
    min_effect: float = DEFAULT_MIN_EFFECT,
    method: Method = DEFAULT_METHOD,
    resamples: int = 2000,
    seed: int = 0,
) -> Comparison:
    """Compare every metric of ``new`` against ``base``.

    Args:
        base: the reference run.
        new: the run under test.
        alpha: significance level (the interval is ``1 - alpha``).
        min_effect: smallest relative change that counts.
        method: ``bootstrap`` (default), ``processes`` or ``values``; see the design note.
        resamples: bootstrap resamples per metric.
        seed: seed of the bootstrap, so a comparison is reproducible.

    Raises:
        ValueError: if ``alpha`` is not in (0, 1), ``min_effect`` is negative or ``method`` is
            unknown.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    if min_effect < 0:
        raise ValueError(f"min_effect cannot be negative, got {min_effect}")
    rows: list[MetricComparison] = []
    drift = machine_drift(base, new) if method == "bootstrap" else None
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
                _compare_metric(b.name, m, other, alpha, min_effect, method, resamples, seed, drift)
            )
    for (bench, metric), m in new_metrics.items():
        if (bench, metric) not in seen:
            rows.append(_missing(bench, metric, m.unit, m.direction, "only in new"))
    ratios = [r.ratio for r in rows if r.ratio is not None]
    geomean = math.exp(math.fsum(math.log(r) for r in ratios) / len(ratios)) if ratios else None
    notes = condition_notes(base, new)
    if drift is not None and max(drift, 1 / drift) >= 1 + min_effect:
        how = "slower" if drift > 1 else "faster"
        notes.append(
            f"the machine ran {max(drift, 1 / drift):.2f}x {how} in new than in base (its probe, "
            "a fixed piece of Python timed in every worker): a time or rate metric must change "
            "by more than that to be reported"
        )
    return Comparison(tuple(rows), geomean, alpha, min_effect, tuple(notes), method)


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
    new_descriptions = {b.name: b.description for b in new.benchmarks}
    for b in base.benchmarks:
        other = new_descriptions.get(b.name)
        if other is not None and other != b.description:
            notes.append(f"{b.name} measured differently: {b.description!r} -> {other!r}")
    for name, run, other_run in (("base", base, new), ("new", new, base)):
        for bench, reason in run.skipped.items():
            if bench not in other_run.skipped:
                notes.append(f"{bench} was skipped in {name} only: {reason}")
    note = _duration_note(base, new)
    if note:
        notes.append(note)
    for name, run in (("base", base), ("new", new)):
        load = run.environment.get("load_average")
        cores = _lookup(run.environment, ("cpu", "available_cores"))
        if isinstance(load, list) and load and isinstance(cores, int) and load[0] > cores:
            notes.append(
                f"{name} ran on a busy machine (load {load[0]:g} on {cores} cores): "
                "its figures are inflated and noisy"
            )
    return notes


DURATION_RATIO_NOTE = 1.5
"""Two runs of the same benchmarks with the same options whose wall times differ by this factor
ran on a machine of different speed (load, frequency): every absolute time moves with it."""


def _duration_note(base: SuiteResult, new: SuiteResult) -> str:
    """A note when the same work took much longer in one run than in the other."""
    if base.options.to_dict() | {"seed": 0} != new.options.to_dict() | {"seed": 0}:
        return ""
    if {b.name for b in base.benchmarks} != {b.name for b in new.benchmarks}:
        return ""
    try:
        durations = [
            (
                datetime.fromisoformat(r.finished_at) - datetime.fromisoformat(r.started_at)
            ).total_seconds()
            for r in (base, new)
        ]
    except ValueError:
        return ""
    short, long_ = sorted(durations)
    if short <= 0 or long_ / short < DURATION_RATIO_NOTE:
        return ""
    slower = "new" if durations[1] > durations[0] else "base"
    return (
        f"the same work took {durations[0]:g} s in base and {durations[1]:g} s in new: the "
        f"machine was slower during {slower}, and absolute times moved with it (ratios taken "
        "within one value, such as speed-ups, did not)"
    )


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
