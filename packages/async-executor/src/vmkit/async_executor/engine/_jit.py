"""The JIT executor: runs guest code as translated Python blocks from an execution context.

Design note
-----------
The dispatch loop is the only Python code between blocks, so it is kept to a dict ``get`` and a
call: ``fn = get(pc); pc = fn(X, F, hart, limit, R, W, mem, machine)``. Everything that is not the
common case happens on the miss path (``fn is None``): translating a new block, and the budget
protocol, where a block that would overrun the instruction limit returns ``-1 - pc`` (a negative
pc is never a key, so it lands on the miss path for free) and the executor runs a shorter,
uncached translation that stops exactly at the limit.

Precise faults cost the blocks nothing: when an exception leaves a block, the executor takes the
block's frame from the traceback and lets :func:`recover_fault_state` store the changed registers
from the frame's locals and set the exact pc and instret.

Counters live in locals of the loop and reach :class:`ExecutionStats` and the context once per
run, never per block. After recovery ``hart.pc`` and ``hart.instret`` are exact; memory faults
are turned into SIGSEGV here, with that pc.

Slices: :meth:`JitExecutor.coroutine` runs the guest under a moving instruction limit and yields
between slices (the generator protocol coroutine-scheduler drives); :meth:`run_async` does the
same for asyncio. A slice ends exactly on its limit, between two instructions, so a cancelled or
closed guest can be resumed.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Hashable, Iterable
from typing import Final

from vmkit.async_executor._logging import get_logger
from vmkit.async_executor.engine._context import AsyncExecutionContext
from vmkit.async_executor.engine._defaults import DEFAULT_SLICE
from vmkit.async_executor.engine._executor import NO_LIMIT, ExecutorBase, MachineLike
from vmkit.async_executor.engine._interpreter import InterpreterExecutor
from vmkit.async_executor.engine._stats import ExecutionStats
from vmkit.async_executor.engine._translate import (
    BlockFunction,
    TranslatedBlock,
    recover_fault_state,
)
from vmkit.async_executor.errors import (
    BudgetExhausted,
    GuestExit,
    GuestFault,
)
from vmkit.async_executor.machine._hart import Hart
from vmkit.async_executor.machine._memory import AddressSpace, GuestMemoryFault

__all__ = ["DEFAULT_SLICE", "JitExecutor"]

_log = get_logger(__name__)

#: The instruction limit used when there is no budget (no guest retires 2**62 instructions).
_NO_LIMIT: Final = NO_LIMIT
#: Guest instructions per slice of :meth:`JitExecutor.coroutine`: a few milliseconds of guest


def _recover(exc: BaseException, fn: BlockFunction | None, hart: Hart) -> bool:
    """Make hart state precise when ``exc`` left the block function ``fn`` mid-way.

    Returns whether the exception came from inside a block (which then counts as executed).
    """
    tb = exc.__traceback__
    inner = tb.tb_next if tb is not None else None
    if fn is None or inner is None or inner.tb_frame.f_code is not fn.__code__:
        return False  # raised on the miss path, not inside a block
    block: TranslatedBlock | None = getattr(fn, "jit_block", None)
    if block is None:  # pragma: no cover - every translated function carries its block
        return True
    if inner.tb_lineno == block.syscall_line:
        # The block made pc and instret exact (ecall retired) before calling out. A fatal signal
        # raised by the syscall (abort, kill) does not retire the ecall, as in the interpreter.
        if isinstance(exc, GuestFault):
            hart.instret -= 1
            if exc.pc is None:
                exc.pc = hart.pc
        return True
    recover_fault_state(block, inner.tb_frame.f_locals, inner.tb_lineno, hart)
    return True


class JitExecutor(ExecutorBase):
    """Runs a guest by translating its basic blocks to Python functions and caching them.

    Args:
        machine: the machine to run; may also be given to :meth:`run`.
        context: the translation cache to use; a private one when None. Several executors (in
            several threads) may share one context.
        code_key: code identity under which this executor's machines share translations (see
            :class:`AsyncExecutionContext`); None keeps each address space's blocks apart.
    """

    def __init__(
        self,
        machine: MachineLike | None = None,
        context: AsyncExecutionContext | None = None,
        *,
        code_key: Hashable | None = None,
    ) -> None:
        self.context = context if context is not None else AsyncExecutionContext()
        self.code_key = code_key
        self.stats = ExecutionStats()
        self._machine: MachineLike | None = None
        self._listening: weakref.WeakSet[AddressSpace] = weakref.WeakSet()
        if machine is not None:
            self._bind(machine)

    @property
    def machine(self) -> MachineLike | None:
        """The machine this executor runs (None before one is given)."""
        return self._machine

    def _bind(self, machine: MachineLike | None) -> MachineLike:
        if machine is None:
            if self._machine is None:
                raise ValueError("no machine to run: pass one to the executor or to run()")
            return self._machine
        self._machine = machine
        mem = machine.memory
        if mem not in self._listening:
            self._listening.add(mem)
            self.context.namespace(mem, self.code_key, getattr(machine, "decoder", None))
            hart = machine.hart  # Hart has no weakref slot; it lives as long as its memory anyway

            def break_reservation(vpn: int) -> None:
                # A write to the reserved page breaks the LR/SC reservation (see the interpreter).
                if hart.reservation >= 0 and hart.reservation >> 12 == vpn:
                    hart.reservation = -1

            mem.add_code_write_listener(break_reservation)
        return machine

    # ------------------------------------------------------------------ the dispatch loop

    def _dispatch(self, machine: MachineLike, limit: int, budget: int | None, stop: int) -> int:
        """Run blocks until ``stop`` blocks ran (or forever when ``stop`` < 0); returns the pc.

        Raises what the guest raises: GuestExit, GuestFault, GuestMemoryFault, BudgetExhausted,
        always with ``hart.pc`` and ``hart.instret`` exact.
        """
        hart = machine.hart
        x, f = hart.x, hart.f
        mem = machine.memory
        r, w = mem.tlb_read.get, mem.tlb_write.get
        ctx = self.context
        get = ctx.namespace(mem, self.code_key, getattr(machine, "decoder", None)).blocks.get
        pc = hart.pc
        start_instret = hart.instret
        execs = misses = 0
        fn: BlockFunction | None = None
        t0 = time.perf_counter()
        try:
            while execs != stop:
                fn = get(pc)
                if fn is None:
                    if pc < 0:  # the block would overrun the budget: run a shorter one
                        pc = -1 - pc
                        hart.pc = pc
                        remaining = limit - hart.instret
                        if remaining <= 0:
                            raise BudgetExhausted(budget if budget is not None else 0, pc)
                        fn = ctx.translate_uncached(mem, pc, remaining).fn
                    else:
                        hart.pc = pc
                        misses += 1
                        fn = ctx.translate(mem, pc)
                        # A code write may have moved this memory to a private namespace.
                        get = ctx.namespace(mem).blocks.get
                pc = fn(x, f, hart, limit, r, w, mem, machine)
                execs += 1
            hart.pc = pc
            return pc
        except BaseException as exc:
            if _recover(exc, fn, hart):
                execs += 1
            raise
        finally:
            elapsed = time.perf_counter() - t0
            retired = hart.instret - start_instret
            stats = self.stats
            stats.executions += execs
            stats.instructions += retired
            stats.wall_time += elapsed
            ctx.record_run(executions=execs, instructions=retired, misses=misses, run_time=elapsed)

    # ------------------------------------------------------------------ public API

    def execute_block(self, pc: int | None = None) -> int:
        """Run the one block at ``pc`` (default: the hart's pc) and return the next pc.

        A block that loops on itself runs its whole loop. ``hart.pc`` and ``hart.instret`` are
        updated; guest faults propagate as GuestFault (memory faults as SegmentationFault) or
        GuestExit, with the hart's state exact at the faulting instruction.
        """
        m = self._bind(None)
        if pc is not None:
            m.hart.pc = pc
        try:
            return self._dispatch(m, _NO_LIMIT, None, 1)
        except GuestMemoryFault as exc:
            raise exc.to_segfault(m.hart.pc) from None

    def execute_blocks(self, pcs: Iterable[int]) -> list[int]:
        """Run the block at each of ``pcs`` in turn; return each block's next pc."""
        return [self.execute_block(pc) for pc in pcs]

    def _stepping_interpreter(self) -> InterpreterExecutor:
        return InterpreterExecutor()

    def _until(self, machine: MachineLike, limit: int, budget: int | None) -> BaseException:
        """Dispatch blocks until the guest ends or instret reaches ``limit``; return why."""
        try:
            self._dispatch(machine, limit, budget, -1)
            raise AssertionError("unreachable: the loop only ends by an exception")
        except GuestMemoryFault as exc:
            return exc.to_segfault(machine.hart.pc)
        except (GuestExit, GuestFault, BudgetExhausted) as exc:
            return exc

    def _ran(self, machine: MachineLike, status: int) -> None:
        _log.debug("jit_run_finished", status=status, instret=machine.hart.instret)

    def source(self, pc: int | None = None) -> str:
        """The Python source the translator generates for the block at ``pc`` (default: hart pc).

        Shows the cached translation when there is one, else translates without caching.
        """
        m = self._bind(None)
        return self.context.source(m.memory, m.hart.pc if pc is None else pc)
