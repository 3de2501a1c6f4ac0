"""Synthetic workloads shared by the demo command and the measurements.

CPU work in slices (a generator that yields after each slice, like a guest program), and
wait/notify pairs that hand a baton back and forth: together they exercise the switch path, the
traps, placement and stealing.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from vmkit.coroutine_scheduler._core._coroutine import Coroutine
from vmkit.coroutine_scheduler._core._errors import UsageError
from vmkit.coroutine_scheduler._core._scheduler import Scheduler
from vmkit.coroutine_scheduler._core._traps import notify, wait

__all__ = ["cpu_slices", "populate", "skewed_vcpu"]


def cpu_slices(slices: int, work: int) -> Generator[None, None, int]:
    """Do ``work`` units of arithmetic per slice for ``slices`` slices, yielding after each."""
    total = 0
    for s in range(slices):
        for i in range(work):
            total += (i * s) & 0xFF
        yield
    return total


class _Baton:
    """State of one wait/notify pair: whose turn it is (0 or 1)."""

    __slots__ = ("turn",)

    def __init__(self) -> None:
        self.turn = 0


def _pair_member(
    baton: _Baton, me: int, key: tuple[str, int], rounds: int, work: int
) -> Generator[Any, Any, int]:
    """Take ``rounds`` turns with a partner: wait for my turn, work a slice, hand over."""
    total = 0
    for r in range(rounds):
        while baton.turn != me:
            yield wait((key, me), lambda: baton.turn != me)
        for i in range(work):
            total += (i * r) & 0xFF
        baton.turn = 1 - me
        yield notify((key, 1 - me))
    return total


def skewed_vcpu(index: int, count: int, vcpus: int, skew: float) -> int:
    """vCPU for the ``index``-th of ``count`` coroutines: the first ``skew`` share go to vCPU 0."""
    if index < round(skew * count):
        return 0
    return index % vcpus


def populate(
    scheduler: Scheduler,
    coroutines: int,
    *,
    skew: float = 0.0,
    slices: int = 50,
    work: int = 200,
    pairs: bool = True,
) -> list[Coroutine]:
    """Spawn ``coroutines`` coroutines: CPU workers and, if ``pairs``, wait/notify pairs.

    With ``pairs``, every fourth coroutine slot becomes half of a baton-passing pair (so about
    half of the coroutines are in pairs). ``skew`` in [0, 1] is the share placed on vCPU 0; the
    rest are spread round-robin.

    Raises:
        UsageError: a count is not positive or ``skew`` is outside [0, 1].
    """
    if coroutines < 1 or slices < 1 or work < 0:
        raise UsageError("the workload needs coroutines >= 1, slices >= 1 and work >= 0")
    if not 0.0 <= skew <= 1.0:
        raise UsageError(f"skew must be between 0 and 1 (the share put on vCPU 0), got {skew}")
    n = len(scheduler.vcpus)
    spawned: list[Coroutine] = []
    i = 0
    while i < coroutines:
        if pairs and i % 4 == 2 and i + 1 < coroutines:
            baton = _Baton()
            key = ("pair", i)
            for me in (0, 1):
                spawned.append(
                    scheduler.spawn(
                        _pair_member(baton, me, key, slices, work),
                        name=f"pair{i}-{me}",
                        vcpu=skewed_vcpu(i + me, coroutines, n, skew),
                    )
                )
            i += 2
            continue
        spawned.append(
            scheduler.spawn(
                cpu_slices(slices, work), name=f"cpu{i}", vcpu=skewed_vcpu(i, coroutines, n, skew)
            )
        )
        i += 1
    return spawned
