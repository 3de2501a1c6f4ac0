"""The ``coroutine-scheduler`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from coroutine_scheduler.__about__ import __version__
from coroutine_scheduler._logging import LOG_LEVELS, configure_logging

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="coroutine-scheduler", description="Run coroutines on virtual CPUs with work stealing."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--log-json", action="store_true", help="log events as JSON lines on stderr"
    )
    parser.add_argument(
        "--log-level", choices=LOG_LEVELS, default="warning", help="lowest level of events to log"
    )
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


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
