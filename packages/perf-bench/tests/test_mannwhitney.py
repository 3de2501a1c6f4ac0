"""Tests of the Mann-Whitney U test against hand-computed values and, if installed, scipy."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from vmkit.perf_bench import mann_whitney_u
from vmkit.perf_bench._mannwhitney import rankdata

try:
    import scipy.stats as scipy_stats
except ImportError:  # pragma: no cover - scipy is optional
    scipy_stats = None

needs_scipy = pytest.mark.skipif(scipy_stats is None, reason="scipy is not installed")


class TestRanks:
    """Mid-ranks."""

    def test_ties_share_the_mean_rank(self):
        """Tied values get the mean of the ranks they span."""
        assert rankdata([10, 20, 20, 30]) == [1, 2.5, 2.5, 4]
        assert rankdata([3, 1, 2]) == [3, 1, 2]


class TestMannWhitney:
    """The two-sided Mann-Whitney U test."""

    def test_identical_samples_are_not_significant(self):
        """A sample compared with itself has U = mn/2 and p = 1."""
        x = [float(v) for v in range(1, 11)]
        result = mann_whitney_u(x, list(x))
        assert result.u == 50
        assert result.p_value == 1.0

    def test_clearly_shifted_samples_are_significant(self):
        """Disjoint samples of 10 have U = 0 and exact p = 2 / C(20, 10)."""
        result = mann_whitney_u(list(range(10)), list(range(20, 30)))
        assert result.method == "exact"
        assert result.u == 0
        assert result.p_value == pytest.approx(2 / math.comb(20, 10))

    def test_smallest_samples_cannot_reach_five_percent(self):
        """Three against three, fully separated, gives exactly p = 0.1."""
        result = mann_whitney_u([1, 2, 3], [4, 5, 6])
        assert result.p_value == pytest.approx(0.1)

    def test_u_counts_pairs(self):
        """U is the number of pairs where x beats y, ties counting one half."""
        assert mann_whitney_u([1, 5], [2, 3, 4]).u == 3
        assert mann_whitney_u([2, 5], [2, 3], method="normal").u == 2.5

    def test_noisy_shift_is_detected_with_ties(self):
        """Rounded noisy samples with a 10% shift are significant by the normal method."""
        rng = random.Random(4)
        base = [round(rng.gauss(100, 3)) for _ in range(40)]
        new = [round(rng.gauss(110, 3)) for _ in range(40)]
        result = mann_whitney_u(base, new)
        assert result.method == "normal"
        assert result.p_value < 1e-6

    def test_same_distribution_is_usually_not_significant(self):
        """Under the null hypothesis about 5% of tests fall below 0.05 (seeded)."""
        rng = random.Random(8)
        rejections = 0
        for _ in range(200):
            x = [rng.gauss(0, 1) for _ in range(12)]
            y = [rng.gauss(0, 1) for _ in range(12)]
            rejections += mann_whitney_u(x, y).p_value < 0.05
        assert rejections / 200 < 0.10

    def test_exact_with_ties_and_empty_samples_are_errors(self):
        """Invalid requests raise ValueError."""
        with pytest.raises(ValueError, match="tied"):
            mann_whitney_u([1, 2], [2, 3], method="exact")
        with pytest.raises(ValueError, match="at least one value"):
            mann_whitney_u([], [1.0])

    @given(
        st.lists(st.integers(0, 20), min_size=1, max_size=15),
        st.lists(st.integers(0, 20), min_size=1, max_size=15),
    )
    @settings(max_examples=60, deadline=None)
    def test_symmetry(self, x, y):
        """Swapping the samples keeps p and turns U into mn - U."""
        a, b = mann_whitney_u(x, y), mann_whitney_u(y, x)
        assert a.p_value == pytest.approx(b.p_value)
        assert a.u + b.u == len(x) * len(y)

    @needs_scipy
    @given(
        st.lists(st.integers(0, 25), min_size=1, max_size=20),
        st.lists(st.integers(0, 25), min_size=1, max_size=20),
    )
    @example([0], [0])  # every value identical: the zero-variance case, always checked
    @settings(max_examples=80, deadline=None)
    def test_normal_method_agrees_with_scipy(self, x, y):
        """With ties, U and p equal scipy's asymptotic method with continuity correction."""
        ours = mann_whitney_u(x, y, method="normal")
        theirs = scipy_stats.mannwhitneyu(x, y, method="asymptotic")
        assert ours.u == pytest.approx(theirs.statistic)
        if math.isnan(theirs.pvalue):
            # Every value identical: zero variance, where scipy answers NaN (0/0) and we answer
            # "no difference" (p = 1) by design.
            assert len(set(x) | set(y)) == 1
            assert ours.p_value == 1.0
        else:
            assert ours.p_value == pytest.approx(theirs.pvalue, abs=1e-12)

    @needs_scipy
    @given(
        st.lists(st.floats(0, 1), min_size=1, max_size=12, unique=True),
        st.lists(st.floats(0, 1), min_size=1, max_size=12, unique=True),
    )
    @settings(max_examples=80, deadline=None)
    def test_exact_method_agrees_with_scipy(self, x, y):
        """Without ties, the exact p equals scipy's exact method."""
        assume(not set(x) & set(y))
        ours = mann_whitney_u(x, y, method="exact")
        theirs = scipy_stats.mannwhitneyu(x, y, method="exact")
        assert ours.p_value == pytest.approx(theirs.pvalue, abs=1e-12)
