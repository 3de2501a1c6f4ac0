"""Results as data: CSV and JSON (schema ``result-v1``), and reading CSV back.

Design note: CSV is one row per metric with every statistic, written with ``repr`` precision so
it reads back exactly. JSON carries every raw value and the environment; loading it recomputes the
statistics from the raw values (:mod:`._load`), so a file is only as trustworthy as its values.
Writing reads only the results' attributes: this module imports no result type at run time, so
the result classes serialize themselves without an import cycle.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from importlib import resources
from typing import TYPE_CHECKING, Any

from vmkit.perf_bench.__about__ import __version__

if TYPE_CHECKING:
    from vmkit.perf_bench._compare import Comparison
    from vmkit.perf_bench._result import BenchmarkResult, MetricResult, SuiteResult
    from vmkit.perf_bench._targets import Target

__all__ = [
    "COMPARISON_CSV_FIELDS",
    "CSV_FIELDS",
    "SCHEMA_ID",
    "SCHEMA_VERSION",
    "benchmark_to_json",
    "comparison_to_csv",
    "comparison_to_json",
    "read_csv",
    "schema",
    "suite_to_json",
    "to_csv",
]

SCHEMA_VERSION = 1
SCHEMA_ID = "https://perf-bench.invalid/schema/result-v1.json"

CSV_FIELDS = (
    "benchmark",
    "metric",
    "unit",
    "direction",
    "n",
    "min",
    "max",
    "median",
    "mean",
    "stdev",
    "mad",
    "p95",
    "p99",
    "ci_low",
    "ci_high",
    "confidence",
    "target",
    "reference",
    "outcome",
    "warnings",
)
#: The columns that hold a number (contiguous in CSV_FIELDS, from "min" to "confidence").
_FLOAT_FIELDS = CSV_FIELDS[CSV_FIELDS.index("min") : CSV_FIELDS.index("confidence") + 1]


def schema() -> dict[str, Any]:
    """The published JSON Schema of results files (``vmkit/perf_bench/schema/result-v1.json``)."""
    text = resources.files("vmkit.perf_bench").joinpath("schema/result-v1.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def to_csv(benchmarks: Iterable[BenchmarkResult]) -> str:
    """One CSV row per metric with all its statistics; floats written exactly."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for bench in benchmarks:
        for m in bench.metrics:
            s = m.summary
            row: dict[str, Any] = {
                "benchmark": bench.name,
                "metric": m.name,
                "unit": m.unit,
                "direction": m.direction.value,
                "n": s.n,
                "target": m.target.describe() if m.target else "",
                "reference": m.target.reference if m.target else "",
                "outcome": m.outcome.value,
                "warnings": " | ".join(m.warnings),
            }
            for name in _FLOAT_FIELDS:
                row[name] = repr(float(getattr(s, name)))
            writer.writerow(row)
    return buffer.getvalue()


def read_csv(text: str) -> list[dict[str, Any]]:
    """Parse CSV written by ``to_csv``: numbers come back as ``int``/``float``.

    Raises:
        ValueError: if the header is not perf-bench's.
    """
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != CSV_FIELDS:
        raise ValueError(f"not a perf-bench CSV: header is {reader.fieldnames}")
    rows: list[dict[str, Any]] = []
    for raw in reader:
        row: dict[str, Any] = dict(raw)
        row["n"] = int(raw["n"])
        for name in _FLOAT_FIELDS:
            row[name] = float(raw[name])
        rows.append(row)
    return rows


def _target_to_json(target: Target | None) -> dict[str, Any] | None:
    if target is None:
        return None
    return {
        "threshold": target.threshold,
        "unit": target.unit,
        "direction": target.direction.value,
        "reference": target.reference,
        "note": target.note,
        "min_difference": target.min_difference,
    }


def _metric_to_json(m: MetricResult) -> dict[str, Any]:
    s = m.summary
    return {
        "name": m.name,
        "unit": m.unit,
        "direction": m.direction.value,
        "target": _target_to_json(m.target),
        "outcome": m.outcome.value,
        "warnings": list(m.warnings),
        "stats": {
            "n": s.n,
            "min": s.min,
            "max": s.max,
            "median": s.median,
            "mean": s.mean,
            "stdev": s.stdev,
            "mad": s.mad,
            "p95": s.p95,
            "p99": s.p99,
            "ci_low": s.ci_low,
            "ci_high": s.ci_high,
            "confidence": s.confidence,
        },
        "runs": [
            {
                "process": r.process,
                "loops": r.loops,
                "operations": r.operations,
                "warmups": list(r.warmups),
                "values": list(r.values),
            }
            for r in m.runs
        ],
    }


def benchmark_to_json(bench: BenchmarkResult) -> dict[str, Any]:
    """One benchmark as an item of the schema's ``benchmarks`` array."""
    return {
        "name": bench.name,
        "description": bench.description,
        "outcome": bench.outcome.value,
        "metrics": [_metric_to_json(m) for m in bench.metrics],
    }


def suite_to_json(result: SuiteResult) -> dict[str, Any]:
    """A whole result as data following ``result-v1.json``."""
    s = result.summary()
    return {
        "$schema": SCHEMA_ID,
        "schema_version": SCHEMA_VERSION,
        "perf_bench_version": __version__,
        "suite": result.suite,
        "started_at": result.started_at,
        "finished_at": result.finished_at,
        "options": result.options.to_dict(),
        "environment": dict(result.environment),
        "benchmarks": [benchmark_to_json(b) for b in result.benchmarks],
        "skipped": [{"name": k, "reason": v} for k, v in result.skipped.items()],
        "summary": {
            "benchmarks": s.benchmarks,
            "total": s.total,
            "passed": s.passed,
            "failed": s.failed,
            "inconclusive": s.inconclusive,
            "reported": s.reported,
            "outcome": s.outcome.value,
        },
    }


COMPARISON_CSV_FIELDS = (
    "benchmark",
    "metric",
    "unit",
    "direction",
    "base_median",
    "new_median",
    "change",
    "change_low",
    "change_high",
    "ratio",
    "p_value",
    "test",
    "verdict",
    "note",
)


def comparison_to_csv(comparison: Comparison) -> str:
    """One CSV row per compared metric."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COMPARISON_CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in comparison_to_json(comparison)["metrics"]:
        writer.writerow({k: "" if row[k] is None else row[k] for k in COMPARISON_CSV_FIELDS})
    return buffer.getvalue()


def comparison_to_json(comparison: Comparison) -> dict[str, Any]:
    """The comparison as JSON-ready data."""
    return {
        "method": comparison.method,
        "alpha": comparison.alpha,
        "min_effect": comparison.min_effect,
        "geometric_mean": comparison.geometric_mean,
        "regressions": len(comparison.regressions),
        "improvements": len(comparison.improvements),
        "notes": list(comparison.notes),
        "metrics": [
            {
                "benchmark": r.benchmark,
                "metric": r.metric,
                "unit": r.unit,
                "direction": r.direction.value,
                "base_median": r.base_median,
                "new_median": r.new_median,
                "change": r.change,
                "change_low": r.change_low,
                "change_high": r.change_high,
                "ratio": r.ratio,
                "p_value": r.p_value,
                "test": r.test,
                "verdict": r.verdict.value,
                "note": r.note,
            }
            for r in comparison.rows
        ],
    }
