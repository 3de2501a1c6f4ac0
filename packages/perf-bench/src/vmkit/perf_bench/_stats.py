"""Descriptive statistics for benchmark values, and the checks that flag untrustworthy ones.

Design note: benchmark values on a shared machine are skewed (the floor is the true cost, the tail
is interference), so the headline figure is the median with a bootstrap confidence interval, not
the mean with a normal-theory interval. The mean and standard deviation are still reported because
readers expect them and because a large gap between mean and median is itself a signal.

The interval respects the structure of a run: values come in groups, one per worker process, and
the bootstrap resamples processes first, then values within them (a two-stage bootstrap).

Everything here is pure and deterministic: the bootstrap takes an explicit seed, so the same values
always give the same interval (results files are reproducible and tests can pin numbers).
Percentiles use linear interpolation between order statistics (numpy's default, Hyndman-Fan type 7)
so they can be checked against numpy or scipy where those are installed.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "CLUSTER_GAP_FACTOR",
    "CLUSTER_MIN_RELATIVE_GAP",
    "SPREAD_THRESHOLD",
    "RatioInterval",
    "Summary",
    "bootstrap_median_ci",
    "bootstrap_ratio_ci",
    "cluster_split",
    "mad",
    "percentile",
    "spread_warnings",
    "summarize",
]

SPREAD_THRESHOLD = 0.10
"""Relative spread above which values are flagged as unstable.

10% matches pyperf's warning on stdev/mean: beyond it, differences of a few percent between runs
are lost in the noise. The robust check uses MAD scaled by 1.4826 (which estimates the standard
deviation for normal data), so both checks speak about the same quantity.
"""

CLUSTER_GAP_FACTOR = 3.0
"""A gap between sorted values counts as a split when it is this many times wider than the spread
inside either side. Three keeps ordinary noise (whose largest gap is comparable to the spread
around it) from being mistaken for two modes."""

CLUSTER_MIN_RELATIVE_GAP = 0.02
"""...and when the gap is at least 2% of the median, so timer quantisation (values that differ by
one clock tick) is not reported as two clusters."""

MAD_TO_STDEV = 1.4826
"""Scale factor making the MAD a consistent estimator of the standard deviation of normal data."""


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation between order statistics.

    Raises:
        ValueError: if ``values`` is empty or ``q`` is outside 0..100.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    fraction = position - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def mad(values: Sequence[float]) -> float:
    """Median absolute deviation from the median (unscaled).

    Raises:
        ValueError: if ``values`` is empty.
    """
    if not values:
        raise ValueError("MAD of no values")
    centre = statistics.median(values)
    return statistics.median(abs(v - centre) for v in values)


def bootstrap_median_ci(
    values: Sequence[float],
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
    groups: Sequence[Sequence[float]] | None = None,
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the median.

    With ``groups`` (the values of each worker process, pooled they are ``values``) and more
    than one of them, the bootstrap is two-stage: each resample draws processes with replacement,
    then values with replacement within each drawn process. Values of one process share that
    process's draw (hash seed, memory layout), so they are not independent; resampling them as if
    they were gives an interval too narrow whenever processes differ. With few processes the
    two-stage interval is wide, which is the honest answer.

    2000 resamples put the Monte-Carlo error of a 95% interval's end points well below the spread
    of benchmark values while costing a few milliseconds for typical sample sizes.

    Raises:
        ValueError: if ``values`` is empty, or ``confidence`` is not in (0, 1).
    """
    if not values:
        raise ValueError("confidence interval of no values")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence {confidence} must be between 0 and 1")
    if len(values) == 1:
        return (values[0], values[0])
    rng = random.Random(seed)
    clusters = [list(g) for g in groups or () if g]

    def resample() -> list[float]:
        if len(clusters) > 1:
            pooled: list[float] = []
            for cluster in rng.choices(clusters, k=len(clusters)):
                pooled.extend(rng.choices(cluster, k=len(cluster)))
            return pooled
        return rng.choices(data, k=len(data))

    data = list(values)
    medians = sorted(statistics.median(resample()) for _ in range(resamples))
    tail = (1 - confidence) / 2 * 100
    return (percentile(medians, tail), percentile(medians, 100 - tail))


def _two_stage(rng: random.Random, clusters: list[list[float]]) -> list[float]:
    """One two-stage resample: processes with replacement, then values within each."""
    if len(clusters) == 1:
        only = clusters[0]
        return rng.choices(only, k=len(only))
    pooled: list[float] = []
    for cluster in rng.choices(clusters, k=len(clusters)):
        pooled.extend(rng.choices(cluster, k=len(cluster)))
    return pooled


@dataclass(frozen=True, slots=True)
class RatioInterval:
    """Bootstrap interval of ``median(new) / median(base)`` and the p-value of "no change"."""

    low: float
    high: float
    p_value: float
    """Two-sided: twice the smaller share of resampled ratios on either side of 1 (at least
    ``1 / resamples``, the resolution of the bootstrap)."""


