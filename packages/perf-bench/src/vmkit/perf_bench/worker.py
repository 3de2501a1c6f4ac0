"""Worker process entry point: ``python -m vmkit.perf_bench.worker`` measures one benchmark.

The parent (``vmkit.perf_bench._runner``) starts one worker per benchmark per round. The worker
rebuilds the suite from its import spec, runs warm-ups and values, writes them as JSON to
``--output`` (not stdout, so a benchmark that prints cannot corrupt the result) and exits 0. On
failure it prints one line to stderr, which the parent reports, and exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run one benchmark in this process as the parent asked; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m vmkit.perf_bench.worker")
    parser.add_argument("--suite-spec", required=True)
    parser.add_argument("--bench", required=True)
    parser.add_argument("--process", type=int, default=0)
    parser.add_argument("--loops", type=int, default=0)
    parser.add_argument("--warmups", type=int, default=1)
    parser.add_argument("--values", type=int, default=3)
    parser.add_argument("--min-time-ns", type=int, default=100_000_000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)

    from vmkit.perf_bench._logging import configure_logging

    # An entry point: without this, structlog's default prints every debug event (the engines
    # log per guest run) to stdout; warnings and errors still reach stderr.
    configure_logging(level="warning")
    from vmkit.perf_bench._registry import SuiteUnavailableError, load_suite_spec
    from vmkit.perf_bench._runner import BenchmarkError, run_process
    from vmkit.perf_bench._suite import UnknownBenchmarkError

    try:
        suite = load_suite_spec(args.suite_spec)
        benchmark = suite.get(args.bench)
        run = run_process(
            benchmark,
            process=args.process,
            loops=args.loops,
            warmups=args.warmups,
            values=args.values,
            min_time_ns=args.min_time_ns,
            quick=args.quick,
        )
    except (SuiteUnavailableError, UnknownBenchmarkError, BenchmarkError) as exc:
        print(f"perf-bench worker: {exc}", file=sys.stderr)
        return 1
    Path(args.output).write_text(json.dumps(run.to_dict()), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
