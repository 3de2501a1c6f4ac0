"""Tests of the run schedule: calibration, warm-ups, interleaving and errors, on a fake clock."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from vmkit.perf_bench import (
    Benchmark,
    BenchmarkError,
    BenchmarkSuite,
    Metrics,
    MicroBenchmark,
    RunContext,
    RunOptions,
)
from vmkit.perf_bench._runner import calibrate_loops, run_process, run_schedule

MS = 1_000_000


class TestCalibration:
    """Loop calibration to the minimum time per value."""

    def test_doubles_until_minimum_time(self, fake_clock, cost_benchmark):
        """At 1000 ns per loop and 1 ms minimum, 1024 loops is the first power of two enough."""
        bench = cost_benchmark(fake_clock, costs=[1000])
        loops = calibrate_loops(bench, RunContext(clock=fake_clock), MS)
        assert loops == 1024
        assert bench.loops_seen == [2**k for k in range(11)]

    def test_slow_operation_needs_one_loop(self, fake_clock, cost_benchmark):
        """An operation longer than the minimum time runs once per value."""
        bench = cost_benchmark(fake_clock, costs=[5 * MS])
        assert calibrate_loops(bench, RunContext(clock=fake_clock), MS) == 1

    def test_uncalibrated_benchmark_runs_once_per_value(self, fake_clock):
        """A benchmark without calibrate=True always sees loops == 1."""
        seen: list[int] = []

        class Once(Benchmark):
            name = "once"

            def run(self, ctx: RunContext) -> Sequence[Metrics]:
                seen.append(ctx.loops)
                return [Metrics("x", 1.0, "B")]

        run = run_process(
            Once(), process=0, loops=0, warmups=1, values=3, min_time_ns=MS, quick=False,
            clock=fake_clock,
        )  # fmt: skip
        assert run.loops == 1
        assert seen == [1, 1, 1, 1]


class TestRunProcess:
    """One worker process's work."""

    def test_warmups_are_kept_apart(self, fake_clock, cost_benchmark):
        """The first values go to warm-ups; the rest are the measured values."""
        bench = cost_benchmark(fake_clock, costs=[1000] * 11 + [5000, 1000, 1100, 1200])
        run = run_process(
            bench, process=2, loops=0, warmups=1, values=3, min_time_ns=MS, quick=False,
            clock=fake_clock,
        )  # fmt: skip
        assert run.process == 2
        assert run.loops == 1024
        assert [m[0].value for m in run.warmups] == [5000]
        assert [m[0].value for m in run.values] == [1000, 1100, 1200]
        assert (bench.setups, bench.teardowns) == (1, 1)

    def test_given_loops_skip_calibration(self, fake_clock, cost_benchmark):
        """Later processes reuse the first one's loop count."""
        bench = cost_benchmark(fake_clock)
        run = run_process(
            bench, process=1, loops=64, warmups=0, values=2, min_time_ns=MS, quick=False,
            clock=fake_clock,
        )  # fmt: skip
        assert bench.loops_seen == [64, 64]
        assert run.loops == 64

    def test_raising_benchmark_is_reported_and_torn_down(self, fake_clock):
        """An exception becomes a BenchmarkError naming the benchmark; teardown still runs."""
        torn: list[bool] = []

        class Broken(Benchmark):
            name = "broken"

            def run(self, ctx: RunContext) -> Sequence[Metrics]:
                raise ZeroDivisionError("division by zero")

            def teardown(self) -> None:
                torn.append(True)

        with pytest.raises(BenchmarkError, match="'broken' raised ZeroDivisionError"):
            run_process(
                Broken(), process=0, loops=0, warmups=0, values=1, min_time_ns=MS, quick=False,
                clock=fake_clock,
            )  # fmt: skip
        assert torn == [True]

    def test_changing_metrics_is_an_error(self, fake_clock):
        """A benchmark must report the same metrics on every run."""

        class Fickle(Benchmark):
            name = "fickle"
            calls = 0

            def run(self, ctx: RunContext) -> Sequence[Metrics]:
                self.calls += 1
                return [Metrics(f"m{self.calls}", 1.0, "B")]

        with pytest.raises(BenchmarkError, match="changed its metrics"):
            run_process(
                Fickle(), process=0, loops=0, warmups=1, values=1, min_time_ns=MS, quick=False,
                clock=fake_clock,
            )  # fmt: skip

    def test_quick_flag_reaches_the_benchmark(self, fake_clock):
        """ctx.quick tells the benchmark a smaller workload was asked for."""
        seen: list[bool] = []

        class Q(Benchmark):
            name = "q"

            def run(self, ctx: RunContext) -> Sequence[Metrics]:
                seen.append(ctx.quick)
                return [Metrics("x", 1.0, "B")]

        run_process(
            Q(), process=0, loops=0, warmups=0, values=1, min_time_ns=MS, quick=True,
            clock=fake_clock,
        )  # fmt: skip
        assert seen == [True]


