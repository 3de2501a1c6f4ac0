"""Reports of a run for people: the rich text table of a result and of a comparison.

Design note: the text table shows the headline per metric (median with its confidence interval,
spread, minimum, target, the reference "seed" figure and the verdict) with warnings underneath;
tail percentiles are in CSV and JSON (:mod:`._serialize`). Only attributes of results are read, so
this module imports no result type at run time and the result classes can render themselves
without an import cycle.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from vmkit.perf_bench._targets import Outcome
from vmkit.perf_bench._units import format_value, readable_unit

if TYPE_CHECKING:
    from vmkit.perf_bench._compare import Comparison
    from vmkit.perf_bench._result import BenchmarkResult, SuiteResult

__all__ = [
    "REPORT_WIDTH",
    "print_comparison",
    "print_text",
    "render_comparison",
    "render_text",
]

REPORT_WIDTH = 160
"""Width of text reports written to files or pipes."""

_OUTCOME_STYLE = {
    Outcome.PASS: "[green]pass[/]",
    Outcome.FAIL: "[bold red]fail[/]",
    Outcome.INCONCLUSIVE: "[yellow]inconclusive[/]",
    Outcome.REPORTED: "[dim]reported[/]",
}


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
    if not isinstance(subject, Sequence):
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
    if not isinstance(subject, Sequence):
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


_CHANGE_STYLE = {
    "better": "[green]better[/]",
    "worse": "[bold red]worse[/]",
    "same": "same",
    "missing": "[yellow]missing[/]",
}

_METHOD_TEXT = {
    "bootstrap": "two-stage bootstrap of the ratio of medians; the interval must clear the "
    "minimum effect",
    "processes": "Mann-Whitney U on per-process medians",
    "values": "Mann-Whitney U on pooled values, which treats them as independent",
}


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
            _CHANGE_STYLE[r.verdict.value],
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
