"""Tests of Timer and the unit helpers."""

from __future__ import annotations

import pytest

from vmkit.perf_bench import Timer
from vmkit.perf_bench._units import convert, convert_time, format_value, readable_unit


class TestTimer:
    """Timer on a fake clock."""

    def test_context_manager_measures_interval(self, fake_clock):
        """The interval between entering and leaving the block is the clock's advance."""
        timer = Timer(fake_clock)
        with timer as t:
            fake_clock.advance(1_500)
        assert t is timer
        assert timer.ns == 1_500
        assert timer.us == 1.5
        assert timer.ms == 0.0015
        assert timer.s == 1.5e-6
        assert timer.elapsed("us") == 1.5

    def test_decorator_accumulates_calls(self, fake_clock):
        """Each call of a decorated function adds its duration to the total."""
        timer = Timer(fake_clock)

        @timer
        def work(ns: int) -> int:
            fake_clock.advance(ns)
            return ns * 2

        assert work(10) == 20
        assert work(30) == 60
        assert timer.calls == 2
        assert timer.total_ns == 40
        assert timer.elapsed_ns == 30

    def test_decorator_times_raising_call(self, fake_clock):
        """A call that raises is still timed and the timer is left stopped."""
        timer = Timer(fake_clock)

        @timer
        def boom() -> None:
            fake_clock.advance(7)
            raise ValueError("x")

        with pytest.raises(ValueError, match="x"):
            boom()
        assert timer.elapsed_ns == 7
        assert not timer.running

    def test_decorator_times_recursive_calls(self, fake_clock):
        """Recursive calls each get their own interval."""
        timer = Timer(fake_clock)

        @timer
        def countdown(n: int) -> int:
            fake_clock.advance(1)
            return 0 if n == 0 else 1 + countdown(n - 1)

        assert countdown(3) == 3
        assert timer.calls == 4
        assert timer.elapsed_ns == 4  # the outermost call closes last
        assert timer.total_ns == 1 + 2 + 3 + 4

    def test_double_start_and_stop_without_start_raise(self, fake_clock):
        """Misuse of start/stop is an error, not a silent wrong number."""
        timer = Timer(fake_clock)
        with pytest.raises(RuntimeError, match="not started"):
            timer.stop()
        timer.start()
        with pytest.raises(RuntimeError, match="already running"):
            timer.start()

    def test_default_clock_is_monotonic(self):
        """With the real clock, an interval is never negative."""
        with Timer() as t:
            pass
        assert t.ns >= 0


class TestUnits:
    """Conversions and formatting of units."""

    def test_time_conversions(self):
        """ns, us, ms and s convert by powers of 1000."""
        assert convert_time(1, "s", "ns") == 1e9
        assert convert_time(2500, "ns", "us") == 2.5
        assert convert(3, "ms", "us") == 3000
        assert convert(5, "MIPS", "MIPS") == 5

    def test_incompatible_units_raise(self):
        """Converting between unrelated units is refused with both names in the message."""
        with pytest.raises(ValueError, match=r"'%'.*'ns'"):
            convert(1, "%", "ns")
        with pytest.raises(ValueError, match="unknown time unit"):
            convert_time(1, "min", "s")

    def test_format_picks_readable_time_unit(self):
        """Times are printed in the unit that keeps the number between 1 and 1000."""
        assert readable_unit(1500, "ns") == "us"
        assert format_value(1500, "ns") == "1.5 us"
        assert format_value(0.25, "s") == "250 ms"
        assert format_value(12.5, "ns") == "12.5 ns"
        assert format_value(98.5, "%") == "98.5 %"
        assert format_value(1500, "ns", "ns") == "1500 ns"
