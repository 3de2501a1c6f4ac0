"""InterpreterExecutor tests: results, exact instret and budget, faults, caches, atomics, CSRs."""

from __future__ import annotations

import signal

import pytest
from rv_support import (
    CODE_BASE,
    DATA_BASE,
    EXIT,
    StubLinux,
    enc,
    li,
    machine_with_code,
    words,
)

from vmkit.async_executor.engine import ExecutionStats, InterpreterExecutor
from vmkit.async_executor.errors import BUDGET_EXHAUSTED_STATUS, GuestExit, SegmentationFault
from vmkit.async_executor.machine import PERM_R, PERM_W, Hart
from vmkit.async_executor.machine._machine import Machine

A0, A1, A2, T0, T1, T2, A7, SP = 10, 11, 12, 5, 6, 7, 17, 2
M64 = (1 << 64) - 1


def _loop_program(n: int) -> bytes:
    """a0 += 3, n times: li t0,n; loop: addi a0,a0,3; addi t0,t0,-1; bnez t0,loop; exit(a0)."""
    return words(
        *li(T0, n),
        enc("addi", A0, A0, imm=3),
        enc("addi", T0, T0, imm=-1),
        enc("bne", 0, T0, 0, imm=-8),
        *EXIT,
    )


def _run(code: bytes, budget: int | None = None, **kw: bool) -> tuple[Machine, int]:
    m = machine_with_code(code, **kw)
    status = InterpreterExecutor().run(m, max_instructions=budget)
    return m, status


class TestRun:
    """run() executes to the guest's exit and reports its status."""

    def test_loop_result_and_exact_instret(self) -> None:
        """A counted loop gives its result as exit status and retires exactly its instructions."""
        m, status = _run(_loop_program(1000))
        assert status == (3 * 1000) & 0xFF
        assert m.hart.instret == 2 + 3 * 1000 + 2
        assert m.termination is not None
        assert m.termination.reason == "exit"

    def test_stats(self) -> None:
        """ExecutionStats counts blocks, instructions and wall time."""
        m = machine_with_code(_loop_program(100))
        ex = InterpreterExecutor(m)
        ex.run()
        assert ex.stats.instructions == m.hart.instret == 304
        assert ex.stats.executions == 101  # the first block (li + loop body) and 100 loop blocks
        assert ex.stats.wall_time > 0
        assert ex.stats.mips > 0
        assert ExecutionStats().mips == 0.0

    def test_run_without_machine_is_an_error(self) -> None:
        """Running without a machine says so."""
        with pytest.raises(ValueError, match="no machine"):
            InterpreterExecutor().run()

    def test_write_syscall_reaches_the_machine(self) -> None:
        """ecall calls machine.syscall() with the hart's registers (write then exit)."""
        code = words(
            *li(A1, DATA_BASE),
            *li(T0, 0x6948),  # "Hi"
            enc("sh", 0, A1, T0, imm=0),
            enc("addi", A0, 0, imm=1),
            enc("addi", A2, 0, imm=2),
            enc("addi", A7, 0, imm=64),
            enc("ecall"),
            enc("addi", A0, 0, imm=7),
            *EXIT,
        )
        m, status = _run(code)
        assert status == 7
        assert isinstance(m.linux, StubLinux)
        assert bytes(m.linux.out) == b"Hi"

    def test_execute_block_returns_next_pc(self) -> None:
        """execute_block runs one block and returns where control goes next."""
        m = machine_with_code(_loop_program(5))
        ex = InterpreterExecutor(m)
        first = ex.execute_block()
        assert first == CODE_BASE + 8  # the branch of the first block jumps back to the loop
        assert m.hart.pc == first
        assert m.hart.instret == 5
        assert ex.execute_block(first) == first
        assert m.hart.instret == 8
        assert ex.stats.executions == 2


