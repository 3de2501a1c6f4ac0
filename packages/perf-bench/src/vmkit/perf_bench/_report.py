"""Reports of a run for people: the rich text table of a result and of a comparison.

Design note: the text table shows the headline per metric (median with its confidence interval,
spread, minimum, target, the reference "seed" figure and the verdict) with warnings underneath;
tail percentiles are in CSV and JSON (:mod:`._serialize`). Only attributes of results are read, so
this module imports no result type at run time and the result classes can render themselves
without an import cycle.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from vmkit.perf_bench._layout import (
    COMPACT_BOX,
    Footnotes,
    print_fitted,
    render_plain,
    terminal_console,
)
from vmkit.perf_bench._targets import Outcome
from vmkit.perf_bench._units import format_value, readable_unit

if TYPE_CHECKING:
    from vmkit.perf_bench._compare import Comparison
    from vmkit.perf_bench._result import BenchmarkResult, SuiteResult

__all__ = [
    "print_comparison",
    "print_text",
    "render_comparison",
    "render_text",
]

_OUTCOME_STYLE = {
    Outcome.PASS: "[green]pass[/]",
    Outcome.FAIL: "[bold red]fail[/]",
    Outcome.INCONCLUSIVE: "[yellow]inconclusive[/]",
    Outcome.REPORTED: "[dim]reported[/]",
}
_VERDICT_WIDTH = len("inconclusive")


def _new_table() -> Table:
    return Table(header_style="bold", box=COMPACT_BOX, pad_edge=False)


def _benchmark_row(table: Table, name: str, first: bool) -> None:
    """A benchmark's name on a row of its own above its metrics (saves a column)."""
    if not first:
        table.add_section()
    table.add_row(f"[bold]{name}[/]")


def _result_table(
    benchmarks: Sequence[BenchmarkResult],
    notes: Footnotes,
    *,
    stats: bool,
    stacked: int,
) -> Table:
    """The result table. ``stats`` adds MAD, min (and n when counts differ); ``stacked`` 1 moves
    the seed figure under the target, 2 moves it under the name and the confidence interval under
    the median, instead of their own columns. Spread and interval are in the median's unit,
    written once, on the median."""
    table = _new_table()
    # Only target and seed figure may wrap when the width is short: names, figures and verdicts
    # stay whole.
    table.add_column("metric", no_wrap=True)
    table.add_column("median" if stacked < 2 else "median\n95% CI", justify="right", no_wrap=True)
    if stacked < 2:
        table.add_column("95% CI", justify="right", no_wrap=True)
    counts = {m.summary.n for b in benchmarks for m in b.metrics}
    show_n = stats and len(counts) > 1  # one count for all is said in the title
    if stats:
        for column in ("MAD", "min", "n")[: 3 if show_n else 2]:
            table.add_column(column, justify="right", no_wrap=True)
    if stacked == 1:
        table.add_column("target\nseed figure", overflow="fold")
    else:
        table.add_column("target", overflow="fold")
    if stacked == 0:
        table.add_column("seed figure", overflow="fold")
    table.add_column("verdict", no_wrap=True, min_width=_VERDICT_WIDTH + 2)
    for index, bench in enumerate(benchmarks):
        _benchmark_row(table, bench.name, index == 0)
        for m in bench.metrics:
            s = m.summary
            shown = readable_unit(s.median, m.unit)
            median = format_value(s.median, m.unit, shown)
            ci = f"{_bare(s.ci_low, m.unit, shown)}..{_bare(s.ci_high, m.unit, shown)}"
            target = m.target.describe() if m.target else "-"
            seed = (m.target.reference if m.target else "") or "-"
            # Narrowest: the seed figure goes under the name, where the metric column has room.
            cells = [m.name if stacked < 2 or seed == "-" else f"{m.name}\n[dim]seed {seed}[/]"]
            cells += [median, ci] if stacked < 2 else [f"{median}\n[dim]{ci}[/]"]
            if stats:
                cells += [_bare(s.mad, m.unit, shown), _bare(s.min, m.unit, shown)]
                cells += [str(s.n)] if show_n else []
            if stacked == 0:
                cells += [target, seed]
            elif stacked == 1:
                cells.append(target if seed == "-" else f"{target}\n[dim]{seed}[/]")
            else:
                cells.append(target)
            marks = notes.marks(m.warnings)
            cells.append(_OUTCOME_STYLE[m.outcome] + (f" {marks}" if marks else ""))
            table.add_row(*cells)
    return table


def _bare(value: float, unit: str, shown: str) -> str:
    """A figure in the unit ``shown``, without writing the unit."""
    return format_value(value, unit, shown).removesuffix(shown).strip()


def _title(subject: SuiteResult) -> str:
    o = subject.options
    counts = {m.summary.n for b in subject.benchmarks for m in b.metrics}
    each = f" = n {counts.pop()}" if len(counts) == 1 else ""
    return (
        f"perf-bench {subject.suite}: {o.processes} processes x {o.values} values{each} "
        f"(+{o.warmups} warm-up), calibrated values >= {format_value(o.min_time_s, 's')}; "
        f"interval and spread in the median's unit"
    )


