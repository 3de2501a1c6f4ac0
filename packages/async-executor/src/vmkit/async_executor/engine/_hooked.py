"""The hook stepper: runs hooked code and hooked memory accesses one instruction at a time.

Every engine hands over to it when it stops at code a code hook covers (``EnterHookedCode``)
or at an access a memory hook watches (a SIGSEGV whose reason is ``HOOKED_ACCESS``); see
``machine._hooks`` for how the engines notice both without any cost elsewhere. The stepper
runs the guest on an interpreter of its own, one instruction per call, so at every event the
hart is exact (registers, ``pc``, ``instret``): before an instruction, the block and code hooks
covering its pc fire; during it, memory hooks fire from the address space's slow path. When the
pc leaves the hooked ranges, the engine takes over again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vmkit.async_executor.errors import BudgetExhausted, GuestExit, GuestFault, SegmentationFault
from vmkit.async_executor.machine._hooks import HOOKED_ACCESS, EnterHookedCode, GuestStopped
from vmkit.async_executor.machine._memory import GuestMemoryFault

if TYPE_CHECKING:
    from vmkit.async_executor.engine._executor import MachineLike
    from vmkit.async_executor.engine._interpreter import InterpreterExecutor

__all__ = ["HookStepper", "hands_over"]


def hands_over(end: BaseException) -> bool:
    """Whether an engine stopped with ``end`` to leave the next instruction to the stepper."""
    return isinstance(end, EnterHookedCode) or (
        isinstance(end, SegmentationFault) and end.reason == HOOKED_ACCESS
    )


class HookStepper:
    """Steps hooked code on ``interp``, an interpreter of its own (made by the executor base
    on first use), which ignores code hooks: it is what runs hooked code."""

    def __init__(self, interp: InterpreterExecutor) -> None:
        interp.honour_code_hooks = False
        self._interp = interp

    def _interpreter(self, machine: MachineLike) -> InterpreterExecutor:
        interp = self._interp
        if interp.machine is not machine:
            interp._bind(machine)
        return interp

    def run(self, machine: MachineLike, limit: int, budget: int | None) -> BaseException | None:
        """Run at least one instruction, then on while a code hook covers the pc and to the end
        of the basic block; stop at the absolute instret ``limit``. Returns None when the pc
        left the hooked code (the engine goes on), else why the guest stopped (as
        ``ExecutorBase._until`` does)."""
        hooks = machine.hooks  # type: ignore[attr-defined]
        hart = machine.hart
        interp = self._interpreter(machine)
        first = True
        mid_block = False
        while True:
            pc = hart.pc
            covered = hooks.covers(pc)
            # Back to the engine only at the end of a basic block: an engine entered in the
            # middle of one would translate a new block from there, for every such exit.
            if not covered and not first and not mid_block:
                hooks.block_pending = True  # coming back to hooked code starts a block
                return None
            if hart.instret >= limit:
                return BudgetExhausted(limit, pc)
            if covered:
                try:
                    hooks.code(machine, pc)  # the hart is exact here
                except GuestStopped as stopped:
                    return stopped
                if hart.pc != pc:
                    first = mid_block = False
                    continue  # a hook moved the pc: that is where the guest goes on
            end: BaseException | None
            if hooks.per_instruction:
                ends = _ends_block(interp, pc)
                hooks.stepping = True
                try:
                    end = interp._until(machine, hart.instret + 1, budget)
                finally:
                    hooks.stepping = False
                if isinstance(end, BudgetExhausted):
                    end = None  # the one instruction ran (instret was below limit)
            else:
                # Only block hooks here: the rest of the basic block runs in one go.
                end, ends = _run_block(interp, machine, pc, limit)
            first = False
            mid_block = not ends
            if ends:
                hooks.block_pending = True
            if end is not None:
                return end  # exited, faulted, blocked (threads), stopped, or out of budget


def _run_block(
    interp: InterpreterExecutor, machine: MachineLike, pc: int, limit: int
) -> tuple[BaseException | None, bool]:
    """Run the interpreter's block at ``pc`` (to ``limit`` at most): why it stopped (None:
    it ran to its end) and whether its last instruction ended a basic block (an interpreter
    block also ends at a page boundary or its size cap, where a basic block goes on)."""
    block = interp._cache.get(pc)
    if block is None:
        try:
            block = interp._build(pc)
        except GuestMemoryFault:  # the fetch faults: one step reports it
            return interp._until(machine, machine.hart.instret + 1, None), True
    last = block[5][-1]
    try:
        interp._loop(machine.hart, pc, 1, limit)
    except (BudgetExhausted, GuestExit, GuestFault) as end:
        return end, True
    return None, _ends_block(interp, last)


def _ends_block(interp: InterpreterExecutor, pc: int) -> bool:
    """Whether the instruction at ``pc`` ends a basic block (a control transfer)."""
    try:
        raw, length = interp._decode_at(pc)
    except GuestMemoryFault:
        return True  # the step faults at once
    entry = interp._decoded_words.get(raw)
    if entry is None:
        entry = interp._decoded(raw, length)
    return bool(entry[3])
