"""Tests of targets, verdicts and the target tables."""

from __future__ import annotations

import pytest

from vmkit.perf_bench import Direction, Outcome, Target
from vmkit.perf_bench.suites.python import PYTHON_REFERENCES
from vmkit.perf_bench.suites.vm import VM_TARGETS


class TestTarget:
    """Verdicts from the median's confidence interval."""

    @pytest.mark.parametrize(
        ("ci", "expected"),
        [((80, 95), Outcome.PASS), ((90, 110), Outcome.INCONCLUSIVE), ((101, 120), Outcome.FAIL)],
    )
    def test_lower_is_better(self, ci, expected):
        """At most 100 us: pass below, fail above, inconclusive when the interval straddles."""
        target = Target(100, "us", Direction.LOWER)
        assert target.evaluate(*ci, unit="us") is expected

    @pytest.mark.parametrize(
        ("ci", "expected"),
        [((98.5, 99), Outcome.PASS), ((97, 99), Outcome.INCONCLUSIVE), ((90, 97.9), Outcome.FAIL)],
    )
    def test_higher_is_better(self, ci, expected):
        """At least 98%: pass above, fail below, inconclusive across."""
        target = Target(98, "%", Direction.HIGHER)
        assert target.evaluate(*ci, unit="%") is expected

    def test_time_units_convert(self):
        """A metric in ns is judged against a target in us."""
        target = Target(100, "us", Direction.LOWER)
        assert target.evaluate(50_000, 60_000, unit="ns") is Outcome.PASS
        assert target.evaluate(150_000, 160_000, unit="ns") is Outcome.FAIL

    def test_unconvertible_unit_raises(self):
        """A target in MIPS cannot judge a metric in ns."""
        with pytest.raises(ValueError, match="cannot convert"):
            Target(20, "MIPS", Direction.HIGHER).evaluate(1, 2, unit="ns")

    def test_no_threshold_is_reported(self):
        """A target without threshold is reported, never judged."""
        target = Target(None, "ns", Direction.LOWER, "< 5 ns")
        assert target.evaluate(1e9, 2e9, unit="ns") is Outcome.REPORTED
        assert target.describe() == "reported"
        assert Target(100, "us", Direction.LOWER).describe() == "<= 100 us"

    def test_combine(self):
        """Fail beats inconclusive beats pass beats reported."""
        assert Outcome.combine([Outcome.PASS, Outcome.FAIL]) is Outcome.FAIL
        assert Outcome.combine([Outcome.PASS, Outcome.INCONCLUSIVE]) is Outcome.INCONCLUSIVE
        assert Outcome.combine([Outcome.PASS, Outcome.REPORTED]) is Outcome.PASS
        assert Outcome.combine([Outcome.REPORTED]) is Outcome.REPORTED


class TestTables:
    """The target tables follow ARCHITECTURE.md's target table."""

    def test_vm_targets_match_the_architecture(self):
        """Thresholds, directions and seed figures are those of the architecture's table."""
        jit = VM_TARGETS["JitBenchmark"]
        assert jit["translate_compile_per_block"].threshold == 100
        assert jit["translate_compile_per_block"].unit == "us"
        assert jit["translate_compile_per_block"].reference == "100 us (simulated)"
        assert jit["jit_mips"].direction is Direction.HIGHER
        assert jit["jit_mips"].threshold == 20
        assert jit["jit_speedup"].threshold == 10
        assert VM_TARGETS["SchedulerBenchmark"]["steal_latency"].threshold == 10
        assert VM_TARGETS["SchedulerBenchmark"]["context_switch"].threshold == 1
        assert VM_TARGETS["GcBenchmark"]["gc_pause_max"].unit == "ms"
        assert VM_TARGETS["TlbBenchmark"]["tlb_hit_rate"].threshold == 98
        assert VM_TARGETS["TlbBenchmark"]["tlb_translation"].threshold is None

    def test_tables_are_read_only(self):
        """Nobody can change a target at run time by accident."""
        with pytest.raises(TypeError):
            VM_TARGETS["JitBenchmark"]["jit_mips"] = Target(1, "MIPS", Direction.HIGHER)  # type: ignore[index]

    def test_python_references_cover_the_python_suite(self):
        """Every Python-suite benchmark has a reference figure."""
        from vmkit.perf_bench.suites.python import build_suite

        names = {b.name for b in build_suite().benchmarks}
        assert names == set(PYTHON_REFERENCES)
