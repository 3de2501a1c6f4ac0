"""``TlbBenchmark``: the software TLB's hit rate on the guest workloads and its cost per lookup.

Design note: the hit rate is the AddressSpace's own accounting, read after each checked guest
run: executors add the memory accesses they perform to ``tlb_accesses`` and every slow-path
page-table walk adds one to ``tlb_misses`` (so fetches for decoding and syscall copies count as
misses too, which makes the figure slightly pessimistic, never flattering). ``tlb_hit_rate`` pools
the three kernels (crc32, sieve, matmul), the suite's workloads that the target speaks of;
``pagewalk`` is the deliberate worst case (more pages in one cyclic walk than the TLB holds) and
is reported on its own, without a target.

Cost per translation, measured on the TLB the guest just left behind (its real pages):

* ``tlb_translation``: the fast path of a hit, ``tlb_read.get(addr >> 12)`` as translated code
  and the interpreter's closures do it, over the guest's own cached pages, ten per loop iteration
  (so a tenth of the ``for`` loop's cost, about 1 ns, is included);
* ``tlb_miss_cost``: the slow path an executor calls on a miss, ``AddressSpace.load(addr, 8)``:
  page-table walk, permission check, TLB fill, and the load itself;
* ``tlb_access_cost``: the mean per access on the pooled kernels, hit rate times the fast path
  plus miss rate times the slow path.

The engine is the interpreter; the JIT maintains the same counters, and the benchmark will move
to it (the figures are the AddressSpace's, so they stay comparable).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from vmkit.perf_bench._benchmark import Benchmark, RunContext
from vmkit.perf_bench._metrics import Direction, Metrics
from vmkit.perf_bench.suites._vm_engines import interpreter_factory
from vmkit.perf_bench.suites._vm_targets import VM_TARGETS
from vmkit.perf_bench.suites._vm_workloads import WORKLOADS, GuestRun, run_guest

__all__ = ["TlbBenchmark", "time_fast_path", "time_slow_path"]

KERNELS = ("crc32", "sieve", "matmul")


def time_fast_path(memory: Any, lookups: int, clock: Callable[[], int]) -> float:
    """ns per ``tlb_read.get(vpn)`` hit over the pages currently in ``memory``'s read TLB."""
    pages = list(memory.tlb_read)
    if not pages:
        raise ValueError("the read TLB is empty: run a guest first")
    get = memory.tlb_read.get
    addresses = [(vpn << 12) | 0x18 for vpn in pages]
    rounds = max(1, lookups // (10 * len(addresses)))
    start = clock()
    for _ in range(rounds):
        for a in addresses:
            get(a >> 12); get(a >> 12); get(a >> 12); get(a >> 12); get(a >> 12)  # fmt: skip  # noqa: E702
            get(a >> 12); get(a >> 12); get(a >> 12); get(a >> 12); get(a >> 12)  # fmt: skip  # noqa: E702
    elapsed = clock() - start
    return elapsed / (rounds * len(addresses) * 10)


def time_slow_path(memory: Any, loads: int, clock: Callable[[], int]) -> float:
    """ns per ``memory.load(addr, 8)``: the slow path an executor takes on a TLB miss."""
    pages = list(memory.tlb_read)
    if not pages:
        raise ValueError("the read TLB is empty: run a guest first")
    load = memory.load
    addresses = [(vpn << 12) | 0x18 for vpn in pages]
    rounds = max(1, loads // len(addresses))
    start = clock()
    for _ in range(rounds):
        for a in addresses:
            load(a, 8)
    elapsed = clock() - start
    return elapsed / (rounds * len(addresses))


class TlbBenchmark(Benchmark):
    """Software-TLB hit rate per workload and the cost of the fast and slow paths."""

    name = "TlbBenchmark"
    description = (
        "software TLB on the guest workloads (interpreter): hit rate from the AddressSpace's "
        "counters, fast-path and slow-path cost per translation"
    )
    targets = VM_TARGETS["TlbBenchmark"]

    fast_lookups: ClassVar[tuple[int, int]] = (1_000_000, 100_000)
    slow_loads: ClassVar[tuple[int, int]] = (100_000, 10_000)

    def available(self) -> str | None:
        """Needs async-executor."""
        try:
            import vmkit.async_executor  # noqa: F401
        except ImportError as exc:
            return f"cannot import {exc.name}: {exc}"
        return None

    def runs(self, quick: bool) -> dict[str, GuestRun]:
        """Run every workload once, checked, on a fresh machine each."""
        make = interpreter_factory()
        return {
            name: run_guest(w, "interpreter", make, quick=quick) for name, w in WORKLOADS.items()
        }

    def run(self, ctx: RunContext) -> Sequence[Metrics]:
        """One value of every metric."""
        runs = self.runs(ctx.quick)
        metrics = tlb_metrics(runs)
        pick = 1 if ctx.quick else 0
        memory = runs["crc32"].machine.memory
        fast = time_fast_path(memory, self.fast_lookups[pick], ctx.clock)
        slow = time_slow_path(memory, self.slow_loads[pick], ctx.clock)
        accesses = sum(runs[k].machine.memory.tlb_accesses for k in KERNELS)
        misses = sum(runs[k].machine.memory.tlb_misses for k in KERNELS)
        miss_rate = min(1.0, misses / accesses)
        return [
            *metrics,
            Metrics("tlb_translation", fast, "ns", Direction.LOWER),
            Metrics("tlb_miss_cost", slow, "ns", Direction.LOWER),
            Metrics(
                "tlb_access_cost", (1 - miss_rate) * fast + miss_rate * slow, "ns", Direction.LOWER
            ),
        ]


def tlb_metrics(runs: dict[str, GuestRun]) -> list[Metrics]:
    """Hit rates from the AddressSpace counters of each run: pooled kernels, then each workload."""
    accesses = sum(runs[k].machine.memory.tlb_accesses for k in KERNELS)
    misses = sum(runs[k].machine.memory.tlb_misses for k in KERNELS)
    pooled = 100 * max(0.0, 1 - misses / accesses) if accesses else 100.0
    metrics = [Metrics("tlb_hit_rate", pooled, "%", Direction.HIGHER, operations=accesses)]
    for name, run in runs.items():
        memory = run.machine.memory
        metrics.append(
            Metrics(
                f"tlb_hit_rate_{name}",
                100 * memory.tlb_hit_rate,
                "%",
                Direction.HIGHER,
                operations=max(1, memory.tlb_accesses),
            )
        )
    return metrics
