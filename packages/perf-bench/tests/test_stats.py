"""Tests of the descriptive statistics and the warnings about untrustworthy values."""

from __future__ import annotations

import math
import random
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmkit.perf_bench import bootstrap_median_ci, cluster_split, mad, percentile, summarize
from vmkit.perf_bench._stats import bootstrap_ratio_ci, spread_warnings

try:
    import scipy.stats as scipy_stats
except ImportError:  # pragma: no cover - scipy is optional
    scipy_stats = None

needs_scipy = pytest.mark.skipif(scipy_stats is None, reason="scipy is not installed")


class TestSummary:
    """summarize() on values with known statistics."""

    def test_known_values(self):
        """The textbook sample 2,4,4,4,5,5,7,9 has mean 5, median 4.5, MAD 0.5."""
        s = summarize([2, 4, 4, 4, 5, 5, 7, 9])
        assert s.n == 8
        assert (s.min, s.max) == (2, 9)
        assert s.mean == 5
        assert s.median == 4.5
        assert s.stdev == pytest.approx(math.sqrt(32 / 7))
        assert s.mad == 0.5
        assert s.ci_low <= s.median <= s.ci_high

    def test_single_value(self):
        """One value has no spread and a degenerate interval."""
        s = summarize([3.0])
        assert (s.stdev, s.mad, s.ci_low, s.ci_high) == (0.0, 0.0, 3.0, 3.0)

    def test_empty_is_an_error(self):
        """There are no statistics of nothing."""
        with pytest.raises(ValueError, match="empty"):
            summarize([])


class TestPercentile:
    """Linear-interpolation percentiles."""

    def test_known_values(self):
        """On 1..10, p95 is 9.55 and p99 is 9.91 (type 7)."""
        values = list(range(1, 11))
        assert percentile(values, 95) == pytest.approx(9.55)
        assert percentile(values, 99) == pytest.approx(9.91)
        assert percentile(values, 50) == 5.5
        assert percentile(values, 0) == 1
        assert percentile(values, 100) == 10

    def test_agrees_with_stdlib_inclusive_quantiles(self):
        """Every whole percentile equals statistics.quantiles(method='inclusive')."""
        rng = random.Random(7)
        values = [rng.lognormvariate(0, 1) for _ in range(37)]
        expected = statistics.quantiles(values, n=100, method="inclusive")
        for q in range(1, 100):
            assert percentile(values, q) == pytest.approx(expected[q - 1])

    def test_out_of_range_is_an_error(self):
        """Percentiles outside 0..100 and of no values are refused."""
        with pytest.raises(ValueError, match="outside"):
            percentile([1.0], 101)
        with pytest.raises(ValueError, match="no values"):
            percentile([], 50)


class TestMad:
    """Median absolute deviation."""

    def test_known_value(self):
        """1,1,2,2,4,6,9 has median 2 and MAD 1."""
        assert mad([1, 1, 2, 2, 4, 6, 9]) == 1

    @needs_scipy
    def test_agrees_with_scipy(self):
        """MAD equals scipy's median_abs_deviation with scale 1."""
        rng = random.Random(3)
        for size in (2, 5, 10, 51):
            values = [rng.gauss(100, 5) for _ in range(size)]
            assert mad(values) == pytest.approx(scipy_stats.median_abs_deviation(values))


class TestBootstrap:
    """The bootstrap confidence interval of the median."""

    def test_seeded_and_reproducible(self):
        """The same seed gives the same interval."""
        values = [random.Random(1).gauss(10, 1) for _ in range(20)]
        assert bootstrap_median_ci(values, seed=5) == bootstrap_median_ci(values, seed=5)

    def test_constant_values_give_a_point(self):
        """Without spread the interval is the value itself."""
        assert bootstrap_median_ci([4.0] * 10) == (4.0, 4.0)

    def test_wider_confidence_contains_narrower(self):
        """With the same resamples, the 99% interval contains the 80% interval."""
        rng = random.Random(2)
        values = [rng.expovariate(1) for _ in range(25)]
        low80, high80 = bootstrap_median_ci(values, 0.80, seed=3)
        low99, high99 = bootstrap_median_ci(values, 0.99, seed=3)
        assert low99 <= low80 < high80 <= high99

    def test_coverage_of_the_true_median(self):
        """Over many normal samples, the 95% interval holds the true median most of the time."""
        rng = random.Random(11)
        trials, hits = 120, 0
        for trial in range(trials):
            sample = [rng.gauss(0, 1) for _ in range(31)]
            low, high = bootstrap_median_ci(sample, 0.95, resamples=400, seed=trial)
            hits += low <= 0 <= high
        assert 0.85 <= hits / trials <= 1.0

    def test_two_stage_interval_is_wider_when_processes_differ(self):
        """Processes with different levels widen the interval; resampling values alone hides it."""
        rng = random.Random(6)
        groups = [[level + rng.gauss(0, 0.1) for _ in range(5)] for level in (10, 11, 12, 13, 14)]
        pooled = [v for g in groups for v in g]
        flat = bootstrap_median_ci(pooled, seed=1)
        nested = bootstrap_median_ci(pooled, seed=1, groups=groups)
        assert nested[1] - nested[0] > 1.5 * (flat[1] - flat[0])
        assert nested[0] <= statistics.median(pooled) <= nested[1]

    def test_two_stage_interval_matches_when_processes_agree(self):
        """Groups drawn from one distribution give an interval close to the flat one."""
        rng = random.Random(9)
        groups = [[rng.gauss(100, 1) for _ in range(10)] for _ in range(10)]
        pooled = [v for g in groups for v in g]
        flat = bootstrap_median_ci(pooled, seed=2)
        nested = bootstrap_median_ci(pooled, seed=2, groups=groups)
        assert nested[1] - nested[0] == pytest.approx(flat[1] - flat[0], rel=0.5)

    def test_invalid_confidence(self):
        """Confidence outside (0, 1) is refused."""
        with pytest.raises(ValueError, match="between 0 and 1"):
            bootstrap_median_ci([1, 2], confidence=1.0)


