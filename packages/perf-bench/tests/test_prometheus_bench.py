"""perf_bench.prometheus: a running suite's progress and latest results, read at scrape time."""

from __future__ import annotations

import builtins
import socket
import sys
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from vmkit.perf_bench import (
    Benchmark,
    BenchmarkSuite,
    Direction,
    Metrics,
    RunContext,
    RunOptions,
    Target,
)
from vmkit.perf_bench.cli import main
from vmkit.perf_bench.prometheus import (
    BenchCollector,
    MetricsUnavailableError,
    SuiteMonitor,
    start_metrics_server,
)

Values = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(registry: CollectorRegistry) -> Values:
    """Every sample of the registry's exposition, parsed back: (name, labels) -> value."""
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(values: Values, name: str, **labels: str) -> float:
    """The value of one series."""
    return values[(name, tuple(sorted(labels.items())))]


class Probe(Benchmark):
    """Scrapes the registry from inside the run, then reports a size."""

    name = "probe"
    seen: ClassVar[list[Values]] = []
    registry: ClassVar[CollectorRegistry | None] = None

    def run(self, ctx: RunContext) -> Sequence[Metrics]:
        assert self.registry is not None
        self.seen.append(scrape(self.registry))
        return [Metrics("size", 42.0, "B")]


class TestSuiteMonitor:
    """SuiteMonitor as a run's progress callback."""

    def test_progress_is_forwarded_and_runs_accumulate(self) -> None:
        """Calls pass through to the forward callback; completed processes add up over runs."""
        forwarded: list[tuple[str, int, int]] = []
        monitor = SuiteMonitor("s", forward=lambda *a: forwarded.append(a))
        for done in range(3):
            monitor(f"b (process {done + 1}/3)", done, 3)
        monitor("done", 3, 3)
        monitor("b (process 1/2)", 0, 2)  # a second run starts
        monitor("b (process 2/2)", 1, 2)
        assert forwarded[0] == ("b (process 1/3)", 0, 3)
        assert len(forwarded) == 6
        description, done, total, completed, result, at = monitor.snapshot()
        assert (description, done, total, completed, result, at) == (
            "b (process 2/2)",
            1,
            2,
            4,
            None,
            None,
        )


