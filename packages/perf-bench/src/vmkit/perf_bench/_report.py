"""Reports of a run: rich text table, CSV and JSON (schema ``result-v1``), and loading JSON back.

Design note: the text table is for people and shows the headline per metric (median with its
confidence interval, spread, minimum, target, the reference "seed" figure and the verdict) with
warnings underneath; tail percentiles are in CSV and JSON. CSV is one row per metric with every
statistic, written with ``repr`` precision so it reads back exactly. JSON carries every raw value
and the environment; loading it recomputes the statistics from the raw values, so a file is only
as trustworthy as its values.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from vmkit.perf_bench.__about__ import __version__
from vmkit.perf_bench._compare import Change, Comparison
from vmkit.perf_bench._metrics import Direction
from vmkit.perf_bench._result import BenchmarkResult, MetricResult, ProcessValues, SuiteResult
from vmkit.perf_bench._runner import RunOptions
from vmkit.perf_bench._targets import Outcome, Target
from vmkit.perf_bench._units import format_value, readable_unit

__all__ = [
    "COMPARISON_CSV_FIELDS",
    "CSV_FIELDS",
    "SCHEMA_ID",
    "SCHEMA_VERSION",
    "ResultFileError",
    "benchmark_to_json",
    "comparison_to_csv",
    "comparison_to_json",
    "load_result",
    "print_comparison",
    "print_text",
    "read_csv",
    "render_comparison",
    "render_text",
    "result_from_json",
    "schema",
    "suite_to_json",
    "to_csv",
]

SCHEMA_VERSION = 1
REPORT_WIDTH = 160
"""Width of text reports written to files or pipes."""
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
_FLOAT_FIELDS = (
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
)

_OUTCOME_STYLE = {
    Outcome.PASS: "[green]pass[/]",
    Outcome.FAIL: "[bold red]fail[/]",
    Outcome.INCONCLUSIVE: "[yellow]inconclusive[/]",
    Outcome.REPORTED: "[dim]reported[/]",
}


class ResultFileError(ValueError):
    """A results file that cannot be read: missing, not JSON, or of another schema version."""


def schema() -> dict[str, Any]:
    """The published JSON Schema of results files (``vmkit/perf_bench/schema/result-v1.json``)."""
    text = resources.files("vmkit.perf_bench").joinpath("schema/result-v1.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _table(benchmarks: Sequence[BenchmarkResult], title: str | None) -> Table:
    table = Table(title=title, header_style="bold")
    table.add_column("benchmark", overflow="fold")
    names = [m.name for b in benchmarks for m in b.metrics]
    table.add_column("metric", overflow="fold", min_width=min(32, max(map(len, names), default=6)))
    for column in ("median", "95% CI", "MAD", "min", "n"):
        table.add_column(column, justify="right", overflow="fold")
    references = [m.target.reference for b in benchmarks for m in b.metrics if m.target]
    # The seed figure is the point of the column: keep it on one line when the width allows.
    table.add_column("target", overflow="fold", min_width=9)
    table.add_column(
        "seed figure", overflow="fold", min_width=min(24, max(map(len, references), default=4))
    )
    table.add_column("verdict", no_wrap=True)
    for bench in benchmarks:
        for m in bench.metrics:
            s = m.summary
            shown = readable_unit(s.median, m.unit)
            low, high = (format_value(v, m.unit, shown) for v in (s.ci_low, s.ci_high))
            table.add_row(
                bench.name,
                m.name,
                format_value(s.median, m.unit, shown),
                f"{low.removesuffix(shown).strip()}..{high}",
                format_value(s.mad, m.unit, shown),
                format_value(s.min, m.unit, shown),
                str(s.n),
                m.target.describe() if m.target else "-",
                (m.target.reference if m.target else "") or "-",
                _OUTCOME_STYLE[m.outcome],
            )
    return table


def _print(console: Console, subject: SuiteResult | Sequence[BenchmarkResult]) -> None:
    if isinstance(subject, SuiteResult):
        o = subject.options
        title = (
            f"perf-bench {subject.suite}: {o.processes} processes x {o.values} values "
            f"(+{o.warmups} warm-up), calibrated values >= {format_value(o.min_time_s, 's')}"
        )
        benchmarks: Sequence[BenchmarkResult] = subject.benchmarks
    else:
        title, benchmarks = None, subject
    console.print(_table(benchmarks, title))
    for bench in benchmarks:
        for m in bench.metrics:
            for warning in m.warnings:
                console.print(f"[yellow]warning[/] {bench.name}.{m.name}: {warning}")
    if isinstance(subject, SuiteResult):
        for name, reason in subject.skipped.items():
            console.print(f"[yellow]skipped[/] {name}: {reason}")
        _print_load(console, subject.environment)
        s = subject.summary()
        console.print(
            f"{s.benchmarks} benchmarks, {s.total} metrics: {s.passed} passed, {s.failed} failed, "
            f"{s.inconclusive} inconclusive, {s.reported} reported; "
            f"overall {_OUTCOME_STYLE[s.outcome]}"
        )


def _print_load(console: Console, environment: Mapping[str, Any]) -> None:
    load = environment.get("load_average")
    cpu = environment.get("cpu")
    cores = cpu.get("available_cores") if isinstance(cpu, Mapping) else None
    if not load or not cores:
        return
    line = f"load average at start: {load[0]:g} (1 min) on {cores} cores"
    if load[0] > cores:
        line += "; the machine was busy, expect inflated and noisy figures"
    console.print(line)


def render_text(subject: SuiteResult | Sequence[BenchmarkResult], width: int = REPORT_WIDTH) -> str:
    """The text report, as plain text without colours."""
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    _print(console, subject)
    output = console.file.getvalue()  # type: ignore[attr-defined]
    return str(output)


def _terminal() -> Console:
    console = Console()
    if not console.is_terminal:
        # Piped output has no width to respect; rich's 80-column default would fold the table.
        console = Console(width=REPORT_WIDTH)
    return console


def print_text(subject: SuiteResult | Sequence[BenchmarkResult]) -> None:
    """Print the text report to the terminal (colours when it is one)."""
    _print(_terminal(), subject)


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


_CHANGE_STYLE = {
    Change.BETTER: "[green]better[/]",
    Change.WORSE: "[bold red]worse[/]",
    Change.SAME: "same",
    Change.MISSING: "[yellow]missing[/]",
}

_METHOD_TEXT = {
    "bootstrap": "two-stage bootstrap of the ratio of medians; the interval must clear the "
    "minimum effect",
    "processes": "Mann-Whitney U on per-process medians",
    "values": "Mann-Whitney U on pooled values, which treats them as independent",
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


def _print_comparison(console: Console, comparison: Comparison, base: str, new: str) -> None:
    table = Table(title=f"{base} -> {new}", header_style="bold")
    table.add_column("benchmark", no_wrap=True)
    table.add_column("metric", no_wrap=True)
    for column in ("base", "new", "change", "interval", "p"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    table.add_column("note")
    for r in comparison.rows:
        shown = readable_unit(r.base_median, r.unit) if r.base_median is not None else r.unit
        table.add_row(
            r.benchmark,
            r.metric,
            "-" if r.base_median is None else format_value(r.base_median, r.unit, shown),
            "-" if r.new_median is None else format_value(r.new_median, r.unit, shown),
            "-" if r.change is None else f"{r.change:+.1%}",
            "-"
            if r.change_low is None or r.change_high is None
            else f"{r.change_low:+.1%}..{r.change_high:+.1%}",
            "-" if r.p_value is None else f"{r.p_value:.3g}",
            _CHANGE_STYLE[r.verdict],
            r.note,
        )
    console.print(table)
    g = comparison.geometric_mean
    if g is None:
        console.print("geometric mean: no metric in both runs with positive medians")
    else:
        how = "better" if g >= 1 else "worse"
        console.print(
            f"geometric mean of direction-aware ratios: {g:.3f} "
            f"(new is {abs(g - 1):.1%} {how} overall)"
        )
    for note in comparison.notes:
        console.print(f"[yellow]note[/] {note}")
    regressions = comparison.regressions
    console.print(
        f"{len(comparison.improvements)} better, {len(regressions)} worse "
        f"({_METHOD_TEXT[comparison.method]}, alpha {comparison.alpha:g}, "
        f"minimum effect {comparison.min_effect:.0%})"
    )


def render_comparison(comparison: Comparison, base: str = "base", new: str = "new") -> str:
    """The comparison as plain text."""
    console = Console(
        file=io.StringIO(), width=REPORT_WIDTH, color_system=None, force_terminal=False
    )
    _print_comparison(console, comparison, base, new)
    return str(console.file.getvalue())  # type: ignore[attr-defined]


def print_comparison(comparison: Comparison, base: str = "base", new: str = "new") -> None:
    """Print the comparison to the terminal."""
    _print_comparison(_terminal(), comparison, base, new)


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
