"""Prometheus metrics of running guests: a custom collector and a small HTTP server.

Design note
-----------
* Nothing on a hot path: executors, contexts and address spaces keep their own plain counters
  (the executors publish theirs once per run or run slice, the translation context under its
  lock, the TLB counters in bulk per block). :class:`ExecutorCollector` reads them only when
  Prometheus scrapes, so a guest that nobody scrapes pays nothing.
* Nothing invented: a family is filled from the objects it watches, and the ``tier`` label comes
  from the kind of each executor (``interp`` for the InterpreterExecutor, ``jit`` for an executor
  with a translation context, each of the hybrid's own per-tier counters for a HybridExecutor).
  Executors are recognised by the attributes they have, so this module imports no engine.
* TLB hits are derived (accesses minus walks) from two counters updated at different moments, so a
  scrape in the middle of a block can see a walk whose access is not counted yet. The collector
  never lets the derived counter go down (it keeps the largest value it reported per address
  space); once the guest is quiet the value is exact.
* ``prometheus-client`` is an optional extra. This module imports it only when metrics are asked
  for, and then says which extra to install if it is missing.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from vmkit.async_executor._metrics_server import (
    DEFAULT_ADDR,
    EXTRA_HINT,
    DefaultRegistry,
    MetricsServer,
    MetricsUnavailableError,
    prometheus_client_module,
    register,
    start_metrics_server,
)
from vmkit.async_executor.engine._stats import ExecutionStats

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import CollectorRegistry

__all__ = [
    "DEFAULT_ADDR",
    "EXTRA_HINT",
    "BatchCollector",
    "ExecutorCollector",
    "MetricsServer",
    "MetricsUnavailableError",
    "start_metrics_server",
]


def _tiers(executor: Any) -> list[tuple[str, Any]]:
    """(tier, ExecutionStats) pairs an executor reports, by what it is."""
    tier_stats = getattr(executor, "tier_stats", None)
    if isinstance(tier_stats, dict):
        return sorted(tier_stats.items())
    native = getattr(executor, "native_stats", None)
    if native is not None:
        # The executor's own counters cover the whole run; the native tier's part is its own.
        total = executor.stats
        interp = ExecutionStats(total.executions, total.instructions - native.instructions)
        return [("interp", interp), ("native", ExecutionStats(native.calls, native.instructions))]
    tier = "jit" if getattr(executor, "context", None) is not None else "interp"
    return [(tier, executor.stats)]


class ExecutorCollector:
    """Collects the live statistics of executors, translation contexts and guest machines.

    Args:
        executors: executors to watch (InterpreterExecutor, JitExecutor, HybridExecutor, or
            anything with an ``ExecutionStats`` in ``stats``). Their translation contexts and the
            machines they run are watched too.
        contexts: further AsyncExecutionContexts to watch.
        machines: further machines to watch (their TLB and syscall counters).
        registry: where to register; the global ``prometheus_client.REGISTRY`` by default, None
            for no registration (tests, or registering yourself).

    Raises:
        MetricsUnavailableError: prometheus-client is not installed.
    """

    def __init__(
        self,
        executors: Iterable[Any] = (),
        *,
        contexts: Iterable[Any] = (),
        machines: Iterable[Any] = (),
        registry: CollectorRegistry | DefaultRegistry | None = DefaultRegistry.REGISTRY,
    ) -> None:
        self._core = prometheus_client_module().core
        self._lock = threading.Lock()
        self._executors: list[Any] = []
        self._contexts: list[Any] = []
        self._machines: list[Any] = []
        self._tlb_hits: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
        self._tlb_lock = threading.Lock()
        for executor in executors:
            self.watch(executor)
        for context in contexts:
            self.watch_context(context)
        for machine in machines:
            self.watch_machine(machine)
        register(self, registry)

    # ------------------------------------------------------------------ what is watched

    def watch(self, executor: Any) -> None:
        """Watch one more executor (and its context and machine)."""
        with self._lock:
            if not any(e is executor for e in self._executors):
                self._executors.append(executor)

    def watch_context(self, context: Any) -> None:
        """Watch one more AsyncExecutionContext."""
        with self._lock:
            if not any(c is context for c in self._contexts):
                self._contexts.append(context)

    def watch_machine(self, machine: Any) -> None:
        """Watch one more machine (its address space's TLB and its syscalls)."""
        with self._lock:
            if not any(m is machine for m in self._machines):
                self._machines.append(machine)

    def forget(self, obj: Any) -> None:
        """Stop watching ``obj`` (an executor, context or machine); its counts leave the totals."""
        with self._lock:
            for group in (self._executors, self._contexts, self._machines):
                group[:] = [o for o in group if o is not obj]

    def _watched(self) -> tuple[list[Any], list[Any], list[Any]]:
        with self._lock:
            executors = list(self._executors)
            contexts = list(self._contexts)
            machines = list(self._machines)
        for executor in executors:
            context = getattr(executor, "context", None)
            if context is not None and not any(c is context for c in contexts):
                contexts.append(context)
            machine = getattr(executor, "machine", None)
            if machine is not None and not any(m is machine for m in machines):
                machines.append(machine)
        return executors, contexts, machines

    # ------------------------------------------------------------------ collection

    def describe(self) -> list[Metric]:
        """The families this collector exports, without samples (for registry name checks)."""
        return list(self._families([], [], []))

    def collect(self) -> Iterator[Metric]:
        """Read every watched object now and yield the metric families."""
        yield from self._families(*self._watched())

    def _native_families(self, executors: list[Any]) -> Iterator[Metric]:
        """The native tier's own counters (NativeExecutor.native_stats), summed."""
        core = self._core
        counter = core.CounterMetricFamily
        native = [s for e in executors if (s := getattr(e, "native_stats", None)) is not None]
        yield counter(
            "async_executor_native_regions_compiled_total",
            "Guest regions compiled to host machine code by the native tier.",
            value=sum(s.regions for s in native),
        )
        yield counter(
            "async_executor_native_compile_seconds_total",
            "Time spent generating LLVM IR and compiling native regions.",
            value=sum(s.compile_seconds for s in native),
        )
        yield counter(
            "async_executor_native_regions_cached_total",
            "Guest regions linked from the on-disk native code cache instead of compiled.",
            value=sum(s.cached for s in native),
        )
        yield counter(
            "async_executor_native_compile_seconds_saved_total",
            "Compile time the native code cache saved (what its regions took to compile).",
            value=sum(s.compile_seconds_saved for s in native),
        )
        yield counter(
            "async_executor_native_seconds_total",
            "Wall time spent inside native code.",
            value=sum(s.native_seconds for s in native),
        )
        fam = counter(
            "async_executor_native_exits_total",
            "Returns from native code to Python, by reason (next region, budget, a load or store "
            "the native TLB could not serve, an instruction the native tier does not compile).",
            labels=["reason"],
        )
        reasons: dict[str, int] = {}
        for s in native:
            for reason, n in s.exits.items():
                reasons[reason] = reasons.get(reason, 0) + n
        for reason in sorted(reasons):
            fam.add_metric([reason], reasons[reason])
        yield fam
        fam = counter(
            "async_executor_native_regions_declined_total",
            "Region entries the native tier did not compile (refused: their first instruction "
            "is not native) or dropped (their guest code was written).",
            labels=["why"],
        )
        fam.add_metric(["refused"], sum(s.refused for s in native))
        fam.add_metric(["dropped"], sum(s.dropped for s in native))
        yield fam

    def _families(  # noqa: PLR0915 - one metric family per statement: a table written as code
        self, executors: list[Any], contexts: list[Any], machines: list[Any]
    ) -> Iterator[Metric]:
        core = self._core
        counter, gauge = core.CounterMetricFamily, core.GaugeMetricFamily

        instructions: dict[str, int] = {}
        executions: dict[str, int] = {}
        run_seconds = 0.0
        for executor in executors:
            for tier, stats in _tiers(executor):
                instructions[tier] = instructions.get(tier, 0) + stats.instructions
                executions[tier] = executions.get(tier, 0) + stats.executions
            run_seconds += executor.stats.wall_time
        fam = counter(
            "async_executor_guest_instructions_total",
            "Guest instructions retired, by the tier that ran them.",
            labels=["tier"],
        )
        for tier in sorted(instructions):
            fam.add_metric([tier], instructions[tier])
        yield fam
        fam = counter(
            "async_executor_block_executions_total",
            "Guest basic blocks executed, by the tier that ran them.",
            labels=["tier"],
        )
        for tier in sorted(executions):
            fam.add_metric([tier], executions[tier])
        yield fam
        yield counter(
            "async_executor_run_seconds_total",
            "Wall time executors spent running guest code.",
            value=run_seconds,
        )

        yield from self._native_families(executors)

        jit = [c.stats() for c in contexts]
        yield counter(
            "async_executor_blocks_compiled_total",
            "Guest blocks translated and compiled to Python (compile() calls).",
            value=sum(s.compilations for s in jit),
        )
        yield counter(
            "async_executor_compile_seconds_total",
            "Time spent translating and compiling guest blocks.",
            value=sum(s.compile_time for s in jit),
        )
        yield counter(
            "async_executor_compiled_code_reuses_total",
            "Translations whose compiled code came from the context's code cache (no compile()).",
            value=sum(s.code_reuses for s in jit),
        )
        yield counter(
            "async_executor_prebuilt_blocks_total",
            "Blocks installed ready-made from an ahead-of-time code cache.",
            value=sum(s.prebuilt for s in jit),
        )
        yield gauge(
            "async_executor_translation_cache_blocks",
            "Translated blocks currently held in the translation caches.",
            value=sum(s.cached_blocks for s in jit),
        )
        fam = counter(
            "async_executor_translation_cache_lookups_total",
            "Translation-cache lookups by block dispatches, by result (hit or miss).",
            labels=["result"],
        )
        fam.add_metric(["hit"], sum(s.hits for s in jit))
        fam.add_metric(["miss"], sum(s.misses for s in jit))
        yield fam
        yield counter(
            "async_executor_translation_cache_invalidations_total",
            "Translated blocks dropped because their guest code changed.",
            value=sum(s.invalidations for s in jit),
        )
        yield counter(
            "async_executor_translation_cache_evictions_total",
            "Translated blocks evicted because the cache was full.",
            value=sum(s.evictions for s in jit),
        )
        yield counter(
            "async_executor_translation_cache_flushes_total",
            "Whole-cache flushes.",
            value=sum(s.flushes for s in jit),
        )

        hits = misses = 0
        syscalls: dict[int, int] = {}
        running = ended = 0
        refusals = {"memory": 0, "files": 0, "disk": 0, "wall_clock": 0}
        disk_used = mapped = 0
        for machine in machines:
            memory = machine.memory
            with self._tlb_lock:  # concurrent scrapes must not store an older, lower value
                walks = memory.tlb_misses
                derived = max(0, memory.tlb_accesses - walks)
                reported = max(derived, self._tlb_hits.get(memory, 0))
                self._tlb_hits[memory] = reported
            hits += reported
            misses += walks
            linux = getattr(machine, "linux", None)
            counts = getattr(linux, "syscall_counts", None)
            if isinstance(counts, dict):
                for number, n in dict(counts).items():
                    syscalls[number] = syscalls.get(number, 0) + n
            limits = getattr(linux, "limit_counters", None)
            if limits is not None:
                refusals["memory"] += limits.memory_refused
                refusals["files"] += limits.files_refused
                refusals["disk"] += limits.disk_refused
                refusals["wall_clock"] += limits.wall_clock_exceeded
            disk_used += getattr(linux, "disk_used", 0)
            mapped += getattr(memory, "mapped_bytes", 0)
            if getattr(machine, "termination", None) is None:
                running += 1
            else:
                ended += 1
        fam = counter(
            "async_executor_tlb_lookups_total",
            "Guest memory accesses through the software TLB, by result (hit or miss: a page walk).",
            labels=["result"],
        )
        fam.add_metric(["hit"], hits)
        fam.add_metric(["miss"], misses)
        yield fam
        fam = counter(
            "async_executor_syscalls_total",
            "Linux system calls made by the guests, by RISC-V syscall number.",
            labels=["number"],
        )
        for number in sorted(syscalls):
            fam.add_metric([str(number)], syscalls[number])
        yield fam
        fam = gauge(
            "async_executor_guests",
            "Watched guest machines, by state (running, or ended with a termination recorded).",
            labels=["state"],
        )
        fam.add_metric(["running"], running)
        fam.add_metric(["ended"], ended)
        yield fam
        fam = counter(
            "async_executor_guest_limit_refusals_total",
            "Requests refused by a guest limit (ENOMEM, EMFILE, EDQUOT) and runs stopped by the "
            "wall-clock limit, by limit.",
            labels=["limit"],
        )
        for limit, n in refusals.items():
            fam.add_metric([limit], n)
        yield fam
        yield gauge(
            "async_executor_guest_disk_bytes",
            "Bytes the watched guests hold in their private /tmp (bounded by --max-disk).",
            value=disk_used,
        )
        yield gauge(
            "async_executor_guest_mapped_bytes",
            "Guest memory mapped by the watched guests (bounded by --max-memory).",
            value=mapped,
        )
        yield from self._thread_families(machines)

    def _thread_families(self, machines: list[Any]) -> Iterator[Metric]:
        """Guest threads: created, live by state, futex waits and wakes, switches."""
        core = self._core
        counter, gauge = core.CounterMetricFamily, core.GaugeMetricFamily
        created = waits = wakes = switches = 0
        states = {"runnable": 0, "blocked": 0}
        for machine in machines:
            threads = getattr(getattr(machine, "linux", None), "threads", None)
            if threads is None:
                continue
            created += threads.created
            waits += threads.futex_waits
            wakes += threads.futex_wakes
            switches += threads.switches
            if getattr(machine, "termination", None) is None:
                for thread in threads.live.values():
                    key = thread.state.value
                    if key in states:
                        states[key] += 1
        yield counter(
            "async_executor_guest_threads_created_total",
            "Threads the watched guests created (clone), not counting their main threads.",
            value=created,
        )
        fam = gauge(
            "async_executor_guest_threads",
            "Live threads of the running guests (main threads included), by state.",
            labels=["state"],
        )
        for state, n in states.items():
            fam.add_metric([state], n)
        yield fam
        yield counter(
            "async_executor_guest_futex_waits_total",
            "Futex waits in which a guest thread blocked (a wait answered EAGAIN is not one).",
            value=waits,
        )
        yield counter(
            "async_executor_guest_futex_wakes_total",
            "Guest threads woken by futex wakes and requeues.",
            value=wakes,
        )
        yield counter(
            "async_executor_guest_thread_switches_total",
            "Switches from one guest thread to another (a thread resumed on the shared hart).",
            value=switches,
        )


class BatchCollector:
    """Collects the progress of running batches: jobs queued and running, finished jobs by
    outcome, retries and lost workers.

    Give :meth:`watch` as ``run_batch(on_start=...)``: it is called with the batch's summary and
    pool once the pool exists, and the counts are read from them at each scrape.

    Args:
        registry: where to register (see :class:`ExecutorCollector`).

    Raises:
        MetricsUnavailableError: prometheus-client is not installed.
    """

    #: The ``outcome`` label's values, in the order a summary counts them.
    OUTCOMES = ("passed", "failed", "crashed", "timeout", "error")

    def __init__(
        self, *, registry: CollectorRegistry | DefaultRegistry | None = DefaultRegistry.REGISTRY
    ) -> None:
        self._core = prometheus_client_module().core
        self._lock = threading.Lock()
        self._batches: list[tuple[Any, Any]] = []
        register(self, registry)

    def watch(self, summary: Any, pool: Any) -> None:
        """Watch one more batch: its ``BatchSummary`` and the pool running it (None: a batch
        with nothing left to run)."""
        with self._lock:
            self._batches.append((summary, pool))

    def describe(self) -> list[Metric]:
        """The families this collector exports, without samples."""
        return list(self._families([]))

    def collect(self) -> Iterator[Metric]:
        """Read every watched batch now and yield the metric families."""
        with self._lock:
            batches = list(self._batches)
        yield from self._families(batches)

    def _families(self, batches: list[tuple[Any, Any]]) -> Iterator[Metric]:
        core = self._core
        counter, gauge = core.CounterMetricFamily, core.GaugeMetricFamily
        states = {"queued": 0, "running": 0}
        outcomes = dict.fromkeys(self.OUTCOMES, 0)
        skipped = retried = deaths = 0
        for summary, pool in batches:
            if pool is not None:
                states["queued"] += pool.queued
                states["running"] += pool.running
                retried += pool.retries
                deaths += pool.worker_deaths
            counts = (summary.passed, summary.failed, summary.crashed, summary.timed_out)
            for outcome, n in zip(self.OUTCOMES, (*counts, summary.errors), strict=True):
                outcomes[outcome] += n
            skipped += summary.skipped
        fam = gauge(
            "async_executor_batch_jobs",
            "Jobs of the watched batches waiting for a worker (queued) or running now.",
            labels=["state"],
        )
        for state, n in states.items():
            fam.add_metric([state], n)
        yield fam
        fam = counter(
            "async_executor_batch_jobs_finished_total",
            "Jobs of the watched batches that finished, by outcome (failed: ran but did not give "
            "the expected output or status; crashed: its worker died twice; timeout: killed "
            "past its wall-clock limit; error: could not be run).",
            labels=["outcome"],
        )
        for outcome, n in outcomes.items():
            fam.add_metric([outcome], n)
        yield fam
        yield counter(
            "async_executor_batch_jobs_retried_total",
            "Jobs run a second time because the worker running them died.",
            value=retried,
        )
        yield counter(
            "async_executor_batch_jobs_skipped_total",
            "Jobs not run because a resumed batch's results file already held them.",
            value=skipped,
        )
        yield counter(
            "async_executor_batch_worker_deaths_total",
            "Batch worker processes that died, were killed past a job's limit, or were lost "
            "with a cluster node.",
            value=deaths,
        )
