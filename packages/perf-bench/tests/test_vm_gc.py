"""Tests of GcBenchmark: pauses recorded through gc.callbacks, agreeing with gc's own counts."""

from __future__ import annotations

import gc
import os
import time

import pytest

from vmkit.perf_bench import RunContext
from vmkit.perf_bench.suites._vm_engines import DISABLE_JIT_ENV
from vmkit.perf_bench.suites._vm_gc import GC_ENGINE_ENV, GcBenchmark, GcRecorder, gc_engine


def _collections() -> int:
    return sum(s["collections"] for s in gc.get_stats())


class TestGcRecorder:
    """The recorder sees every collection, and only while installed."""

    def test_explicit_collections_are_recorded(self):
        """Three explicit collections give three pauses of the asked generations."""
        with GcRecorder() as recorder:
            gc.collect(0)
            gc.collect(1)
            gc.collect(2)
        assert recorder.generations[-3:] == [0, 1, 2]
        assert all(p >= 0 for p in recorder.pauses_ns)
        gc.collect()
        assert len(recorder.pauses_ns) == len(recorder.generations)
        assert recorder._callback not in gc.callbacks

    def test_pause_is_measured_on_the_given_clock(self):
        """The pause is stop minus start on the recorder's clock."""
        ticks = iter(range(0, 10_000, 100))
        with GcRecorder(clock=lambda: next(ticks)) as recorder:
            gc.collect(0)
        assert recorder.pauses_ns == [100]


class TestGcBenchmark:
    """One value of every metric, from real guest runs."""

    def test_counts_agree_with_gc_stats(self, monkeypatch):
        """Collections recorded = the growth of gc.get_stats(); those during guests a subset."""
        monkeypatch.setenv(DISABLE_JIT_ENV, "1")  # the interpreter: quick and always there
        gc_engine()  # imports the engine now: importing allocates, and collects, outside the window
        before = _collections()
        during, recorder, elapsed, engine = GcBenchmark().measure(
            quick=True, clock=time.perf_counter_ns
        )
        assert engine == "interpreter"
        assert len(recorder.pauses_ns) == _collections() - before
        # The full collection run_guest makes before the timed run is not counted as a pause
        # during guest execution.
        assert 2 in recorder.generations
        assert len(during) < len(recorder.pauses_ns)
        assert elapsed > 0

    def test_within_keeps_pauses_that_began_in_a_window(self):
        """Pauses are attributed by the time they began."""
        recorder = GcRecorder()
        recorder.starts_ns = [5, 15, 25]
        recorder.pauses_ns = [1, 2, 3]
        assert recorder.within([(10, 20)]) == [2]
        assert recorder.within([(0, 6), (20, 30)]) == [1, 3]

    def test_reports_every_metric(self, monkeypatch):
        """Max >= p99, a count, and a share of time between 0 and 100%."""
        monkeypatch.setenv(DISABLE_JIT_ENV, "1")
        by = {m.name: m for m in GcBenchmark().run(RunContext(quick=True))}
        assert list(by) == ["gc_pause_max", "gc_pause_p99", "gc_collections", "gc_time_share"]
        assert by["gc_pause_max"].value >= by["gc_pause_p99"].value >= 0
        assert by["gc_pause_max"].unit == "ms"
        assert by["gc_collections"].value == int(by["gc_collections"].value)
        assert 0 <= by["gc_time_share"].value < 100

    def test_parent_choice_reaches_every_process(self, monkeypatch):
        """available() records the engine in the environment; gc_engine() follows it."""
        monkeypatch.setenv(GC_ENGINE_ENV, "")
        monkeypatch.setenv(DISABLE_JIT_ENV, "1")
        assert GcBenchmark().available() is None
        assert os.environ[GC_ENGINE_ENV] == "interpreter"
        monkeypatch.setenv(DISABLE_JIT_ENV, "0")
        assert gc_engine()[0] == "interpreter"  # the parent chose: the workers do not re-decide

    def test_uses_the_jit_when_it_works(self, monkeypatch):
        """Without the switch, a working JIT is the engine; with it, the interpreter."""
        from vmkit.perf_bench.suites._vm_engines import jit_unavailable_reason

        monkeypatch.delenv(DISABLE_JIT_ENV, raising=False)
        monkeypatch.setenv(GC_ENGINE_ENV, "")
        if jit_unavailable_reason() is not None:
            pytest.skip(f"JIT unavailable: {jit_unavailable_reason()}")
        assert gc_engine()[0] == "jit"
        monkeypatch.setenv(DISABLE_JIT_ENV, "1")
        assert gc_engine()[0] == "interpreter"


class TestGcTargets:
    """The GC metrics' comparison floors are tied to the 50 ms target."""

    def test_pause_floors_and_the_target(self):
        """Max keeps the architecture's 50 ms target; pauses need 5 ms, the share 1 point."""
        targets = GcBenchmark.targets
        assert targets["gc_pause_max"].threshold == 50
        assert targets["gc_pause_max"].min_difference == 5.0
        assert targets["gc_pause_p99"].min_difference == 5.0
        assert targets["gc_time_share"].min_difference == 1.0