class TestTrace:
    """The optional trace hook sees every executed instruction, disassembled."""

    def test_trace_lines(self) -> None:
        """Each executed instruction is reported once, in order, as pc: disassembly."""
        lines: list[str] = []
        m = machine_with_code(_loop_program(2))
        InterpreterExecutor(m, trace=lines.append).run()
        assert len(lines) == m.hart.instret == 10
        assert lines[2] == f"{CODE_BASE + 8:#x}: add\ta0,a0,3"
        assert lines[4] == f"{CODE_BASE + 16:#x}: bnez\tt0,{CODE_BASE + 8:x}"
        assert lines[-1] == f"{CODE_BASE + 24:#x}: ecall"


class TestBudget:
    """The instruction budget is honoured exactly."""

    @pytest.mark.parametrize("budget", [1, 2, 3, 4, 5, 100, 3001])
    def test_exact_budget(self, budget: int) -> None:
        """A runaway loop stops after exactly ``budget`` instructions with status 124."""
        m, status = _run(_loop_program(100_000), budget=budget)
        assert status == BUDGET_EXHAUSTED_STATUS
        assert m.hart.instret == budget
        # The pc is the next instruction to run: within the loop body after the prologue.
        done = budget - 2
        expected = CODE_BASE + 8 + 4 * (done % 3) if budget >= 2 else CODE_BASE + 4
        assert m.hart.pc == expected
        assert m.termination is not None
        assert m.termination.reason == "budget"
        assert str(budget) in m.termination.message

    def test_budget_not_reached(self) -> None:
        """A guest that exits within its budget exits normally."""
        _, status = _run(_loop_program(10), budget=34)
        assert status == 30


class TestFaults:
    """Guest faults end the guest with the right signal, pc and exact instret."""

    def test_illegal_instruction(self) -> None:
        """An illegal word gives SIGILL (132) naming pc, raw bits and disassembly."""
        m, status = _run(words(enc("addi", A0, 0, imm=1), 0xFFFFFFFF))
        assert status == 128 + signal.SIGILL
        assert m.termination is not None
        msg = m.termination.message
        assert f"{CODE_BASE + 4:#x}" in msg
        assert "0xffffffff" in msg
        assert ".4byte" in msg
        assert m.hart.instret == 1
        assert m.hart.pc == CODE_BASE + 4

    def test_illegal_compressed_zero(self) -> None:
        """Running into zeroed memory is SIGILL at the first zero half-word."""
        m, status = _run(words(enc("addi", A0, 0, imm=1)) + b"\0\0\0\0")
        assert status == 132
        assert m.hart.pc == CODE_BASE + 4

    def test_write_to_read_only_counter_is_illegal(self) -> None:
        """csrrw x0, cycle, x0 (unimp) is SIGILL."""
        _, status = _run(words(enc("csrrw", 0, 0, imm=0xC00)))
        assert status == 132

    def test_segfault_mid_block_keeps_instret_exact(self) -> None:
        """A load from an unmapped address is SIGSEGV with address, access, pc, exact instret."""
        code = words(
            enc("addi", A0, 0, imm=1),
            enc("addi", A1, 0, imm=2),
            enc("ld", A2, 0, imm=16),  # address 16: unmapped
            enc("addi", A0, 0, imm=3),
            *EXIT,
        )
        m, status = _run(code)
        assert status == 128 + signal.SIGSEGV
        assert m.hart.instret == 2
        assert m.hart.pc == CODE_BASE + 8
        assert m.hart.x[A0] == 1
        assert m.termination is not None
        assert "read of 0x10" in m.termination.message
        assert f"pc {CODE_BASE + 8:#x}" in m.termination.message

    def test_store_to_code_is_a_write_fault(self) -> None:
        """Storing into a read-only code page faults with access 'write'."""
        code = words(*li(A1, CODE_BASE), enc("sd", 0, A1, A0, imm=0), *EXIT)
        m, status = _run(code)
        assert status == 139
        assert m.termination is not None
        assert "write" in m.termination.message

    def test_jump_to_unmapped_is_a_fetch_fault(self) -> None:
        """Jumping to an unmapped address faults with access 'fetch' at the target pc."""
        code = words(*li(T0, 0x123000), enc("jalr", 0, T0, imm=0))
        m, status = _run(code)
        assert status == 139
        assert m.hart.pc == 0x123000
        assert m.hart.instret == 3
        assert m.termination is not None
        assert "fetch" in m.termination.message

    def test_ebreak_is_sigtrap(self) -> None:
        """ebreak ends the guest with SIGTRAP."""
        _, status = _run(words(enc("ebreak")))
        assert status == 128 + signal.SIGTRAP

    def test_execute_block_propagates_faults(self) -> None:
        """execute_block lets the guest fault propagate with the state exact."""
        m = machine_with_code(words(enc("ld", A2, 0, imm=16)))
        ex = InterpreterExecutor(m)
        with pytest.raises(SegmentationFault) as info:
            ex.execute_block()
        assert info.value.pc == CODE_BASE
        assert m.hart.instret == 0


