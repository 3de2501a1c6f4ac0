"""The hybrid's third tier: JIT regions that stay hot are compiled to machine code (llvmlite).

Design note
-----------
The hybrid tiers interpreter -> Python JIT on entry counts (cheap: only cold code is counted).
Counting entries of translated blocks would put work on the hot path of every translated block,
so the step JIT -> native is found by *sampling* instead, at no cost to translated code:

* The hybrid runs its Python tiers under a *tick*: the instruction limit it hands to translated
  blocks and the interpreter is ``min(budget, tick)``. A translated block refuses to overrun it
  (``-1 - pc``, the budget protocol), which lands on the dispatch loop's miss path; the loop takes
  a *sample* there, attributed to the entry of the translated block or region that stopped (the
  entry the dispatch loop reaches, so native code compiled there is entered), and moves the tick
  on by ``SAMPLE_PERIOD`` instructions. Instructions retired in native code do not move the tick
  closer, so samples measure time spent in the Python tiers only. Sampling is deterministic
  (instruction counts, not a clock), so runs and tests are repeatable.
* An entry that collects ``threshold`` samples has run about ``threshold * SAMPLE_PERIOD``
  instructions translated: at 10-25 MIPS that is about one LLVM compile of a region (20-60 ms),
  the ski-rental point. The first region also waits until the Python tiers have retired
  ``warmup`` instructions, because the first compile pays for importing llvmlite and starting
  LLVM (about 0.3 s): short programs never pay it.
* Regions are compiled by a :class:`~vmkit.async_executor.engine.native.NativeExecutor` bound to
  the same machine (its compiler, native TLB, chain table, statistics and invalidation on code
  writes), so the hybrid's native tier and ``--engine native`` are the same machine code. A loop
  region holding an instruction native code cannot run is declined: it would leave native code
  on every iteration and run slower than its translation.
* Exits (see the NativeExecutor): ``next`` continues in the dispatch loop (natively again when
  the pc is a region entry); an unsupported instruction continues in the Python tiers at that
  pc; the budget, or a load or store native code cannot serve, hands exactly one block to the
  interpreter, which stops on the limit or performs (or faults on) the access exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.machinery import PathFinder
from typing import TYPE_CHECKING, Any, Final

from vmkit.async_executor._logging import get_logger
from vmkit.async_executor.engine._executor import MachineLike
from vmkit.async_executor.machine._memory import GuestMemoryFault

if TYPE_CHECKING:
    from vmkit.async_executor.engine.native import NativeExecutor, NativeStats
    from vmkit.async_executor.machine._hart import Hart

__all__ = [
    "DEFAULT_NATIVE_SAMPLES",
    "DEFAULT_NATIVE_WARMUP",
    "SAMPLE_PERIOD",
    "NativeTierUp",
    "native_available",
]

_log = get_logger(__name__)

#: Python-tier instructions between two samples: a few milliseconds of translated code, so a
#: sample (a few microseconds on the miss path) costs well under 0.1%.
SAMPLE_PERIOD: Final = 100_000
#: Samples at one entry before its region is compiled natively (see the module note).
DEFAULT_NATIVE_SAMPLES: Final = 4
#: Python-tier instructions before the first native compile (which starts LLVM).
DEFAULT_NATIVE_WARMUP: Final = 8_000_000
#: Returns from native code to one pc outside it before the region there is compiled too:
#: code that native code keeps leaving for (a caller, a return point, the rest of a loop nest) is
#: as hot as the code it leaves, and every return to Python costs microseconds.
DEFAULT_NATIVE_SUCCESSOR: Final = 256
#: Chained native code returns to Python at least this often (as under ``--engine native``).
_NATIVE_SLICE: Final = 1 << 24

# The NativeExecutor's exit codes (``engine.native._ir``), repeated here so that this module
# does not import llvmlite before the native tier is first used; checked in NativeTierUp.start.
_EXIT_NEXT: Final = 0
_EXIT_BUDGET: Final = 1
_EXIT_LOAD: Final = 2
_EXIT_STORE: Final = 3


def native_available() -> bool:
    """Whether llvmlite can be imported (without importing it: that takes a tenth of a second;
    ``importlib.machinery`` rather than ``importlib.util``, which costs 10 ms of start-up)."""
    return PathFinder.find_spec("llvmlite") is not None


class NativeTierUp:
    """The native tier of one HybridExecutor: samples, policy, and running native regions.

    Args:
        threshold: samples at a translated entry before its region is compiled natively.
        warmup: Python-tier instructions before the first region is compiled.
    """

    def __init__(
        self, *, threshold: int = DEFAULT_NATIVE_SAMPLES, warmup: int = DEFAULT_NATIVE_WARMUP
    ) -> None:
        if threshold < 1:
            raise ValueError(f"native threshold must be at least 1, got {threshold}")
        if warmup < 0:
            raise ValueError(f"native warmup must be >= 0, got {warmup}")
        self.threshold = threshold
        self.warmup = warmup
        #: What the NativeExecutor compiling for this tier gets as ``cache`` (a directory, a
        #: NativeCodeCache, False for none, None for the default directory); set before the
        #: first compile.
        self.cache: Any = None
        #: Python-tier instructions per sample (``SAMPLE_PERIOD``; tests make it small).
        self.period = SAMPLE_PERIOD
        #: Returns from native code to one pc before its region is compiled.
        self.successor_threshold = DEFAULT_NATIVE_SUCCESSOR
        #: Samples taken (each stands for ``SAMPLE_PERIOD`` Python-tier instructions).
        self.ticks = 0
        #: Regions declined: a loop holding an instruction native code does not run.
        self.declined = 0
        self._samples: dict[int, int] = {}
        self._successors: dict[int, int] = {}
        #: Exits before an instruction native code does not run, by its pc (``--stats`` names
        #: the instructions).
        self._unsupported: dict[int, int] = {}
        self._declined: set[int] = set()
        self._native: NativeExecutor | None = None
        self._machine: MachineLike | None = None
        #: Native region functions by entry pc (the NativeExecutor's own dict, mutated in
        #: place); empty until the first compile.
        self.regions: dict[int, Callable[[int, int, int], int]] = {}
        #: Python-tier instructions left until the next sample (kept across dispatch calls,
        #: so short slices still reach it).
        self.until_tick = SAMPLE_PERIOD

    # ------------------------------------------------------------------ state

    @property
    def native_stats(self) -> NativeStats | None:
        """The native tier's counters, None before its first compile."""
        return None if self._native is None else self._native.native_stats

    def bind(self, machine: MachineLike) -> None:
        """Follow the hybrid to ``machine``: compiled regions belong to the previous one."""
        if machine is self._machine:
            return
        self._machine = machine
        self._samples.clear()
        self._successors.clear()
        self._unsupported.clear()
        self._declined.clear()
        if self._native is not None:
            self._native._bind(machine)  # drops its regions (in place) and its TLB

    def start(self) -> NativeExecutor:
        """The NativeExecutor compiling for this tier, made (and LLVM started) on first use."""
        if self._native is None:
            # Raises NativeUnavailable (one line naming the extra) without llvmlite.
            from vmkit.async_executor.engine.native import NativeExecutor
            from vmkit.async_executor.engine.native import _ir as native_ir

            assert (
                native_ir.EXIT_NEXT,
                native_ir.EXIT_BUDGET,
                native_ir.EXIT_LOAD,
                native_ir.EXIT_STORE,
            ) == (_EXIT_NEXT, _EXIT_BUDGET, _EXIT_LOAD, _EXIT_STORE)
            assert self._machine is not None
            self._native = NativeExecutor(self._machine, cache=self.cache)
            self.regions = self._native._regions
            _log.debug("native_tier_started", ticks=self.ticks)
        return self._native

    # ------------------------------------------------------------------ sampling and policy

    def sample(self, entry: int | None) -> None:
        """One tick of the Python tiers: ``entry`` is the translated entry that was running
        (None: cold code). Compiles its region once it is hot enough."""
        self.ticks += 1
        if entry is None or entry in self.regions or entry in self._declined:
            return
        count = self._samples.get(entry, 0) + 1
        self._samples[entry] = count
        if count >= self.threshold and self.ticks * self.period >= self.warmup:
            self._compile(entry)

    def _compile(self, entry: int) -> None:
        native = self.start()
        machine = self._machine
        assert machine is not None
        if not self._worth_compiling(machine, entry):
            self._declined.add(entry)
            self.declined += 1
            return
        if native._compile(entry) is None:
            self._declined.add(entry)  # its first instruction is not native, or hooked code
        self._samples.pop(entry, None)
        self._successors.pop(entry, None)

    @staticmethod
    def _worth_compiling(machine: MachineLike, entry: int) -> bool:
        """False for a loop region holding an instruction native code does not run: it would
        leave native code on every iteration."""
        from vmkit.async_executor.engine._translate import decode_region
        from vmkit.async_executor.engine.native._ir import NATIVE_OPS
        from vmkit.async_executor.isa._decode import FULL_DECODER

        try:
            blocks = decode_region(
                machine.memory, entry, decoder=getattr(machine, "decoder", FULL_DECODER)
            )
        except GuestMemoryFault:
            return False
        if all(i is not None and i.spec.name in NATIVE_OPS for b in blocks for _, i, _ in b.instrs):
            return True
        if len(blocks) > 1:
            return False
        # One block: native code pays off up to the first instruction it cannot run, unless the
        # block branches back to itself (a loop through that instruction).
        pc, last, _ = blocks[0].instrs[-1]
        if last is not None and last.spec.kind in ("branch", "jal"):
            return (pc + last.imm) & ((1 << 64) - 1) != entry
        return True

    # ------------------------------------------------------------------ running native code

    def enter(self, hart: Hart, pc: int, fn: Callable[[int, int, int], int], limit: int) -> int:
        """Run native code from the region entry ``pc`` (``fn``) until it leaves for good.

        Returns the pc to continue at in the dispatch loop, or ``-1 - pc`` when exactly one
        block at ``pc`` must be interpreted (the budget's last block, or a load or store native
        code cannot serve). ``hart.pc`` and ``hart.instret`` are exact either way.
        """
        native = self._native
        assert native is not None
        regions = self.regions
        tlb = native._tlb
        assert tlb is not None
        call = native.call_region
        filled_at = -1
        successors = self._successors
        successor_threshold = self.successor_threshold
        while True:
            # Registers, FP state, the LR reservation, pc and instret go in and come back exact.
            reason = call(fn, hart, limit)
            instret = hart.instret
            pc = hart.pc
            if reason == _EXIT_BUDGET:
                if instret + 64 >= limit:
                    return -1 - pc  # the budget's last block: the interpreter stops exactly
                # Only the native slice ended: go on.
            elif reason in (_EXIT_LOAD, _EXIT_STORE):
                # Enter the page and resume natively at the access, once per site: a fill that
                # does not help (a page-crossing access) must not loop.
                if pc == filled_at or not tlb.fill(native.missed_address, reason == _EXIT_STORE):
                    return -1 - pc  # the interpreter performs the access or faults exactly
                filled_at = pc
            elif reason != _EXIT_NEXT:
                # An instruction native code does not run: the Python tiers do.
                self._unsupported[pc] = self._unsupported.get(pc, 0) + 1
                return pc
            again = regions.get(pc)
            if again is not None and reason == _EXIT_NEXT:
                # A region the chain table does not hold: another region's entry maps to the
                # same slot. The one native code just missed takes it (NativeExecutor.chain).
                native.chain(pc, again)
            elif again is None:
                # A pc native code keeps coming back to Python for (the code after a call, an
                # access whose page had to be entered) becomes a region entry of its own.
                count = successors.get(pc, 0) + 1
                successors[pc] = count
                if count < successor_threshold or pc in self._declined:
                    return pc
                self._compile(pc)
                again = regions.get(pc)
                if again is None:
                    return pc
            fn = again

    def unsupported_exits(self) -> dict[str, int]:
        """Exits before an instruction native code does not run, by the instruction's name
        (what keeps code out of native code: atomics, floating point, ``ecall`` ...)."""
        machine = self._machine
        by_name: dict[str, int] = {}
        if machine is None:
            return by_name
        from vmkit.async_executor.isa._decode import FULL_DECODER

        decoder = getattr(machine, "decoder", FULL_DECODER)
        for pc, count in self._unsupported.items():
            name = "undecodable"
            try:
                low = machine.memory.fetch(pc, 2)
                if low & 3 != 3:
                    instr = decoder.decode16(low)
                else:
                    instr = decoder.decode32(low | machine.memory.fetch(pc + 2, 2) << 16)
                if instr is not None:
                    name = instr.spec.name
            except GuestMemoryFault:
                pass
            by_name[name] = by_name.get(name, 0) + count
        return dict(sorted(by_name.items(), key=lambda item: -item[1]))

    def as_dict(self) -> dict[str, Any]:
        """The tier-up's own counters (for ``--stats``), beside the native tier's."""
        return {
            "samples": self.ticks,
            "sample_period": self.period,
            "threshold_samples": self.threshold,
            "successor_threshold": self.successor_threshold,
            "warmup_instructions": self.warmup,
            "declined_loops": self.declined,
            "started": self._native is not None,
            "unsupported_exits": self.unsupported_exits(),
        }
