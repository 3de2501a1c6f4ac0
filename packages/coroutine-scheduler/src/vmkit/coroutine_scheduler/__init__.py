"""Run coroutines on virtual CPUs with local run queues, a global queue and work stealing.

An M:N scheduler in the manner of Go's runtime and Tokio, with trio- and curio-style traps::

    from vmkit.coroutine_scheduler import Scheduler, sleep, spawn, join

    async def child(n):
        await sleep(0.01)
        return n * n

    async def parent():
        kids = [await spawn(child, i) for i in range(10)]
        return [await join(k) for k in kids]

    s = Scheduler(vcpus=4, seed=1)
    top = s.spawn(parent)
    s.run(timeout=5)
    print(top.result, s.stats().imbalance.cv)
"""

from __future__ import annotations

from vmkit.coroutine_scheduler.__about__ import __version__
from vmkit.coroutine_scheduler._core._clock import Clock, MonotonicClock, VirtualClock
from vmkit.coroutine_scheduler._core._coroutine import (
    LEGAL_TRANSITIONS,
    Coroutine,
    CoroutineState,
    GeneratorLike,
)
from vmkit.coroutine_scheduler._core._errors import (
    Cancelled,
    DeadlockError,
    InvalidTransitionError,
    RunTimeoutError,
    SchedulerError,
    TrapOutsideSchedulerError,
    UsageError,
)
from vmkit.coroutine_scheduler._core._instruments import Instrument, TraceRecorder
from vmkit.coroutine_scheduler._core._scheduler import BACKENDS, PLACEMENTS, Scheduler
from vmkit.coroutine_scheduler._core._stats import LoadImbalance, SchedulerStats, VCPUStats
from vmkit.coroutine_scheduler._core._traps import (
    cancel,
    current,
    join,
    notify,
    sleep,
    spawn,
    wait,
    yield_now,
)
from vmkit.coroutine_scheduler._core._vcpu import VCPU

__all__ = [
    "BACKENDS",
    "LEGAL_TRANSITIONS",
    "PLACEMENTS",
    "VCPU",
    "Cancelled",
    "Clock",
    "Coroutine",
    "CoroutineState",
    "DeadlockError",
    "GeneratorLike",
    "Instrument",
    "InvalidTransitionError",
    "LoadImbalance",
    "MonotonicClock",
    "RunTimeoutError",
    "Scheduler",
    "SchedulerError",
    "SchedulerStats",
    "TraceRecorder",
    "TrapOutsideSchedulerError",
    "UsageError",
    "VCPUStats",
    "VirtualClock",
    "__version__",
    "cancel",
    "current",
    "join",
    "notify",
    "sleep",
    "spawn",
    "wait",
    "yield_now",
]
