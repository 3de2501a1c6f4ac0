"""Tests of BatchBenchmark: a real corpus both ways, every guest checked, and on-request runs."""

from __future__ import annotations

import time
from typing import ClassVar

import pytest

from vmkit.perf_bench import RunContext, load_suite
from vmkit.perf_bench.cli import main
from vmkit.perf_bench.suites._vm_batch import CORPUS, BatchBenchmark, corpus_jobs
from vmkit.perf_bench.suites._vm_workloads import GuestCheckError


class SmallBatch(BatchBenchmark):
    """The corpus once round (six guests), so a test measures both ways in a few seconds."""

    sizes: ClassVar[tuple[int, int]] = (len(CORPUS), len(CORPUS))


class TestCorpus:
    def test_jobs_expect_the_oracles_output(self):
        jobs = corpus_jobs(8)
        assert [j["id"] for j in jobs[:2]] == ["0-crc32-1", "1-crc32-256"]
        assert jobs[6]["args"] == jobs[0]["args"]  # the corpus repeats in order
        assert all(j["expected_stdout"] and j["expected_status"] == 0 for j in jobs)
        assert jobs[0]["expected_stdout"].startswith("crc32 1 ")


class TestBatchBenchmark:
    def test_both_ways_run_the_corpus_and_report_their_ratio(self):
        bench = SmallBatch()
        assert bench.available() is None
        metrics = {m.name: m for m in bench.run(RunContext(quick=True, clock=time.perf_counter_ns))}
        assert set(metrics) == {
            "guests_per_second",
            "one_process_guests_per_second",
            "batch_speedup",
            "startup_per_job",
        }
        batch, each = (
            metrics["guests_per_second"].value,
            metrics["one_process_guests_per_second"].value,
        )
        assert metrics["batch_speedup"].value == pytest.approx(batch / each)
        assert 0 < metrics["startup_per_job"].value < 1e3 * len(CORPUS) / batch * 2

    def test_a_guest_with_the_wrong_output_fails_the_benchmark(self, monkeypatch):
        import vmkit.perf_bench.suites._vm_batch as module

        real = module.corpus_jobs

        def wrong(size: int):
            jobs = real(size)
            jobs[1]["expected_stdout"] = "not what crc32 prints\n"
            return jobs

        monkeypatch.setattr(module, "corpus_jobs", wrong)
        with pytest.raises(GuestCheckError, match="batch: 1 of 6 guests failed"):
            SmallBatch().measure(quick=True, clock=time.perf_counter_ns)


class TestOnRequest:
    def test_a_plain_run_leaves_it_out_and_naming_it_runs_it(self):
        suite = load_suite("vm")
        assert "BatchBenchmark" not in [b.name for b in suite.select()]
        assert [b.name for b in suite.select(["BatchBenchmark"])] == ["BatchBenchmark"]

    def test_list_says_how_to_ask_for_it(self, capsys):
        assert main(["list", "--suite", "vm"]) == 0
        out = capsys.readouterr().out
        assert "BatchBenchmark (on request: --bench BatchBenchmark):" in out
        assert "batch_speedup: >= 3 x" in out
