"""The ``vm`` suite: async-executor and coroutine-scheduler doing real work on guest programs.

``perf-bench run --suite vm [--quick]`` runs these benchmarks, each in fresh worker processes:

* ``JitBenchmark``: translate+compile time per block, translation-cache hit rate and lookup cost,
  JIT and interpreter guest MIPS and their ratio, on the same program in the same value;
* ``AotBenchmark``: AOT build time and code-cache size, warm start (cache) over a cold JIT start;
* ``GcBenchmark``: host GC pauses (max, p99, count) and GC's share of time while guests run;
* ``TlbBenchmark``: software-TLB hit rate per workload, fast-path and slow-path cost;
* ``CrossArchBenchmark``: translation time per guest instruction, host bytecodes per guest
  instruction counted from the generated code objects;
* ``SchedulerBenchmark``: context switch vs asyncio's in the same value, steal latency, load
  imbalance for uniform and skewed work, vCPU utilisation running guest programs;
* ``BatchBenchmark``, on request (``--bench BatchBenchmark``): guests per second of a corpus of
  short guests through async-executor's batch path vs one process per guest, and the start-up
  cost per job that remains.

Every guest run is checked (exit status and output against a Python oracle) and every figure is
cross-checked with the engines' own statistics before it is reported. Benchmarks whose engine does
not exist or does not work here report themselves unavailable, with the reason. See
``docs/perf-bench/vm-suite.md`` for the metrics and how to read them.
"""

from __future__ import annotations

from vmkit.perf_bench._suite import BenchmarkSuite
from vmkit.perf_bench.suites._vm_aot import AotBenchmark
from vmkit.perf_bench.suites._vm_batch import BatchBenchmark
from vmkit.perf_bench.suites._vm_crossarch import CrossArchBenchmark
from vmkit.perf_bench.suites._vm_engines import DISABLE_JIT_ENV, jit_disabled
from vmkit.perf_bench.suites._vm_gc import GcBenchmark
from vmkit.perf_bench.suites._vm_jit import JitBenchmark
from vmkit.perf_bench.suites._vm_scheduler import SchedulerBenchmark
from vmkit.perf_bench.suites._vm_targets import VM_TARGETS
from vmkit.perf_bench.suites._vm_tlb import TlbBenchmark
from vmkit.perf_bench.suites._vm_workloads import WORKLOADS, GuestCheckError, Workload

__all__ = [
    "DISABLE_JIT_ENV",
    "VM_TARGETS",
    "WORKLOADS",
    "AotBenchmark",
    "BatchBenchmark",
    "CrossArchBenchmark",
    "GcBenchmark",
    "GuestCheckError",
    "JitBenchmark",
    "SchedulerBenchmark",
    "TlbBenchmark",
    "Workload",
    "build_suite",
    "jit_disabled",
]

DESCRIPTION = "async-executor and coroutine-scheduler on real guest programs"

QUICK_OVERRIDES = {"values": 2}
"""``--quick`` takes 2 values per process here (3 processes, 1 warm-up: 9 runs per benchmark):
each value of this suite runs whole guest programs, cold JIT translation of glibc's start-up
included, and the demonstration must finish in under a minute on a shared 2-core machine."""


def build_suite() -> BenchmarkSuite:
    """The ``vm`` suite (cheap to build: nothing is imported from the engines or measured)."""
    suite = BenchmarkSuite("vm", DESCRIPTION, quick_overrides=QUICK_OVERRIDES)
    for benchmark in (
        JitBenchmark,
        AotBenchmark,
        GcBenchmark,
        TlbBenchmark,
        CrossArchBenchmark,
        SchedulerBenchmark,
    ):
        suite.register(benchmark)
    # About a minute of many short processes: a question of its own, asked by name.
    suite.register(BatchBenchmark, on_request=True)
    return suite
