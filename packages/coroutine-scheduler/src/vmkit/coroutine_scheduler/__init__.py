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
from vmkit.coroutine_scheduler._core._asyncio import from_asyncio
from vmkit.coroutine_scheduler._core._cancel import (
    CancelScope,
    fail_after,
    fail_at,
    move_on_after,
    move_on_at,
)
from vmkit.coroutine_scheduler._core._channel import ReceiveChannel, SendChannel, open_channel
from vmkit.coroutine_scheduler._core._clock import Clock, MonotonicClock, VirtualClock
from vmkit.coroutine_scheduler._core._coroutine import (
    LEGAL_TRANSITIONS,
    Coroutine,
    CoroutineState,
    GeneratorLike,
)
from vmkit.coroutine_scheduler._core._errors import (
    BrokenResourceError,
    Cancelled,
    ClosedResourceError,
    DeadlineExceeded,
    DeadlockError,
    EndOfChannel,
    InvalidTransitionError,
    RunTimeoutError,
    SchedulerError,
    TrapOutsideSchedulerError,
    UsageError,
)
from vmkit.coroutine_scheduler._core._external import ExternalWait
from vmkit.coroutine_scheduler._core._group import TaskGroup
from vmkit.coroutine_scheduler._core._instruments import Instrument, TraceRecorder
from vmkit.coroutine_scheduler._core._scheduler import BACKENDS, PLACEMENTS, Scheduler
from vmkit.coroutine_scheduler._core._stats import LoadImbalance, SchedulerStats, VCPUStats
from vmkit.coroutine_scheduler._core._sync import (
    BoundedSemaphore,
    Condition,
    Event,
    Lock,
    Semaphore,
)
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
    "BoundedSemaphore",
    "BrokenResourceError",
    "CancelScope",
    "Cancelled",
    "Clock",
    "ClosedResourceError",
    "Condition",
    "Coroutine",
    "CoroutineState",
    "DeadlineExceeded",
    "DeadlockError",
    "EndOfChannel",
    "Event",
    "ExternalWait",
    "GeneratorLike",
    "Instrument",
    "InvalidTransitionError",
    "LoadImbalance",
    "Lock",
    "MonotonicClock",
    "ReceiveChannel",
    "RunTimeoutError",
    "Scheduler",
    "SchedulerError",
    "SchedulerStats",
    "Semaphore",
    "SendChannel",
    "TaskGroup",
    "TraceRecorder",
    "TrapOutsideSchedulerError",
    "UsageError",
    "VCPUStats",
    "VirtualClock",
    "__version__",
    "cancel",
    "current",
    "fail_after",
    "fail_at",
    "from_asyncio",
    "join",
    "move_on_after",
    "move_on_at",
    "notify",
    "open_channel",
    "sleep",
    "spawn",
    "wait",
    "yield_now",
]
