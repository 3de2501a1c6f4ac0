"""Plain-text rendering of statistics snapshots (used by the ``demo`` command).

Design note: the per-vCPU table is one table when it fits the width asked for; otherwise it is
split into the work columns and the stealing columns, each keyed by the vCPU, so nothing is cut
or wrapped at 80 columns. ``width=None`` (files, pipes, CI logs) always gives the single table.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence

from vmkit.coroutine_scheduler._core._stats import SchedulerStats, VCPUStats

__all__ = ["format_stats_table", "wrap"]

_Cell = Callable[[VCPUStats], str]

_WORK: tuple[tuple[str, _Cell], ...] = (
    ("executions", lambda s: str(s.executions)),
    ("switches", lambda s: str(s.context_switches)),
    ("busy ms", lambda s: f"{s.busy_ns / 1e6:.2f}"),
    ("idle ms", lambda s: f"{s.idle_ns / 1e6:.2f}"),
    ("util %", lambda s: f"{100 * s.utilization:.1f}"),
)
_STEALING: tuple[tuple[str, _Cell], ...] = (
    ("steals in", lambda s: str(s.steals_in)),
    ("steals out", lambda s: str(s.steals_out)),
    ("attempts", lambda s: str(s.steal_attempts)),
    ("global", lambda s: str(s.global_pulls)),
    ("spills", lambda s: str(s.spills)),
)


def _table(stats: SchedulerStats, columns: Sequence[tuple[str, _Cell]]) -> list[str]:
    """Right-aligned columns as wide as their widest cell, a rule, and a totals row."""
    labelled = [(str(v.vcpu), v) for v in stats.vcpus]
    rows = [[label, *(cell(s) for _n, cell in columns)] for label, s in labelled]
    total = ["total", *(cell(stats.totals) for _n, cell in columns)]
    header = ["vcpu", *(name for name, _c in columns)]
    widths = [max(len(r[i]) for r in (header, *rows, total)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True))

    rule = "-" * len(line(header))
    return [line(header), rule, *map(line, rows), rule, line(total)]


def wrap(text: str, width: int | None) -> str:
    """Prose wrapped at ``width`` columns (None: left as one line)."""
    return text if width is None else textwrap.fill(text, width)


def format_stats_table(stats: SchedulerStats, width: int | None = None) -> str:
    """A per-vCPU table with a totals row and a load-imbalance line, laid out for ``width``
    columns (None: the single complete table, for files and logs)."""
    lines = _table(stats, _WORK + _STEALING)
    if width is not None and len(lines[0]) > width:
        lines = [*_table(stats, _WORK), "", *_table(stats, _STEALING)]
    imb = stats.imbalance
    lines.append(
        wrap(
            f"load imbalance of busy time: CV {imb.cv:.3f}, max/mean {imb.max_over_mean:.3f}, "
            f"variance {imb.variance:.3g} ns^2",
            width,
        )
    )
    return "\n".join(lines)