def _print(
    console: Console, subject: SuiteResult | Sequence[BenchmarkResult], width: int | None
) -> None:
    if isinstance(subject, Sequence):
        title, benchmarks = None, subject
    else:
        title, benchmarks = _title(subject), subject.benchmarks
    warnings = [
        (f"{b.name}.{m.name}", w) for b in benchmarks for m in b.metrics for w in m.warnings
    ]
    notes = Footnotes(warnings)
    layouts = [
        partial(_result_table, benchmarks, notes, stats=True, stacked=0),
        partial(_result_table, benchmarks, notes, stats=False, stacked=1),
        partial(_result_table, benchmarks, notes, stats=False, stacked=2),
    ]
    if title is not None:
        console.print(title, highlight=False)
    print_fitted(console, layouts, width)
    for line in notes.lines():
        console.print(f"[yellow]{line}[/]", highlight=False)
    if width is None:  # files and logs: every warning in full
        for subject_name, warning in warnings:
            console.print(f"[yellow]warning[/] {subject_name}: {warning}", highlight=False)
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


def render_text(subject: SuiteResult | Sequence[BenchmarkResult], width: int | None = None) -> str:
    """The text report as plain text: laid out for ``width`` columns, or (None) the complete
    layout for files and logs."""
    return render_plain(lambda console: _print(console, subject, width), width)


def print_text(subject: SuiteResult | Sequence[BenchmarkResult]) -> None:
    """Print the text report to stdout: fitted to a terminal, complete when piped."""
    console, width = terminal_console()
    if width is None:
        sys.stdout.write(render_text(subject))
    else:
        _print(console, subject, width)


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


def _comparison_table(comparison: Comparison, *, stacked: int) -> Table:
    """The comparison table. ``stacked`` moves the interval under the change (1), and the note
    under the metric and new under base (2), instead of their own columns."""
    table = _new_table()
    # Only the note may wrap when the width is short.
    table.add_column("metric", no_wrap=True)
    if stacked < 2:
        table.add_column("base", justify="right", no_wrap=True)
        table.add_column("new", justify="right", no_wrap=True)
    else:
        table.add_column("base\nnew", justify="right", no_wrap=True)
    table.add_column("change" if stacked < 1 else "change\ninterval", justify="right", no_wrap=True)
    if stacked < 1:
        table.add_column("interval", justify="right", no_wrap=True)
        table.add_column("p", justify="right", no_wrap=True)
    table.add_column("verdict", no_wrap=True, min_width=len("missing"))
    if stacked < 2:
        table.add_column("note", overflow="fold")
    previous = None
    for r in comparison.rows:
        if r.benchmark != previous:
            _benchmark_row(table, r.benchmark, previous is None)
            previous = r.benchmark
        shown = readable_unit(r.base_median, r.unit) if r.base_median is not None else r.unit
        base = "-" if r.base_median is None else format_value(r.base_median, r.unit, shown)
        new = "-" if r.new_median is None else format_value(r.new_median, r.unit, shown)
        change = "-" if r.change is None else f"{r.change:+.1%}"
        interval = (
            "-"
            if r.change_low is None or r.change_high is None
            else f"{r.change_low:+.1%}..{r.change_high:+.1%}"
        )
        metric = r.metric
        if stacked >= 2 and r.note:
            metric += f"\n[dim]{r.note}[/]"
        cells = [metric]
        cells += [base, new] if stacked < 2 else [f"{base}\n{new}"]
        if stacked < 1:
            cells += [change, interval, "-" if r.p_value is None else f"{r.p_value:.3g}"]
        else:
            cells.append(change if interval == "-" else f"{change}\n[dim]{interval}[/]")
        cells.append(_CHANGE_STYLE[r.verdict.value])
        if stacked < 2:
            cells.append(r.note)
        table.add_row(*cells)
    return table


def _print_comparison(
    console: Console, comparison: Comparison, base: str, new: str, width: int | None
) -> None:
    console.print(f"{base} -> {new}", highlight=False)
    layouts = [partial(_comparison_table, comparison, stacked=n) for n in range(3)]
    print_fitted(console, layouts, width)
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


def render_comparison(
    comparison: Comparison, base: str = "base", new: str = "new", width: int | None = None
) -> str:
    """The comparison as plain text: laid out for ``width`` columns, or (None) the complete
    layout for files and logs."""
    return render_plain(
        lambda console: _print_comparison(console, comparison, base, new, width), width
    )


def print_comparison(comparison: Comparison, base: str = "base", new: str = "new") -> None:
    """Print the comparison to stdout: fitted to a terminal, complete when piped."""
    console, width = terminal_console()
    if width is None:
        sys.stdout.write(render_comparison(comparison, base, new))
    else:
        _print_comparison(console, comparison, base, new, width)
