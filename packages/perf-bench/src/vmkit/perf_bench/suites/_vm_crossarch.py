"""``CrossArchBenchmark``: what translating RISC-V to CPython bytecode costs and produces.

Design note: each value runs the three kernels (crc32, sieve, matmul; crc32 alone with
``--quick``) on the JIT with an empty
translation cache, each checked, and then reads the translations the context holds:

* ``translation_per_guest_insn``: seconds spent translating and compiling (the context's
  ``compile_time``) over the guest instructions those translations cover (the sum of the cached
  blocks' lengths), in microseconds: the price of bringing one guest instruction to the host;
* ``translation_per_executed_insn``: the same seconds over the guest instructions executed: the
  overhead each executed instruction carries in a cold run of these programs;
* ``translation_share``: translation time as a share of the JIT runs' wall time;
* ``bytecodes_per_guest_insn``: host bytecode instructions per guest instruction, counted with
  ``dis.get_instructions`` on the generated code objects (nested code objects included; the
  specialisation caches CPython 3.11 interleaves are not instructions and are not counted),
  summed over every cached block and divided by the guest instructions they translate. It is a
  static ratio of code size: a self-loop's body is counted once, as it is written.

The context's block count and compile count must agree with the translations that are read
(nothing evicted or invalidated in these runs), or the benchmark fails rather than report a ratio
over an incomplete set.
"""

from __future__ import annotations

import dis
import types
from collections.abc import Sequence
from typing import Any, ClassVar

from vmkit.perf_bench._benchmark import Benchmark, RunContext
from vmkit.perf_bench._metrics import Direction, Metrics
from vmkit.perf_bench.suites._vm_engines import (
    DISABLE_JIT_ENV,
    jit_classes,
    jit_disabled,
    jit_unavailable_reason,
)
from vmkit.perf_bench.suites._vm_workloads import WORKLOADS, GuestCheckError, run_guest

__all__ = ["CrossArchBenchmark", "TranslationCensus", "bytecode_count", "census"]


def bytecode_count(code: types.CodeType) -> int:
    """Bytecode instructions of ``code`` and of the code objects nested in it (no caches)."""
    total = sum(1 for _ in dis.get_instructions(code))
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            total += bytecode_count(const)
    return total


class TranslationCensus:
    """Totals over the translated blocks one context holds for one address space."""

    def __init__(self) -> None:
        self.blocks = 0
        self.guest_instructions = 0
        self.bytecodes = 0
        self.compile_time = 0.0

    def add(self, block: Any) -> None:
        """Count one ``TranslatedBlock``."""
        self.blocks += 1
        self.guest_instructions += int(block.length)
        self.bytecodes += bytecode_count(block.fn.__code__)
        self.compile_time += float(block.compile_time)


def census(context: Any, memory: Any) -> TranslationCensus:
    """Count the translated blocks ``context`` caches for ``memory``."""
    result = TranslationCensus()
    for block in list(context.namespace(memory).meta.values()):
        result.add(block)
    return result


class CrossArchBenchmark(Benchmark):
    """Translation overhead per guest instruction; host bytecodes per guest instruction."""

    name = "CrossArchBenchmark"
    description = (
        "RISC-V -> CPython translation on crc32, sieve, matmul (cold JIT): translation time per "
        "guest instruction, host bytecode instructions per guest instruction (dis)"
    )
    workloads: ClassVar[tuple[str, ...]] = ("crc32", "sieve", "matmul")
    quick_workloads: ClassVar[tuple[str, ...]] = ("crc32",)
    """A cold JIT run costs ~0.5 s of translation (glibc's start-up code included), so quick
    values translate one program."""

    def available(self) -> str | None:
        """Needs a working JIT, and the JIT not disabled (the interpreter translates nothing)."""
        if jit_disabled():
            return f"the JIT is disabled ({DISABLE_JIT_ENV}); the interpreter translates nothing"
        return jit_unavailable_reason()

    def measure(self, quick: bool, clock: Any) -> tuple[TranslationCensus, Any, int, int]:
        """Run the kernels cold on the JIT; (census, summed stats view, executed, wall ns).

        Raises:
            GuestCheckError: a guest failed or the context's counts disagree with its blocks.
        """
        jit, context_class = jit_classes()
        total = TranslationCensus()
        executed = 0
        wall = 0
        compile_time = 0.0
        for name in self.quick_workloads if quick else self.workloads:
            context = context_class()

            def make(machine: Any, context: Any = context) -> Any:
                return jit(machine, context)

            run = run_guest(WORKLOADS[name], "jit (cold)", make, quick=quick, clock=clock)
            stats = context.stats()
            part = census(context, run.machine.memory)
            if stats.evictions or stats.invalidations:
                raise GuestCheckError(
                    f"{name}: {stats.evictions} evictions and {stats.invalidations} "
                    "invalidations: the cached blocks no longer cover every translation"
                )
            if part.blocks != stats.cached_blocks:
                raise GuestCheckError(
                    f"{name}: context reports {stats.cached_blocks} cached blocks, "
                    f"its namespace holds {part.blocks}"
                )
            if stats.instructions != run.instructions:
                raise GuestCheckError(
                    f"{name}: context counted {stats.instructions} instructions, "
                    f"the hart retired {run.instructions}"
                )
            total.blocks += part.blocks
            total.guest_instructions += part.guest_instructions
            total.bytecodes += part.bytecodes
            total.compile_time += part.compile_time
            compile_time += stats.compile_time
            executed += run.instructions
            wall += run.elapsed_ns
        total.compile_time = compile_time
        return total, None, executed, wall

    def run(self, ctx: RunContext) -> Sequence[Metrics]:
        """One value of every metric."""
        total, _, executed, wall = self.measure(ctx.quick, ctx.clock)
        seconds = total.compile_time
        return [
            Metrics(
                "translation_per_guest_insn",
                seconds * 1e6 / total.guest_instructions,
                "us",
                Direction.LOWER,
                operations=total.guest_instructions,
            ),
            Metrics(
                "translation_per_executed_insn",
                seconds * 1e9 / executed,
                "ns",
                Direction.LOWER,
                operations=executed,
            ),
            Metrics("translation_share", 100 * seconds * 1e9 / wall, "%", Direction.LOWER),
            Metrics(
                "bytecodes_per_guest_insn",
                total.bytecodes / total.guest_instructions,
                "x",
                Direction.LOWER,
            ),
        ]
