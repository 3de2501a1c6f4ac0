"""The NativeExecutor: the interpreter for cold code, host machine code for hot regions.

Design note
-----------
Every block starts interpreted. A block entered ``threshold`` times becomes the entry of a
region (the JIT's region discovery: the block and the loop through it), which is compiled to
machine code through LLVM (:mod:`._ir`, :mod:`._llvm`). Dispatch then calls the region's function
with the registers copied into a C array and the hart's instret; the function runs until it
leaves the region and returns the next pc and why it left (see ``_ir``'s exits):

* ``EXIT_NEXT``: continue at the returned pc (natively again if it starts a region);
* ``EXIT_LOAD`` / ``EXIT_STORE``: a load or store missed the native TLB; the page is entered if
  the address space allows the access and native code resumes at that instruction, otherwise (a
  fault, a watched code page, a page-crossing access) the interpreter runs the block from there
  and raises or serves it exactly as it always does;
* ``EXIT_UNSUPPORTED`` / ``EXIT_BUDGET`` / ``EXIT_FP``: the interpreter runs the next block (it
  knows every instruction, stops exactly at the budget, and computes floating point exactly where
  native code cannot prove its flags).

So every guest-visible effect outside integer arithmetic, branches, loads and stores, atomics
and round-to-nearest floating point (system calls, faults, signals, CSRs) happens in the
interpreter, with the state native code left exact. The FP registers travel like the integer
ones, through a C array (io[6]), with fflags and frm in io[7] and io[8]. Native code is dropped
when a store hits a page it was compiled from, as the interpreter's blocks are.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from vmkit.async_executor._logging import get_logger
from vmkit.async_executor.engine._executor import NO_LIMIT, MachineLike
from vmkit.async_executor.engine._interpreter import InterpreterExecutor
from vmkit.async_executor.engine._translate import decode_region
from vmkit.async_executor.engine.native._cache import CacheOption, region_code, resolve_cache
from vmkit.async_executor.engine.native._ir import (
    CHAIN_ENTRIES,
    EXIT_BUDGET,
    EXIT_FP,
    EXIT_LOAD,
    EXIT_NEXT,
    EXIT_STORE,
    EXIT_UNSUPPORTED,
    IO_WORDS,
    NO_RESERVATION,
    compiles,
    uses_fp,
)
from vmkit.async_executor.engine.native._tlb import NativeTlb
from vmkit.async_executor.isa._decode import FULL_DECODER
from vmkit.async_executor.machine._hart import Hart
from vmkit.async_executor.machine._memory import GuestMemoryFault

__all__ = ["DEFAULT_NATIVE_THRESHOLD", "NativeExecutor", "NativeStats"]

_log = get_logger(__name__)

#: Entries of a block before its region is compiled: LLVM takes milliseconds per region, so
#: only code that runs often enough to repay that is compiled.
DEFAULT_NATIVE_THRESHOLD: Final = 200
_NO_LIMIT: Final = NO_LIMIT
_NATIVE_SLICE: Final = 1 << 24
_EXIT_NAMES: Final = {
    EXIT_NEXT: "next",
    EXIT_BUDGET: "budget",
    EXIT_LOAD: "load",
    EXIT_STORE: "store",
    EXIT_UNSUPPORTED: "unsupported",
    EXIT_FP: "fp",
}


@dataclass
class NativeStats:
    """What the native tier did: regions compiled and their compile time, native calls, the
    instructions retired in native code, and exits by reason."""

    regions: int = 0
    compile_seconds: float = 0.0
    calls: int = 0
    instructions: int = 0
    native_seconds: float = 0.0
    exits: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_EXIT_NAMES.values(), 0))
    refused: int = 0
    """Region entries not compiled (their first instruction is not native)."""
    dropped: int = 0
    """Regions dropped because their code was written."""
    cached: int = 0
    """Regions loaded from the on-disk code cache instead of compiled (not in ``regions``)."""
    cache_seconds: float = 0.0
    """Time spent loading regions from the cache."""
    compile_seconds_saved: float = 0.0
    """What compiling the cached regions took when they were stored."""

    def as_dict(self) -> dict[str, Any]:
        """The counters as plain data (for ``--stats`` JSON)."""
        return {
            "regions": self.regions,
            "compile_seconds": self.compile_seconds,
            "mean_compile_ms": 1e3 * self.compile_seconds / self.regions if self.regions else 0,
            "calls": self.calls,
            "instructions": self.instructions,
            "native_seconds": self.native_seconds,
            "exits": dict(self.exits),
            "refused": self.refused,
            "dropped": self.dropped,
            "cached": self.cached,
            "cache_seconds": self.cache_seconds,
            "compile_seconds_saved": self.compile_seconds_saved,
        }


class NativeExecutor(InterpreterExecutor):
    """Runs a guest with hot regions compiled to host machine code (needs llvmlite).

    Args:
        machine: the machine to run; may also be given to :meth:`run`.
        threshold: entries of a block before its region is compiled.
        cache: the on-disk code cache of compiled regions: a directory, a ``NativeCodeCache``,
            False for none; by default ``VMKIT_NATIVE_CACHE`` or ``~/.cache/vmkit/native``.
    """

    def __init__(
        self,
        machine: MachineLike | None = None,
        *,
        threshold: int = DEFAULT_NATIVE_THRESHOLD,
        cache: CacheOption = None,
    ) -> None:
        if threshold < 1:
            raise ValueError(f"threshold must be at least 1, got {threshold}")
        self.threshold = threshold
        self.cache = resolve_cache(cache)
        self.native_stats = NativeStats()
        self._regions: dict[int, Callable[[int, int, int], int]] = {}
        self._region_pages: dict[int, list[int]] = {}
        self._counts: dict[int, int] = {}
        self._no_region: set[int] = set()
        self._regs = (ctypes.c_uint64 * 32)()
        self._regs_address = ctypes.addressof(self._regs)
        self._io = (ctypes.c_uint64 * IO_WORDS)()
        self._io_address = ctypes.addressof(self._io)
        # The FP registers, as the integer ones: a C array native code reads through io[6]. They
        # (and fflags, frm in io[7], io[8]) are copied in and out only once a region with floating
        # point exists, so integer-only guests pay nothing for them.
        self._fregs = (ctypes.c_uint64 * 32)()
        self._io[6] = ctypes.addressof(self._fregs)
        self._fp_native = False
        self._chain = (ctypes.c_uint64 * (2 * CHAIN_ENTRIES))()
        self._chain_fns: dict[int, int] = {}
        self._io[4] = ctypes.addressof(self._chain)
        self._tlb: NativeTlb | None = None
        super().__init__(machine)

    def _bind(self, machine: MachineLike | None) -> MachineLike:
        previous = self._machine
        bound = super()._bind(machine)
        if bound is not previous or self._tlb is None:
            self._tlb = NativeTlb(bound.memory)
            for pc in list(self._regions):
                self._unchain(pc)
            self._regions.clear()
            self._region_pages.clear()
            self._counts.clear()
            self._no_region.clear()
        return bound

    # ------------------------------------------------------------------ code writes

    def _on_code_write(self, vpn: int) -> None:
        super()._on_code_write(vpn)
        entries = self._region_pages.pop(vpn, None)
        if entries:
            for entry in entries:
                if self._regions.pop(entry, None) is not None:
                    self._unchain(entry)
                    self.native_stats.dropped += 1
                self._counts.pop(entry, None)
                self._no_region.discard(entry)

    # ------------------------------------------------------------------ compiling

    def _compile(self, pc: int) -> Callable[[int, int, int], int] | None:
        """Compile the region entered at ``pc``; None when it would start with an instruction
        native code cannot run (it would only ever leave at once)."""
        memory = self._memory
        assert memory is not None
        if memory.code_hooked is not None and memory.code_hooked(pc):
            return None  # the hook stepper runs hooked code (not remembered: hooks come and go)
        try:
            blocks = decode_region(
                memory, pc, decoder=getattr(self._machine, "decoder", FULL_DECODER)
            )
        except GuestMemoryFault:
            return None
        first = blocks[0].instrs[0][1]
        if first is None or not compiles(first):
            self._no_region.add(pc)
            self.native_stats.refused += 1
            return None
        # Linked from the on-disk cache when it holds this region, else compiled (and stored).
        decoder = getattr(self._machine, "decoder", FULL_DECODER)
        region = [(b.start, b.instrs, b.end) for b in blocks]
        code = region_code(region, decoder, self.cache)
        compiled = code.function
        seconds = code.seconds
        function: Callable[[int, int, int], int] = compiled
        stats = self.native_stats
        if code.cached:
            stats.cached += 1
            stats.cache_seconds += seconds
            stats.compile_seconds_saved += code.saved_seconds
        else:
            stats.regions += 1
            stats.compile_seconds += seconds
        if uses_fp(region):
            self._fp_native = True
        pages = sorted({vpn for b in blocks for vpn in b.pages})
        for vpn in pages:
            memory.watch_code_page(vpn)
            self._region_pages.setdefault(vpn, []).append(pc)
        self._regions[pc] = function
        self.chain(pc, compiled)
        _log.debug("native_region_compiled", pc=hex(pc), blocks=len(blocks), ms=seconds * 1e3)
        return function

    def _reservation_changed(self, hart: Hart, reserved: int) -> None:
        """Native code took (LR) or dropped (SC) the hart's reservation: a new one is watched
        from now on, so other harts' and the kernel's writes to its page break it (see _ir)."""
        if reserved == NO_RESERVATION:
            hart.reservation = -1
            return
        hart.reservation = reserved
        assert self._memory is not None
        self._memory.watch_code_page(reserved >> 12)

    def chain(self, pc: int, fn: Callable[[int, int, int], int]) -> None:
        """Put the region ``fn`` entered at ``pc`` in its chain-table slot, so native code jumps
        to it without coming back to Python. The table is direct-mapped: the region that held
        the slot (another entry with the same low bits) is chained no more, so callers give the
        slot to the region native code just missed, and the hotter of two ends up holding it."""
        slot = 2 * ((pc >> 1) & (CHAIN_ENTRIES - 1))
        self._chain[slot] = pc
        self._chain[slot + 1] = ctypes.cast(fn, ctypes.c_void_p).value or 0  # type: ignore[arg-type]  # a CFUNCTYPE object

    def _unchain(self, pc: int) -> None:
        """Take ``pc``'s region out of the chain table (native code no longer jumps to it)."""
        slot = 2 * ((pc >> 1) & (CHAIN_ENTRIES - 1))
        if self._chain[slot] == pc:
            self._chain[slot] = 0
            self._chain[slot + 1] = 0

    # ------------------------------------------------------------------ dispatch

    def _loop(self, hart: Hart, pc: int, max_blocks: int, limit: int) -> None:
        if max_blocks != _NO_LIMIT:  # one block (step, execute_block): the interpreter's
            super()._loop(hart, pc, max_blocks, limit)
            return
        interpret = super()._loop
        call = self.call_region
        regions = self._regions
        counts = self._counts
        threshold = self.threshold
        no_region = self._no_region
        io = self._io
        tlb = self._tlb
        assert tlb is not None
        while True:
            fn = regions.get(pc)
            if fn is None:
                if pc not in no_region:
                    seen = counts.get(pc, 0) + 1
                    counts[pc] = seen
                    if seen >= threshold:
                        fn = self._compile(pc)
                if fn is None:
                    interpret(hart, pc, 1, limit)  # raises when the guest ends or faults
                    pc = hart.pc
                    continue
            reason = call(fn, hart, limit)
            pc = hart.pc
            if reason == EXIT_NEXT:
                again = regions.get(pc)
                if again is not None:
                    # Native code left for a region the chain table does not hold (its slot is
                    # another region's): it takes the slot (hundreds of regions clash).
                    self.chain(pc, again)
                continue
            if reason == EXIT_BUDGET and hart.instret + 64 < limit:
                continue  # (a slice's end, not the guest's budget: go on)
            if reason in (EXIT_LOAD, EXIT_STORE):
                entered = tlb.fill(io[3], reason == EXIT_STORE)
                if entered:
                    # The page is entered now: resume natively at the access; an access that
                    # is no region's entry is counted like any block start and becomes one
                    # when it keeps missing (the interpreter runs it meanwhile).
                    continue
            interpret(hart, pc, 1, limit)
            pc = hart.pc

    def call_region(self, fn: Callable[[int, int, int], int], hart: Hart, limit: int) -> int:
        """Run the compiled region ``fn`` from the hart's state (at most ``limit`` absolute
        instret, and at most a native slice) and return why it stopped (``EXIT_*``).

        Everything native code reads goes in and everything it changed comes back: integer
        registers, the FP registers, fflags and frm once any region uses floating point, the LR
        reservation, ``pc`` and ``instret``; the statistics count the call. The hybrid's native
        tier calls regions through here too, so both see the same machine state.
        """
        tlb = self._tlb
        assert tlb is not None
        tlb.sync()
        regs, io, x = self._regs, self._io, hart.x
        regs[1:32] = x[1:32]  # type: ignore[assignment]  # ctypes converts the ints
        fp = self._fp_native  # (chained code may reach any region: all or none see FP state)
        if fp:
            self._fregs[:] = hart.f  # type: ignore[assignment]
            io[7] = hart.fflags
            io[8] = hart.frm
        before = hart.instret
        io[0] = before
        # Chained native code returns to Python at least every _NATIVE_SLICE instructions, so a
        # guest looping forever still reaches the host's checks (wall clock, signals).
        io[1] = min(limit, before + _NATIVE_SLICE)
        io[5] = reserved = hart.reservation & NO_RESERVATION  # -1 (none) is all ones
        stats = self.native_stats
        t0 = time.perf_counter()
        pc = fn(self._regs_address, tlb.address, self._io_address)
        stats.native_seconds += time.perf_counter() - t0
        if io[5] != reserved:  # an LR or SC ran natively
            self._reservation_changed(hart, io[5])
        x[1:32] = regs[1:32]
        if fp:
            hart.f[:] = self._fregs
            hart.fflags = io[7]
        hart.instret = io[0]
        hart.pc = pc
        stats.calls += 1
        stats.instructions += io[0] - before
        reason = io[2]
        stats.exits[_EXIT_NAMES[reason]] += 1
        return reason

    @property
    def missed_address(self) -> int:
        """The guest address of the load or store whose exit (``EXIT_LOAD``/``EXIT_STORE``)
        :meth:`call_region` last returned."""
        return self._io[3]

    @property
    def stats_by_tier(self) -> dict[str, Any]:
        """The native tier's counters (see :class:`NativeStats`)."""
        return self.native_stats.as_dict()
