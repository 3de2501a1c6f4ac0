"""Plain-text rendering of statistics snapshots (used by the ``demo`` command)."""

from __future__ import annotations

from vmkit.coroutine_scheduler._core._stats import SchedulerStats, VCPUStats

__all__ = ["format_stats_table"]

_COLUMNS = (
    ("vcpu", 5),
    ("executions", 11),
    ("switches", 9),
    ("steals in", 10),
    ("steals out", 11),
    ("attempts", 9),
    ("global", 7),
    ("spills", 7),
    ("busy ms", 9),
    ("idle ms", 9),
    ("util %", 7),
)


def _row(label: str, s: VCPUStats) -> str:
    cells = (
        label,
        str(s.executions),
        str(s.context_switches),
        str(s.steals_in),
        str(s.steals_out),
        str(s.steal_attempts),
        str(s.global_pulls),
        str(s.spills),
        f"{s.busy_ns / 1e6:.2f}",
        f"{s.idle_ns / 1e6:.2f}",
        f"{100 * s.utilization:.1f}",
    )
    return "".join(c.rjust(w + 1) for c, (_n, w) in zip(cells, _COLUMNS, strict=True))


def format_stats_table(stats: SchedulerStats) -> str:
    """A per-vCPU table with a totals row and a load-imbalance line."""
    header = "".join(name.rjust(w + 1) for name, w in _COLUMNS)
    lines = [header, "-" * len(header)]
    lines += [_row(str(v.vcpu), v) for v in stats.vcpus]
    lines.append("-" * len(header))
    lines.append(_row("total", stats.totals))
    imb = stats.imbalance
    lines.append(
        f"load imbalance of busy time: CV {imb.cv:.3f}, max/mean {imb.max_over_mean:.3f}, "
        f"variance {imb.variance:.3g} ns^2"
    )
    return "\n".join(lines)
