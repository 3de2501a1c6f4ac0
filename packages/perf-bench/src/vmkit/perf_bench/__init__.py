"""Benchmark VM runtimes with sound statistics.

The public API: ``Timer``, ``Metrics``, ``Direction``, ``Benchmark``/``MicroBenchmark`` and
``RunContext`` (what a benchmark implements), ``BenchmarkSuite`` and ``RunOptions`` (running),
``BenchmarkResult``/``SuiteResult`` (results and reports), ``Target``/``Outcome``, ``compare``
(two runs), the suite registry, and the statistics helpers. Each suite publishes its own targets
(``vmkit.perf_bench.suites.vm.VM_TARGETS``, ``vmkit.perf_bench.suites.python.PYTHON_REFERENCES``).
"""

from __future__ import annotations

from vmkit.perf_bench.__about__ import __version__
from vmkit.perf_bench._benchmark import Benchmark, MicroBenchmark, RunContext
from vmkit.perf_bench._compare import Change, Comparison, MetricComparison, compare
from vmkit.perf_bench._environment import collect_environment
from vmkit.perf_bench._load import ResultFileError, load_result, result_from_json
from vmkit.perf_bench._mannwhitney import MannWhitneyResult, mann_whitney_u
from vmkit.perf_bench._metrics import Direction, Metrics
from vmkit.perf_bench._registry import (
    SuiteInfo,
    SuiteUnavailableError,
    available_suites,
    load_suite,
    register_suite,
)
from vmkit.perf_bench._result import (
    BenchmarkResult,
    MetricResult,
    ProcessValues,
    SuiteResult,
    SuiteSummary,
)
from vmkit.perf_bench._runner import BenchmarkError, RunOptions
from vmkit.perf_bench._serialize import read_csv, schema
from vmkit.perf_bench._stats import (
    RatioInterval,
    Summary,
    bootstrap_median_ci,
    bootstrap_ratio_ci,
    cluster_split,
    mad,
    percentile,
    summarize,
)
from vmkit.perf_bench._suite import BenchmarkSuite, UnknownBenchmarkError
from vmkit.perf_bench._targets import Outcome, Target
from vmkit.perf_bench._timer import Clock, Timer

__all__ = [
    "Benchmark",
    "BenchmarkError",
    "BenchmarkResult",
    "BenchmarkSuite",
    "Change",
    "Clock",
    "Comparison",
    "Direction",
    "MannWhitneyResult",
    "MetricComparison",
    "MetricResult",
    "Metrics",
    "MicroBenchmark",
    "Outcome",
    "ProcessValues",
    "RatioInterval",
    "ResultFileError",
    "RunContext",
    "RunOptions",
    "SuiteInfo",
    "SuiteResult",
    "SuiteSummary",
    "SuiteUnavailableError",
    "Summary",
    "Target",
    "Timer",
    "UnknownBenchmarkError",
    "__version__",
    "available_suites",
    "bootstrap_median_ci",
    "bootstrap_ratio_ci",
    "cluster_split",
    "collect_environment",
    "compare",
    "load_result",
    "load_suite",
    "mad",
    "mann_whitney_u",
    "percentile",
    "read_csv",
    "register_suite",
    "result_from_json",
    "schema",
    "summarize",
]