class TestSelfModifyingCode:
    """Writes to decoded code invalidate the cache."""

    def test_rewrite_then_fence_i(self) -> None:
        """A guest patches an instruction it already ran; after fence.i the new one runs."""
        patched = enc("addi", A0, A0, imm=100)
        # target: addi a0,a0,1 ; ret   (called twice; patched in between)
        target_off = 4 * 12
        code = [
            *li(T1, patched),  # 0, 4
            enc("auipc", T2, imm=0),  # 8: t2 = CODE_BASE + 8
            enc("jal", 1, imm=target_off - 12),  # 12: call target
            enc("sw", 0, T2, T1, imm=target_off - 8),  # 16: patch target
            enc("fence.i"),  # 20
            enc("jal", 1, imm=target_off - 24),  # 24: call target again
            *EXIT,  # 28, 32
            0x13,
            0x13,
            0x13,  # 36..44 padding
            enc("addi", A0, A0, imm=1),  # 48: target
            enc("jalr", 0, 1, imm=0),  # 52: ret
        ]
        _, status = _run(words(*code), writable_code=True)
        assert status == 101

    def test_listener_drops_blocks_of_written_page(self) -> None:
        """A write to a watched page removes the blocks decoded from it."""
        m = machine_with_code(_loop_program(3), writable_code=True)
        ex = InterpreterExecutor(m)
        ex.run()
        assert ex.cached_blocks > 0
        assert m.memory.is_watched(CODE_BASE >> 12)
        m.memory.write_bytes(CODE_BASE + 0x800, b"\x13\0\0\0")
        assert ex.cached_blocks == 0


