"""Faults, budgets and self-modifying code under the JIT: exact pc, instret and registers."""

from __future__ import annotations

from jit_support import (
    CODE_BASE,
    DATA_BASE,
    EXIT,
    enc,
    li,
    run_both,
    run_jit,
    sigsegv_handler_machine,
    words,
)

from vmkit.async_executor.engine._jit import JitExecutor
from vmkit.async_executor.engine._jit_hybrid import HybridExecutor

DATA_END = DATA_BASE + 0x4000


def _walk_loop(step: int) -> bytes:
    """Sum 8-byte words from s0 upwards in a self-looping block until the access faults."""
    return words(
        enc("ld", 5, 8, imm=0),  # 0: t0 = *s0
        enc("add", 10, 10, 5),  # 4: a0 += t0
        enc("addi", 8, 8, imm=step),  # 8: s0 += step
        enc("addi", 6, 6, imm=1),  # 12: t1 += 1
        enc("jal", 0, imm=-16),  # 16: loop
    )


class TestFaultsInLoops:
    """A fault inside a translated loop reports the exact pc, instret and registers."""

    def test_load_walks_off_the_mapping(self) -> None:
        """The load at the loop head faults when s0 reaches the end of the data area."""
        start = DATA_END - 10 * 8
        out, _m, ex = run_jit(_walk_loop(8), x={8: start})
        assert out.status == 139
        assert out.pc == CODE_BASE
        # Ten full iterations of five instructions retired before the eleventh load faulted.
        assert out.instret == 10 * 5
        assert out.x[6] == 10
        assert out.x[8] == DATA_END
        assert f"{DATA_END:#x}" in out.message
        assert "read" in out.message
        assert ex.context.block_info(_m.memory, CODE_BASE) is not None
        assert ex.context.block_info(_m.memory, CODE_BASE).loop  # type: ignore[union-attr]

    def test_matches_interpreter(self) -> None:
        """Interpreter and JIT agree on the whole state at a mid-loop fault."""
        ref, jit = run_both(_walk_loop(24), x={8: DATA_END - 24 * 7 - 8, 10: 5})
        assert jit == ref

    def test_store_fault_mid_block(self) -> None:
        """A store to read-only code faults with registers written before it stored back."""
        code = words(
            enc("addi", 10, 0, imm=7),
            enc("addi", 11, 10, imm=1),
            enc("sw", 0, 12, 11, imm=0),  # store to the code page: SIGSEGV
            enc("addi", 10, 0, imm=99),
            *EXIT,
        )
        ref, jit = run_both(code, x={12: CODE_BASE})
        assert jit == ref
        assert jit.status == 139
        assert jit.pc == CODE_BASE + 8
        assert jit.instret == 2
        assert (jit.x[10], jit.x[11]) == (7, 8)
        assert "write" in jit.message

    def test_illegal_instruction(self) -> None:
        """An undecodable word ends the guest with SIGILL at its pc after what came before."""
        code = words(enc("addi", 10, 0, imm=1), 0xFFFFFFFF)
        ref, jit = run_both(code)
        assert jit == ref
        assert jit.status == 132
        assert jit.pc == CODE_BASE + 4
        assert jit.instret == 1

    def test_fetch_fault(self) -> None:
        """Jumping to unmapped memory is a SIGSEGV on fetch at the target."""
        code = words(*li(5, 0x700000), enc("jalr", 0, 5, imm=0))
        ref, jit = run_both(code)
        assert jit == ref
        assert jit.status == 139
        assert jit.pc == 0x700000
        assert "fetch" in jit.message

    def test_ebreak_and_dynamic_rounding_mode(self) -> None:
        """ebreak is SIGTRAP at its pc; an fadd with an invalid frm is SIGILL."""
        ref, jit = run_both(words(enc("addi", 10, 0, imm=3), enc("ebreak")))
        assert jit == ref
        assert jit.status == 133
        bad = words(enc("addi", 5, 0, imm=5), enc("csrrw", 0, 5, imm=2), enc("fadd.d", 1, 2, 3))
        ref, jit = run_both(bad + words(*EXIT))
        assert jit == ref
        assert jit.status == 132
        assert "frm=5" in jit.message


