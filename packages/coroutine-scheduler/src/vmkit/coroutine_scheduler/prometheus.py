"""Prometheus metrics of running schedulers: a custom collector and a small HTTP server.

Design note
-----------
* Read at scrape time only: :class:`SchedulerCollector` calls :meth:`Scheduler.stats` (frozen
  snapshots of the plain per-vCPU counters) and counts the live coroutines by state when
  Prometheus scrapes. It installs no :class:`Instrument`, because an instrument moves the run
  loop off its fast switch path; watching a scheduler costs the scheduler nothing.
* Every series carries a ``scheduler`` label (its position in the watch list, or the name it was
  given), so several schedulers in one process never collide.
* Synchronization primitives and channels are exported one by one, under a name given to
  :meth:`SchedulerCollector.watch_primitive` (the ``primitive`` label): waiters now, waits that
  had to park, and a channel's buffer and totals, read from their ``statistics()`` (lock-free).
* Times are exported in seconds (Prometheus's base unit), from the nanosecond counters.
* ``prometheus-client`` is an optional extra: imported only when metrics are asked for, and a
  missing one is reported with the extra to install.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

from vmkit.coroutine_scheduler._core._channel import ReceiveChannel, SendChannel
from vmkit.coroutine_scheduler._core._coroutine import CoroutineState
from vmkit.coroutine_scheduler._core._scheduler import Scheduler
from vmkit.coroutine_scheduler._core._sync import Condition, Event, Lock, Semaphore
from vmkit.coroutine_scheduler._metrics_server import (
    DEFAULT_ADDR,
    EXTRA_HINT,
    DefaultRegistry,
    MetricsServer,
    MetricsUnavailableError,
    prometheus_client_module,
    start_metrics_server,
)

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import CollectorRegistry

__all__ = [
    "DEFAULT_ADDR",
    "EXTRA_HINT",
    "MetricsServer",
    "MetricsUnavailableError",
    "SchedulerCollector",
    "start_metrics_server",
]

_NS: Final = 1e-9

#: What watch_primitive accepts (BoundedSemaphore is a Semaphore).
Primitive = Lock | Semaphore | Event | Condition | SendChannel[Any] | ReceiveChannel[Any]
_PRIMITIVE_TYPES: Final = (Lock, Semaphore, Event, Condition, SendChannel, ReceiveChannel)


class SchedulerCollector:
    """Collects the live statistics of schedulers: per-vCPU counters, coroutines, imbalance.

    Args:
        schedulers: the schedulers to watch: one, several, or a mapping from a name (the
            ``scheduler`` label) to a scheduler. Unnamed ones are labelled by position.
        registry: where to register; the global ``prometheus_client.REGISTRY`` by default, None
            for no registration (tests, or registering yourself).

    Raises:
        MetricsUnavailableError: prometheus-client is not installed.
    """

    def __init__(
        self,
        schedulers: Scheduler | Iterable[Scheduler] | Mapping[str, Scheduler],
        *,
        registry: CollectorRegistry | DefaultRegistry | None = DefaultRegistry.REGISTRY,
    ) -> None:
        client = prometheus_client_module()
        self._core = client.core
        self._lock = threading.Lock()
        self._watched: list[tuple[str, Scheduler]] = []
        self._primitives: list[tuple[str, Primitive]] = []
        if isinstance(schedulers, Scheduler):
            self.watch(schedulers)
        elif isinstance(schedulers, Mapping):
            for name, scheduler in schedulers.items():
                self.watch(scheduler, name=name)
        else:
            for scheduler in schedulers:
                self.watch(scheduler)
        if isinstance(registry, DefaultRegistry):
            client.REGISTRY.register(self)
        elif registry is not None:
            registry.register(self)

    def watch(self, scheduler: Scheduler, *, name: str | None = None) -> None:
        """Watch one more scheduler, labelled ``name`` (default: its position)."""
        if not isinstance(scheduler, Scheduler):
            raise TypeError(
                f"SchedulerCollector watches Schedulers, got {type(scheduler).__name__}"
            )
        with self._lock:
            if any(s is scheduler for _, s in self._watched):
                return
            label = name if name is not None else str(len(self._watched))
            if any(n == label for n, _ in self._watched):
                raise ValueError(f"a scheduler labelled {label!r} is already watched")
            self._watched.append((label, scheduler))

    def forget(self, scheduler: Scheduler) -> None:
        """Stop watching ``scheduler``."""
        with self._lock:
            self._watched = [(n, s) for n, s in self._watched if s is not scheduler]

    def watch_primitive(self, primitive: Primitive, *, name: str) -> None:
        """Export one Lock, Semaphore, Event, Condition or channel end as ``primitive=name``:
        coroutines waiting on it now, waits that had to park, and for a channel its buffered
        items and the items sent and received.

        Raises:
            TypeError: not one of those.
            ValueError: another primitive is watched under ``name``.
        """
        if not isinstance(primitive, _PRIMITIVE_TYPES):
            raise TypeError(
                "watch_primitive() takes a Lock, Semaphore, Event, Condition or channel end, "
                f"got {type(primitive).__name__}"
            )
        with self._lock:
            if any(p is primitive for _, p in self._primitives):
                return
            if any(n == name for n, _ in self._primitives):
                raise ValueError(f"a primitive named {name!r} is already watched")
            self._primitives.append((name, primitive))

    def forget_primitive(self, primitive: Primitive) -> None:
        """Stop exporting ``primitive``."""
        with self._lock:
            self._primitives = [(n, p) for n, p in self._primitives if p is not primitive]

    def describe(self) -> list[Metric]:
        """The families this collector exports, without samples (for registry name checks)."""
        return [*self._families([]), *self._primitive_families([])]

    def collect(self) -> Iterator[Metric]:
        """Read every watched scheduler and primitive now and yield the metric families."""
        with self._lock:
            watched = list(self._watched)
            primitives = list(self._primitives)
        yield from self._families(watched)
        yield from self._primitive_families(primitives)

    def _primitive_families(self, primitives: list[tuple[str, Primitive]]) -> Iterator[Metric]:
        core = self._core
        waiters = core.GaugeMetricFamily(
            "coroutine_scheduler_primitive_waiters",
            "Coroutines waiting on a watched primitive now (a channel: by side, send or receive).",
            labels=["primitive", "kind", "side"],
        )
        parked = core.CounterMetricFamily(
            "coroutine_scheduler_primitive_parked",
            "Waits on a watched lock, semaphore, event or condition that had to park.",
            labels=["primitive", "kind"],
        )
        buffered = core.GaugeMetricFamily(
            "coroutine_scheduler_channel_buffered_items",
            "Items waiting in a watched channel's buffer.",
            labels=["primitive"],
        )
        items = core.CounterMetricFamily(
            "coroutine_scheduler_channel_items",
            "Items that went through a watched channel, by direction (sent, received).",
            labels=["primitive", "direction"],
        )
        for name, primitive in primitives:
            stats = primitive.statistics()
            if isinstance(primitive, SendChannel | ReceiveChannel):
                waiters.add_metric([name, "channel", "send"], stats["senders_waiting"])
                waiters.add_metric([name, "channel", "receive"], stats["receivers_waiting"])
                buffered.add_metric([name], stats["buffered"])
                items.add_metric([name, "sent"], stats["sent_total"])
                items.add_metric([name, "received"], stats["received_total"])
            else:
                kind = type(primitive).__name__.lower()
                waiters.add_metric([name, kind, "wait"], stats["waiters"])
                parked.add_metric([name, kind], stats["parked_total"])
        yield from (waiters, parked, buffered, items)

    def _families(self, watched: list[tuple[str, Scheduler]]) -> Iterator[Metric]:  # noqa: PLR0915 - one metric family per statement: a table written as code
        core = self._core
        counter, gauge = core.CounterMetricFamily, core.GaugeMetricFamily
        per_vcpu = ["scheduler", "vcpu"]

        def fam(kind: Any, name: str, doc: str, labels: list[str]) -> Any:
            return kind(name, doc, labels=labels)

        executions = fam(
            counter,
            "coroutine_scheduler_executions_total",
            "Coroutine steps (resumptions) run on a vCPU.",
            per_vcpu,
        )
        switches = fam(
            counter,
            "coroutine_scheduler_context_switches_total",
            "Steps that resumed a different coroutine from the vCPU's previous step.",
            per_vcpu,
        )
        steals = fam(
            counter,
            "coroutine_scheduler_steals_total",
            "Coroutines this vCPU took from other vCPUs' run queues.",
            per_vcpu,
        )
        stolen = fam(
            counter,
            "coroutine_scheduler_stolen_total",
            "Coroutines other vCPUs took from this vCPU's run queue.",
            per_vcpu,
        )
        attempts = fam(
            counter,
            "coroutine_scheduler_steal_attempts_total",
            "Times this vCPU went looking for work to steal.",
            per_vcpu,
        )
        pulls = fam(
            counter,
            "coroutine_scheduler_global_queue_pulls_total",
            "Coroutines this vCPU took from the global queue.",
            per_vcpu,
        )
        spills = fam(
            counter,
            "coroutine_scheduler_spills_total",
            "Coroutines moved to the global queue because the local queue was full.",
            per_vcpu,
        )
        busy = fam(
            counter,
            "coroutine_scheduler_vcpu_busy_seconds_total",
            "Time the vCPU spent running and scheduling coroutines.",
            per_vcpu,
        )
        idle = fam(
            counter,
            "coroutine_scheduler_vcpu_idle_seconds_total",
            "Time the vCPU had nothing to run.",
            per_vcpu,
        )
        utilization = fam(
            gauge,
            "coroutine_scheduler_vcpu_utilization_ratio",
            "busy / (busy + idle) of the vCPU since the scheduler started.",
            per_vcpu,
        )
        queue = fam(
            gauge,
            "coroutine_scheduler_run_queue_length",
            "Coroutines in the vCPU's local run queue (and next-to-run slot).",
            per_vcpu,
        )
        global_queue = fam(
            gauge,
            "coroutine_scheduler_global_queue_length",
            "Coroutines in the global queue.",
            ["scheduler"],
        )
        states = fam(
            gauge,
            "coroutine_scheduler_coroutines",
            "Coroutines by state (dead ones counted since the scheduler started).",
            ["scheduler", "state"],
        )
        spawned = fam(
            counter,
            "coroutine_scheduler_coroutines_spawned_total",
            "Coroutines created.",
            ["scheduler"],
        )
        ended = fam(
            counter,
            "coroutine_scheduler_coroutines_ended_total",
            "Coroutines that ended, by outcome (returned, or failed: raised or cancelled).",
            ["scheduler", "outcome"],
        )
        imbalance = fam(
            gauge,
            "coroutine_scheduler_load_imbalance_ratio",
            "Coefficient of variation of per-vCPU busy time (0 is perfect balance).",
            ["scheduler"],
        )
        max_over_mean = fam(
            gauge,
            "coroutine_scheduler_load_max_over_mean_ratio",
            "Busiest vCPU's busy time over the mean (1 is perfect balance).",
            ["scheduler"],
        )
        blocked = fam(
            gauge,
            "coroutine_scheduler_blocked_coroutines",
            "Coroutines parked in wait, join, a lock, semaphore, event, condition or channel.",
            ["scheduler"],
        )
        cancellations = fam(
            counter,
            "coroutine_scheduler_cancellations_total",
            "Times a coroutine became cancelled (cancel() or a cancel scope).",
            ["scheduler"],
        )
        scope_exits = fam(
            counter,
            "coroutine_scheduler_cancel_scope_timeouts_total",
            "Cancel scopes that absorbed their cancellation (moved_on) or raised "
            "DeadlineExceeded (deadline_exceeded).",
            ["scheduler", "outcome"],
        )
        vcpus = fam(
            gauge,
            "coroutine_scheduler_vcpus",
            "Virtual CPUs of the scheduler.",
            ["scheduler", "backend"],
        )

        for label, scheduler in watched:
            stats = scheduler.stats()
            for v in stats.vcpus:
                key = [label, str(v.vcpu)]
                executions.add_metric(key, v.executions)
                switches.add_metric(key, v.context_switches)
                steals.add_metric(key, v.steals_in)
                stolen.add_metric(key, v.steals_out)
                attempts.add_metric(key, v.steal_attempts)
                pulls.add_metric(key, v.global_pulls)
                spills.add_metric(key, v.spills)
                busy.add_metric(key, v.busy_ns * _NS)
                idle.add_metric(key, v.idle_ns * _NS)
                utilization.add_metric(key, v.utilization)
                queue.add_metric(key, v.queue_length)
            global_queue.add_metric([label], stats.global_queue_length)
            counts = dict.fromkeys(CoroutineState, 0)
            for co in scheduler.alive():
                counts[co.state] += 1
            # A coroutine ends between the snapshot and alive(): count the dead from the totals.
            counts[CoroutineState.DEAD] = stats.finished + stats.failed
            for state, n in counts.items():
                states.add_metric([label, state.value], n)
            spawned.add_metric([label], stats.spawned)
            ended.add_metric([label, "returned"], stats.finished)
            ended.add_metric([label, "failed"], stats.failed)
            imbalance.add_metric([label], stats.imbalance.cv)
            max_over_mean.add_metric([label], stats.imbalance.max_over_mean)
            vcpus.add_metric([label, stats.backend], len(stats.vcpus))
            blocked.add_metric([label], stats.blocked)
            cancellations.add_metric([label], stats.cancellations)
            scope_exits.add_metric([label, "moved_on"], stats.scopes_moved_on)
            scope_exits.add_metric([label, "deadline_exceeded"], stats.deadlines_exceeded)
        yield from (
            executions, switches, steals, stolen, attempts, pulls, spills, busy, idle,
            utilization, queue, global_queue, states, spawned, ended, imbalance, max_over_mean,
            vcpus, blocked, cancellations, scope_exits,
        )  # fmt: skip
