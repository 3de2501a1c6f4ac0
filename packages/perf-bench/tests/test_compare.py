"""Tests of comparing two runs."""

from __future__ import annotations

import math
import random

import pytest

from perf_bench import Change, Direction, compare


def _noisy(centre: float, n: int = 20, seed: int = 0, spread: float = 0.01) -> list[float]:
    rng = random.Random(seed)
    return [centre * (1 + rng.gauss(0, spread)) for _ in range(n)]


class TestCompare:
    """Per-metric verdicts, geometric mean, regressions."""

    def test_same_distribution_is_same(self, make_result):
        """Two samples of the same distribution are not a change."""
        base = make_result({"b": {"t": (_noisy(100, seed=1), "ns", Direction.LOWER, None)}})
        new = make_result({"b": {"t": (_noisy(100, seed=2), "ns", Direction.LOWER, None)}})
        result = compare(base, new)
        (row,) = result.rows
        assert row.verdict is Change.SAME
        assert result.regressions == []
        assert result.geometric_mean == pytest.approx(1, abs=0.02)

    def test_slower_time_is_a_regression(self, make_result):
        """A 30% longer time, clearly outside the noise, is worse."""
        base = make_result({"b": {"t": (_noisy(100, seed=1), "ns", Direction.LOWER, None)}})
        new = make_result({"b": {"t": (_noisy(130, seed=2), "ns", Direction.LOWER, None)}})
        result = compare(base, new)
        (row,) = result.rows
        assert row.verdict is Change.WORSE
        assert row.p_value < 1e-6
        assert row.change == pytest.approx(0.3, abs=0.02)
        assert row.ratio == pytest.approx(1 / 1.3, rel=0.02)
        assert result.regressions == [row]

    def test_direction_decides_better_or_worse(self, make_result):
        """Higher MIPS is better; lower MIPS is worse."""
        base = make_result({"j": {"mips": (_noisy(20, seed=1), "MIPS", Direction.HIGHER, None)}})
        up = make_result({"j": {"mips": (_noisy(30, seed=2), "MIPS", Direction.HIGHER, None)}})
        down = make_result({"j": {"mips": (_noisy(2, seed=3), "MIPS", Direction.HIGHER, None)}})
        assert compare(base, up).rows[0].verdict is Change.BETTER
        assert compare(base, up).rows[0].ratio == pytest.approx(1.5, rel=0.02)
        assert compare(base, down).rows[0].verdict is Change.WORSE

    def test_small_significant_change_is_below_min_effect(self, make_result):
        """A significant 2% change is not reported with the default 5% minimum effect."""
        base = make_result({"b": {"t": (_noisy(100, 40, 1, 0.002), "ns", Direction.LOWER, None)}})
        new = make_result({"b": {"t": (_noisy(102, 40, 2, 0.002), "ns", Direction.LOWER, None)}})
        (row,) = compare(base, new).rows
        assert row.p_value < 0.05
        assert row.verdict is Change.SAME
        assert row.note == "below 5% effect"
        assert compare(base, new, min_effect=0.01).rows[0].verdict is Change.WORSE

    def test_geometric_mean_is_direction_aware(self, make_result):
        """Twice as fast on a time and half the throughput cancel out to 1."""
        base = make_result(
            {
                "a": {"t": ([100.0] * 6, "ns", Direction.LOWER, None)},
                "b": {"r": ([10.0] * 6, "ops/s", Direction.HIGHER, None)},
            }
        )
        new = make_result(
            {
                "a": {"t": ([50.0] * 6, "ns", Direction.LOWER, None)},
                "b": {"r": ([5.0] * 6, "ops/s", Direction.HIGHER, None)},
            }
        )
        result = compare(base, new)
        assert [r.ratio for r in result.rows] == [2.0, 0.5]
        assert result.geometric_mean == pytest.approx(1.0)
        assert math.isclose(result.rows[0].change, -0.5)

    def test_missing_metrics_are_listed(self, make_result):
        """Metrics in only one run are reported as missing, not compared."""
        base = make_result({"a": {"t": ([1.0, 2.0], "ns", Direction.LOWER, None)}})
        new = make_result({"b": {"t": ([1.0, 2.0], "ns", Direction.LOWER, None)}})
        rows = compare(base, new).rows
        assert [(r.benchmark, r.verdict, r.note) for r in rows] == [
            ("a", Change.MISSING, "only in base"),
            ("b", Change.MISSING, "only in new"),
        ]
        assert compare(base, new).geometric_mean is None

    def test_conditions_that_differ_are_noted(self, make_result):
        """Different options, commits and a busy machine are listed as notes."""
        import dataclasses

        base = make_result({"a": {"t": ([1.0, 2.0], "ns", Direction.LOWER, None)}})
        env = {**base.environment, "git": {"commit": "abc", "dirty": False}}
        env["load_average"] = [0.5, 0.5, 0.5]
        new = dataclasses.replace(
            base, environment=env, options=dataclasses.replace(base.options, processes=3)
        )
        notes = compare(base, new).notes
        assert notes == (
            "the runs measured differently: processes 10 -> 3",
            "commit differs: None -> abc",
            "base ran on a busy machine (load 3.5 on 2 cores): its figures are inflated and noisy",
        )

    def test_invalid_parameters(self, make_result):
        """alpha outside (0, 1) and a negative minimum effect are refused."""
        r = make_result({"a": {"t": ([1.0, 2.0], "ns", Direction.LOWER, None)}})
        with pytest.raises(ValueError, match="alpha"):
            compare(r, r, alpha=0)
        with pytest.raises(ValueError, match="min_effect"):
            compare(r, r, min_effect=-0.1)