class TestAtomics:
    """LR/SC with reservations, AMOs, alignment."""

    def _amo_machine(self, name: str, old: int, src: int, width: int) -> Machine:
        code = words(enc(name, A0, A1, A2), *EXIT)
        m = machine_with_code(code)
        m.memory.write_bytes(DATA_BASE, old.to_bytes(width, "little"))
        m.hart.x[A1] = DATA_BASE
        m.hart.x[A2] = src & M64
        InterpreterExecutor().run(m)
        return m

    @pytest.mark.parametrize(
        ("op", "ref"),
        [
            ("amoadd", lambda a, b, bits: (a + b) % (1 << bits)),
            ("amoswap", lambda a, b, bits: b),
            ("amoxor", lambda a, b, bits: a ^ b),
            ("amoor", lambda a, b, bits: a | b),
            ("amoand", lambda a, b, bits: a & b),
            ("amomin", lambda a, b, bits: a if _s(a, bits) < _s(b, bits) else b),
            ("amomax", lambda a, b, bits: a if _s(a, bits) > _s(b, bits) else b),
            ("amominu", lambda a, b, bits: min(a, b)),
            ("amomaxu", lambda a, b, bits: max(a, b)),
        ],
    )
    @pytest.mark.parametrize("width", [4, 8])
    def test_amo(self, op: str, ref: object, width: int) -> None:
        """Each AMO stores f(old, src) and returns old sign-extended, for .w and .d."""
        bits = 8 * width
        for old, src in [(5, 7), ((1 << bits) - 1, 1), (1 << (bits - 1), (1 << (bits - 1)) - 1)]:
            m = self._amo_machine(f"{op}.{'w' if width == 4 else 'd'}", old, src, width)
            new = int.from_bytes(m.memory.read_bytes(DATA_BASE, width), "little")
            assert new == ref(old, src, bits)  # type: ignore[operator]
            assert m.hart.x[A0] == _s(old, bits) & M64

    @pytest.mark.parametrize("name", ["amoadd.d", "lr.d", "sc.w", "amoswap.w"])
    def test_misaligned_atomic_is_sigbus(self, name: str) -> None:
        """A misaligned LR/SC/AMO is SIGBUS, as qemu-user reports it (Linux does not emulate)."""
        m = machine_with_code(words(enc(name, A0, A1, A2), *EXIT))
        m.hart.x[A1] = DATA_BASE + 2
        assert InterpreterExecutor().run(m) == 128 + signal.SIGBUS
        assert m.termination is not None
        assert "misaligned" in m.termination.message

    def test_lr_sc_success_and_failure(self) -> None:
        """SC after LR succeeds (rd=0); a second SC without LR fails (rd=1) and stores nothing."""
        code = words(
            enc("lr.d", T0, A1),
            enc("sc.d", A0, A1, A2),  # succeeds: a0 = 0
            enc("sc.d", T1, A1, T0),  # no reservation: t1 = 1
            enc("add", A0, A0, T1),
            *EXIT,
        )
        m = machine_with_code(code)
        m.hart.x[A1] = DATA_BASE
        m.hart.x[A2] = 42
        assert InterpreterExecutor().run(m) == 1
        assert int.from_bytes(m.memory.read_bytes(DATA_BASE, 8), "little") == 42

    @staticmethod
    def _two_harts(
        code_b: bytes,
    ) -> tuple[Machine, Machine, InterpreterExecutor, InterpreterExecutor]:
        """Hart A: lr.w t0,(a1); sc.w a0,a2,(a1); exit(a0). Hart B runs ``code_b`` at 0x30000."""
        code_a = words(enc("lr.w", T0, A1), enc("sc.w", A0, A1, A2), *EXIT)
        m_a = machine_with_code(code_a)
        m_b = Machine(memory=m_a.memory, hart=Hart(), linux=StubLinux())  # type: ignore[arg-type]
        m_a.memory.map(0x30000, 0x1000, PERM_R | PERM_W | 4)
        m_a.memory.write_bytes(0x30000, code_b + words(*EXIT))
        m_b.hart.pc = 0x30000
        for m in (m_a, m_b):
            m.hart.x[A1] = DATA_BASE
        m_a.hart.x[A2] = 1
        m_b.hart.x[A2] = 2
        return m_a, m_b, InterpreterExecutor(m_a), InterpreterExecutor(m_b)

    @pytest.mark.parametrize(
        "code_b",
        [
            words(enc("sw", 0, A1, A2, imm=0)),
            words(enc("sb", 0, A1, A2, imm=3)),
            words(enc("amoadd.w", T1, A1, A2)),
            words(enc("lr.w", T1, A1), enc("sc.w", T2, A1, A2)),
        ],
        ids=["sw", "sb-same-word", "amoadd", "lr-sc"],
    )
    def test_interleaved_harts(self, code_b: bytes) -> None:
        """A: lr; B: a store, AMO or SC to the reserved word; A: sc fails and stores nothing."""
        m_a, _, ex_a, ex_b = self._two_harts(code_b)
        assert ex_a.run(max_instructions=1) == BUDGET_EXHAUSTED_STATUS  # A: lr.w
        assert m_a.hart.reservation == DATA_BASE
        steps = len(code_b) // 4
        assert ex_b.run(max_instructions=steps) == BUDGET_EXHAUSTED_STATUS
        assert m_a.hart.reservation == -1
        before = m_a.memory.read_bytes(DATA_BASE, 4)
        assert ex_a.run() == 1  # A: sc.w fails, a0 = 1 is the exit status
        assert m_a.memory.read_bytes(DATA_BASE, 4) == before

    def test_store_to_another_page_keeps_reservation(self) -> None:
        """A store by another hart to a different page leaves the reservation alone."""
        m_a, m_b, ex_a, ex_b = self._two_harts(words(enc("sw", 0, A1, A2, imm=0)))
        m_b.hart.x[A1] = DATA_BASE + 0x1000
        ex_a.run(max_instructions=1)
        ex_b.run(max_instructions=1)
        assert m_a.hart.reservation == DATA_BASE
        assert ex_a.run() == 0  # sc.w succeeds
        assert int.from_bytes(m_a.memory.read_bytes(DATA_BASE, 4), "little") == 1

    def test_syscall_write_breaks_reservation(self) -> None:
        """A write into guest memory by the kernel (e.g. read()) breaks the reservation too."""
        m_a, _, ex_a, _ = self._two_harts(b"")
        ex_a.run(max_instructions=1)
        m_a.memory.write_bytes(DATA_BASE + 8, b"x")
        assert m_a.hart.reservation == -1
        assert ex_a.run() == 1

    def test_uninterrupted_lr_sc_succeeds_across_slices(self) -> None:
        """Without another store, SC succeeds even when the harts are switched in between."""
        code_a = words(enc("lr.w", T0, A1), enc("sc.w", A0, A1, A2), *EXIT)
        m_a = machine_with_code(code_a)
        m_a.hart.x[A1] = DATA_BASE
        m_a.hart.x[A2] = 9
        ex_a = InterpreterExecutor(m_a)
        assert ex_a.run(max_instructions=1) == BUDGET_EXHAUSTED_STATUS
        assert ex_a.run() == 0
        assert int.from_bytes(m_a.memory.read_bytes(DATA_BASE, 4), "little") == 9