class TestBudget:
    """The instruction budget is exact inside loops and between blocks."""

    def test_runaway_loop(self) -> None:
        """An infinite self-loop stops after exactly the budget with status 124."""
        code = words(enc("addi", 10, 10, imm=1), enc("jal", 0, imm=-4))
        for budget in (0, 1, 2, 3, 1001):
            out, _m, _ex = run_jit(code, budget=budget)
            assert out.status == 124
            assert out.instret == budget
            assert out.x[10] == (budget + 1) // 2
            assert out.pc == CODE_BASE + 4 * (budget % 2)

    def test_exit_exactly_at_budget(self) -> None:
        """A guest whose exit ecall is the last budgeted instruction exits normally."""
        code = words(enc("addi", 10, 0, imm=9), *EXIT)
        out, _m, _ex = run_jit(code, budget=3)
        assert out.status == 9
        out, _m, _ex = run_jit(code, budget=2)
        assert out.status == 124


class TestSelfModifyingCode:
    """Stores into translated code invalidate it; fence.i makes new code visible."""

    def test_rewrite_and_rerun(self) -> None:
        """A guest patches an instruction it already ran, runs it again, and patches it again."""
        target = CODE_BASE + 0x100
        # Subroutine at target: addi a0, a0, 1; ret. The main code runs it, patches its
        # immediate to 10, runs it, patches it to 100, runs it.
        sub = words(enc("addi", 10, 10, imm=1), enc("jalr", 0, 1, imm=0))
        main = words(
            *li(6, target),
            enc("jal", 1, imm=0x100 - 8),  # call target (pc = CODE_BASE + 8)
            *li(7, enc("addi", 10, 10, imm=10)),
            enc("sw", 0, 6, 7, imm=0),
            enc("fence.i"),
            enc("jal", 1, imm=0x100 - 28),  # pc = CODE_BASE + 28
            *li(7, enc("addi", 10, 10, imm=100)),
            enc("sw", 0, 6, 7, imm=0),
            enc("fence.i"),
            enc("jal", 1, imm=0x100 - 48),  # pc = CODE_BASE + 48
            *EXIT,
        )
        code = main + bytes(0x100 - len(main)) + sub
        ref, jit = run_both(code, writable=True)
        assert jit == ref
        assert jit.status == 111  # 1 + 10 + 100
        _out, _m, ex = run_jit(code, writable=True)
        assert ex.context.stats().invalidations >= 2

    def test_store_in_loop_to_own_page(self) -> None:
        """A loop storing into its own (watched) page takes the slow path and stays correct."""
        code = words(
            enc("sw", 0, 6, 10, imm=0),  # store a0 to the scratch word on this page
            enc("addi", 10, 10, imm=3),
            enc("addi", 31, 31, imm=-1),
            enc("bne", 0, 31, 0, imm=-12),
            enc("lw", 11, 6, imm=0),
            *EXIT,
        )
        code += bytes(64)
        ref, jit = run_both(code, x={6: CODE_BASE + len(code) - 16, 31: 5}, writable=True)
        assert jit == ref
        assert jit.x[11] == 12


class TestAtomics:
    """LR/SC and AMOs: misaligned addresses are SIGBUS at the exact pc."""

    def test_misaligned_amo(self) -> None:
        """amoadd.w on an address that is not 4-byte aligned ends the guest with SIGBUS."""
        code = words(enc("addi", 10, 0, imm=1), enc("amoadd.w", 11, 12, 10), *EXIT)
        ref, jit = run_both(code, x={12: DATA_BASE + 2})
        assert jit == ref
        assert jit.status == 135
        assert jit.pc == CODE_BASE + 4
        assert jit.instret == 1

    def test_lr_sc_pair(self) -> None:
        """An LR/SC pair succeeds; a second SC without a reservation fails."""
        code = words(
            enc("lr.d", 5, 12),
            enc("addi", 5, 5, imm=1),
            enc("sc.d", 6, 12, 5),
            enc("sc.d", 7, 12, 5),
            *EXIT,
        )
        ref, jit = run_both(code, x={12: DATA_BASE + 8})
        assert jit == ref
        assert (jit.x[6], jit.x[7]) == (0, 1)


class TestSignalHandlers:
    """A fault the guest handles with its own signal handler does not end it (as on Linux)."""

    def test_sigsegv_handler_runs(self) -> None:
        """The handler installed with rt_sigaction runs instead of the guest dying."""
        m = sigsegv_handler_machine()
        assert JitExecutor(m).run() == 42
        assert m.termination is not None
        assert m.termination.reason == "exit"

    def test_sliced_and_hybrid(self) -> None:
        """The generator protocol and the hybrid deliver the fault the same way."""
        m = sigsegv_handler_machine()
        steps = JitExecutor(m).coroutine(slice_instructions=3)
        status = None
        try:
            while True:
                next(steps)
        except StopIteration as done:
            status = done.value
        assert status == 42
        m = sigsegv_handler_machine()
        assert HybridExecutor(m, threshold=100).run() == 42  # the fault hits the interpreter tier
