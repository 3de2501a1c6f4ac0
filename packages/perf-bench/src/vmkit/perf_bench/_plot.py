"""Plots of results with matplotlib (the optional ``plot`` extra).

One panel per metric, because metrics have different units: a single run shows each metric's
values as a box plot with every value drawn over it (the distribution, including clusters the
summary hides); two runs show base and new side by side in each panel. matplotlib is imported only
here, and only when a plot is asked for.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from vmkit.perf_bench._result import MetricResult, SuiteResult

__all__ = ["PlotUnavailableError", "plot_comparison", "plot_distributions"]

INSTALL_HINT = "plots need matplotlib: pip install 'vmkit-perf-bench[plot]'"


class PlotUnavailableError(RuntimeError):
    """matplotlib is not installed."""


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise PlotUnavailableError(INSTALL_HINT) from exc
    return plt


def _panels(count: int) -> tuple[int, int]:
    columns = min(3, count)
    return math.ceil(count / columns), columns


def _draw(ax: Any, metrics: list[MetricResult], labels: list[str], title: str) -> None:
    data = [m.values for m in metrics]
    ax.boxplot(data, showfliers=False)
    ax.set_xticks(range(1, len(labels) + 1), labels)
    for position, values in enumerate(data, start=1):
        count = len(values)
        offsets = [(i / max(count - 1, 1) - 0.5) * 0.3 for i in range(count)]
        ax.scatter([position + o for o in offsets], values, s=8, alpha=0.6)
    ax.set_title(title, fontsize=9)
    ax.set_ylabel(metrics[0].unit)


def plot_distributions(result: SuiteResult, output: str | Path) -> Path:
    """Draw the distribution of every metric of ``result`` into ``output`` (PNG, SVG, PDF).

    Raises:
        PlotUnavailableError: if matplotlib is not installed.
    """
    plt = _pyplot()
    items = [(b.name, m) for b in result.benchmarks for m in b.metrics]
    rows, columns = _panels(len(items))
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3 * rows), squeeze=False)
    for ax, (bench, metric) in zip(axes.flat, items, strict=False):
        _draw(ax, [metric], [f"n={metric.summary.n}"], f"{bench}.{metric.name}")
    for ax in list(axes.flat)[len(items) :]:
        ax.set_visible(False)
    fig.suptitle(f"perf-bench {result.suite} ({result.started_at})")
    fig.tight_layout()
    path = Path(output)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_comparison(base: SuiteResult, new: SuiteResult, output: str | Path) -> Path:
    """Draw base and new side by side for every metric the two runs share.

    Raises:
        PlotUnavailableError: if matplotlib is not installed.
        ValueError: if the runs share no metric.
    """
    plt = _pyplot()
    new_metrics = {(b.name, m.name): m for b in new.benchmarks for m in b.metrics}
    pairs = [
        (b.name, m, new_metrics[(b.name, m.name)])
        for b in base.benchmarks
        for m in b.metrics
        if (b.name, m.name) in new_metrics
    ]
    if not pairs:
        raise ValueError("the two results share no metric; nothing to compare")
    rows, columns = _panels(len(pairs))
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3 * rows), squeeze=False)
    for ax, (bench, old, cur) in zip(axes.flat, pairs, strict=False):
        _draw(ax, [old, cur], ["base", "new"], f"{bench}.{old.name}")
    for ax in list(axes.flat)[len(pairs) :]:
        ax.set_visible(False)
    fig.suptitle("perf-bench: base vs new")
    fig.tight_layout()
    path = Path(output)
    fig.savefig(path)
    plt.close(fig)
    return path
