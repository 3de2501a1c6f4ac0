"""``SchedulerBenchmark``: coroutine-scheduler's switch, steal, balance and utilisation.

Design note: the switch, steal and imbalance figures come from coroutine-scheduler's own public
measuring functions (``vmkit.coroutine_scheduler.measure``, the ones its benchmark script
prints), so perf-bench and the scheduler's engineers measure the same thing; perf-bench adds
processes, values and statistics around them. Each value calls each function once with
``repeats=1`` (the function still does its own untimed warm-up), and asyncio's switch is
measured in the same value, right after ours, so ``context_switch_vs_asyncio`` compares like
with like.

vCPU utilisation is measured on the real thing: guest programs from the suite's workloads run as
coroutines on a two-vCPU scheduler through the generator protocol (``executor.coroutine()``: a
slice of guest instructions, then ``yield``), and the figure is the scheduler's own
``busy / (busy + idle)`` over all vCPUs. Every guest must exit 0 with the right output, and the
benchmark checks that the scheduler counted exactly the steps the guests took.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from vmkit.perf_bench._benchmark import Benchmark, RunContext
from vmkit.perf_bench._metrics import Direction, Metrics
from vmkit.perf_bench._targets import Target
from vmkit.perf_bench.suites._vm_engines import interpreter_factory
from vmkit.perf_bench.suites._vm_targets import VM_TARGETS
from vmkit.perf_bench.suites._vm_workloads import (
    WORKLOADS,
    GuestCheckError,
    GuestRun,
    workload_path,
)

if TYPE_CHECKING:
    from vmkit.async_executor.engine import Executor
    from vmkit.async_executor.linux import Linux
    from vmkit.async_executor.machine import Machine

__all__ = ["GuestSlices", "SchedulerBenchmark", "guest_coroutine"]


class GuestSlices:
    """Counts what a guest coroutine did: slices run and guest instructions retired."""

    def __init__(self) -> None:
        self.slices = 0
        self.instructions = 0


def guest_coroutine(
    executor: Executor, machine: Machine[Linux], slice_instructions: int, counter: GuestSlices
) -> Generator[None, None, int]:
    """Run a guest in slices of ``slice_instructions``, yielding between them; return its status.

    This is the guest-program protocol of the architecture (a generator that yields ``None``
    after each slice and returns the exit status), provided by every executor's
    ``coroutine()``; ``counter`` counts the slices (the scheduler's steps) and the instructions
    they retired.
    """
    start = machine.hart.instret
    inner = executor.coroutine(machine, slice_instructions=slice_instructions)
    while True:
        try:
            next(inner)
        except StopIteration as stop:
            counter.slices += 1
            counter.instructions = machine.hart.instret - start
            status: int = stop.value
            return status
        counter.slices += 1
        counter.instructions = machine.hart.instret - start
        yield


class SchedulerBenchmark(Benchmark):
    """Context switch vs asyncio, steal latency, load imbalance and vCPU utilisation."""

    name = "SchedulerBenchmark"
    description = (
        "coroutine-scheduler: context switch (inline, stats on) vs asyncio in the same run, "
        "steal of a batch, load imbalance (CV), vCPU utilisation running guest programs, a "
        "threaded guest with its threads as coroutines vs the executor's own round robin"
    )
    targets: ClassVar[Mapping[str, Target]] = {
        **VM_TARGETS["SchedulerBenchmark"],
        # A CV near zero is timing jitter in per-vCPU busy time: 0.02 against 0.04 is not a
        # doubling of imbalance. A comparison reports changes of at least 0.05 only.
        "imbalance_cv_uniform": Target(
            None, "CV", Direction.LOWER, "", "near zero for uniform work", min_difference=0.05
        ),
        "imbalance_cv_skewed": Target(
            None, "CV", Direction.LOWER, "", "what stealing leaves", min_difference=0.05
        ),
    }

    switches: ClassVar[tuple[int, int]] = (200_000, 20_000)
    """Switches per measurement (full, quick): 200k take about 0.1 s at ~400 ns each."""
    steal_repeats: ClassVar[tuple[int, int]] = (201, 51)
    """Steals per value, whose median is the value (each steal is a few microseconds)."""
    imbalance_slices: ClassVar[tuple[int, int]] = (50, 10)
    guests: ClassVar[int] = 4
    guest_vcpus: ClassVar[int] = 2
    guest_slice: ClassVar[int] = 20_000
    """Guest instructions per slice: about 10 ms of interpreted guest code per step."""

    def available(self) -> str | None:
        """Needs coroutine-scheduler with its measuring module, and async-executor for guests."""
        try:
            import vmkit.async_executor
            import vmkit.coroutine_scheduler.measure  # noqa: F401
        except ImportError as exc:
            return f"cannot import {exc.name}: {exc}"
        return None

    def run(self, ctx: RunContext) -> Sequence[Metrics]:
        """One value of every metric."""
        from vmkit.coroutine_scheduler import measure

        pick = 1 if ctx.quick else 0
        switches = self.switches[pick]
        ours = measure.measure_switch(switches=switches, repeats=1).median
        asyncio_ns = measure.measure_asyncio_switch(switches=switches, repeats=1).median
        threads = measure.measure_switch(
            switches=max(2, switches // 10), repeats=1, backend="threads", vcpus=1
        ).median
        steal_ns = measure.measure_steal(repeats=self.steal_repeats[pick]).median
        slices = self.imbalance_slices[pick]
        uniform = measure.measure_imbalance(skew=0.0, slices=slices)
        skewed = measure.measure_imbalance(skew=1.0, slices=slices)
        utilization, _ = self.run_guests(quick=ctx.quick)
        own, spread = self.run_threaded_guest()
        return [
            Metrics("context_switch", ours, "ns", Direction.LOWER),
            Metrics("asyncio_switch", asyncio_ns, "ns", Direction.LOWER),
            Metrics("context_switch_vs_asyncio", ours / asyncio_ns, "x", Direction.LOWER),
            Metrics("context_switch_threads", threads, "ns", Direction.LOWER),
            Metrics("steal_latency", steal_ns / 1000, "us", Direction.LOWER),
            Metrics("imbalance_cv_uniform", uniform.cv, "CV", Direction.LOWER),
            Metrics("imbalance_cv_skewed", skewed.cv, "CV", Direction.LOWER),
            Metrics("vcpu_utilization", 100 * utilization, "%", Direction.HIGHER),
            Metrics("threaded_guest_mips", spread, "MIPS", Direction.HIGHER),
            Metrics("threaded_guest_vs_round_robin", spread / own, "x", Direction.HIGHER),
        ]

    def run_threaded_guest(self) -> tuple[float, float]:
        """MIPS of the ``pthreads`` sample (seven threads) run by the interpreter's own round
        robin, then with every guest thread a coroutine on ``guest_vcpus`` vCPUs (through
        ``spawn_guest``), in this order in the same process; both outputs are checked equal.

        Raises:
            GuestCheckError: a run failed or the two runs printed different results.
        """
        import time

        from vmkit.async_executor import load_program
        from vmkit.async_executor.samples import path as sample_path
        from vmkit.coroutine_scheduler import Scheduler
        from vmkit.perf_bench.guests import spawn_guest

        make = interpreter_factory()
        results: list[tuple[float, str]] = []
        for on_scheduler in (False, True):
            with (
                tempfile.TemporaryDirectory(prefix="perf-bench-guest-") as root,
                tempfile.TemporaryFile() as out,
            ):
                machine = load_program(
                    str(sample_path("pthreads")), ["pthreads"], env={}, root=root,
                    stdio=(out.fileno(), out.fileno(), out.fileno()), random_bytes=bytes(16),
                )  # fmt: skip
                executor = make(machine)
                start = time.perf_counter()
                if on_scheduler:
                    scheduler = Scheduler(self.guest_vcpus, seed=0)
                    guest, _main = spawn_guest(scheduler, executor, machine)
                    scheduler.run(timeout=600)
                    status = guest.status
                else:
                    status = executor.run(machine)
                elapsed = time.perf_counter() - start
                machine.linux.close()
                out.seek(0)
                text = out.read().decode("utf-8", "replace")
            if status != 0:
                raise GuestCheckError(f"the pthreads sample ended with status {status}: {text}")
            results.append((machine.hart.instret / elapsed / 1e6, text))
        (own, own_text), (spread, spread_text) = results
        if own_text != spread_text:
            raise GuestCheckError(
                f"the pthreads sample printed {own_text!r} on its own, {spread_text!r} with its "
                "threads on the scheduler"
            )
        return own, spread

    def run_guests(self, *, quick: bool) -> tuple[float, dict[str, Any]]:
        """Run ``guests`` checked guest programs on a scheduler; (utilisation, evidence).

        The evidence holds the scheduler's statistics snapshot and the guests' own counts, so
        tests can check that they agree.

        Raises:
            GuestCheckError: a guest failed, or the scheduler's counts disagree with the guests'.
        """
        from vmkit.async_executor import load_program
        from vmkit.coroutine_scheduler import Scheduler

        workload = WORKLOADS["crc32"]
        size = 256 if quick else 8192
        make = interpreter_factory()
        scheduler = Scheduler(self.guest_vcpus, seed=0)
        guests: list[tuple[Any, Any, Any, GuestSlices, Any]] = []
        with contextlib.ExitStack() as stack:
            root = stack.enter_context(tempfile.TemporaryDirectory(prefix="perf-bench-guest-"))
            stack.callback(scheduler.close)
            for i in range(self.guests):
                out = stack.enter_context(tempfile.TemporaryFile())
                machine = load_program(
                    str(workload_path(workload.name)),
                    workload.argv(quick, (size,)),
                    env={},
                    root=root,
                    stdio=(out.fileno(), out.fileno(), out.fileno()),
                    random_bytes=bytes(16),
                )
                executor = make(machine)
                counter = GuestSlices()
                coroutine = scheduler.spawn(
                    guest_coroutine(executor, machine, self.guest_slice, counter),
                    name=f"guest{i}",
                )
                guests.append((machine, executor, coroutine, counter, out))
            scheduler.run(timeout=600)
            stats = scheduler.stats()
            for machine, executor, coroutine, _, out in guests:
                out.seek(0)
                text = out.read().decode("utf-8", "replace")
                exc = coroutine.exception
                status = coroutine.result if exc is None else -1
                term = machine.termination
                ending = str(exc) if exc is not None else (term.message if term else "")
                workload.check(
                    GuestRun(
                        workload.name,
                        "interpreter on coroutine-scheduler",
                        (size,),
                        status,
                        ending,
                        text,
                        machine.hart.instret,
                        1,
                        machine,
                        executor,
                    )
                )
            steps = sum(g[3].slices for g in guests)
            if stats.totals.executions != steps:
                raise GuestCheckError(
                    f"scheduler counted {stats.totals.executions} steps, the guests took {steps}"
                )
        evidence = {
            "stats": stats,
            "slices": [g[3].slices for g in guests],
            "instructions": [g[3].instructions for g in guests],
            "instret": [g[0].hart.instret for g in guests],
            "executor_instructions": [g[1].stats.instructions for g in guests],
        }
        return stats.totals.utilization, evidence
