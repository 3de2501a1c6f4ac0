"""Targets and reference figures, kept in one place so every suite reads the same table.

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

The metric names below are the contract with the VM suite: its benchmarks must report metrics
with exactly these names (and units convertible to these) for the targets to apply.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from vmkit.perf_bench._metrics import Direction
from vmkit.perf_bench._units import convert

__all__ = ["PYTHON_REFERENCES", "VM_TARGETS", "Outcome", "Target"]


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


def _freeze(
    table: dict[str, dict[str, Target]],
) -> Mapping[str, Mapping[str, Target]]:
    return MappingProxyType({k: MappingProxyType(v) for k, v in table.items()})


_LOWER, _HIGHER = Direction.LOWER, Direction.HIGHER

VM_TARGETS: Mapping[str, Mapping[str, Target]] = _freeze(
    {
        "JitBenchmark": {
            "translate_compile_per_block": Target(
                100, "us", _LOWER, "100 us (simulated)", "median translate + compile per block"
            ),
            "cache_hit_overhead": Target(
                None, "ns", _LOWER, "< 50 ns overhead", "lookup + dispatch; reported vs a dict hit"
            ),
            "jit_mips": Target(
                20, "MIPS", _HIGHER, "> 1 M ops/s", "guest instructions/s on loop kernels"
            ),
            "jit_speedup": Target(10, "x", _HIGHER, "", "JIT MIPS / interpreter MIPS"),
        },
        "SchedulerBenchmark": {
            "steal_latency": Target(10, "us", _LOWER, "< 10 us", "median per steal"),
            "context_switch": Target(1, "us", _LOWER, "< 1 us", "median, inline backend"),
            "context_switch_vs_asyncio": Target(
                1, "x", _LOWER, "", "our switch / asyncio's switch in the same run; < 1 is faster"
            ),
        },
        "GcBenchmark": {
            "gc_pause_max": Target(50, "ms", _LOWER, "< 50 ms", "max host GC pause in the run"),
        },
        "TlbBenchmark": {
            "tlb_hit_rate": Target(98, "%", _HIGHER, "> 98%", "on the suite's workloads"),
            "tlb_translation": Target(
                None, "ns", _LOWER, "< 5 ns", "reported; one CPython bytecode costs more"
            ),
        },
    }
)
"""Targets of the VM suite, by benchmark and metric name, from ARCHITECTURE.md's target table."""

PYTHON_REFERENCES: Mapping[str, Mapping[str, Target]] = _freeze(
    {
        "dict_get": {
            "time": Target(None, "ns", _LOWER, "~37 ns", "ARCHITECTURE.md, incl. a ~25 ns call"),
        },
        "struct_unpack_from": {
            "time": Target(None, "ns", _LOWER, "~55 ns", "ARCHITECTURE.md, incl. a ~25 ns call"),
        },
        "memoryview_index": {
            "time": Target(None, "ns", _LOWER, "~30 ns", "ARCHITECTURE.md, incl. a ~25 ns call"),
        },
        "int_from_bytes_slice": {
            "time": Target(None, "ns", _LOWER, "~175 ns", "ARCHITECTURE.md, incl. a ~25 ns call"),
        },
        "function_call": {
            "time": Target(None, "ns", _LOWER, "~50-80 ns", "ARCHITECTURE.md implementer notes"),
        },
        "generator_switch": {
            "time": Target(None, "ns", _LOWER, "< 1 us", "context-switch target, ARCHITECTURE.md"),
        },
    }
)
"""Reference figures for the Python suite: the rough costs in ARCHITECTURE.md's implementer
notes (measured there through a lambda call of about 25 ns, so ours, measured in an unrolled
loop, should come out lower)."""
