"""Logging: silent as a library, readable or JSON on the command line.

Library modules ask ``get_logger(__name__)`` and log structured events: an event name and
key-value fields. Every event goes to the standard ``logging`` module under the module's name,
so the application decides what is shown. With nothing configured, Python's last-resort
handler prints warnings and errors to stderr and drops the rest; nothing is ever written to
stdout, where a guest's or a report's own output goes.

Events pass through structlog on their way (so context bound with ``structlog.contextvars``
is merged in), but structlog is imported only when an event is actually emitted: importing it
costs about 0.2 s (it pulls in rich), which is most of the start-up budget of a run that logs
nothing. ``logging`` itself (with traceback, tokenize and textwrap, about 4 ms) is imported only
for an event that may be emitted: until it is imported nothing can have configured it, so the
level ``configure_logging`` kept (or Python's default, warnings) decides alone, and
``configure_logging`` applies its settings when logging arrives. Afterwards a disabled level
costs one ``Logger.isEnabledFor`` call.

``configure_logging`` is for command-line entry points only: it puts one handler on the root
logger that renders every event to stderr, readable on a terminal or one JSON object per line.
``capture_events`` collects events for tests.

This file is the same in the three vmkit packages, byte for byte (a test in
``integration-tests`` compares them): each wheel must install and work alone, so none can
import another's copy, and copies a test pins cannot drift apart.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse
    import logging

    from structlog.typing import EventDict, WrappedLogger

__all__ = [
    "LOG_LEVELS",
    "EventLogger",
    "add_logging_options",
    "capture_events",
    "configure_logging",
    "get_logger",
    "stdlib_logger",
]

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

# The logging module's level numbers, so a logger can test a level before logging is imported.
_DEBUG, _INFO, _WARNING, _ERROR = 10, 20, 30, 40
_LEVEL_NUMBERS = dict(zip(LOG_LEVELS, (_DEBUG, _INFO, _WARNING, _ERROR, 50), strict=True))

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

    __slots__ = ("_bound", "_context", "_logger", "_name")

    def __init__(self, name: str, context: dict[str, Any] | None = None) -> None:
        self._name = name
        self._context = context or {}
        self._logger: logging.Logger | None = None
        self._bound: Any = None

    def _stdlib(self) -> logging.Logger:
        """The stdlib logger, looked up (importing logging) at the first use."""
        if self._logger is None:
            self._logger = stdlib_logger(self._name)
        return self._logger

    def _enabled(self, level: int) -> bool:
        logger = self._logger
        if logger is None:
            if "logging" not in sys.modules and level < (_pending[1] if _pending else _WARNING):
                # Nothing can have configured logging yet: the pending level (or Python's
                # default, warnings) decides, and a disabled event costs no import.
                return False
            logger = self._stdlib()
        return logger.isEnabledFor(level)

    def bind(self, **fields: Any) -> EventLogger:
        """A logger that adds ``fields`` to every event."""
        return EventLogger(self._name, {**self._context, **fields})

    def is_enabled_for(self, level: int) -> bool:
        """Whether an event at ``level`` would be emitted (ask once, outside a hot loop)."""
        return self._enabled(level)

    def debug(self, event: str, **fields: Any) -> None:
        """Log ``event`` at DEBUG."""
        if self._enabled(_DEBUG):
            self._emit("debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        """Log ``event`` at INFO."""
        if self._enabled(_INFO):
            self._emit("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        """Log ``event`` at WARNING."""
        if self._enabled(_WARNING):
            self._emit("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        """Log ``event`` at ERROR."""
        if self._enabled(_ERROR):
            self._emit("error", event, fields)

    def exception(self, event: str, **fields: Any) -> None:
        """Log ``event`` at ERROR with the exception being handled."""
        if self._enabled(_ERROR):
            self._emit("error", event, {"exc_info": True, **fields})

    def _emit(self, method: str, event: str, fields: dict[str, Any]) -> None:
        if self._bound is None:
            import structlog

            self._bound = structlog.wrap_logger(
                self._stdlib(),
                processors=[structlog.contextvars.merge_contextvars, _to_stdlib],
                wrapper_class=structlog.stdlib.BoundLogger,
                context_class=dict,
                **self._context,
            )
        getattr(self._bound, method)(event, **fields)


def get_logger(name: str) -> EventLogger:
    """The structured logger for module ``name`` (library code's only way to log)."""
    return EventLogger(name)


#: What ``configure_logging`` was asked before ``logging`` was imported: (json, level).
_pending: tuple[bool, int] | None = None


def stdlib_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)``, first applying a configuration that waited for logging
    (an application tuning another library's loggers goes through here)."""
    import logging

    global _pending
    if _pending is not None:
        json, level = _pending
        _pending = None
        _install(json, level)
    return logging.getLogger(name)


_LEVEL_COLORS = {"debug": "2", "info": "32", "warning": "33", "error": "31", "critical": "1;31"}


_classes: tuple[type[Any], type[Any]] | None = None


def _stdlib_classes() -> tuple[type[Any], type[Any]]:
    """The formatter and handler classes, made once ``logging`` is imported (they subclass its
    classes, so they cannot exist before it)."""
    global _classes
    if _classes is not None:
        return _classes
    import logging

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

    _classes = (_EventFormatter, _StderrHandler)
    return _classes


def configure_logging(*, json: bool = False, level: str = "warning") -> None:
    """Render every event at ``level`` or above to stderr (for command-line entry points).

    Until something logs (and so imports ``logging``), the settings are only kept: a run that
    logs nothing never imports it."""
    global _pending
    numeric_level = _LEVEL_NUMBERS.get(level.lower())
    if numeric_level is None:
        raise ValueError(f"unknown log level {level!r}; choose one of {', '.join(LOG_LEVELS)}")
    if "logging" in sys.modules:
        _pending = None
        _install(json, numeric_level)
    else:
        _pending = (json, numeric_level)


def _install(json: bool, numeric_level: int) -> None:
    import logging

    formatter_class, handler_class = _stdlib_classes()
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, handler_class)]:
        root.removeHandler(old)
    handler = handler_class()
    handler.setFormatter(formatter_class(json=json, colors=not json and sys.stderr.isatty()))
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


@contextmanager
def capture_events(logger: str = "vmkit") -> Iterator[list[dict[str, Any]]]:
    """Collect every event under ``logger`` (all levels) as dicts with ``event``,
    ``log_level``, ``logger`` and the event's fields, for tests."""
    import logging

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

    stdlib_logger(logger)  # a configuration still waiting for logging applies first
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
