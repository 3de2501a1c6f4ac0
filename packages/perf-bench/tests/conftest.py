"""Shared fixtures: a fake clock, fake benchmarks driven by it, and results built from values."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator, Sequence

import pytest

from vmkit.perf_bench import (
    Benchmark,
    BenchmarkResult,
    Direction,
    MetricResult,
    Metrics,
    ProcessValues,
    RunContext,
    RunOptions,
    SuiteResult,
    Target,
)


def pytest_configure(config: pytest.Config) -> None:
    """Under nox and CI (PERF_BENCH_CROSS_CHECKS=required) the scipy cross-checks, the plot
    tests and the pyperf export test must run: a missing scipy, matplotlib or pyperf stops the
    session instead of skipping them."""
    if os.environ.get("PERF_BENCH_CROSS_CHECKS") == "required":
        for module in ("scipy.stats", "matplotlib", "pyperf"):
            try:
                importlib.import_module(module)
            except ImportError as exc:
                raise pytest.UsageError(
                    f"{module} is needed for the statistics cross-checks and plot tests "
                    f"(PERF_BENCH_CROSS_CHECKS=required): {exc}"
                ) from exc


class FakeClock:
    """A clock that moves only when told to, so tests never sleep or depend on the machine."""

    def __init__(self) -> None:
        self.now = 0
        self.reads = 0

    def __call__(self) -> int:
        self.reads += 1
        return self.now

    def advance(self, ns: int) -> None:
        self.now += ns


class CostBenchmark(Benchmark):
    """A calibrated benchmark whose loop 'costs' a scripted number of fake nanoseconds."""

    name = "cost"
    calibrate = True

    def __init__(
        self, clock: FakeClock, costs: Sequence[int] = (1000,), name: str = "cost"
    ) -> None:
        self.clock = clock
        self.costs = list(costs)
        self.calls = 0
        self.loops_seen: list[int] = []
        self.instance_name = name
        self.setups = 0
        self.teardowns = 0

    def setup(self, ctx: RunContext) -> None:
        self.setups += 1

    def teardown(self) -> None:
        self.teardowns += 1

    def run(self, ctx: RunContext) -> Sequence[Metrics]:
        cost = self.costs[min(self.calls, len(self.costs) - 1)]
        self.calls += 1
        self.loops_seen.append(ctx.loops)
        start = ctx.clock()
        self.clock.advance(cost * ctx.loops)
        return [Metrics.timing("time", ctx.clock() - start, ctx.loops)]


@pytest.fixture
def fake_clock() -> FakeClock:
    """A fresh fake clock at zero."""
    return FakeClock()


@pytest.fixture
def cost_benchmark() -> type[CostBenchmark]:
    """The scripted-cost benchmark class."""
    return CostBenchmark


ENVIRONMENT = {
    "python": {
        "version": "3.11.7",
        "implementation": "CPython",
        "build": "main",
        "compiler": "GCC",
        "gil_disabled": False,
    },
    "os": {"system": "Linux", "release": "6", "platform": "Linux-6"},
    "cpu": {"model": None, "architecture": "x86_64", "logical_cores": 2, "available_cores": 2},
    "load_average": [3.5, 2.0, 1.0],
    "packages": {"async-executor": None, "coroutine-scheduler": None, "perf-bench": "0.1.0"},
    "git": {"commit": None, "dirty": None},
}

MakeResult = Callable[..., SuiteResult]


@pytest.fixture
def make_result() -> MakeResult:
    """Build a SuiteResult from {benchmark: {metric: (values, unit, direction, target)}}."""

    def build(
        spec: dict[str, dict[str, tuple[list[float], str, Direction, Target | None]]],
        suite: str = "test",
    ) -> SuiteResult:
        benchmarks = []
        for bench, metrics in spec.items():
            built = []
            for metric, (values, unit, direction, target) in metrics.items():
                half = len(values) // 2
                runs = [
                    ProcessValues(0, 1, (values[0],), tuple(values[:half])),
                    ProcessValues(1, 1, (values[-1],), tuple(values[half:])),
                ]
                built.append(MetricResult.build(metric, unit, direction, runs, target))
            benchmarks.append(BenchmarkResult(bench, f"{bench} description", tuple(built)))
        return SuiteResult(
            suite,
            RunOptions(isolation="inline"),
            ENVIRONMENT,
            "2026-01-01T00:00:00+00:00",
            "2026-01-01T00:01:00+00:00",
            tuple(benchmarks),
        )

    return build


@pytest.fixture(autouse=True, scope="session")
def _private_code_cache_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Code caches are signed with a per-user key; tests (and the worker processes they start,
    which inherit the environment) use one in a temporary directory, never the user's own."""
    folder = tmp_path_factory.mktemp("vmkit-config")
    folder.chmod(0o700)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VMKIT_CODE_CACHE_KEY", str(folder / "code-cache.key"))
        yield
