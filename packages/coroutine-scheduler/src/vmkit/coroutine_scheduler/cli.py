"""The ``coroutine-scheduler`` command line."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Sequence

from vmkit.coroutine_scheduler.__about__ import __version__
from vmkit.coroutine_scheduler._core._errors import SchedulerError
from vmkit.coroutine_scheduler._core._scheduler import BACKENDS, Scheduler
from vmkit.coroutine_scheduler._logging import add_logging_options, configure_logging
from vmkit.coroutine_scheduler._metrics_server import add_metrics_options
from vmkit.coroutine_scheduler._report import format_stats_table, wrap
from vmkit.coroutine_scheduler._workload import populate

__all__ = ["build_parser", "main"]


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number between 0 and 1, got {text!r}"
        ) from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected seconds > 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="coroutine-scheduler", description="Run coroutines on virtual CPUs with work stealing."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_logging_options(parser)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="run a synthetic workload and print per-vCPU statistics",
        description=(
            "Run CPU work in slices plus wait/notify pairs on virtual CPUs and print a per-vCPU "
            "statistics table."
        ),
    )
    demo.add_argument("--vcpus", type=_count, default=4, help="virtual CPUs (default 4)")
    demo.add_argument(
        "--coroutines", type=_count, default=200, help="coroutines to run (default 200)"
    )
    demo.add_argument("--backend", choices=BACKENDS, default="inline", help="default inline")
    demo.add_argument(
        "--skew",
        type=_share,
        default=0.0,
        help="share of the coroutines placed on vCPU 0 at start, 0..1 (default 0: spread evenly)",
    )
    demo.add_argument("--seed", type=int, default=1, help="seed of random choices (default 1)")
    demo.add_argument("--slices", type=_count, default=50, help="slices per coroutine (default 50)")
    demo.add_argument("--work", type=_count, default=200, help="work units per slice (default 200)")
    demo.add_argument(
        "--no-steal", action="store_true", help="disable work stealing (to see the imbalance)"
    )
    demo.add_argument(
        "--timeout", type=_seconds, default=300.0, help="give up after this many seconds"
    )
    add_metrics_options(demo, serving="metrics on this port while the demo runs")
    demo.set_defaults(handler=_demo)
    return parser


def _terminal_width() -> int | None:
    """The terminal's width, or None when stdout is a file or pipe (the complete layout)."""
    if not sys.stdout.isatty():
        return None
    return shutil.get_terminal_size().columns


def _demo(args: argparse.Namespace) -> int:
    scheduler = Scheduler(
        args.vcpus, backend=args.backend, seed=args.seed, work_stealing=not args.no_steal
    )
    cos = populate(scheduler, args.coroutines, skew=args.skew, slices=args.slices, work=args.work)
    paired = sum(1 for c in cos if c.name.startswith("pair"))
    width = _terminal_width()
    print(
        wrap(
            f"demo: {len(cos)} coroutines on {args.vcpus} vCPUs ({len(cos) - paired} CPU "
            f"workers, {paired} in wait/notify pairs)",
            width,
        ),
        wrap(
            f"backend {args.backend}, seed {args.seed}, skew {args.skew:.2f}, "
            f"stealing {'off' if args.no_steal else 'on'}",
            width,
        ),
        sep="\n",
    )
    server = None
    if args.metrics_port is not None:
        from vmkit.coroutine_scheduler import prometheus  # only when metrics are asked for

        try:
            collector = prometheus.SchedulerCollector(scheduler, registry=None)
            server = prometheus.start_metrics_server(
                args.metrics_port, args.metrics_addr, collectors=[collector]
            )
        except (prometheus.MetricsUnavailableError, OSError) as exc:
            print(f"coroutine-scheduler demo: {exc}", file=sys.stderr)
            scheduler.close()
            return 69  # EX_UNAVAILABLE
        print(f"coroutine-scheduler demo: serving metrics on {server.url}", file=sys.stderr)
    started = time.perf_counter()
    try:
        scheduler.run(timeout=args.timeout)
    except SchedulerError as exc:
        print(f"coroutine-scheduler demo: {exc}", file=sys.stderr)
        scheduler.close()
        return 1
    finally:
        if server is not None:
            server.stop()
    elapsed = time.perf_counter() - started
    stats = scheduler.stats()
    print(f"finished {stats.finished}, failed {stats.failed} in {elapsed:.3f} s\n")
    print(format_stats_table(stats, width))
    return 0 if stats.failed == 0 else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``coroutine-scheduler`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(json=args.log_json, level=args.log_level)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    return int(handler(args))