class TestBenchCollector:
    """The families and their values."""

    def test_scrape_during_a_run_shows_progress(
        self, fake_clock: Callable[[], int], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Inside a running benchmark, runs done < planned and the current run is named."""
        registry = CollectorRegistry()
        monitor = SuiteMonitor("s")
        BenchCollector(monitor, registry=registry)
        monkeypatch.setattr(Probe, "registry", registry)
        monkeypatch.setattr(Probe, "seen", [])
        suite = BenchmarkSuite("s")
        suite.register(Probe)
        options = RunOptions(processes=2, values=1, warmups=0, isolation="inline")
        result = suite.run(None, options, clock=fake_clock, progress=monitor, environment={})
        first = Probe.seen[0]
        assert sample(first, "perf_bench_process_runs_planned", suite="s") == 2
        assert sample(first, "perf_bench_process_runs_done", suite="s") == 0
        assert sample(
            first, "perf_bench_current_run_info", suite="s", description="probe (process 1/2)"
        ) == (1)
        assert not any(name == "perf_bench_metric_median" for name, _ in first)
        monitor.record(result)
        after = scrape(registry)
        assert sample(after, "perf_bench_process_runs_total", suite="s") == 2
        assert not any(name == "perf_bench_current_run_info" for name, _ in after)
        key = {"suite": "s", "benchmark": "probe", "metric": "size", "unit": "B"}
        assert sample(after, "perf_bench_metric_median", **key) == 42.0

    def test_latest_result_in_base_units_with_verdicts(self, make_result: Any) -> None:
        """Times become seconds; the median, interval and one-hot verdict match the result."""
        ns_target = Target(100.0, "ns", Direction.LOWER)
        result = make_result(
            {
                "fast": {"latency": ([10.0, 11.0, 12.0, 10.5, 11.5, 10.2], "ns", Direction.LOWER,
                                     ns_target)},
                "slow": {
                    "latency": ([500.0, 510.0, 490.0, 505.0, 495.0, 502.0], "ns",
                                Direction.LOWER, ns_target),
                    "speed": ([3.0, 3.1, 2.9, 3.0, 3.05, 2.95], "MIPS", Direction.HIGHER, None),
                },
            },
            suite="vm",
        )  # fmt: skip
        registry = CollectorRegistry()
        monitor = SuiteMonitor("vm", clock=lambda: 1_700_000_000.0)
        BenchCollector([monitor], registry=registry)
        monitor.record(result)
        values = scrape(registry)
        for bench in result.benchmarks:
            for m in bench.metrics:
                unit = "seconds" if m.unit == "ns" else m.unit
                scale = 1e-9 if m.unit == "ns" else 1.0
                key = {"suite": "vm", "benchmark": bench.name, "metric": m.name, "unit": unit}
                assert sample(values, "perf_bench_metric_median", **key) == pytest.approx(
                    m.summary.median * scale
                )
                assert sample(values, "perf_bench_metric_ci_low", **key) == pytest.approx(
                    m.summary.ci_low * scale
                )
                assert sample(values, "perf_bench_metric_ci_high", **key) == pytest.approx(
                    m.summary.ci_high * scale
                )
                verdicts = {
                    o: sample(
                        values,
                        "perf_bench_metric_outcome",
                        suite="vm",
                        benchmark=bench.name,
                        metric=m.name,
                        outcome=o,
                    )
                    for o in ("pass", "fail", "inconclusive", "reported")
                }
                assert verdicts[m.outcome.value] == 1
                assert sum(verdicts.values()) == 1
        counts = result.summary()
        assert sample(values, "perf_bench_metrics", suite="vm", outcome="pass") == counts.passed
        assert sample(values, "perf_bench_metrics", suite="vm", outcome="fail") == counts.failed
        assert counts.passed == 1
        assert counts.failed == 1
        assert sample(values, "perf_bench_last_result_timestamp_seconds", suite="vm") == (
            1_700_000_000.0
        )

    def test_one_monitor_per_suite(self) -> None:
        """Two monitors of the same suite would give duplicate series: refused."""
        with pytest.raises(ValueError, match="one monitor per suite"):
            BenchCollector([SuiteMonitor("vm"), SuiteMonitor("vm")], registry=None)


class TestMissingExtra:
    """Without prometheus-client installed."""

    def test_asking_for_metrics_names_the_extra(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The collector and the server raise MetricsUnavailableError naming the extra."""
        real_import = builtins.__import__

        def no_client(name: str, *args: Any, **kwargs: Any) -> Any:
            if name.startswith("prometheus_client"):
                raise ImportError(f"No module named {name!r}")
            return real_import(name, *args, **kwargs)

        monkeypatch.setattr(builtins, "__import__", no_client)
        for module in [m for m in sys.modules if m.startswith("prometheus_client")]:
            monkeypatch.delitem(sys.modules, module)
        monitor = SuiteMonitor("vm")  # progress tracking needs no extra
        monitor("x", 0, 1)
        with pytest.raises(MetricsUnavailableError, match=r"perf-bench\[prometheus\]"):
            BenchCollector(monitor, registry=None)
        with pytest.raises(MetricsUnavailableError, match="pip install"):
            start_metrics_server(0)


class TestRunMetricsOption:
    """``perf-bench run --metrics-port``."""

    def test_run_serves_metrics(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The run succeeds as without the option and stderr names the metrics URL."""
        argv = ["run", "--quick", "--inline", "--quiet", "--bench", "dict_get"]
        status = main([*argv, "--metrics-port", "0", "--format", "json"])
        out, err = capsys.readouterr()
        assert status == 0
        assert '"benchmarks"' in out
        assert "perf-bench: serving metrics on http://127.0.0.1:" in err

    def test_busy_port_is_a_one_line_error(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A port that cannot be bound stops the command with status 2 and one line."""
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            status = main(["run", "--quick", "--bench", "dict_get", "--metrics-port", str(port)])
        assert status == 2
        assert capsys.readouterr().err.strip().splitlines() == [
            f"perf-bench: error: cannot serve metrics on 127.0.0.1:{port}: Address already in use"
        ]
