"""The interpreter's public one-block step, fault delivery to guest handlers, and slices."""

from __future__ import annotations

import asyncio
from collections.abc import Generator

import pytest
from rv_support import (
    CODE_BASE,
    EXIT,
    enc,
    machine_with_code,
    sigsegv_handler_machine,
    words,
)

from vmkit.async_executor.engine import InterpreterExecutor
from vmkit.async_executor.errors import BudgetExhausted

#: a0 = 0; loop 1000 times adding 3 to a0 (t0 counts down); exit(a0 & 255).
COUNT_LOOP = words(
    enc("addi", 10, 0, imm=0),  # 0
    enc("addi", 5, 0, imm=1000),  # 4
    enc("addi", 10, 10, imm=3),  # 8: loop
    enc("addi", 5, 5, imm=-1),  # 12
    enc("bne", 0, 5, 0, imm=-8),  # 16
    *EXIT,  # 20, 24
)
#: Instructions COUNT_LOOP retires, the exiting ecall included.
COUNT_LOOP_INSNS = 2 + 3 * 1000 + 2


def drive(steps: Generator[None, None, int]) -> tuple[int, int]:
    """Exhaust a guest generator; return (exit status, number of yields)."""
    yields = 0
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return int(done.value), yields
        yields += 1


class TestStep:
    """InterpreterExecutor.step runs exactly one block under an absolute instret limit."""

    def test_one_block(self) -> None:
        """The first block (two addis and the loop body up to bne) ends at the branch target."""
        m = machine_with_code(COUNT_LOOP)
        ex = InterpreterExecutor(m)
        assert ex.step(CODE_BASE) == CODE_BASE + 8
        assert m.hart.instret == 5
        assert (m.hart.x[10], m.hart.x[5]) == (3, 999)
        assert ex.step(m.hart.pc) == CODE_BASE + 8
        assert m.hart.instret == 8
        assert m.hart.pc == CODE_BASE + 8

    def test_limit_is_absolute_and_exact(self) -> None:
        """A block that would pass the limit stops on it, with pc at the next instruction."""
        m = machine_with_code(COUNT_LOOP)
        ex = InterpreterExecutor(m)
        with pytest.raises(BudgetExhausted):
            ex.step(CODE_BASE, limit=3)
        assert m.hart.instret == 3
        assert m.hart.pc == CODE_BASE + 12
        assert m.hart.x[10] == 3

    def test_needs_a_machine(self) -> None:
        """Without a machine there is nothing to step: a clear ValueError."""
        with pytest.raises(ValueError, match="no machine"):
            InterpreterExecutor().step(CODE_BASE)


class TestFaultDelivery:
    """Faults go to the guest's own signal handler, as on Linux and under the JIT."""

    def test_sigsegv_handler_runs(self) -> None:
        """The SIGSEGV handler installed with rt_sigaction runs and its exit status counts."""
        m = sigsegv_handler_machine()
        assert InterpreterExecutor(m).run() == 42
        assert m.termination is not None
        assert m.termination.reason == "exit"

    def test_sliced(self) -> None:
        """The generator protocol delivers the fault the same way, even with tiny slices."""
        m = sigsegv_handler_machine()
        status, yields = drive(InterpreterExecutor(m).coroutine(slice_instructions=3))
        assert status == 42
        assert yields > 0

    def test_no_handler_ends_the_guest(self) -> None:
        """Without a handler (no Linux layer that delivers) the fault is SIGSEGV, status 139."""
        code = words(enc("ld", 5, 0, imm=0), *EXIT)
        m = machine_with_code(code)
        assert InterpreterExecutor(m).run() == 139
        assert m.termination is not None
        assert m.termination.pc == CODE_BASE


class TestCoroutine:
    """coroutine() runs the guest in slices with the JIT's generator protocol."""

    def test_same_result_as_run(self) -> None:
        """Sliced and unsliced runs end with the same status, instret and registers."""
        ref = machine_with_code(COUNT_LOOP)
        ref_status = InterpreterExecutor(ref).run()
        m = machine_with_code(COUNT_LOOP)
        status, yields = drive(InterpreterExecutor(m).coroutine(slice_instructions=100))
        assert status == ref_status == (3 * 1000) & 0xFF
        assert m.hart.instret == ref.hart.instret == COUNT_LOOP_INSNS
        assert m.hart.x[:32] == ref.hart.x[:32]
        assert yields == COUNT_LOOP_INSNS // 100

    def test_slices_end_exactly(self) -> None:
        """Each yield happens with exactly one more slice of instructions retired."""
        m = machine_with_code(COUNT_LOOP)
        steps = InterpreterExecutor(m).coroutine(slice_instructions=7)
        for i in range(1, 20):
            next(steps)
            assert m.hart.instret == 7 * i
        steps.close()
        assert m.hart.instret == 7 * 19

    def test_budget(self) -> None:
        """max_instructions ends the guest with status 124 after exactly that many."""
        m = machine_with_code(COUNT_LOOP)
        status, _ = drive(
            InterpreterExecutor(m).coroutine(slice_instructions=64, max_instructions=1000)
        )
        assert status == 124
        assert m.hart.instret == 1000
        assert m.termination is not None
        assert m.termination.reason == "budget"

    def test_bad_slice(self) -> None:
        """A slice of zero instructions is refused up front."""
        m = machine_with_code(COUNT_LOOP)
        with pytest.raises(ValueError, match="slice_instructions"):
            next(InterpreterExecutor(m).coroutine(slice_instructions=0))


class TestRunAsync:
    """run_async() yields to the event loop between slices and can be cancelled."""

    def test_other_tasks_run_meanwhile(self) -> None:
        """A ticker task advances while the guest runs, and the status is the guest's."""
        m = machine_with_code(COUNT_LOOP)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        async def main() -> int:
            task = asyncio.create_task(ticker())
            status = await InterpreterExecutor(m).run_async(slice_instructions=50)
            task.cancel()
            return status

        assert asyncio.run(main()) == (3 * 1000) & 0xFF
        assert ticks >= COUNT_LOOP_INSNS // 50 - 1

    def test_cancel_leaves_exact_state(self) -> None:
        """Cancelling stops the guest on a slice boundary with no termination recorded."""
        m = machine_with_code(COUNT_LOOP)

        async def main() -> None:
            task = asyncio.create_task(InterpreterExecutor(m).run_async(slice_instructions=10))
            for _ in range(5):
                await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())
        assert m.termination is None
        assert 0 < m.hart.instret < COUNT_LOOP_INSNS
        assert m.hart.instret % 10 == 0
