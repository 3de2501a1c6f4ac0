"""``perf-bench demo``: the toolkit in one screen.

It runs one shipped guest program at two sizes on every async-executor engine (checking the
output against a Python oracle), then the VM suite's quick run, and prints what ran, each
targeted figure beside its target with what it means, and one verdict line.

Design note, the exit status: the demo fails (1) when something is broken: a guest run that
crashes or prints the wrong answer, or a suite that cannot run. Missed performance targets do not
fail it: a quick run (a few values per metric on a machine that may be busy) is a demonstration,
not a measurement to gate on; ``perf-bench run --suite vm --check`` is the gate and exits 1 on a
missed target. The verdict line says which of the two it is, and agrees with the exit status.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from vmkit.perf_bench._layout import COMPACT_BOX, print_fitted
from vmkit.perf_bench._targets import Outcome
from vmkit.perf_bench._units import format_value, readable_unit

if TYPE_CHECKING:
    from vmkit.perf_bench._result import SuiteResult

__all__ = ["DEMO_WORKLOAD", "EngineRun", "GuestDemo", "demo_verdict", "print_demo", "run_guests"]

DEMO_WORKLOAD = "crc32"
"""The guest program of the demo: a tight loop whose cost is mostly translated code when long."""

ENGINES = ("interp", "jit", "hybrid", "native")


@dataclass(frozen=True, slots=True)
class EngineRun:
    """One engine on one size of the guest: its speed, or why it could not run."""

    engine: str
    instructions: int = 0
    elapsed_ns: int = 0
    error: str = ""
    """Why the run failed (wrong output, crash); empty when it passed its check."""
    unavailable: str = ""
    """Why the engine is not installed here (the native tier without llvmlite)."""

    @property
    def mips(self) -> float:
        """Million guest instructions per second of wall time (loading excluded)."""
        return self.instructions / self.elapsed_ns * 1e3 if self.elapsed_ns else 0.0


@dataclass(slots=True)
class GuestDemo:
    """Every engine on the short and the long run of the demo's guest."""

    workload: str
    short_args: tuple[int, ...]
    long_args: tuple[int, ...]
    short: list[EngineRun] = field(default_factory=list)
    long: list[EngineRun] = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        """Each failed run as ``engine (size): why``."""
        return [
            f"{r.engine} ({size}): {r.error}"
            for size, runs in (("short", self.short), ("long", self.long))
            for r in runs
            if r.error
        ]


def _engine_factories() -> dict[str, Callable[[Any], Any]]:
    from vmkit.async_executor import HybridExecutor, InterpreterExecutor, JitExecutor

    def native(machine: Any) -> Any:
        from vmkit.async_executor.engine.native import NativeExecutor

        return NativeExecutor(machine)

    return {
        "interp": InterpreterExecutor,
        "jit": JitExecutor,
        "hybrid": HybridExecutor,
        "native": native,
    }


def _run_one(engine: str, factory: Callable[[Any], Any], args: tuple[int, ...]) -> EngineRun:
    from vmkit.async_executor import AsyncExecutorError
    from vmkit.perf_bench.suites._vm_workloads import WORKLOADS, GuestCheckError, run_guest

    try:
        run = run_guest(WORKLOADS[DEMO_WORKLOAD], engine, factory, quick=False, args=args)
    except AsyncExecutorError as exc:
        if "llvmlite" in str(exc):  # the native tier's optional extra is not installed
            return EngineRun(engine, unavailable=str(exc).splitlines()[0])
        return EngineRun(engine, error=str(exc).splitlines()[0])
    except GuestCheckError as exc:
        return EngineRun(engine, error=str(exc))
    return EngineRun(engine, run.instructions, run.elapsed_ns)


def run_guests(
    engines: Sequence[str] = ENGINES, progress: Callable[[str, int, int], None] | None = None
) -> GuestDemo:
    """Run the demo's guest, short then long, on each engine; every output is checked."""
    from vmkit.perf_bench.suites._vm_workloads import WORKLOADS

    workload = WORKLOADS[DEMO_WORKLOAD]
    demo = GuestDemo(workload.name, workload.quick_args, workload.args)
    factories = _engine_factories()
    sizes = (("short", demo.short_args, demo.short), ("long", demo.long_args, demo.long))
    for done, (engine, (size, args, runs)) in enumerate((e, s) for e in engines for s in sizes):
        if progress is not None:
            what = f"{workload.name} {' '.join(map(str, args))} on {engine} ({size})"
            progress(what, done, len(engines) * len(sizes))
        runs.append(_run_one(engine, factories[engine], args))
    return demo


def _guest_table(demo: GuestDemo) -> Table:
    table = Table(box=COMPACT_BOX, pad_edge=False, header_style="bold")
    table.add_column("engine", no_wrap=True)
    for column in ("short: MIPS", "long: MIPS", "long vs interp"):
        table.add_column(column, justify="right", no_wrap=True)
    base = next((r.mips for r in demo.long if r.engine == "interp" and r.mips), 0.0)
    for short, long in zip(demo.short, demo.long, strict=True):
        if short.unavailable:
            table.add_row(short.engine, "-", "-", "[dim]not installed[/]")
            continue
        cells = ["[bold red]failed[/]" if r.error else f"{r.mips:.2f}" for r in (short, long)]
        ratio = f"{long.mips / base:.1f}x" if base and long.mips else "-"
        table.add_row(short.engine, *cells, ratio)
    return table


