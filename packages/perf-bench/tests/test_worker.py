"""Tests of the worker entry point, called in this process."""

from __future__ import annotations

import json

from vmkit.perf_bench.worker import main


class TestWorker:
    """python -m vmkit.perf_bench.worker."""

    def test_writes_a_process_run(self, tmp_path):
        """A worker measures the benchmark and writes loops, warm-ups and values as JSON."""
        out = tmp_path / "run.json"
        status = main(["--suite-spec", "vmkit.perf_bench.suites.python:build_suite", "--bench",
                       "function_call", "--process", "4", "--loops", "16", "--warmups", "2",
                       "--values", "3", "--output", str(out)])  # fmt: skip
        assert status == 0
        data = json.loads(out.read_text(encoding="utf-8"))
        assert (data["process"], data["loops"]) == (4, 16)
        assert len(data["warmups"]) == 2
        assert len(data["values"]) == 3
        (metric,) = data["values"][0]
        assert metric["name"] == "time"
        assert metric["operations"] == 160

    def test_unknown_benchmark_is_one_line_and_status_1(self, tmp_path, capsys):
        """A bad request ends with status 1 and one line on stderr, and writes nothing."""
        out = tmp_path / "run.json"
        spec = "vmkit.perf_bench.suites.python:build_suite"
        status = main(["--suite-spec", spec, "--bench", "nope", "--output", str(out)])
        assert status == 1
        err = capsys.readouterr().err
        assert err.startswith("perf-bench worker: suite 'python' has no benchmark 'nope'")
        assert err.count("\n") == 1
        assert not out.exists()
