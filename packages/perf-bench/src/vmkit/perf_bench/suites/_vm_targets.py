"""The VM suite's targets, by benchmark and metric name, from ARCHITECTURE.md's target table.

The metric names are the contract with the suite's benchmarks: each must report metrics with
exactly these names (and units convertible to these) for the targets to apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from vmkit.perf_bench._metrics import Direction
from vmkit.perf_bench._targets import Target, freeze_targets

__all__ = ["VM_TARGETS"]

_LOWER, _HIGHER = Direction.LOWER, Direction.HIGHER

VM_TARGETS: Final[Mapping[str, Mapping[str, Target]]] = freeze_targets(
    {
        "JitBenchmark": {
            "translate_compile_per_block": Target(
                100, "us", _LOWER, "100 us (simulated)", "median translate + compile per block"
            ),
            "cache_hit_overhead": Target(
                None, "ns", _LOWER, "< 50 ns overhead", "lookup + dispatch; reported vs a dict hit"
            ),
            "jit_mips": Target(
                20, "MIPS", _HIGHER, "> 1 M ops/s", "guest instructions/s on loop kernels"
            ),
            "jit_speedup": Target(10, "x", _HIGHER, "", "JIT MIPS / interpreter MIPS"),
        },
        "SchedulerBenchmark": {
            "steal_latency": Target(10, "us", _LOWER, "< 10 us", "median per steal"),
            "context_switch": Target(1, "us", _LOWER, "< 1 us", "median, inline backend"),
            "context_switch_vs_asyncio": Target(
                1, "x", _LOWER, "", "our switch / asyncio's switch in the same run; < 1 is faster"
            ),
        },
        "GcBenchmark": {
            "gc_pause_max": Target(50, "ms", _LOWER, "< 50 ms", "max host GC pause in the run"),
        },
        "BatchBenchmark": {
            "batch_speedup": Target(
                3, "x", _HIGHER, "", "short guests: batch on 2 workers vs a process each, 2-way"
            ),
        },
        "TlbBenchmark": {
            "tlb_hit_rate": Target(98, "%", _HIGHER, "> 98%", "on the suite's workloads"),
            "tlb_translation": Target(
                None, "ns", _LOWER, "< 5 ns", "reported; one CPython bytecode costs more"
            ),
        },
    }
)
"""Targets of the VM suite, by benchmark and metric name, from ARCHITECTURE.md's target table."""
