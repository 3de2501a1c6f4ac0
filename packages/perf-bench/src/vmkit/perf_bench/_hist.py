"""Text histograms of a metric's values, for ``perf-bench show --hist`` (after pyperf's ``hist``).

Design note: equal-width bins between the smallest and the largest value, one line per bin with
the bin's range, a bar scaled to the fullest bin and the count, so a reader sees at a glance
whether the values are one tight cluster, skewed, or two modes (a machine that changed speed
half-way). No plotting library: the report must work in any terminal and CI log.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["text_histogram"]


def text_histogram(values: Sequence[float], unit: str, *, bins: int = 10, width: int = 40) -> str:
    """Lines ``low .. high unit | #### count`` for ``bins`` equal-width bins over ``values``.

    Raises:
        ValueError: no values, or ``bins``/``width`` below 1.
    """
    if not values:
        raise ValueError("a histogram needs at least one value")
    if bins < 1 or width < 1:
        raise ValueError(f"bins and width must be >= 1, got {bins} and {width}")
    low, high = min(values), max(values)
    if high == low:
        return f"{low:.6g} {unit} | {'#' * width} {len(values)}\n"
    step = (high - low) / bins
    counts = [0] * bins
    for v in values:
        # The top value belongs to the last bin, not to a bin of its own.
        counts[min(int((v - low) / step), bins - 1)] += 1
    fullest = max(counts)
    edges = [low + i * step for i in range(bins + 1)]
    labels = [f"{edges[i]:.6g} .. {edges[i + 1]:.6g} {unit}" for i in range(bins)]
    pad = max(len(label) for label in labels)
    lines = []
    for label, count in zip(labels, counts, strict=True):
        bar = "#" * round(width * count / fullest) if count else ""
        lines.append(f"{label:<{pad}} | {bar} {count}".rstrip())
    return "\n".join(lines) + "\n"