def _guest_lines(demo: GuestDemo) -> list[str]:
    """What the guest table shows, in words: the sizes, and why a tier loses on the short run."""
    short_n = next((r.instructions for r in demo.short if r.instructions), 0)
    long_n = next((r.instructions for r in demo.long if r.instructions), 0)
    lines = [
        f"guest: {demo.workload} (bitwise CRC-32) on the engines below, short run "
        f"{short_n / 1e6:.2g} M instructions, long run {long_n / 1e6:.2g} M; each output "
        f"checked against a Python oracle; MIPS = guest instructions per second of run time"
    ]
    by_engine = {r.engine: r for r in demo.short}
    interp = by_engine.get("interp")
    slower = [
        r.engine
        for r in demo.short
        if interp is not None and r.engine != "interp" and 0 < r.mips < interp.mips
    ]
    if slower:
        who = (
            f"{', '.join(slower[:-1])} and {slower[-1]} lose"
            if len(slower) > 1
            else (f"{slower[0]} loses")
        )
        lines.append(
            f"on the short run {who} to the interpreter: translating (and compiling) code "
            "before running it costs more than a short run gives back"
        )
    return lines


def _targets_table(result: SuiteResult, *, stacked: bool) -> Table:
    """Each targeted figure with its target and verdict; what it measures in a last column, or
    (``stacked``) under its name when the width is short."""
    table = Table(box=COMPACT_BOX, pad_edge=False, header_style="bold")
    table.add_column("metric" if not stacked else "metric\nwhat it measures", no_wrap=not stacked)
    table.add_column("measured", justify="right", no_wrap=True)
    table.add_column("target", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    if not stacked:
        table.add_column("what it measures", overflow="fold")
    for bench in result.benchmarks:
        for m in bench.metrics:
            if m.target is None or m.target.threshold is None:
                continue
            shown = readable_unit(m.summary.median, m.unit)
            cells = [
                m.name,
                format_value(m.summary.median, m.unit, shown),
                m.target.describe(),
                _VERDICT[m.outcome],
            ]
            if stacked:
                cells[0] += f"\n[dim]{m.target.note}[/]" if m.target.note else ""
            else:
                cells.append(m.target.note)
            table.add_row(*cells)
    return table


_VERDICT = {
    Outcome.PASS: "[green]met[/]",
    Outcome.FAIL: "[bold red]missed[/]",
    Outcome.INCONCLUSIVE: "[yellow]unclear[/]",
    Outcome.REPORTED: "[dim]reported[/]",
}


def demo_verdict(demo: GuestDemo, result: SuiteResult | None, suite_error: str) -> tuple[int, str]:
    """The exit status and the verdict line that says the same thing."""
    judged = (
        []
        if result is None
        else [
            (m.name, m.outcome)
            for b in result.benchmarks
            for m in b.metrics
            if m.target is not None and m.target.threshold is not None
        ]
    )
    met = sum(1 for _n, o in judged if o is Outcome.PASS)
    missed = [n for n, o in judged if o is Outcome.FAIL]
    unclear = [n for n, o in judged if o is Outcome.INCONCLUSIVE]
    targets = f"{met} of {len(judged)} targets met"
    if missed:
        targets += f", missed: {', '.join(missed)}"
    if unclear:
        targets += f", unclear (interval straddles the target): {', '.join(unclear)}"
    broken = demo.failures + ([f"suite: {suite_error}"] if suite_error else [])
    if broken:
        return 1, f"demo FAILED (exit 1): {'; '.join(broken)}"
    if result is None:
        return 0, "demo passed (exit 0): every engine ran the guest correctly; suite not run"
    gate = (
        "; missed targets do not fail the demo (quick figures are too noisy to gate on): "
        "`perf-bench run --suite vm --check` exits 1 on them"
        if missed or unclear
        else ""
    )
    return 0, f"demo passed (exit 0): every engine ran the guest correctly; {targets}{gate}"


def print_demo(
    console: Console,
    demo: GuestDemo,
    result: SuiteResult | None,
    suite_error: str,
    width: int | None,
) -> int:
    """Print the one-screen report and return the exit status its verdict line states."""
    for line in _guest_lines(demo):
        console.print(line, highlight=False)
    print_fitted(console, [lambda: _guest_table(demo)], width)
    if result is not None:
        o = result.options
        console.print(
            f"\nVM suite, quick run ({o.processes} processes x {o.values} values per metric): "
            "the figures that have a target (all figures: perf-bench run --suite vm)",
            highlight=False,
        )
        layouts = [partial(_targets_table, result, stacked=flag) for flag in (False, True)]
        print_fitted(console, layouts, width)
        noisy = sum(1 for b in result.benchmarks for m in b.metrics if m.warnings)
        if noisy:
            console.print(
                f"[dim]{noisy} figures vary by more than 10% between values: a quick run on "
                "a shared machine is noisy[/]",
                highlight=False,
            )
        for name, reason in result.skipped.items():
            console.print(f"[yellow]skipped[/] {name}: {reason}", highlight=False)
    status, verdict = demo_verdict(demo, result, suite_error)
    style = "bold green" if status == 0 else "bold red"
    console.print(f"\n[{style}]{verdict}[/]", highlight=False)
    return status
