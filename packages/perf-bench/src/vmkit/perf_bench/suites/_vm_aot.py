"""``AotBenchmark``: ahead-of-time compile time, code-cache size, warm start over a cold JIT.

Design note: one value does, each step on a fresh machine of the ``crc32`` kernel:

1. a cold JIT run (fresh ``AsyncExecutionContext``), checked: ``cold_start``, its wall time;
2. an AOT build: ``build_code_cache`` from the program's entry point on a freshly loaded (not yet
   run) machine, timed: ``aot_compile_time`` for the whole reachable program and
   ``aot_compile_per_block``; ``save_code_cache`` writes it to a temporary file, whose size is
   ``code_cache_size``;
3. a warm start: a fresh context, ``load_code_cache`` then the run, checked: ``warm_start`` is
   both together, and ``warm_start_speedup`` is ``cold_start / warm_start`` from the same value.
   ``aot_coverage`` is the share of the warm run's translations served from the cache (blocks
   reached only through indirect jumps are not found by static discovery and are translated as
   usual);
4. a profile-guided cache: a JIT run of a fresh machine, then ``profiled_code_cache`` saves the
   blocks that run translated (``profiled_cache_size``), and a warm start from it, checked like
   the other: ``profiled_warm_start``, ``profiled_warm_start_speedup`` over the same cold start,
   and ``profiled_coverage``.

The whole program (about 11000 blocks of static glibc, several seconds to translate) is what the
full mode builds. ``--quick`` caps the build at ``QUICK_MAX_BLOCKS`` blocks, nearest the entry
first (the cache's own breadth-first order), so totals and coverage are for that smaller cache;
the per-block figure stays comparable. The warm run must retire exactly the instructions of the
cold run, and the context must count what the hart retired.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from vmkit.perf_bench._benchmark import Benchmark, RunContext
from vmkit.perf_bench._metrics import Direction, Metrics
from vmkit.perf_bench.suites._vm_engines import aot_functions, aot_unavailable_reason, jit_classes
from vmkit.perf_bench.suites._vm_workloads import (
    WORKLOADS,
    GuestCheckError,
    run_guest,
    workload_path,
)

__all__ = ["QUICK_MAX_BLOCKS", "AotBenchmark"]

QUICK_MAX_BLOCKS = 256
"""Blocks an AOT build translates with ``--quick`` (about 0.2 s), instead of the whole program."""

KERNEL = "crc32"


class AotBenchmark(Benchmark):
    """AOT compile time of a whole program, code-cache size on disk, warm-start speed-up."""

    name = "AotBenchmark"
    description = (
        "AOT code cache of crc32 (whole program; quick: the 256 blocks nearest the entry): "
        "build time, size on disk, warm start (load + run) vs a cold JIT start; the same for a "
        "profile-guided cache (the blocks one run used)"
    )
    max_blocks: ClassVar[tuple[int | None, int]] = (None, QUICK_MAX_BLOCKS)
    """Cap on the blocks built (full, quick); None builds everything reachable."""

    def available(self) -> str | None:
        """Needs the AOT functions and a working JIT (not disabled)."""
        return aot_unavailable_reason()

    def measure(self, quick: bool, clock: Callable[[], int]) -> dict[str, Any]:
        """Cold run, AOT build and save, warm start; the figures and the evidence behind them.

        Raises:
            GuestCheckError: a guest failed, or the runs' counts disagree.
        """
        from vmkit.async_executor import load_program

        build, save, _load, _profiled = aot_functions()
        jit, context_class = jit_classes()
        workload = WORKLOADS[KERNEL]
        cold_context = context_class()
        cold = run_guest(
            workload, "jit (cold)", lambda m: jit(m, cold_context), quick=quick, clock=clock
        )
        cap = self.max_blocks[1 if quick else 0]
        with tempfile.TemporaryDirectory(prefix="perf-bench-aot-") as tmp:
            machine = load_program(
                str(workload_path(KERNEL)),
                workload.argv(quick),
                env={},
                root=tmp,
                random_bytes=bytes(16),
            )
            build_context = context_class()
            entry = machine.hart.pc
            start = clock()
            info = build(build_context, machine.memory, [entry], *(() if cap is None else (cap,)))
            compile_ns = clock() - start
            path = Path(tmp) / "crc32.jitcache"
            size = save(info, machine.memory, path)
            if size != path.stat().st_size:
                raise GuestCheckError(
                    f"save_code_cache reported {size} bytes, the file has {path.stat().st_size}"
                )
            warm = _warm_start(
                workload, path, "jit (warm, AOT cache)", cold, quick=quick, clock=clock
            )
            profile = self._profiled(workload, cold, path.with_suffix(".profiled"), quick, clock)
        if warm["offered"] != len(info):
            raise GuestCheckError(f"cache offers {warm['offered']} blocks, {len(info)} were built")
        return {
            "blocks": len(info),
            "compile_ns": max(1, compile_ns),
            "size": size,
            "cold_ns": cold.elapsed_ns,
            "warm_ns": warm["warm_ns"],
            "coverage": warm["coverage"],
            "prebuilt": warm["prebuilt"],
            "compilations": warm["compilations"],
            "profiled_size": profile["size"],
            "profiled_blocks": profile["blocks"],
            "profiled_warm_ns": profile["warm_ns"],
            "profiled_coverage": profile["coverage"],
        }

    def _profiled(
        self, workload: Any, cold: Any, path: Path, quick: bool, clock: Callable[[], int]
    ) -> dict[str, Any]:
        """Profile run, ``profiled_code_cache`` saved to ``path``, warm start from it."""
        _build, save, _load, profiled = aot_functions()
        jit, context_class = jit_classes()
        profile_context = context_class()
        memories: list[Any] = []  # keeps the profiled address space (and its blocks) alive

        def make_profiler(m: Any) -> Any:
            memories.append(m.memory)
            return jit(m, profile_context)

        run_guest(workload, "jit (profile run)", make_profiler, quick=quick, clock=clock)
        info = profiled(profile_context, memories[0])
        size = save(info, memories[0], path)
        warm = _warm_start(
            workload, path, "jit (warm, profiled cache)", cold, quick=quick, clock=clock
        )
        return {"size": size, "blocks": len(info), **warm}

    def run(self, ctx: RunContext) -> Sequence[Metrics]:
        """One value of every metric."""
        m = self.measure(ctx.quick, ctx.clock)
        blocks = max(1, m["blocks"])
        return [
            Metrics.timing("aot_compile_time", m["compile_ns"], 1, unit="ms"),
            Metrics.timing("aot_compile_per_block", m["compile_ns"], blocks, unit="us"),
            Metrics("aot_blocks", float(m["blocks"]), "count", Direction.HIGHER),
            Metrics("code_cache_size", m["size"] / 1024, "KiB", Direction.LOWER),
            Metrics.timing("cold_start", m["cold_ns"], 1, unit="ms"),
            Metrics.timing("warm_start", m["warm_ns"], 1, unit="ms"),
            Metrics("warm_start_speedup", m["cold_ns"] / m["warm_ns"], "x", Direction.HIGHER),
            Metrics("aot_coverage", 100 * m["coverage"], "%", Direction.HIGHER),
            Metrics("profiled_cache_size", m["profiled_size"] / 1024, "KiB", Direction.LOWER),
            Metrics.timing("profiled_warm_start", m["profiled_warm_ns"], 1, unit="ms"),
            Metrics(
                "profiled_warm_start_speedup",
                m["cold_ns"] / m["profiled_warm_ns"],
                "x",
                Direction.HIGHER,
            ),
            Metrics("profiled_coverage", 100 * m["profiled_coverage"], "%", Direction.HIGHER),
        ]


def _warm_start(
    workload: Any, path: Path, label: str, cold: Any, *, quick: bool, clock: Callable[[], int]
) -> dict[str, Any]:
    """A fresh context loads the cache at ``path``, then the JIT runs the workload; checked to
    retire the cold run's instructions and counted by the context. Returns the wall time with
    the load (``warm_ns``), what the cache offered, and the share served from it."""
    _build, _save, load, _profiled = aot_functions()
    jit, context_class = jit_classes()
    warm_context = context_class()
    offered: list[int] = []
    load_ns: list[int] = []

    def make_warm(m: Any) -> Any:
        t0 = clock()
        offered.append(load(warm_context, m.memory, path))
        load_ns.append(clock() - t0)
        return jit(m, warm_context)

    warm = run_guest(workload, label, make_warm, quick=quick, clock=clock)
    if warm.instructions != cold.instructions:
        raise GuestCheckError(
            f"{label} retired {warm.instructions} instructions, the cold start {cold.instructions}"
        )
    stats = warm_context.stats()
    if stats.instructions != warm.instructions:
        raise GuestCheckError(
            f"context counted {stats.instructions} instructions, the hart {warm.instructions}"
        )
    translated = stats.prebuilt + stats.compilations
    return {
        "warm_ns": warm.elapsed_ns + load_ns[0],
        "offered": offered[0],
        "coverage": stats.prebuilt / translated if translated else 0.0,
        "prebuilt": stats.prebuilt,
        "compilations": stats.compilations,
    }
