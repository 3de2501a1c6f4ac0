"""Logging: silent as a library, readable or JSON on the command line.

Library modules ask ``get_logger(__name__)`` and log structured events: an event name and
key-value fields. Every event goes to the standard ``logging`` module under the module's name,
so the application decides what is shown. With nothing configured, Python's last-resort
handler prints warnings and errors to stderr and drops the rest; nothing is ever written to
stdout, where a guest's or a report's own output goes.

Events pass through structlog on their way (so context bound with ``structlog.contextvars``
is merged in), but structlog is imported only when an event is actually emitted: importing it
costs about 0.2 s (it pulls in rich), which is most of the start-up budget of a run that logs
nothing. A disabled level costs one ``Logger.isEnabledFor`` call.

``configure_logging`` is for command-line entry points only: it puts one handler on the root
logger that renders every event to stderr, readable on a terminal or one JSON object per line.
``capture_events`` collects events for tests.

This file is the same in the three vmkit packages, byte for byte (a test in
``integration-tests`` compares them): each wheel must install and work alone, so none can
import another's copy, and copies a test pins cannot drift apart.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

    from structlog.typing import EventDict, WrappedLogger

__all__ = [
    "LOG_LEVELS",
    "EventLogger",
    "add_logging_options",
    "capture_events",
    "configure_logging",
    "get_logger",
]

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

# LogRecord attributes that carry an event; a formatter from any of the three packages reads
# them by name, so records from one package render in another's command line.
_EVENT = "event_name"
_FIELDS = "event_fields"


class _EventMessage:
    """A record's message: the event and its fields as ``event k=v ...``, rendered only when a
    plain stdlib handler (the last-resort one, say) asks for it."""

    __slots__ = ("event", "fields")

    def __init__(self, event: str, fields: dict[str, Any]) -> None:
        self.event = event
        self.fields = fields

    def __str__(self) -> str:
        return " ".join([self.event, *(f"{k}={v}" for k, v in self.fields.items())])


def _to_stdlib(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> dict[str, Any]:
    """The last structlog processor: keyword arguments for the stdlib logger's method."""
    fields = dict(event_dict)
    event = str(fields.pop("event", ""))
    exc_info = fields.pop("exc_info", None)
    return {
        "msg": _EventMessage(event, fields),
        "extra": {_EVENT: event, _FIELDS: fields},
        "exc_info": exc_info,
    }


