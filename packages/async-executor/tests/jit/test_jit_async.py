"""Sliced execution: the generator protocol and asyncio."""

from __future__ import annotations

import asyncio

import pytest
from jit_support import CODE_BASE, EXIT, enc, li, machine_with_code, words

from vmkit.async_executor.engine._jit import JitExecutor


def _count_down(n: int) -> bytes:
    """a0 = n, decremented to zero by a self-looping block; then exit(t1 = 7)."""
    return words(
        *li(10, n),
        enc("addi", 10, 10, imm=-1),
        enc("bne", 0, 10, 0, imm=-4),
        enc("addi", 10, 0, imm=7),
        *EXIT,
    )


RUNAWAY = words(enc("addi", 10, 10, imm=1), enc("jal", 0, imm=-4))


class TestCoroutine:
    """executor.coroutine() yields between slices and returns the exit status."""

    def test_slices_then_status(self) -> None:
        """A 20000-instruction guest in slices of 1000 yields about 20 times and exits 7."""
        m = machine_with_code(_count_down(10_000))
        steps = JitExecutor(m).coroutine(slice_instructions=1000)
        yields = 0
        status = None
        try:
            while True:
                next(steps)
                yields += 1
                assert m.hart.instret == 1000 * yields  # slices end exactly on the budget
        except StopIteration as done:
            status = done.value
        assert status == 7
        assert yields == 20
        assert m.hart.instret == 2 + 2 * 10_000 + 3

    def test_same_end_as_run(self) -> None:
        """Sliced or not, a budget ends the guest at the same pc and instret."""
        m1, m2 = machine_with_code(RUNAWAY), machine_with_code(RUNAWAY)
        assert JitExecutor(m1).run(max_instructions=12_345) == 124
        steps = JitExecutor(m2).coroutine(slice_instructions=1000, max_instructions=12_345)
        status = None
        try:
            while True:
                next(steps)
        except StopIteration as done:
            status = done.value
        assert status == 124
        assert (m2.hart.pc, m2.hart.instret, m2.hart.x[10]) == (
            m1.hart.pc,
            m1.hart.instret,
            m1.hart.x[10],
        )


class TestRunAsync:
    """run_async keeps the event loop responsive and stops cleanly when cancelled."""

    def test_other_tasks_progress(self) -> None:
        """A ticker task runs between slices while the guest runs to its exit status."""

        async def main() -> tuple[int, int]:
            ticks = 0
            done = False

            async def ticker() -> None:
                nonlocal ticks
                while not done:
                    ticks += 1
                    await asyncio.sleep(0)

            t = asyncio.create_task(ticker())
            status = await JitExecutor(machine_with_code(_count_down(20_000))).run_async(
                slice_instructions=2000
            )
            done = True
            await t
            return status, ticks

        status, ticks = asyncio.run(main())
        assert status == 7
        assert ticks >= 10

    def test_cancel_stops_cleanly(self) -> None:
        """Cancelling a runaway guest leaves it resumable at an exact instruction boundary."""
        m = machine_with_code(RUNAWAY)
        ex = JitExecutor(m)

        async def main() -> None:
            task = asyncio.create_task(ex.run_async(slice_instructions=500))
            for _ in range(5):
                await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())
        assert m.termination is None
        assert m.hart.instret % 500 == 0
        assert m.hart.instret > 0
        assert m.hart.x[10] == (m.hart.instret + 1) // 2
        assert m.hart.pc in (CODE_BASE, CODE_BASE + 4)
        # The guest goes on where it stopped.
        before = m.hart.instret
        assert ex.run(max_instructions=10) == 124
        assert m.hart.instret == before + 10
