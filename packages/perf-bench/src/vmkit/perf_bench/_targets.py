"""Targets: what "good enough" means for a metric, and the verdict of a measurement against it.

Each suite publishes its own table (the VM suite's ``VM_TARGETS`` in ``suites/_vm_targets.py``,
the Python suite's ``PYTHON_REFERENCES`` in ``suites/python.py``); the framework only judges.

Design note: a ``Target`` says what "good enough" means for one metric (a threshold, its unit and
which direction is better) and carries the reference figure to print beside ours: for the VM suite
that is the seed's figure from the target table in ``shared/ARCHITECTURE.md``; for the Python
suite it is the rough cost quoted in that document's implementer notes. A target without a
threshold is "reported": its figure is shown with the reference, and no verdict is made, because
the architecture asks only that the number be measured honestly (for example a software TLB
lookup in Python cannot reach the seed's 5 ns, and pretending otherwise helps nobody).

The verdict uses the bootstrap confidence interval of the median, not the median alone: a metric
passes when the whole interval is on the good side of the threshold, fails when the whole interval
is on the bad side, and is inconclusive when the interval straddles it. On a noisy machine that is
the honest answer.

The metric names of a suite's table are the contract with its benchmarks: they must report
metrics with exactly these names (and units convertible to these) for the targets to apply.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from vmkit.perf_bench._metrics import Direction
from vmkit.perf_bench._units import convert

__all__ = ["Outcome", "Target", "freeze_targets"]


class Outcome(enum.Enum):
    """Verdict of a metric (or a benchmark, or a suite) against its target."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    REPORTED = "reported"
    """No threshold: the figure is reported, not judged."""

    @classmethod
    def combine(cls, outcomes: list[Outcome]) -> Outcome:
        """Overall verdict: any fail fails; else any inconclusive; else pass if anything passed."""
        if Outcome.FAIL in outcomes:
            return Outcome.FAIL
        if Outcome.INCONCLUSIVE in outcomes:
            return Outcome.INCONCLUSIVE
        if Outcome.PASS in outcomes:
            return Outcome.PASS
        return Outcome.REPORTED


@dataclass(frozen=True, slots=True)
class Target:
    """What a metric should achieve, and the reference figure to show beside ours.

    Args:
        threshold: the bound in ``unit``; ``None`` means reported only.
        unit: unit of ``threshold`` (time units convert to the metric's unit).
        direction: ``LOWER`` means the metric must be at most ``threshold``.
        reference: the reference ("seed") figure as text, printed beside ours.
        note: where the target comes from or how it is measured.
        min_difference: smallest absolute change of the median (in ``unit``) that a comparison
            may report, for metrics near zero whose relative changes mean nothing (a load
            imbalance of 0.02 against 0.04 is jitter, not a doubling); None: none.
    """

    threshold: float | None
    unit: str
    direction: Direction
    reference: str = ""
    note: str = ""
    min_difference: float | None = None

    def __post_init__(self) -> None:
        if self.min_difference is not None and not self.min_difference >= 0:
            raise ValueError(f"min_difference must be >= 0, got {self.min_difference}")

    def evaluate(self, ci_low: float, ci_high: float, unit: str) -> Outcome:
        """Judge a metric whose median lies in ``[ci_low, ci_high]`` (in ``unit``).

        Raises:
            ValueError: if the metric's unit cannot be converted to the target's.
        """
        if self.threshold is None:
            return Outcome.REPORTED
        low = convert(ci_low, unit, self.unit)
        high = convert(ci_high, unit, self.unit)
        if self.direction is Direction.LOWER:
            if high <= self.threshold:
                return Outcome.PASS
            if low > self.threshold:
                return Outcome.FAIL
        else:
            if low >= self.threshold:
                return Outcome.PASS
            if high < self.threshold:
                return Outcome.FAIL
        return Outcome.INCONCLUSIVE

    def describe(self) -> str:
        """The target as text, e.g. ``<= 100 us`` or ``reported``."""
        if self.threshold is None:
            return "reported"
        sign = "<=" if self.direction is Direction.LOWER else ">="
        return f"{sign} {self.threshold:g} {self.unit}".rstrip()


def freeze_targets(
    table: dict[str, dict[str, Target]],
) -> Mapping[str, Mapping[str, Target]]:
    """A read-only table of targets by benchmark and metric name (what a suite publishes)."""
    return MappingProxyType({k: MappingProxyType(v) for k, v in table.items()})
