"""Export to pyperf's JSON format, so ``python -m pyperf compare_to`` and its ecosystem read our
results (``perf-bench show RESULT.json --format pyperf -o out.json``).

Design note: pyperf knows three units (seconds, bytes, plain integers) and a value that is
better when lower. Each time metric becomes one pyperf benchmark named ``benchmark.metric``
(always both, so two results name the same metric alike), its values in seconds per operation, one
pyperf run per worker process with that process's warm-ups as ``(loops, value)`` pairs, as pyperf
stores them. Metrics in other units (rates such as MIPS, ratios) have no pyperf equivalent and
are left out, and named, rather than mislabelled.
"""

from __future__ import annotations

from typing import Any

from vmkit.perf_bench._result import MetricResult, SuiteResult
from vmkit.perf_bench._units import convert_time, is_time_unit

__all__ = ["to_pyperf"]


def _benchmark(name: str, metric: MetricResult) -> dict[str, Any]:
    def seconds(value: float) -> float:
        return convert_time(value, metric.unit, "s")

    runs = [
        {
            "metadata": {"loops": run.loops, "perf_bench_process": run.process},
            "warmups": [[run.loops, seconds(v)] for v in run.warmups],
            "values": [seconds(v) for v in run.values],
        }
        for run in metric.runs
        if run.values
    ]
    return {"metadata": {"name": name, "unit": "second"}, "runs": runs}


def to_pyperf(result: SuiteResult) -> tuple[dict[str, Any], list[str]]:
    """(pyperf suite JSON, names of the metrics left out because pyperf has no unit for them)."""
    benchmarks: list[dict[str, Any]] = []
    left_out: list[str] = []
    for bench in result.benchmarks:
        for metric in bench.metrics:
            full = f"{bench.name}.{metric.name}"
            if not is_time_unit(metric.unit) or not metric.values:
                left_out.append(f"{bench.name}.{metric.name} ({metric.unit})")
                continue
            benchmarks.append(_benchmark(full, metric))
    metadata = {"perf_bench_suite": result.suite, "perf_bench_started_at": result.started_at}
    return {"version": "1.0", "metadata": metadata, "benchmarks": benchmarks}, left_out
