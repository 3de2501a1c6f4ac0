"""Logging set-up for this package's command-line entry point.

Library code never calls this: it only asks ``structlog.get_logger(__name__)`` for a logger.
The command line configures structlog once, before doing any work, so that events are readable
on a terminal and machine-readable (one JSON object per line) with ``--log-json``.
"""

from __future__ import annotations

import logging
import sys

import structlog

__all__ = ["LOG_LEVELS", "configure_logging"]

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def configure_logging(*, json: bool = False, level: str = "warning") -> None:
    """Route structlog events to stderr, as JSON lines or as coloured console output."""
    numeric_level = logging.getLevelName(level.upper())
    if not isinstance(numeric_level, int):
        raise ValueError(f"unknown log level {level!r}; choose one of {', '.join(LOG_LEVELS)}")
    renderer: structlog.typing.Processor
    if json:
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
