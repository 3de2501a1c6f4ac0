"""``JitBenchmark``: translate+compile time per block, cache hit rate, JIT vs interpreter MIPS.

Design note: one value runs the loop kernel (crc32) three times, each on a fresh machine, each
checked (exit status 0, output equal to ``zlib.crc32`` of the same bytes):

1. on the interpreter: ``interp_mips`` (its decoding of cold code included, as a user gets it);
2. on the JIT with an empty translation cache (a fresh ``AsyncExecutionContext``): the context's
   statistics give ``translate_compile_per_block`` (median of the per-block times the context
   records), ``blocks_compiled`` and ``cache_hit_rate`` (dispatches that found their block),
   and the run gives ``jit_cold_mips`` (translation included);
3. on the JIT again, a new machine of the same program sharing that context's code (same
   ``code_key``): ``jit_mips``, the steady-state speed of translated code.

``jit_speedup`` is ``jit_mips / interp_mips`` and ``jit_cold_speedup`` the cold ratio, both
from the same value, so machine drift cancels. ``cache_hit_overhead`` is the lookup half of a
hit: ``blocks.get(pc)`` on the context's real dict over the program's cached block addresses
(the call into a block is inside the MIPS figures).

Every figure is checked against the engines' own statistics before it is reported: the JIT's
retired instructions must equal the interpreter's for the same program and input, and the
context's instruction count must equal the executor's and the hart's.

With ``PERF_BENCH_DISABLE_JIT=1`` the JIT's runs are replaced by interpreter runs (the
description says so), and the translation metrics are left out: an interpreter has none, and a
zero would be a fake improvement.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from vmkit.perf_bench._benchmark import Benchmark, RunContext
from vmkit.perf_bench._metrics import Direction, Metrics
from vmkit.perf_bench.suites._vm_engines import (
    DISABLE_JIT_ENV,
    interpreter_factory,
    jit_classes,
    jit_disabled,
    jit_unavailable_reason,
)
from vmkit.perf_bench.suites._vm_targets import VM_TARGETS
from vmkit.perf_bench.suites._vm_workloads import (
    WORKLOADS,
    GuestCheckError,
    GuestRun,
    run_guest,
    workload_path,
)

__all__ = ["JitBenchmark", "JitRuns", "time_cache_lookup"]

KERNEL = "crc32"


def time_cache_lookup(blocks: dict[int, Any], lookups: int, clock: Callable[[], int]) -> float:
    """ns per ``blocks.get(pc)`` hit over every cached block address, ten per loop iteration."""
    pcs = list(blocks)
    if not pcs:
        raise ValueError("the translation cache is empty")
    get = blocks.get
    rounds = max(1, lookups // (10 * len(pcs)))
    start = clock()
    for _ in range(rounds):
        for pc in pcs:
            get(pc); get(pc); get(pc); get(pc); get(pc)  # fmt: skip  # noqa: E702
            get(pc); get(pc); get(pc); get(pc); get(pc)  # fmt: skip  # noqa: E702
    return (clock() - start) / (rounds * len(pcs) * 10)


@dataclass(frozen=True, slots=True)
class JitRuns:
    """The three checked runs of one value and the JIT context's statistics after each.

    With the JIT disabled, ``cold`` and ``warm`` are interpreter runs and the JIT fields are None.
    """

    interp: GuestRun
    cold: GuestRun
    warm: GuestRun
    cold_stats: Any = None
    warm_stats: Any = None
    context: Any = None


def _mips(run: GuestRun) -> float:
    return run.instructions / (run.elapsed_ns / 1e9) / 1e6


def _code_key(name: str) -> str:
    digest = hashlib.sha256(workload_path(name).read_bytes()).hexdigest()[:16]
    return f"perf-bench:{name}:{digest}"


class JitBenchmark(Benchmark):
    """JIT translate+compile time per block, cache hit rate, JIT and interpreter MIPS."""

    name = "JitBenchmark"
    description = (
        "JIT on the crc32 loop kernel: translate+compile per block and cache hit rate from the "
        "execution context's statistics (cold cache), JIT (warm cache) vs interpreter MIPS"
    )
    targets = VM_TARGETS["JitBenchmark"]
    lookups = (1_000_000, 100_000)

    def __init__(self) -> None:
        if jit_disabled():
            self.description = (
                f"JIT DISABLED ({DISABLE_JIT_ENV}): the interpreter is measured in the JIT's "
                "place; translation metrics are absent"
            )

    def available(self) -> str | None:
        """The JIT must exist and pass its smoke run (unless disabled: then the interpreter)."""
        if jit_disabled():
            return None
        return jit_unavailable_reason()

    def runs(self, quick: bool, clock: Callable[[], int]) -> JitRuns:
        """Interpreter, cold JIT and warm JIT runs of the kernel, each checked.

        Raises:
            GuestCheckError: a guest failed, or the engines' counts disagree.
        """
        workload = WORKLOADS[KERNEL]

        def guest(engine: str, make: Callable[[Any], Any]) -> GuestRun:
            return run_guest(workload, engine, make, quick=quick, clock=clock)

        interp = guest("interpreter", interpreter_factory())
        if jit_disabled():
            label = "interpreter (JIT disabled)"
            cold = guest(label, interpreter_factory())
            return JitRuns(interp, cold, guest(label, interpreter_factory()))
        jit, context_class = jit_classes()
        context = context_class()
        key = _code_key(KERNEL)

        def make_jit(machine: Any) -> Any:
            return jit(machine, context, code_key=key)

        cold = guest("jit (cold)", make_jit)
        cold_stats = context.stats()
        warm = guest("jit (warm)", make_jit)
        runs = JitRuns(interp, cold, warm, cold_stats, context.stats(), context)
        check_agreement(runs)
        return runs

    def run(self, ctx: RunContext) -> Sequence[Metrics]:
        """One value of every metric."""
        runs = self.runs(ctx.quick, ctx.clock)
        interp_mips = _mips(runs.interp)
        jit_mips = _mips(runs.warm)
        cold_mips = _mips(runs.cold)
        metrics = []
        if runs.context is not None:
            stats = runs.cold_stats
            blocks = runs.context.namespace(runs.cold.machine.memory).blocks
            lookup = time_cache_lookup(blocks, self.lookups[1 if ctx.quick else 0], ctx.clock)
            metrics += [
                Metrics(
                    "translate_compile_per_block",
                    stats.median_compile_time * 1e6,
                    "us",
                    Direction.LOWER,
                    operations=max(1, stats.compilations),
                ),
                Metrics("blocks_compiled", float(stats.compilations), "count", Direction.LOWER),
                Metrics("cache_hit_rate", 100 * stats.hit_rate, "%", Direction.HIGHER),
                Metrics("cache_hit_overhead", lookup, "ns", Direction.LOWER),
            ]
        metrics += [
            Metrics.rate(
                "interp_mips",
                runs.interp.instructions,
                runs.interp.elapsed_ns,
                unit="MIPS",
                scale=1e6,
            ),
            Metrics.rate(
                "jit_mips", runs.warm.instructions, runs.warm.elapsed_ns, unit="MIPS", scale=1e6
            ),
            Metrics.rate(
                "jit_cold_mips",
                runs.cold.instructions,
                runs.cold.elapsed_ns,
                unit="MIPS",
                scale=1e6,
            ),
            Metrics("jit_speedup", jit_mips / interp_mips, "x", Direction.HIGHER),
            Metrics("jit_cold_speedup", cold_mips / interp_mips, "x", Direction.HIGHER),
        ]
        return metrics


def check_agreement(runs: JitRuns) -> None:
    """Raise :class:`GuestCheckError` unless the engines' counts agree with each other.

    The interpreter and both JIT runs must retire the same number of guest instructions; each
    executor's ``stats.instructions`` must equal its hart's ``instret``; the context's
    instruction count must grow by exactly the warm run's.
    """
    for run in (runs.interp, runs.cold, runs.warm):
        counted = run.executor.stats.instructions
        if counted != run.instructions:
            raise GuestCheckError(
                f"{run.engine}: executor counted {counted} instructions, hart retired "
                f"{run.instructions}"
            )
    if not runs.interp.instructions == runs.cold.instructions == runs.warm.instructions:
        raise GuestCheckError(
            f"instructions retired differ: interpreter {runs.interp.instructions}, cold JIT "
            f"{runs.cold.instructions}, warm JIT {runs.warm.instructions}"
        )
    if runs.cold_stats is not None and runs.warm_stats is not None:
        if runs.cold_stats.instructions != runs.cold.instructions:
            raise GuestCheckError(
                f"context counted {runs.cold_stats.instructions} instructions in the cold run, "
                f"the hart retired {runs.cold.instructions}"
            )
        grew = runs.warm_stats.instructions - runs.cold_stats.instructions
        if grew != runs.warm.instructions:
            raise GuestCheckError(
                f"context counted {grew} instructions in the warm run, "
                f"the hart retired {runs.warm.instructions}"
            )
