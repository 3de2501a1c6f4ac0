"""Reading a results file back: JSON of schema ``result-v1`` into a ``SuiteResult``.

Statistics are recomputed from the raw values on loading, never taken from the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vmkit.perf_bench._metrics import Direction
from vmkit.perf_bench._result import BenchmarkResult, MetricResult, ProcessValues, SuiteResult
from vmkit.perf_bench._runner import RunOptions
from vmkit.perf_bench._serialize import SCHEMA_VERSION
from vmkit.perf_bench._targets import Target

__all__ = ["ResultFileError", "load_result", "result_from_json"]


class ResultFileError(ValueError):
    """A results file that cannot be read: missing, not JSON, or of another schema version."""


def _target_from_json(data: dict[str, Any] | None) -> Target | None:
    if data is None:
        return None
    return Target(
        data["threshold"],
        data["unit"],
        Direction(data["direction"]),
        data["reference"],
        data.get("note", ""),
        data.get("min_difference"),
    )


def result_from_json(data: dict[str, Any]) -> SuiteResult:
    """Rebuild a ``SuiteResult`` from JSON data, recomputing statistics from the raw values.

    Raises:
        ResultFileError: if the data is of another schema version or lacks required fields.
    """
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version != SCHEMA_VERSION:
        raise ResultFileError(
            f"schema_version is {version!r}; this perf-bench reads version {SCHEMA_VERSION}"
        )
    try:
        options = RunOptions(**data["options"])
        benchmarks: list[BenchmarkResult] = []
        for b in data["benchmarks"]:
            metrics = []
            for m in b["metrics"]:
                runs = [
                    ProcessValues(
                        int(r["process"]),
                        int(r["loops"]),
                        tuple(r["warmups"]),
                        tuple(r["values"]),
                        r.get("operations"),
                    )
                    for r in m["runs"]
                ]
                metrics.append(
                    MetricResult.build(
                        m["name"],
                        m["unit"],
                        Direction(m["direction"]),
                        runs,
                        _target_from_json(m["target"]),
                        confidence=options.confidence,
                        resamples=options.resamples,
                        seed=options.seed,
                    )
                )
            benchmarks.append(BenchmarkResult(b["name"], b.get("description", ""), tuple(metrics)))
        skipped = {s["name"]: s["reason"] for s in data.get("skipped", [])}
        return SuiteResult(
            data["suite"],
            options,
            data["environment"],
            data["started_at"],
            data["finished_at"],
            tuple(benchmarks),
            skipped,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ResultFileError(f"malformed result: {type(exc).__name__}: {exc}") from exc


def load_result(path: str | Path) -> SuiteResult:
    """Read a JSON results file written by ``perf-bench run --format json``.

    Raises:
        ResultFileError: with the path and the reason, if it cannot be read.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ResultFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise ResultFileError(f"{path}: not JSON (line {exc.lineno}: {exc.msg})") from exc
    try:
        return result_from_json(data)
    except ResultFileError as exc:
        raise ResultFileError(f"{path}: {exc}") from exc
