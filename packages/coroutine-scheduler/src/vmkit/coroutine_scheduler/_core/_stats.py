"""Statistics snapshots: frozen, slotted records read from the live counters on request.

The run loop keeps plain integer counters on each vCPU (batched in locals on the inline switch
path); :meth:`Scheduler.stats` copies them into these immutable records, so a reader (a report, a
Prometheus collector at scrape time) never races with or slows the loop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["LoadImbalance", "SchedulerStats", "VCPUStats"]


@dataclass(frozen=True, slots=True)
class VCPUStats:
    """Counters of one vCPU (or, with ``vcpu == -1``, the sum over all vCPUs).

    Attributes:
        vcpu: the vCPU's index, or -1 for totals.
        executions: coroutine steps run (resumptions).
        context_switches: steps that resumed a different coroutine from the previous step.
        steals_in: coroutines this vCPU took from others' run queues.
        steals_out: coroutines others took from this vCPU's run queue.
        steal_attempts: times this vCPU went looking for work to steal.
        global_pulls: coroutines taken from the global queue.
        spills: coroutines moved to the global queue because the local queue was full.
        busy_ns: time spent running steps and scheduling them.
        idle_ns: time with nothing to run (see the design notes for the inline backend's model).
        queue_length: coroutines in the local run queue (and next-to-run slot) at snapshot time.
    """

    vcpu: int
    executions: int
    context_switches: int
    steals_in: int
    steals_out: int
    steal_attempts: int
    global_pulls: int
    spills: int
    busy_ns: int
    idle_ns: int
    queue_length: int

    @property
    def utilization(self) -> float:
        """busy / (busy + idle), 0.0 before anything ran."""
        total = self.busy_ns + self.idle_ns
        return self.busy_ns / total if total else 0.0

    @classmethod
    def total(cls, parts: Sequence[VCPUStats]) -> VCPUStats:
        """Sum the counters of ``parts`` into a record with ``vcpu == -1``."""
        return cls(
            vcpu=-1,
            executions=sum(p.executions for p in parts),
            context_switches=sum(p.context_switches for p in parts),
            steals_in=sum(p.steals_in for p in parts),
            steals_out=sum(p.steals_out for p in parts),
            steal_attempts=sum(p.steal_attempts for p in parts),
            global_pulls=sum(p.global_pulls for p in parts),
            spills=sum(p.spills for p in parts),
            busy_ns=sum(p.busy_ns for p in parts),
            idle_ns=sum(p.idle_ns for p in parts),
            queue_length=sum(p.queue_length for p in parts),
        )


@dataclass(frozen=True, slots=True)
class LoadImbalance:
    """How unevenly busy time is spread over the vCPUs (all 0.0 when perfectly even or idle).

    Attributes:
        variance: population variance of per-vCPU busy time, in ns squared.
        max_over_mean: the busiest vCPU's busy time over the mean (1.0 is perfect balance).
        cv: coefficient of variation, standard deviation over mean (0.0 is perfect balance).
    """

    variance: float
    max_over_mean: float
    cv: float

    @classmethod
    def of(cls, busy: Sequence[float]) -> LoadImbalance:
        """Compute the imbalance of the per-vCPU busy times ``busy``."""
        if not busy:
            return cls(0.0, 0.0, 0.0)
        mean = sum(busy) / len(busy)
        if mean <= 0:
            return cls(0.0, 0.0, 0.0)
        variance = sum((b - mean) ** 2 for b in busy) / len(busy)
        return cls(variance, max(busy) / mean, math.sqrt(variance) / mean)


@dataclass(frozen=True, slots=True)
class SchedulerStats:
    """A snapshot of a scheduler.

    Attributes:
        backend: ``"inline"`` or ``"threads"``.
        seed: the seed of the scheduler's random choices (victim order, random placement).
        vcpus: one record per vCPU, by index.
        totals: the sum over vCPUs (``vcpu == -1``).
        imbalance: load imbalance of per-vCPU busy time.
        spawned: coroutines created so far.
        finished: coroutines that returned normally.
        failed: coroutines that ended with an exception (cancellation included).
        alive: coroutines not yet ended.
        global_queue_length: coroutines in the global queue at snapshot time.
        blocked: coroutines parked in ``wait``, ``join``, a primitive or a channel now.
        cancellations: times a coroutine became cancelled (by ``cancel`` or a cancel scope).
        scopes_moved_on: cancel scopes that absorbed their own cancellation (``move_on_*``,
            ``CancelScope.cancel``, a task group cancelled).
        deadlines_exceeded: ``fail_after``/``fail_at`` scopes that raised DeadlineExceeded.
    """

    backend: str
    seed: int
    vcpus: tuple[VCPUStats, ...]
    totals: VCPUStats
    imbalance: LoadImbalance
    spawned: int
    finished: int
    failed: int
    alive: int
    global_queue_length: int
    blocked: int = 0
    cancellations: int = 0
    scopes_moved_on: int = 0
    deadlines_exceeded: int = 0