def _s(v: int, bits: int) -> int:
    return v - (1 << bits) if v >> (bits - 1) else v


class TestCsr:
    """Zicsr: counters and FP status."""

    def test_instret_is_exact_mid_block(self) -> None:
        """rdinstret reads the number of instructions retired before it."""
        code = words(
            enc("addi", T0, 0, imm=1),
            enc("addi", T0, 0, imm=2),
            enc("csrrs", A0, 0, imm=0xC02),
            enc("csrrs", A1, 0, imm=0xC00),
            enc("sub", A0, A1, A0),  # cycle - instret = 1 (one instruction later)
            *EXIT,
        )
        m, status = _run(code)
        assert status == 1
        assert m.hart.x[A1] == 3

    def test_fcsr_fields(self) -> None:
        """Writing fcsr sets frm and fflags; csrrsi/csrrci on fflags set and clear bits."""
        code = words(
            enc("addi", T0, 0, imm=0xE5),
            enc("csrrw", 0, T0, imm=3),  # fcsr = 0xE5: frm 7, fflags 5
            enc("csrrsi", 0, 2, imm=1),  # fflags |= 2
            enc("csrrci", 0, 1, imm=1),  # fflags &= ~1
            enc("csrrs", A0, 0, imm=3),  # a0 = fcsr
            enc("csrrwi", A1, 3, imm=2),  # a1 = frm, frm = 3
            enc("csrrs", A2, 0, imm=3),  # a2 = fcsr
            *EXIT,
        )
        m, _ = _run(code)
        assert m.hart.x[A0] == 0xE6
        assert m.hart.x[A1] == 7
        assert m.hart.x[A2] == 0x66
        assert (m.hart.frm, m.hart.fflags) == (3, 6)


