"""The ``perf-bench`` command line: ``run``, ``compare``, ``show``, ``demo``, ``plot``, ``list``.

Exit statuses: 0 success; 1 a significant regression (``compare``), a failed target
(``run --check``) or a broken guest run or suite (``demo``); 2 a usage or input error, reported in
one line on stderr; 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vmkit.perf_bench.__about__ import __version__
from vmkit.perf_bench._logging import add_logging_options, configure_logging, get_logger
from vmkit.perf_bench._metrics_server import add_metrics_options

__all__ = ["build_parser", "main"]

log = get_logger(__name__)

FORMATS = ("text", "csv", "json")
ENGINE_CHOICES = ("interp", "jit", "hybrid", "native")


class CliError(Exception):
    """An error to report in one line and exit with status 2."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"cannot be negative, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _fraction(text: str) -> float:
    value = _positive_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {value}")
    return value


def _serve_metrics(args: argparse.Namespace, suite: str, progress: Any) -> tuple[Any, Any, Any]:
    """Start the metrics server of ``run``: (monitor, server, progress callback to use)."""
    from vmkit.perf_bench import prometheus

    monitor = prometheus.SuiteMonitor(suite, forward=progress)
    try:
        collector = prometheus.BenchCollector(monitor, registry=None)
        server = prometheus.start_metrics_server(
            args.metrics_port, args.metrics_addr, collectors=[collector]
        )
    except (prometheus.MetricsUnavailableError, OSError) as exc:
        raise CliError(str(exc)) from exc
    print(f"perf-bench: serving metrics on {server.url}", file=sys.stderr, flush=True)
    return monitor, server, monitor


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="perf-bench", description="Benchmark VM runtimes with sound statistics."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_logging_options(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser("run", help="run a suite and report its metrics")
    run.add_argument("--suite", default="python", help="suite to run (default: python)")
    run.add_argument(
        "--bench",
        action="extend",
        nargs="+",
        default=[],
        metavar="NAME",
        help="run only these benchmarks",
    )
    run.add_argument(
        "--quick",
        action="store_true",
        help="a short run: 3 processes x 3 values (the vm suite: 2), 10 ms per value, small "
        "workloads",
    )
    run.add_argument("--format", choices=FORMATS, help=_FORMAT_HELP)
    run.add_argument("-o", "--output", metavar="FILE", help="write the report here, not stdout")
    run.add_argument(
        "--repeat",
        type=_positive_int,
        metavar="N",
        help="worker processes per benchmark (default 10; 3 with --quick)",
    )
    run.add_argument("--values", type=_positive_int, metavar="N", help="values per process")
    run.add_argument("--warmups", type=_non_negative_int, metavar="N", help="warm-ups per process")
    run.add_argument(
        "--min-time",
        type=_positive_float,
        metavar="SECONDS",
        help="minimum time per value of a calibrated benchmark",
    )
    run.add_argument(
        "--inline", action="store_true", help="run in this process instead of fresh workers"
    )
    run.add_argument("--seed", type=int, default=0, help="seed of the run order and bootstrap")
    run.add_argument("--quiet", action="store_true", help="no progress display")
    run.add_argument("--check", action="store_true", help="exit 1 if any target fails")
    run.add_argument(
        "--disable-jit",
        action="store_true",
        help="vm suite: measure the interpreter in the JIT's place, labelled as such "
        "(sets PERF_BENCH_DISABLE_JIT=1 for this run and its workers)",
    )
    add_metrics_options(run, serving="metrics (progress, then results) on this port")
    run.add_argument(
        "--metrics-linger",
        type=_non_negative_float,
        default=0.0,
        metavar="SECONDS",
        help="keep serving metrics this long after the run, so a scraper sees the results",
    )
    run.set_defaults(handler=_run)

    cmp_ = commands.add_parser(
        "compare", help="compare two JSON results; exit 1 on a significant regression"
    )
    cmp_.add_argument("base", metavar="BASE.json")
    cmp_.add_argument("new", metavar="NEW.json")
    cmp_.add_argument(
        "--alpha", type=_fraction, default=0.05, help="significance level (default 0.05)"
    )
    cmp_.add_argument(
        "--min-effect",
        type=float,
        default=0.05,
        metavar="FRACTION",
        help="smallest relative change of the median that counts (default 0.05)",
    )
    cmp_.add_argument(
        "--method",
        choices=("bootstrap", "processes", "values"),
        default="bootstrap",
        help="bootstrap: two-stage bootstrap interval of the ratio of medians must clear the "
        "minimum effect (default); processes: Mann-Whitney on per-process medians; values: "
        "Mann-Whitney on pooled values (too liberal, for comparison)",
    )
    cmp_.add_argument("--format", choices=FORMATS, help=_FORMAT_HELP)
    cmp_.add_argument("-o", "--output", metavar="FILE", help="write the report here, not stdout")
    cmp_.set_defaults(handler=_compare)

    show = commands.add_parser(
        "show", help="show a saved result again (text, CSV or JSON, with histograms)"
    )
    show.add_argument("result", metavar="RESULT.json", help="a result written by run --format json")
    show.add_argument(
        "--format",
        choices=(*FORMATS, "pyperf"),
        help=f"{_FORMAT_HELP}; pyperf: pyperf's JSON, for python -m pyperf compare_to",
    )
    show.add_argument(
        "--hist",
        action="store_true",
        help="with the text format, a histogram of each metric's values",
    )
    show.add_argument("-o", "--output", metavar="FILE", help="write the report here, not stdout")
    show.set_defaults(handler=_show)

    demo = commands.add_parser(
        "demo",
        help="the toolkit in one screen: a guest on every engine, then the VM suite's targets",
        description="Run a shipped guest program at two sizes on every async-executor engine "
        "(outputs checked), then the VM suite's quick run, and print each targeted figure "
        "beside its target. Exit 1 when a guest run or the suite fails; missed performance "
        "targets are reported, not failures (perf-bench run --suite vm --check gates on them).",
    )
    demo.add_argument(
        "--engines",
        nargs="+",
        choices=ENGINE_CHOICES,
        default=list(ENGINE_CHOICES),
        metavar="ENGINE",
        help=f"engines to run the guest on (default: all of {', '.join(ENGINE_CHOICES)})",
    )
    demo.add_argument(
        "--no-suite", action="store_true", help="only the guest runs, not the VM suite"
    )
    demo.set_defaults(handler=_demo)

    plot = commands.add_parser(
        "plot", help="plot a result's distributions, or two results side by side"
    )
    plot.add_argument("results", nargs="+", metavar="RESULT.json", help="one or two JSON results")
    plot.add_argument("-o", "--output", required=True, metavar="FILE", help="image to write")
    plot.set_defaults(handler=_plot)

    list_ = commands.add_parser("list", help="list suites, or the benchmarks of one suite")
    list_.add_argument("--suite", help="list this suite's benchmarks and targets")
    list_.set_defaults(handler=_list)
    return parser


_FORMAT_HELP = "output format (default: json for -o *.json, csv for -o *.csv, else text)"


def _default_format(args: argparse.Namespace) -> None:
    """Without ``--format``, take the format the ``-o`` file's suffix names (``-o base.json``
    writes JSON that ``compare`` and ``show`` read back), else text."""
    if getattr(args, "format", "text") is not None:
        return
    suffix = Path(args.output).suffix.lower() if getattr(args, "output", None) else ""
    args.format = {".json": "json", ".csv": "csv"}.get(suffix, "text")


def _check_output(output: str | None) -> None:
    """Refuse, before any work, an output file that cannot be written: a missing or
    unwritable directory, a directory in its place, or a read-only file."""
    if output is None:
        return
    path = Path(output)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise CliError(f"cannot write {output}: it is a directory")
    if not parent.is_dir():
        raise CliError(f"cannot write {output}: no directory {parent}")
    if path.exists():
        writable = os.access(path, os.W_OK)
    else:
        writable = os.access(parent, os.W_OK | os.X_OK)
    if not writable:
        raise CliError(f"cannot write {output}: permission denied")


def _emit(text: str, output: str | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror or exc}") from exc


def _progress_printer(quiet: bool) -> tuple[Callable[[str, int, int], None] | None, Any]:
    if quiet:
        return None, None
    from rich.console import Console
    from rich.progress import Progress

    console = Console(stderr=True)
    if not console.is_terminal:

        def line(description: str, done: int, total: int) -> None:
            if done < total:
                print(f"[{done + 1}/{total}] {description}", file=sys.stderr, flush=True)

        return line, None
    bar = Progress(console=console, transient=True)
    task = bar.add_task("starting", total=None)

    def update(description: str, done: int, total: int) -> None:
        bar.update(task, description=description, completed=done, total=total)

    return update, bar


def _run_options(args: argparse.Namespace, quick_overrides: dict[str, Any]) -> Any:
    """The RunOptions the command line asks for (``--quick`` starts from the quick defaults)."""
    from vmkit.perf_bench._runner import RunOptions

    overrides: dict[str, Any] = {"seed": args.seed}
    for option, field_name in (
        ("repeat", "processes"),
        ("values", "values"),
        ("warmups", "warmups"),
        ("min_time", "min_time_s"),
    ):
        value = getattr(args, option)
        if value is not None:
            overrides[field_name] = value
    if args.inline:
        overrides["isolation"] = "inline"
    if args.quick:
        return RunOptions.quick_defaults(**{**quick_overrides, **overrides})
    return RunOptions(**overrides)


def _write_result(args: argparse.Namespace, result: Any) -> None:
    """The result in the format asked for, to ``--output`` or the terminal."""
    from vmkit.perf_bench._serialize import to_csv

    if args.format == "json":
        _emit(json.dumps(result.to_json(), indent=2) + "\n", args.output)
    elif args.format == "csv":
        _emit(to_csv(result.benchmarks), args.output)
    elif args.output is not None:
        _emit(result.report(), args.output)
    else:
        result.print()


def _run(args: argparse.Namespace) -> int:
    from vmkit.perf_bench._registry import SuiteUnavailableError, load_suite
    from vmkit.perf_bench._runner import BenchmarkError
    from vmkit.perf_bench._suite import UnknownBenchmarkError
    from vmkit.perf_bench._targets import Outcome

    _check_output(args.output)
    if args.disable_jit:
        # Workers inherit the environment, so every process of the run sees the switch.
        os.environ["PERF_BENCH_DISABLE_JIT"] = "1"
    try:
        suite = load_suite(args.suite)
    except SuiteUnavailableError as exc:
        raise CliError(str(exc)) from exc
    options = _run_options(args, suite.quick_overrides)
    progress, bar = _progress_printer(args.quiet)
    monitor = server = None
    if args.metrics_port is not None:
        monitor, server, progress = _serve_metrics(args, suite.name, progress)
    try:
        if bar is not None:
            with bar:
                result = suite.run(args.bench, options, progress=progress)
        else:
            result = suite.run(args.bench, options, progress=progress)
        if monitor is not None:
            monitor.record(result)
            if args.metrics_linger > 0:
                time.sleep(args.metrics_linger)  # real wait: serve results to a scraper
    except (UnknownBenchmarkError, BenchmarkError) as exc:
        raise CliError(str(exc)) from exc
    finally:
        if server is not None:
            server.stop()
    _write_result(args, result)
    if args.check and result.summary().outcome is Outcome.FAIL:
        return 1
    return 0


def _compare(args: argparse.Namespace) -> int:
    from vmkit.perf_bench._compare import compare
    from vmkit.perf_bench._load import ResultFileError, load_result
    from vmkit.perf_bench._report import print_comparison, render_comparison
    from vmkit.perf_bench._serialize import comparison_to_csv, comparison_to_json

    if args.min_effect < 0:
        raise CliError(f"--min-effect cannot be negative, got {args.min_effect}")
    _check_output(args.output)
    try:
        base = load_result(args.base)
        new = load_result(args.new)
    except ResultFileError as exc:
        raise CliError(str(exc)) from exc
    if base.suite != new.suite:
        raise CliError(
            f"{args.base} holds the {base.suite!r} suite and {args.new} the {new.suite!r} "
            f"suite: compare two results of the same suite"
        )
    comparison = compare(
        base, new, alpha=args.alpha, min_effect=args.min_effect, method=args.method
    )
    if args.format == "json":
        _emit(json.dumps(comparison_to_json(comparison), indent=2) + "\n", args.output)
    elif args.format == "csv":
        _emit(comparison_to_csv(comparison), args.output)
    elif args.output is not None:
        _emit(render_comparison(comparison, args.base, args.new), args.output)
    else:
        print_comparison(comparison, args.base, args.new)
    return 1 if comparison.regressions else 0


def _show(args: argparse.Namespace) -> int:
    from vmkit.perf_bench._hist import text_histogram
    from vmkit.perf_bench._load import ResultFileError, load_result

    _check_output(args.output)
    try:
        result = load_result(args.result)
    except ResultFileError as exc:
        raise CliError(str(exc)) from exc
    if args.format == "pyperf":
        from vmkit.perf_bench._pyperf import to_pyperf

        data, left_out = to_pyperf(result)
        if left_out:
            log.warning("pyperf_export_left_out", metrics=left_out, why="pyperf has no such unit")
        _emit(json.dumps(data) + "\n", args.output)
        return 0
    if not args.hist or args.format != "text":
        _write_result(args, result)
        return 0
    parts = [result.report()]
    for bench in result.benchmarks:
        for metric in bench.metrics:
            if metric.values:
                parts.append(f"\n{bench.name} / {metric.name} ({len(metric.values)} values)\n")
                parts.append(text_histogram(metric.values, metric.unit))
    _emit("".join(parts), args.output)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from vmkit.perf_bench._demo import print_demo, run_guests
    from vmkit.perf_bench._layout import terminal_console
    from vmkit.perf_bench._registry import SuiteUnavailableError, load_suite
    from vmkit.perf_bench._runner import BenchmarkError, RunOptions

    progress, bar = _progress_printer(quiet=False)
    result, suite_error = None, ""
    with bar if bar is not None else contextlib.nullcontext():
        demo = run_guests(args.engines, progress=progress)
        if not args.no_suite:
            try:
                suite = load_suite("vm")
                options = RunOptions.quick_defaults(**suite.quick_overrides)
                result = suite.run([], options, progress=progress)
            except (SuiteUnavailableError, BenchmarkError) as exc:
                suite_error = str(exc)
    console, width = terminal_console()
    return print_demo(console, demo, result, suite_error, width)


def _plot(args: argparse.Namespace) -> int:
    from vmkit.perf_bench._load import ResultFileError, load_result
    from vmkit.perf_bench._plot import (
        PlotUnavailableError,
        plot_comparison,
        plot_distributions,
    )

    if len(args.results) > 2:
        raise CliError(f"plot takes one result or two (base and new), got {len(args.results)}")
    _check_output(args.output)
    try:
        results = [load_result(path) for path in args.results]
        if len(results) == 1:
            path = plot_distributions(results[0], args.output)
        else:
            path = plot_comparison(results[0], results[1], args.output)
    except (ResultFileError, PlotUnavailableError, ValueError, OSError) as exc:
        raise CliError(str(exc)) from exc
    print(f"wrote {path}", file=sys.stderr)
    return 0


def _list(args: argparse.Namespace) -> int:
    from vmkit.perf_bench._registry import (
        SuiteUnavailableError,
        available_suites,
        load_suite,
    )

    if args.suite is None:
        for info in available_suites():
            state = "available" if info.available else f"not available ({info.reason})"
            print(f"{info.name:<10} {state}: {info.description}")
        return 0
    try:
        suite = load_suite(args.suite)
    except SuiteUnavailableError as exc:
        raise CliError(str(exc)) from exc
    for bench in suite.benchmarks:
        when = f" (on request: --bench {bench.name})" if suite.on_request(bench.name) else ""
        print(f"{bench.name}{when}: {bench.description}")
        for metric, target in bench.targets.items():
            reference = f", seed {target.reference}" if target.reference else ""
            print(f"    {metric}: {target.describe()}{reference}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``perf-bench`` console script; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _default_format(args)
    configure_logging(json=args.log_json, level=args.log_level)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(handler(args))
    except CliError as exc:
        print(f"perf-bench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("perf-bench: interrupted", file=sys.stderr)
        return 130
