"""The measurement functions return well-formed numbers (no speed is asserted here)."""

from __future__ import annotations

import math

import pytest

from vmkit.coroutine_scheduler.measure import (
    Measurement,
    compare_with_asyncio,
    measure_asyncio_switch,
    measure_imbalance,
    measure_steal,
    measure_switch,
    run_suite,
)


class TestMeasurements:
    @pytest.mark.parametrize(
        "kwargs",
        [
            {},
            {"kind": "async"},
            {"statistics_on": False},
            {"backend": "threads", "vcpus": 2},
        ],
    )
    def test_switch_samples_are_positive_and_counted(self, kwargs: dict[str, object]) -> None:
        """measure_switch returns one positive sample per repeat."""
        m = measure_switch(switches=2_000, repeats=3, **kwargs)  # type: ignore[arg-type]
        assert isinstance(m, Measurement)
        assert len(m.samples) == 3
        assert m.minimum > 0
        assert m.minimum <= m.median <= m.maximum

    def test_asyncio_and_steal_samples(self) -> None:
        """The asyncio reference and the steal measurement return positive samples."""
        assert measure_asyncio_switch(switches=2_000, repeats=2).median > 0
        steal = measure_steal(queue_length=16, repeats=11)
        assert len(steal.samples) == 11
        assert steal.minimum > 0

    def test_interleaved_comparison_gives_one_sample_per_round_for_each(self) -> None:
        """compare_with_asyncio returns three measurements with ``repeats`` samples each."""
        measurements = compare_with_asyncio(switches=2_000, repeats=4)
        assert [len(m.samples) for m in measurements] == [4, 4, 4]
        assert all(m.minimum > 0 for m in measurements)
        assert "asyncio" in measurements[2].name

    def test_imbalance_without_stealing_matches_the_closed_form(self) -> None:
        """All work on vCPU 0 of 4 with stealing off gives CV = sqrt(3) and max/mean = 4."""
        imb = measure_imbalance(skew=1.0, slices=3, coroutines=8, work_stealing=False)
        assert imb.cv == pytest.approx(math.sqrt(3))
        assert imb.max_over_mean == pytest.approx(4.0)

    def test_suite_reports_every_number(self) -> None:
        """run_suite(quick=True) returns every named number, all finite and positive or zero."""
        numbers = run_suite(quick=True)
        assert {
            "switch_inline_generator_ns",
            "switch_asyncio_ns",
            "steal_batch_ns",
            "cv_uniform",
            "cv_skewed",
        } <= set(numbers)
        assert all(math.isfinite(v) and v >= 0 for v in numbers.values())
