"""Tables that fit the width they are printed at.

Design note: a report offers its layouts from the most complete to the most compact; the first
whose natural width (every cell on one line) fits is used, so a wide terminal sees every column
and a narrow one sees fewer, with secondary figures stacked under the primary ones instead of
cut. Files, pipes and CI logs get the complete layout at its natural width: nothing there is
folded or cut, whatever the width of the machine that wrote it. The verdict columns are never
wrapped; when even the most compact layout is too wide, rich folds the free-text columns.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence

from rich import box
from rich.console import Console
from rich.table import Table

__all__ = [
    "COMPACT_BOX",
    "FILE_WIDTH",
    "UNLIMITED",
    "Footnotes",
    "natural_width",
    "print_fitted",
    "render_plain",
    "terminal_console",
]

UNLIMITED = 10_000
"""A console width no table reaches: what a table measures at it is its natural width."""

FILE_WIDTH = 160
"""Where prose wraps in files, pipes and CI logs (tables there keep their natural width)."""

COMPACT_BOX = box.SIMPLE_HEAD
"""Rules under the header and between sections only: no vertical lines to spend columns on."""


def natural_width(table: Table) -> int:
    """Columns the table takes with every cell on one line."""
    console = Console(width=UNLIMITED, color_system=None, force_terminal=False)
    return console.measure(table).maximum


def print_fitted(
    console: Console, layouts: Sequence[Callable[[], Table]], width: int | None
) -> None:
    """Print the first layout whose natural width fits ``width``, or the last one if none does.

    ``width=None`` means a file or pipe: the first (complete) layout at its natural width, never
    folded or cut, while the prose around it wraps at the console's width.
    """
    table = layouts[0]()
    if width is None:
        console.print(table, width=max(console.width, natural_width(table)), crop=False)
        return
    for build in layouts[1:]:
        if natural_width(table) <= width:
            break
        table = build()
    console.print(table)


def render_plain(print_to: Callable[[Console], None], width: int | None) -> str:
    """What ``print_to`` prints, as plain text laid out for ``width`` (None: for files)."""
    console = Console(
        file=io.StringIO(),
        width=FILE_WIDTH if width is None else width,
        color_system=None,
        force_terminal=False,
    )
    print_to(console)
    text: str = console.file.getvalue()  # type: ignore[attr-defined]
    return "\n".join(line.rstrip() for line in text.split("\n"))


def terminal_console() -> tuple[Console, int | None]:
    """A console for stdout and the width to lay reports out at (None when not a terminal)."""
    console = Console()
    if console.is_terminal:
        return console, console.width
    return Console(width=FILE_WIDTH), None


_MARKS = "¹²³⁴⁵⁶⁷⁸⁹"


def warning_kind(warning: str) -> str:
    """A warning's kind: its text up to the first colon or semicolon ("unstable")."""
    return warning.split(":", 1)[0].split(";", 1)[0].strip()


class Footnotes:
    """Warnings as footnotes: one mark per kind of warning beside each metric's verdict, and one
    line per kind under the table, so a noisy run stays readable at any width."""

    def __init__(self, warnings: Iterable[tuple[str, str]]) -> None:
        self._kinds: dict[str, list[tuple[str, str]]] = {}
        for subject, warning in warnings:
            self._kinds.setdefault(warning_kind(warning), []).append((subject, warning))
        self._marks = {kind: _MARKS[min(i, len(_MARKS) - 1)] for i, kind in enumerate(self._kinds)}

    def marks(self, warnings: Iterable[str]) -> str:
        """The marks of these warnings, to write beside a verdict."""
        return "".join(dict.fromkeys(self._marks[warning_kind(w)] for w in warnings))

    def lines(self) -> list[str]:
        """One line per kind: its mark, how many metrics, and the first one's text as example."""
        lines = []
        for kind, found in self._kinds.items():
            subject, warning = found[0]
            detail = warning.removeprefix(kind).lstrip(":; ")
            count = f"{len(found)} metrics" if len(found) > 1 else "1 metric"
            lines.append(f"{self._marks[kind]} {kind} ({count}), e.g. {subject}: {detail}")
        return lines