class TestIntegerEdgeCases:
    """M extension edge cases the ISA defines without traps."""

    @pytest.mark.parametrize(
        ("name", "a", "b", "expected"),
        [
            ("div", 7, 0, M64),
            ("divu", 7, 0, M64),
            ("rem", 7, 0, 7),
            ("remu", 7, 0, 7),
            ("div", 1 << 63, M64, 1 << 63),
            ("rem", 1 << 63, M64, 0),
            ("div", (-7) & M64, 2, (-3) & M64),
            ("rem", (-7) & M64, 2, (-1) & M64),
            ("divw", 0x80000000, M64, 0xFFFFFFFF80000000),
            ("remw", 0x80000000, M64, 0),
            ("divuw", 5, 0, M64),
            ("remuw", 0xFFFFFFFF, 0, M64),
            ("mulh", M64, M64, 0),
            ("mulhu", M64, M64, M64 - 1),
            ("mulhsu", M64, M64, M64),
            ("mulw", 0x7FFFFFFF, 2, M64 - 1),
            ("sraw", 0x80000000, 31, M64),
            ("srlw", 0x80000000, 31, 1),
            ("sra", 1 << 63, 63, M64),
        ],
    )
    def test_r_type(self, name: str, a: int, b: int, expected: int) -> None:
        """The result matches the specification's table of special cases."""
        m = machine_with_code(words(enc(name, A0, A1, A2), enc("ebreak")))
        m.hart.x[A1] = a
        m.hart.x[A2] = b
        InterpreterExecutor().run(m)
        assert m.hart.x[A0] == expected

    def test_x0_stays_zero(self) -> None:
        """Writes to x0 are discarded."""
        m, _ = _run(words(enc("addi", 0, 0, imm=5), enc("add", A0, 0, 0), *EXIT))
        assert m.hart.x[0] == 0
        assert m.hart.x[A0] == 0


class TestFloatingPoint:
    """F/D instructions run through the FP module."""

    def test_fadd_d_and_moves(self) -> None:
        """fmv.d.x, fadd.d, fmv.x.d: 1.5 + 2.25 = 3.75."""
        import struct

        code = words(
            enc("fmv.d.x", 1, A1),
            enc("fmv.d.x", 2, A2),
            enc("fadd.d", 3, 1, 2, rm=0),
            enc("fmv.x.d", A0, 3),
            enc("ebreak"),
        )
        m = machine_with_code(code)
        m.hart.x[A1] = struct.unpack("<Q", struct.pack("<d", 1.5))[0]
        m.hart.x[A2] = struct.unpack("<Q", struct.pack("<d", 2.25))[0]
        InterpreterExecutor().run(m)
        assert struct.unpack("<d", struct.pack("<Q", m.hart.x[A0]))[0] == 3.75

    def test_invalid_dynamic_rounding_mode_is_sigill(self) -> None:
        """With frm = 5, an instruction using the dynamic rounding mode is illegal."""
        code = words(enc("csrrwi", 0, 5, imm=2), enc("fadd.d", 3, 1, 2))
        m, status = _run(code)
        assert status == 132
        assert m.termination is not None
        assert "fadd.d" in m.termination.message
        assert m.hart.pc == CODE_BASE + 4

    def test_flw_nan_boxes(self) -> None:
        """flw NaN-boxes the loaded single; fsw stores the low 32 bits."""
        code = words(
            *li(A1, DATA_BASE),
            enc("flw", 1, A1, imm=0),
            enc("fsw", 0, A1, 1, imm=8),
            enc("fmv.x.d", A0, 1),
            enc("ebreak"),
        )
        m = machine_with_code(code)
        m.memory.write_bytes(DATA_BASE, (0x3FC00000).to_bytes(4, "little"))
        InterpreterExecutor().run(m)
        assert m.hart.x[A0] == 0xFFFFFFFF3FC00000
        assert m.memory.read_bytes(DATA_BASE + 8, 4) == (0x3FC00000).to_bytes(4, "little")


def test_guest_exit_is_not_raised_by_run() -> None:
    """run() converts GuestExit into a status (no exception leaks)."""
    m = machine_with_code(words(*EXIT))
    try:
        status = InterpreterExecutor().run(m)
    except GuestExit:  # pragma: no cover - the assertion below explains the failure
        pytest.fail("GuestExit escaped from run()")
    assert status == 0