def bootstrap_ratio_ci(
    base_groups: Sequence[Sequence[float]],
    new_groups: Sequence[Sequence[float]],
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> RatioInterval | None:
    """Two-stage (hierarchical) bootstrap interval of the ratio of medians, new over base.

    Each run is resampled as a run was measured: worker processes with replacement, then values
    with replacement within each drawn process, independently for the two runs; the ratio of the
    two medians is taken per resample and the interval is the percentile interval of those
    ratios. Processes, not values, are the independent units, so the interval is as wide as the
    variation between processes makes it. Returns ``None`` when a resampled median is not
    positive (a ratio means nothing there).

    Raises:
        ValueError: if a run has no values, or ``confidence`` is not in (0, 1).
    """
    base = [list(g) for g in base_groups if g]
    new = [list(g) for g in new_groups if g]
    if not base or not new:
        raise ValueError("a ratio interval needs values in both runs")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence {confidence} must be between 0 and 1")
    rng = random.Random(seed)
    logs: list[float] = []
    for _ in range(resamples):
        b = statistics.median(_two_stage(rng, base))
        n = statistics.median(_two_stage(rng, new))
        if b <= 0 or n <= 0:
            return None
        logs.append(math.log(n / b))
    logs.sort()
    tail = (1 - confidence) / 2 * 100
    below = sum(1 for v in logs if v <= 0)
    above = sum(1 for v in logs if v >= 0)
    p = min(1.0, max(2 * min(below, above), 1) / resamples)
    return RatioInterval(
        math.exp(percentile(logs, tail)), math.exp(percentile(logs, 100 - tail)), p
    )


def cluster_split(values: Sequence[float]) -> tuple[list[float], list[float]] | None:
    """Split values into two clusters at the widest gap, if the gap is clearly not noise.

    The widest gap between consecutive sorted values separates a lower and an upper group. It is a
    split when each side holds at least two values (and at least 10% of them), the gap is
    ``CLUSTER_GAP_FACTOR`` times wider than the range inside either side, and at least
    ``CLUSTER_MIN_RELATIVE_GAP`` of the median. Returns ``(lower, upper)`` or ``None``.
    """
    n = len(values)
    if n < 4:
        return None
    ordered = sorted(values)
    gaps = [(ordered[i + 1] - ordered[i], i) for i in range(n - 1)]
    gap, index = max(gaps)
    lower, upper = ordered[: index + 1], ordered[index + 1 :]
    minimum_side = max(2, math.ceil(0.1 * n))
    if len(lower) < minimum_side or len(upper) < minimum_side:
        return None
    inner = max(lower[-1] - lower[0], upper[-1] - upper[0])
    centre = abs(statistics.median(ordered))
    if gap <= CLUSTER_GAP_FACTOR * inner:
        return None
    if centre > 0 and gap < CLUSTER_MIN_RELATIVE_GAP * centre:
        return None
    return lower, upper


def spread_warnings(values: Sequence[float]) -> list[str]:
    """Warnings about values too spread out or split into clusters to be trusted as one figure."""
    warnings: list[str] = []
    if len(values) < 2:
        return warnings
    centre = statistics.median(values)
    mean = statistics.fmean(values)
    relative_stdev = statistics.stdev(values) / abs(mean) if mean != 0 else 0.0
    relative_mad = MAD_TO_STDEV * mad(values) / abs(centre) if centre != 0 else 0.0
    if max(relative_stdev, relative_mad) > SPREAD_THRESHOLD:
        warnings.append(
            f"unstable: stdev {relative_stdev:.0%} of the mean, scaled MAD "
            f"{relative_mad:.0%} of the median (limit {SPREAD_THRESHOLD:.0%}): "
            "busy machine or noisy benchmark"
        )
    split = cluster_split(values)
    if split is not None:
        lower, upper = split
        warnings.append(
            f"values form two clusters: {len(lower)} around {statistics.median(lower):.4g} "
            f"and {len(upper)} around {statistics.median(upper):.4g}; "
            "look for frequency scaling, other load or a bimodal code path"
        )
    return warnings


@dataclass(frozen=True, slots=True)
class Summary:
    """Descriptive statistics of one metric's values."""

    n: int
    min: float
    max: float
    median: float
    mean: float
    stdev: float
    mad: float
    p95: float
    p99: float
    ci_low: float
    ci_high: float
    confidence: float


def summarize(
    values: Sequence[float],
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
    groups: Sequence[Sequence[float]] | None = None,
) -> Summary:
    """Summarise ``values``: location, spread, tail percentiles and the median's interval.

    ``groups`` (values per worker process) makes the interval a two-stage bootstrap; see
    ``bootstrap_median_ci``.

    Raises:
        ValueError: if ``values`` is empty.
    """
    if not values:
        raise ValueError("cannot summarise an empty list of values")
    ci_low, ci_high = bootstrap_median_ci(values, confidence, resamples, seed, groups)
    return Summary(
        n=len(values),
        min=min(values),
        max=max(values),
        median=statistics.median(values),
        mean=statistics.fmean(values),
        stdev=statistics.stdev(values) if len(values) > 1 else 0.0,
        mad=mad(values),
        p95=percentile(values, 95),
        p99=percentile(values, 99),
        ci_low=ci_low,
        ci_high=ci_high,
        confidence=confidence,
    )
