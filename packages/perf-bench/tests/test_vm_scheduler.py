"""Tests of SchedulerBenchmark: real figures, agreeing with the scheduler's own statistics."""

from __future__ import annotations

import math
import tempfile

import pytest

from vmkit.async_executor import load_program
from vmkit.perf_bench import RunContext
from vmkit.perf_bench.suites._vm_engines import interpreter_factory
from vmkit.perf_bench.suites._vm_scheduler import GuestSlices, SchedulerBenchmark, guest_coroutine
from vmkit.perf_bench.suites._vm_workloads import WORKLOADS, run_guest, workload_path


class TinyScheduler(SchedulerBenchmark):
    """The benchmark at a size for tests: seconds, not minutes."""

    switches = (2000, 2000)
    steal_repeats = (5, 5)
    imbalance_slices = (2, 2)
    guests = 3
    guest_slice = 50_000


class TestSchedulerBenchmark:
    """One value of every metric, and the guests behind the utilisation."""

    def test_reports_every_metric_once(self):
        """The run reports the target table's metrics plus the extra ones, all finite."""
        metrics = TinyScheduler().run(RunContext(quick=True))
        names = [m.name for m in metrics]
        assert names == [
            "context_switch",
            "asyncio_switch",
            "context_switch_vs_asyncio",
            "context_switch_threads",
            "steal_latency",
            "imbalance_cv_uniform",
            "imbalance_cv_skewed",
            "vcpu_utilization",
            "threaded_guest_mips",
            "threaded_guest_vs_round_robin",
        ]
        by = {m.name: m.value for m in metrics}
        assert by["context_switch_vs_asyncio"] == pytest.approx(
            by["context_switch"] / by["asyncio_switch"]
        )
        assert all(math.isfinite(m.value) and m.value >= 0 for m in metrics)
        assert 0 < by["vcpu_utilization"] <= 100
        assert by["threaded_guest_mips"] > 0
        assert by["threaded_guest_vs_round_robin"] > 0

    def test_guest_counts_agree_with_the_scheduler_and_executors(self):
        """Steps counted by the scheduler = slices the guests ran; instructions agree everywhere."""
        bench = TinyScheduler()
        utilization, evidence = bench.run_guests(quick=True)
        stats = evidence["stats"]
        assert stats.totals.executions == sum(evidence["slices"])
        assert stats.finished == bench.guests
        assert stats.failed == 0
        assert evidence["instructions"] == evidence["instret"] == evidence["executor_instructions"]
        assert utilization == pytest.approx(stats.totals.utilization)
        # Every guest runs the same program with the same input: the same instruction count.
        assert len(set(evidence["instret"])) == 1

    def test_sliced_guest_retires_what_an_unsliced_run_does(self, tmp_path):
        """Slicing a guest changes nothing it computes: same output and instret as one run."""
        whole = run_guest(WORKLOADS["crc32"], "interpreter", interpreter_factory(), quick=True)
        with tempfile.TemporaryFile() as out:
            fresh = load_program(
                str(workload_path("crc32")),
                WORKLOADS["crc32"].argv(quick=True),
                env={},
                root=str(tmp_path),
                stdio=(out.fileno(), out.fileno(), out.fileno()),
                random_bytes=bytes(16),
            )
            counter = GuestSlices()
            executor = interpreter_factory()(fresh)
            yields, status = _drive(guest_coroutine(executor, fresh, 10_000, counter))
            out.seek(0)
            printed = out.read().decode()
        assert status == 0
        assert printed == whole.stdout
        assert counter.slices == yields + 1 == math.ceil(whole.instructions / 10_000)
        assert fresh.hart.instret == counter.instructions == whole.instructions


def _drive(gen):
    """Run a generator to its end: (number of yields, return value)."""
    yields = 0
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return yields, stop.value
        yields += 1
