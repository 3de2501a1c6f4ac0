"""Tests of TlbBenchmark: hit rates from the AddressSpace's counters, costs of both paths."""

from __future__ import annotations

import pytest

from vmkit.perf_bench import RunContext
from vmkit.perf_bench.suites._vm_engines import interpreter_factory
from vmkit.perf_bench.suites._vm_tlb import (
    TlbBenchmark,
    time_fast_path,
    time_slow_path,
    tlb_metrics,
)
from vmkit.perf_bench.suites._vm_workloads import WORKLOADS, run_guest


class TinyTlb(TlbBenchmark):
    """The benchmark with few timed lookups, for tests."""

    fast_lookups = (10_000, 10_000)
    slow_loads = (1_000, 1_000)


@pytest.fixture(scope="module")
def runs():
    """One checked quick run of every workload on the interpreter."""
    return TinyTlb().runs(quick=True)


class TestHitRates:
    """Hit rates are the AddressSpace's own accounting."""

    def test_pooled_rate_is_computed_from_the_counters(self, runs):
        """tlb_hit_rate = 1 - misses / accesses summed over the three kernels."""
        metrics = {m.name: m for m in tlb_metrics(runs)}
        kernels = [runs[k].machine.memory for k in ("crc32", "sieve", "matmul")]
        accesses = sum(m.tlb_accesses for m in kernels)
        misses = sum(m.tlb_misses for m in kernels)
        assert metrics["tlb_hit_rate"].value == pytest.approx(100 * (1 - misses / accesses))
        assert metrics["tlb_hit_rate"].operations == accesses
        for name, run in runs.items():
            assert metrics[f"tlb_hit_rate_{name}"].value == pytest.approx(
                100 * run.machine.memory.tlb_hit_rate
            )

    def test_pagewalk_misses_at_least_once_per_page_touch(self, runs):
        """Walking more pages than the TLB holds, in order, misses on every page touch.

        The program writes each page once and then reads each page ``passes`` times; with FIFO
        replacement and more pages than entries, each of those touches is a miss, so the
        counters must show at least pages * (passes + 1) misses: a check from the program's
        structure, independent of the executor.
        """
        pages, passes = WORKLOADS["pagewalk"].quick_args
        memory = runs["pagewalk"].machine.memory
        assert memory.tlb_misses >= pages * (passes + 1)
        assert memory.tlb_accesses >= pages * (passes + 1)

    def test_kernels_hit_far_more_often_than_the_worst_case(self, runs):
        """The kernels' working sets fit the TLB; the page walk's does not."""
        rates = {m.name: m.value for m in tlb_metrics(runs)}
        assert rates["tlb_hit_rate_pagewalk"] < rates["tlb_hit_rate"]


class TestPathCosts:
    """The fast and slow paths are the real ones."""

    def test_slow_path_walks_the_page_table_every_time(self, runs):
        """Every timed slow-path load is a page-table walk: tlb_misses grows by exactly that."""
        memory = runs["sieve"].machine.memory
        pages = len(memory.tlb_read)
        before = memory.tlb_misses
        time_slow_path(memory, 10 * pages, lambda: 0)
        assert memory.tlb_misses - before == 10 * pages

    def test_fast_path_never_misses(self, runs):
        """Timed fast-path lookups are hits: no walk happens and no page is dropped."""
        memory = runs["matmul"].machine.memory
        cached = dict(memory.tlb_read)
        before = memory.tlb_misses
        time_fast_path(memory, 10_000, lambda: 0)
        assert memory.tlb_misses == before
        assert dict(memory.tlb_read) == cached

    def test_empty_tlb_is_refused(self):
        """Timing needs pages a guest really used."""
        run = run_guest(WORKLOADS["matmul"], "interpreter", interpreter_factory(), quick=True)
        run.machine.memory.tlb_flush()
        with pytest.raises(ValueError, match="run a guest first"):
            time_fast_path(run.machine.memory, 10, lambda: 0)


class TestTlbBenchmark:
    """One value of every metric."""

    def test_reports_every_metric(self):
        """Hit rates, then the three costs; the mean cost lies between fast and slow."""
        metrics = TinyTlb().run(RunContext(quick=True))
        by = {m.name: m.value for m in metrics}
        assert [m.name for m in metrics][-3:] == [
            "tlb_translation",
            "tlb_miss_cost",
            "tlb_access_cost",
        ]
        assert by["tlb_translation"] <= by["tlb_access_cost"] <= by["tlb_miss_cost"]
        assert 0 < by["tlb_hit_rate"] <= 100