class TestWarnings:
    """Cluster and spread checks."""

    def test_two_clusters_are_found(self):
        """Two tight groups far apart split at the gap."""
        values = [10, 10.1, 10.2, 10.3, 20, 20.1, 20.2, 20.3]
        split = cluster_split(values)
        assert split is not None
        assert split[0] == [10, 10.1, 10.2, 10.3]
        warnings = spread_warnings(values)
        assert any("two clusters: 4 around 10.15 and 4 around 20.15" in w for w in warnings)

    def test_normal_noise_is_one_cluster(self):
        """Gaussian noise is not reported as clusters."""
        rng = random.Random(5)
        for _ in range(20):
            assert cluster_split([rng.gauss(100, 2) for _ in range(50)]) is None

    def test_clock_quantisation_is_not_a_cluster(self):
        """Values one tick apart (1% of the median) are not two clusters."""
        assert cluster_split([100.0] * 5 + [101.0] * 5) is None

    def test_single_outlier_is_not_a_cluster(self):
        """One far value is an outlier, not a second mode."""
        assert cluster_split([10.0] * 9 + [50.0]) is None

    def test_spread_warning(self):
        """A relative spread above 10% is flagged; a tight one is not."""
        assert spread_warnings([100, 101, 99, 100, 100.5]) == []
        wide = spread_warnings([50, 100, 150, 80, 120, 60, 140])
        assert wide == [
            "unstable: stdev 39% of the mean, scaled MAD 59% of the median (limit 10%): "
            "busy machine or noisy benchmark"
        ]

    def test_robust_spread_alone_is_flagged(self):
        """A wide core with tame extremes trips the MAD check even if stdev stays under 10%."""
        values = [91.0] * 4 + [100.0] + [109.0] * 4
        warnings = spread_warnings(values)
        assert len(warnings) == 1
        assert "stdev 9% of the mean, scaled MAD 13% of the median" in warnings[0]


class TestInvariants:
    """Properties every summary satisfies."""

    @given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=40))
    @settings(max_examples=80, deadline=None)
    def test_order_of_figures(self, values):
        """min <= CI <= max, min <= median <= p95 <= p99 <= max, spreads non-negative."""
        s = summarize(values, resamples=200)
        assert s.min <= s.ci_low <= s.ci_high <= s.max
        assert s.min <= s.median <= s.max
        assert s.median <= s.p95 + 1e-9
        assert s.p95 <= s.p99 + 1e-9
        assert s.p99 <= s.max + 1e-9
        assert s.stdev >= 0
        assert s.mad >= 0


class TestBootstrapRatio:
    """The two-stage interval of a ratio of medians."""

    def test_identical_runs_give_an_interval_around_one(self):
        """Comparing a run with itself: the interval contains 1 and p is large."""
        groups = [[10.0, 10.5, 9.8], [11.0, 10.9, 11.2], [9.5, 9.9, 10.1]]
        interval = bootstrap_ratio_ci(groups, groups)
        assert interval is not None
        assert interval.low <= 1 <= interval.high
        assert interval.p_value > 0.5

    def test_disjoint_runs_give_the_smallest_p(self):
        """Every resampled ratio above 1: p is the bootstrap's resolution, 1 / resamples."""
        interval = bootstrap_ratio_ci(
            [[1.0, 1.1], [0.9, 1.0]], [[2.0, 2.1], [1.9, 2.2]], resamples=500
        )
        assert interval is not None
        assert interval.low > 1.5
        assert interval.p_value == 1 / 500

    def test_non_positive_medians_give_no_ratio(self):
        """A ratio to a zero median means nothing: None."""
        assert bootstrap_ratio_ci([[0.0, 0.0]], [[1.0, 2.0]]) is None

    def test_empty_or_bad_confidence_is_refused(self):
        """No values, or a confidence outside (0, 1), is a ValueError."""
        with pytest.raises(ValueError, match="both runs"):
            bootstrap_ratio_ci([], [[1.0]])
        with pytest.raises(ValueError, match="confidence"):
            bootstrap_ratio_ci([[1.0]], [[1.0]], confidence=1.0)