class TestSchedule:
    """Interleaving of processes across benchmarks."""

    def test_rounds_interleave_benchmarks(self, fake_clock):
        """Every benchmark's process k runs before any benchmark's process k+1."""
        log: list[tuple[str, int]] = []

        def make(tag: str) -> Benchmark:
            class Tagged(Benchmark):
                name = tag

                def run(self, ctx: RunContext) -> Sequence[Metrics]:
                    log.append((tag, ctx.process))
                    return [Metrics("x", 1.0, "B")]

            return Tagged()

        benches = [make(t) for t in "abc"]
        options = RunOptions(processes=3, values=1, warmups=0, isolation="inline")
        runs = run_schedule(benches, options, suite_spec=None, clock=fake_clock)
        processes = [p for _, p in log]
        assert processes == sorted(processes)
        for p in range(3):
            assert sorted(t for t, q in log if q == p) == ["a", "b", "c"]
        assert {name: len(r) for name, r in runs.items()} == {"a": 3, "b": 3, "c": 3}

    def test_order_is_seeded(self, fake_clock):
        """The same seed gives the same order; the order is shuffled between rounds."""

        def order(seed: int) -> list[str]:
            log: list[str] = []

            def make(tag: str) -> Benchmark:
                class Tagged(Benchmark):
                    name = tag

                    def run(self, ctx: RunContext) -> Sequence[Metrics]:
                        log.append(tag)
                        return [Metrics("x", 1.0, "B")]

                return Tagged()

            options = RunOptions(processes=6, values=1, warmups=0, isolation="inline", seed=seed)
            run_schedule([make(t) for t in "abcde"], options, suite_spec=None, clock=fake_clock)
            return log

        assert order(1) == order(1)
        rounds = [tuple(order(1)[i : i + 5]) for i in range(0, 30, 5)]
        assert len(set(rounds)) > 1

    def test_calibrated_loops_carry_over(self, fake_clock, cost_benchmark):
        """Only the first process calibrates; later ones reuse its loop count."""
        bench = cost_benchmark(fake_clock, costs=[1000])
        options = RunOptions(processes=3, values=2, warmups=1, min_time_s=0.001, isolation="inline")
        runs = run_schedule([bench], options, suite_spec=None, clock=fake_clock)
        assert [r.loops for r in runs["cost"]] == [1024, 1024, 1024]
        # 11 calibration runs, then 3 per process.
        assert len(bench.loops_seen) == 11 + 3 * 3

    def test_process_isolation_needs_a_spec(self, fake_clock, cost_benchmark):
        """A suite built in this process cannot be sent to workers; the error says what to do."""
        with pytest.raises(BenchmarkError, match="module:function"):
            run_schedule([cost_benchmark(fake_clock)], RunOptions(), suite_spec=None)

    def test_progress_is_reported(self, fake_clock, cost_benchmark):
        """The progress callback sees every step and the final count."""
        calls: list[tuple[int, int]] = []
        options = RunOptions(processes=2, values=1, warmups=0, min_time_s=1e-6, isolation="inline")
        run_schedule(
            [cost_benchmark(fake_clock)], options, suite_spec=None, clock=fake_clock,
            progress=lambda _d, done, total: calls.append((done, total)),
        )  # fmt: skip
        assert calls == [(0, 2), (1, 2), (2, 2)]


class TestOptions:
    """RunOptions validation and quick defaults."""

    def test_quick_defaults(self):
        """--quick is 3 processes x 3 values, 1 warm-up, 10 ms, and can be overridden."""
        quick = RunOptions.quick_defaults(processes=2)
        assert (quick.processes, quick.values, quick.warmups) == (2, 3, 1)
        assert quick.min_time_s == 0.01
        assert quick.quick

    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            ("processes", 0, "processes"),
            ("values", 0, "values"),
            ("warmups", -1, "warmups"),
            ("min_time_s", 0, "min_time_s"),
            ("isolation", "thread", "isolation"),
        ],
    )
    def test_invalid_options(self, field, value, message):
        """Impossible options are refused, naming the option."""
        with pytest.raises(ValueError, match=message):
            RunOptions(**{field: value})


class TestMicroBenchmark:
    """The calibrated micro-benchmark base class."""

    def test_time_per_operation(self, fake_clock):
        """run() reports elapsed / (loops * operations_per_loop) in ns."""

        class Ten(MicroBenchmark):
            name = "ten"
            operations_per_loop = 10

            def loop(self, loops: int) -> None:
                fake_clock.advance(50 * loops * 10)

        (metric,) = Ten().run(RunContext(loops=8, clock=fake_clock))
        assert metric.name == "time"
        assert metric.value == 50
        assert metric.operations == 80


class TestSuiteRun:
    """BenchmarkSuite.run end to end in-process."""

    def test_run_builds_results(self, fake_clock, cost_benchmark):
        """A suite run gathers values per metric, excluding warm-ups, with the environment given."""
        suite = BenchmarkSuite("fake")
        bench = cost_benchmark(fake_clock, costs=[1000] * 11 + [9999, 1000, 1010, 9999, 1020, 1030])
        suite.register(bench)
        options = RunOptions(processes=2, values=2, warmups=1, min_time_s=0.001, isolation="inline")
        result = suite.run(None, options, clock=fake_clock, environment={"x": 1})
        metric = result.benchmark("cost").metric("time")
        assert metric.values == [1000, 1010, 1020, 1030]
        assert [r.warmups for r in metric.runs] == [(9999,), (9999,)]
        assert metric.summary.median == 1015
        assert result.environment == {"x": 1}
        assert result.summary().total == 1
