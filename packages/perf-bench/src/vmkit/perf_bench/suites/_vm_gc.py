"""``GcBenchmark``: host garbage-collector pauses while guests run.

Design note: CPython's cyclic collector stops the world; a pause while a guest runs is latency
the guest sees. ``gc.callbacks`` calls us at the start and the stop of every collection, so the
benchmark timestamps both (``perf_counter_ns``) around checked guest runs, keeps the collections
that began while a guest was running (not those of loading it, nor the full collection
``run_guest`` makes before each timed run), and reports the longest pause, the 99th percentile,
the number of collections and the share of the guests' wall time spent collecting. The engine is
the JIT (cold: a fresh translation cache per value, since translating allocates code objects,
functions and dicts, the main source of collector work) or the interpreter when the JIT is
unavailable or disabled; the parent process chooses once for every worker. The thresholds are
CPython's defaults as the process has them: the benchmark never tunes the collector, because the
point is what a user of the executor gets.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from vmkit.perf_bench._benchmark import Benchmark, RunContext
from vmkit.perf_bench._metrics import Direction, Metrics
from vmkit.perf_bench._stats import percentile
from vmkit.perf_bench._targets import Target
from vmkit.perf_bench.suites._vm_engines import (
    interpreter_factory,
    jit_classes,
    jit_disabled,
    jit_unavailable_reason,
)
from vmkit.perf_bench.suites._vm_targets import VM_TARGETS
from vmkit.perf_bench.suites._vm_workloads import WORKLOADS, run_guest

__all__ = ["GC_ENGINE_ENV", "GcBenchmark", "GcRecorder", "choose_gc_engine", "gc_engine"]


class GcRecorder:
    """Records every collection's pause through ``gc.callbacks`` while installed.

    Use as a context manager; ``pauses_ns`` holds one duration per finished collection,
    ``starts_ns`` when each began (on ``clock``) and ``generations`` the generation each collected.
    """

    def __init__(self, clock: Callable[[], int] = time.perf_counter_ns) -> None:
        self.clock = clock
        self.pauses_ns: list[int] = []
        self.starts_ns: list[int] = []
        self.generations: list[int] = []
        self._started: int | None = None

    def within(self, windows: Sequence[tuple[int, int]]) -> list[int]:
        """The pauses that began inside one of the ``(start, end)`` windows."""
        return [
            pause
            for begun, pause in zip(self.starts_ns, self.pauses_ns, strict=True)
            if any(start <= begun < end for start, end in windows)
        ]

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = self.clock()
        elif phase == "stop" and self._started is not None:
            self.starts_ns.append(self._started)
            self.pauses_ns.append(self.clock() - self._started)
            self.generations.append(int(info.get("generation", -1)))
            self._started = None

    def __enter__(self) -> GcRecorder:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)


GC_ENGINE_ENV = "PERF_BENCH_GC_ENGINE"
"""Set by ``GcBenchmark.available()`` in the parent process to the engine it chose, so that every
worker process of a run measures the same engine (and none repeats the JIT's smoke run)."""


def choose_gc_engine() -> str:
    """``"jit"`` when the JIT works here and is not disabled, else ``"interpreter"``."""
    if jit_disabled() or jit_unavailable_reason() is not None:
        return "interpreter"
    return "jit"


def gc_engine() -> tuple[str, Callable[[Any], Any]]:
    """The engine the GC benchmark runs guests on: (label, machine -> executor).

    The parent's choice (``PERF_BENCH_GC_ENGINE``) when there is one, else decided here.
    """
    chosen = os.environ.get(GC_ENGINE_ENV) or choose_gc_engine()
    if jit_disabled() or chosen != "jit":
        return "interpreter", interpreter_factory()
    jit, context = jit_classes()

    def make(machine: Any) -> Any:
        return jit(machine, context())

    return "jit", make


class GcBenchmark(Benchmark):
    """Host GC pauses (max, p99, count) and GC's share of time during guest execution."""

    name = "GcBenchmark"
    description = (
        "host GC pauses during checked guest runs (crc32, sieve, matmul; quick: crc32) via "
        "gc.callbacks, on a cold JIT (the interpreter when the JIT is unavailable or disabled)"
    )
    targets: ClassVar[Mapping[str, Target]] = {
        # Relevance is judged against the 50 ms target: sub-millisecond pauses that move by a
        # fraction of a millisecond between runs (they do, with the neighbours' memory traffic)
        # are not a change worth reporting; 5 ms, a tenth of the target, is.
        "gc_pause_max": dataclasses.replace(
            VM_TARGETS["GcBenchmark"]["gc_pause_max"], min_difference=5.0
        ),
        "gc_pause_p99": Target(None, "ms", Direction.LOWER, "", "p99 pause", min_difference=5.0),
        "gc_time_share": Target(
            None, "%", Direction.LOWER, "", "share of guest time", min_difference=1.0
        ),
    }
    workloads: ClassVar[tuple[str, ...]] = ("crc32", "sieve", "matmul")
    quick_workloads: ClassVar[tuple[str, ...]] = ("crc32",)

    def available(self) -> str | None:
        """Needs async-executor; chooses the engine once for every process of the run."""
        try:
            import vmkit.async_executor  # noqa: F401
        except ImportError as exc:
            return f"cannot import {exc.name}: {exc}"
        os.environ[GC_ENGINE_ENV] = choose_gc_engine()
        return None

    def measure(
        self, quick: bool, clock: Callable[[], int]
    ) -> tuple[list[int], GcRecorder, int, str]:
        """Run the workloads under a recorder.

        Returns the pauses that began while a guest ran (loading a program and the collection
        ``run_guest`` does before each timed run are not guest execution), the recorder with
        every pause, the guests' wall ns and the engine's label.
        """
        engine, make = gc_engine()
        elapsed = 0
        windows: list[tuple[int, int]] = []
        with GcRecorder(clock) as recorder:
            for name in self.quick_workloads if quick else self.workloads:
                run = run_guest(WORKLOADS[name], engine, make, quick=quick, clock=clock)
                elapsed += run.elapsed_ns
                windows.append((run.start_ns, run.start_ns + run.elapsed_ns))
        return recorder.within(windows), recorder, elapsed, engine

    def run(self, ctx: RunContext) -> Sequence[Metrics]:
        """One value of every metric."""
        during, _, elapsed, _ = self.measure(ctx.quick, ctx.clock)
        pauses = during or [0]
        return [
            Metrics("gc_pause_max", max(pauses) / 1e6, "ms", Direction.LOWER),
            Metrics("gc_pause_p99", percentile(pauses, 99) / 1e6, "ms", Direction.LOWER),
            Metrics("gc_collections", float(len(during)), "count", Direction.LOWER),
            Metrics("gc_time_share", 100 * sum(during) / elapsed, "%", Direction.LOWER),
        ]