class EventLogger:
    """A structured logger bound to a stdlib logger; see the module's docstring."""

    __slots__ = ("_bound", "_context", "_logger")

    def __init__(self, logger: logging.Logger, context: dict[str, Any] | None = None) -> None:
        self._logger = logger
        self._context = context or {}
        self._bound: Any = None

    def bind(self, **fields: Any) -> EventLogger:
        """A logger that adds ``fields`` to every event."""
        return EventLogger(self._logger, {**self._context, **fields})

    def is_enabled_for(self, level: int) -> bool:
        """Whether an event at ``level`` would be emitted (ask once, outside a hot loop)."""
        return self._logger.isEnabledFor(level)

    def debug(self, event: str, **fields: Any) -> None:
        """Log ``event`` at DEBUG."""
        if self._logger.isEnabledFor(logging.DEBUG):
            self._emit("debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        """Log ``event`` at INFO."""
        if self._logger.isEnabledFor(logging.INFO):
            self._emit("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        """Log ``event`` at WARNING."""
        if self._logger.isEnabledFor(logging.WARNING):
            self._emit("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        """Log ``event`` at ERROR."""
        if self._logger.isEnabledFor(logging.ERROR):
            self._emit("error", event, fields)

    def exception(self, event: str, **fields: Any) -> None:
        """Log ``event`` at ERROR with the exception being handled."""
        if self._logger.isEnabledFor(logging.ERROR):
            self._emit("error", event, {"exc_info": True, **fields})

    def _emit(self, method: str, event: str, fields: dict[str, Any]) -> None:
        if self._bound is None:
            import structlog

            self._bound = structlog.wrap_logger(
                self._logger,
                processors=[structlog.contextvars.merge_contextvars, _to_stdlib],
                wrapper_class=structlog.stdlib.BoundLogger,
                context_class=dict,
                **self._context,
            )
        getattr(self._bound, method)(event, **fields)


def get_logger(name: str) -> EventLogger:
    """The structured logger for module ``name`` (library code's only way to log)."""
    return EventLogger(logging.getLogger(name))


class _EventFormatter(logging.Formatter):
    """Renders any record as an event: console text, or one JSON object per line."""

    def __init__(self, *, json: bool, colors: bool) -> None:
        super().__init__()
        self._json = json
        self._colors = colors

    def format(self, record: logging.LogRecord) -> str:
        # Imported here: most processes never emit a record, and start-up is measured.
        import json as _json
        from datetime import UTC, datetime

        event = getattr(record, _EVENT, None)
        fields: dict[str, Any] = getattr(record, _FIELDS, None) or {}
        if event is None:  # a record from plain stdlib logging (another library)
            event = record.getMessage()
        stamp = datetime.fromtimestamp(record.created, UTC)
        level = record.levelname.lower()
        exception = self.formatException(record.exc_info) if record.exc_info else None
        if self._json:
            entry = {"timestamp": stamp.isoformat(), "level": level, "logger": record.name}
            entry.update(fields)
            entry["event"] = event
            if exception:
                entry["exception"] = exception
            return _json.dumps(entry, default=str)
        tag = f"[{level:<8}]"
        if self._colors:
            tag = f"\x1b[{_LEVEL_COLORS.get(level, '0')}m{tag}\x1b[0m"
        pairs = " ".join(f"{k}={v}" for k, v in fields.items())
        line = f"{stamp:%Y-%m-%d %H:%M:%S} {tag} {event:<30} {pairs}".rstrip()
        return f"{line}\n{exception}" if exception else line


_LEVEL_COLORS = {"debug": "2", "info": "32", "warning": "33", "error": "31", "critical": "1;31"}


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of each record, so a replaced stderr
    (pytest's capture, a redirect) never leaves the handler writing to a closed file."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(*, json: bool = False, level: str = "warning") -> None:
    """Render every event at ``level`` or above to stderr (for command-line entry points)."""
    numeric_level = logging.getLevelName(level.upper())
    if not isinstance(numeric_level, int):
        raise ValueError(f"unknown log level {level!r}; choose one of {', '.join(LOG_LEVELS)}")
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(old)
    handler = _StderrHandler()
    handler.setFormatter(_EventFormatter(json=json, colors=not json and sys.stderr.isatty()))
    root.addHandler(handler)
    root.setLevel(numeric_level)


def add_logging_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--log-json`` and ``--log-level``, the arguments of :func:`configure_logging`."""
    parser.add_argument(
        "--log-json", action="store_true", help="log events as JSON lines on stderr"
    )
    parser.add_argument(
        "--log-level", choices=LOG_LEVELS, default="warning", help="lowest level of events to log"
    )


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.events: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        entry: dict[str, Any] = dict(getattr(record, _FIELDS, None) or {})
        entry["event"] = getattr(record, _EVENT, None) or record.getMessage()
        entry["log_level"] = record.levelname.lower()
        entry["logger"] = record.name
        self.events.append(entry)


@contextmanager
def capture_events(logger: str = "vmkit") -> Iterator[list[dict[str, Any]]]:
    """Collect every event under ``logger`` (all levels) as dicts with ``event``,
    ``log_level``, ``logger`` and the event's fields, for tests."""
    target = logging.getLogger(logger)
    collector = _Collector()
    old_level = target.level
    target.addHandler(collector)
    target.setLevel(logging.DEBUG)
    try:
        yield collector.events
    finally:
        target.removeHandler(collector)
        target.setLevel(old_level)
