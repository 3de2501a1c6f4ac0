"""The Mann-Whitney U test (Wilcoxon rank-sum), two-sided, without scipy.

Design note: benchmark values are skewed and often tied (timer resolution), so comparisons use a
rank test rather than a t-test. The U statistic is computed from mid-ranks. Without ties and for
small samples the p-value is exact, from the null distribution of U counted with the recurrence
``c(m, n, u) = c(m-1, n, u-n) + c(m, n-1, u)`` (each count is the number of arrangements of the two
samples with that U). Otherwise the normal approximation is used, with the tie-corrected variance
and a continuity correction of 0.5, as in the textbooks and in ``scipy.stats.mannwhitneyu``.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["EXACT_MAX_PRODUCT", "MannWhitneyResult", "mann_whitney_u", "rankdata"]

EXACT_MAX_PRODUCT = 400
"""Largest ``len(x) * len(y)`` for which ``method='auto'`` computes the exact distribution.

Up to 20 values against 20 the exact counts cost well under a millisecond; beyond that the normal
approximation is accurate to the third decimal of the p-value, which is all a verdict needs."""


@dataclass(frozen=True, slots=True)
class MannWhitneyResult:
    """Outcome of a two-sided Mann-Whitney U test."""

    u: float
    """U statistic of the first sample: how many (x, y) pairs have x > y (ties count one half)."""
    p_value: float
    method: Literal["exact", "normal"]


def rankdata(values: Sequence[float]) -> list[float]:
    """Ranks from 1, ties sharing the mean of the ranks they span."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        shared = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[order[k]] = shared
        i = j + 1
    return ranks


@functools.lru_cache(maxsize=256)
def _u_counts(m: int, n: int) -> tuple[int, ...]:
    """Number of arrangements giving each U = 0..m*n, for samples of sizes m and n."""
    if m == 0 or n == 0:
        return (1,)
    counts = [0] * (m * n + 1)
    # The largest of all m+n values is either in the first sample (it beats all n others: U - n
    # from the rest) or in the second (it adds nothing to U).
    for u, c in enumerate(_u_counts(m - 1, n)):
        counts[u + n] += c
    for u, c in enumerate(_u_counts(m, n - 1)):
        counts[u] += c
    return tuple(counts)


def _normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


def mann_whitney_u(
    x: Sequence[float],
    y: Sequence[float],
    method: Literal["auto", "exact", "normal"] = "auto",
) -> MannWhitneyResult:
    """Two-sided Mann-Whitney U test of whether ``x`` and ``y`` come from the same distribution.

    Args:
        x: first sample.
        y: second sample.
        method: ``exact`` (only without ties), ``normal`` (tie-corrected approximation with
            continuity correction) or ``auto`` (exact when there are no ties and
            ``len(x) * len(y) <= EXACT_MAX_PRODUCT``).

    Raises:
        ValueError: if a sample is empty, or ``exact`` is asked for tied values.
    """
    m, n = len(x), len(y)
    if m == 0 or n == 0:
        raise ValueError("Mann-Whitney U needs at least one value in each sample")
    pooled = [*x, *y]
    ranks = rankdata(pooled)
    u1 = sum(ranks[:m]) - m * (m + 1) / 2
    tie_sizes = [t for t in Counter(pooled).values() if t > 1]
    if method == "auto":
        method = "exact" if not tie_sizes and m * n <= EXACT_MAX_PRODUCT else "normal"
    if method == "exact":
        if tie_sizes:
            raise ValueError("the exact Mann-Whitney distribution does not hold with tied values")
        counts = _u_counts(m, n)
        total = sum(counts)
        u_big = max(u1, m * n - u1)
        upper_tail = sum(counts[int(u_big) :])
        p = min(1.0, 2 * upper_tail / total)
        return MannWhitneyResult(u1, p, "exact")
    size = m + n
    tie_term = sum(t**3 - t for t in tie_sizes) / (size * (size - 1)) if size > 1 else 0.0
    variance = m * n / 12 * ((size + 1) - tie_term)
    if variance <= 0:
        # Every value is identical: nothing distinguishes the samples.
        return MannWhitneyResult(u1, 1.0, "normal")
    z = (abs(u1 - m * n / 2) - 0.5) / math.sqrt(variance)
    p = min(1.0, 2 * _normal_sf(z))
    return MannWhitneyResult(u1, p, "normal")
