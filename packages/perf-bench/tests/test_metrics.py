"""Tests of Metrics: derived throughput and latency, and validation."""

from __future__ import annotations

import pytest

from vmkit.perf_bench import Direction, Metrics


class TestMetrics:
    """A single observation of a metric."""

    def test_timing_is_latency_per_operation(self):
        """timing() divides the elapsed time by the operations and converts the unit."""
        m = Metrics.timing("lookup", elapsed_ns=50_000, operations=1000, unit="ns")
        assert m.value == 50.0
        assert m.direction is Direction.LOWER
        assert m.latency_ns == 50.0
        assert m.throughput == pytest.approx(2e7)
        assert Metrics.timing("t", 3_000_000, 3, unit="ms").value == pytest.approx(1.0)

    def test_rate_is_throughput(self):
        """rate() divides a count by seconds, scaled, and higher is better."""
        m = Metrics.rate("mips", 40_000_000, elapsed_ns=2_000_000_000, unit="MIPS", scale=1e6)
        assert m.value == 20.0
        assert m.direction is Direction.HIGHER
        assert m.throughput == pytest.approx(2e7)

    def test_custom_metric_has_no_derived_figures(self):
        """A metric without operations and time has no throughput or latency."""
        m = Metrics("hit_rate", 99.1, "%", Direction.HIGHER)
        assert m.throughput is None
        assert m.latency_ns is None

    @pytest.mark.parametrize(
        ("build", "message"),
        [
            (lambda: Metrics("", 1, "ns"), "non-empty name"),
            (lambda: Metrics("x", float("nan"), "ns"), "non-finite"),
            (lambda: Metrics.timing("x", 10, 0), "operations must be positive"),
            (lambda: Metrics.timing("x", 10, 1, unit="MIPS"), "not a time unit"),
            (lambda: Metrics.rate("x", 10, 0), "elapsed time must be positive"),
        ],
    )
    def test_invalid_observations_are_rejected(self, build, message):
        """Impossible observations raise ValueError naming the problem."""
        with pytest.raises(ValueError, match=message):
            build()

    def test_direction_better(self):
        """better() respects the direction."""
        assert Direction.LOWER.better(1, 2)
        assert not Direction.LOWER.better(2, 1)
        assert Direction.HIGHER.better(2, 1)
