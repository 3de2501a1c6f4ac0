"""The JIT against the interpreter (itself checked against Unicorn and qemu): random instruction
sequences, straight and as self-looping blocks, with memory, FP and budgets, agree on every
register, on memory, on pc and on instret."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jit_support import (
    BASE,
    COUNTER,
    DATA_BASE,
    EXIT,
    alu_instruction,
    dest_register,
    enc,
    mem_instruction,
    register_value,
    run_both,
    source_register,
    words,
)

from vmkit.async_executor.isa import TABLE, decode16

_settings = settings(
    max_examples=int(os.environ.get("JIT_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)

_AMO = [s for s in TABLE if s.kind in ("amo", "lr", "sc")]
_FP = [s for s in TABLE if s.kind == "fp" and s.name.endswith(".d") and "fcvt" not in s.name]
_C_ALU = [
    h
    for h in range(1 << 16)
    if h & 3 != 3
    and (i := decode16(h)) is not None
    and i.spec.kind == "alu"
    and i.rd not in (BASE, COUNTER)
]


@st.composite
def _calu(draw: st.DrawFn) -> bytes:
    return draw(st.sampled_from(_C_ALU)).to_bytes(2, "little")


@st.composite
def _amo(draw: st.DrawFn) -> bytes:
    spec = draw(st.sampled_from(_AMO))
    return words(enc(spec.name, draw(dest_register), BASE, draw(source_register)))


@st.composite
def _fp(draw: st.DrawFn) -> bytes:
    spec = draw(st.sampled_from(_FP))
    rm = draw(st.sampled_from([0, 1, 2, 3, 4, 7]))
    regs = st.integers(0, 7)
    return words(enc(spec.name, draw(regs), draw(regs), draw(regs), rs3=draw(regs), rm=rm))


_instr = st.one_of(
    alu_instruction(), alu_instruction(), _calu(), mem_instruction(), mem_instruction(), _amo()
)


def _state(draw: st.DrawFn) -> dict[int, int]:
    x = {r: draw(register_value) for r in range(1, 16)}
    x[BASE] = DATA_BASE + 0x2000
    return x


def _loop(body: list[bytes], count: int) -> bytes:
    """``body`` repeated ``count`` times as one self-looping block, then exit(a0)."""
    code = b"".join(body)
    back = len(code) + 4
    tail = words(enc("addi", COUNTER, COUNTER, imm=-1), enc("bne", 0, COUNTER, 0, -back))
    return code + tail + words(*EXIT)


_BRANCHES = ["beq", "bne", "blt", "bge", "bltu", "bgeu"]


_PROBE = words(enc("csrrs", 30, 0, imm=0xC02), enc("add", 29, 29, 30))  # t4 += rdinstret


@st.composite
def _diamond_loop(draw: st.DrawFn, probe: bool = False) -> bytes:
    """A loop whose body has an if-then: several blocks, one translated region."""
    first = draw(st.lists(_instr, min_size=1, max_size=4)) + ([_PROBE] if probe else [])
    then = draw(st.lists(_instr, min_size=1, max_size=4))
    rest = draw(st.lists(_instr, min_size=0, max_size=4))
    then_code = b"".join(then)
    skip = words(
        enc(
            draw(st.sampled_from(_BRANCHES)),
            0,
            draw(source_register),
            draw(source_register),
            imm=len(then_code) + 4,
        )
    )
    body = [*first, skip, then_code, *rest]
    return _loop(body, 0)


class TestStraightLineAgainstInterpreter:
    """Blocks without loops agree with the interpreter."""

    @_settings
    @given(st.lists(_instr, min_size=1, max_size=12), st.data())
    def test_sequences(self, body: list[bytes], data: st.DataObject) -> None:
        """Random ALU/memory/atomic sequences end in the same state as under the interpreter."""
        x = _state(data.draw)
        mem = data.draw(st.binary(min_size=64, max_size=64)) * 256
        ref, jit = run_both(b"".join(body) + words(*EXIT), x=x, data=mem)
        assert jit == ref

    @_settings
    @given(st.lists(_fp(), min_size=1, max_size=6), st.data())
    def test_fp_sequences(self, body: list[bytes], data: st.DataObject) -> None:
        """Double-precision sequences agree on F registers, fflags and SIGILL for bad frm."""
        x = _state(data.draw)
        m_code = b"".join(body) + words(*EXIT)
        frm = data.draw(st.integers(0, 7))
        csr = words(enc("addi", 5, 0, imm=frm), enc("csrrw", 0, 5, imm=0x002))
        ref, jit = run_both(csr + m_code, x=x)
        assert jit == ref


class TestFaultsAgainstInterpreter:
    """Sequences whose accesses may fall off the data area fault with identical state."""

    @_settings
    @given(st.lists(_instr, min_size=1, max_size=12), st.integers(1, 4), st.data())
    def test_faulting_loops(self, body: list[bytes], count: int, data: st.DataObject) -> None:
        """With s0 near the end of the data area some accesses fault: same pc, instret, regs."""
        x = _state(data.draw)
        x[BASE] = DATA_BASE + 0x4000 - data.draw(st.integers(0, 600))
        x[COUNTER] = count
        ref, jit = run_both(_loop(body, count), x=x)
        assert jit == ref

    @_settings
    @given(_diamond_loop(), st.integers(1, 4), st.data())
    def test_faulting_regions(self, code: bytes, count: int, data: st.DataObject) -> None:
        """The same for loops of several blocks, whose turns run fused in one ``for`` loop: a
        fault in any block of a turn leaves the interpreter's pc, instret and registers."""
        x = _state(data.draw)
        x[BASE] = DATA_BASE + 0x4000 - data.draw(st.integers(0, 600))
        x[COUNTER] = count
        ref, jit = run_both(code, x=x)
        assert jit == ref


class TestLoopsAgainstInterpreter:
    """Self-looping blocks (translated to ``while`` loops) agree with the interpreter."""

    @_settings
    @given(st.lists(_instr, min_size=1, max_size=10), st.integers(1, 6), st.data())
    def test_loops(self, body: list[bytes], count: int, data: st.DataObject) -> None:
        """A random body looped ``count`` times ends in the interpreter's state."""
        x = _state(data.draw)
        x[COUNTER] = count
        ref, jit = run_both(_loop(body, count), x=x, data=bytes(range(256)) * 64)
        assert jit == ref

    @_settings
    @given(_diamond_loop(), st.integers(1, 6), st.data())
    def test_multi_block_loops(self, code: bytes, count: int, data: st.DataObject) -> None:
        """Loops of several blocks (translated as one region) end in the interpreter's state."""
        x = _state(data.draw)
        x[COUNTER] = count
        ref, jit = run_both(code, x=x, data=bytes(range(256)) * 64)
        assert jit == ref

    @_settings
    @given(_diamond_loop(), st.integers(1, 6), st.data())
    def test_budget_inside_region(self, code: bytes, count: int, data: st.DataObject) -> None:
        """A budget ending anywhere inside a region stops at the interpreter's pc."""
        x = _state(data.draw)
        x[COUNTER] = count
        budget = data.draw(st.integers(0, count * len(code) // 2 + 4))
        ref, jit = run_both(code, x=x, budget=budget)
        assert jit == ref

    @_settings
    @given(st.lists(_instr, min_size=1, max_size=6), st.integers(1, 6), st.data())
    def test_budget_inside_loop(self, body: list[bytes], count: int, data: st.DataObject) -> None:
        """An instruction budget ending anywhere, also mid-iteration, stops at the same pc."""
        x = _state(data.draw)
        x[COUNTER] = count
        code = _loop(body, count)
        budget = data.draw(st.integers(0, count * (len(body) + 2) + 2))
        ref, jit = run_both(code, x=x, budget=budget)
        assert jit == ref


class TestArrayLoops:
    """Loops walking arrays with every load and store width (aligned and not)."""

    def test_every_width(self) -> None:
        """Copy-and-sum loops over 64 elements per width agree with the interpreter."""
        for load, store, width in (
            ("ld", "sd", 8),
            ("lw", "sw", 4),
            ("lwu", "sw", 4),
            ("lh", "sh", 2),
            ("lhu", "sh", 2),
            ("lb", "sb", 1),
            ("lbu", "sb", 1),
        ):
            for misalign in (0, 1):
                body = words(
                    enc(load, 5, 8, imm=misalign),  # t0 = a[i]
                    enc("add", 10, 10, 5),  # a0 += t0
                    enc("xori", 5, 5, imm=0x5A5),
                    enc(store, 0, 8, 5, imm=0x800 + misalign),  # b[i] = t0 ^ 0x5a5
                    enc("addi", 8, 8, imm=width),
                )
                code = _loop([body], 64)
                data = bytes((i * 37 + 11) & 0xFF for i in range(0x4000))
                x = {8: DATA_BASE + 0x1000 - 7 * width, COUNTER: 64}
                ref, jit = run_both(code, x=x, data=data)
                assert jit == ref, (load, misalign)


class TestCountersInLoops:
    """instret/cycle read inside translated loops and regions are exact."""

    @_settings
    @given(st.lists(_instr, min_size=0, max_size=5), st.integers(1, 6), st.data())
    def test_rdinstret_in_loop(self, body: list[bytes], count: int, data: st.DataObject) -> None:
        """A loop accumulating rdinstret and rdcycle sees the interpreter's counts."""
        x = _state(data.draw)
        x[COUNTER] = count
        probe = words(
            enc("csrrs", 30, 0, imm=0xC02),  # rdinstret t5
            enc("add", 29, 29, 30),
            enc("csrrs", 30, 0, imm=0xC00),  # rdcycle t5
            enc("add", 29, 29, 30),
        )
        ref, jit = run_both(_loop([*body, probe], count), x=x, data=bytes(range(256)) * 64)
        assert jit == ref

    @_settings
    @given(_diamond_loop(probe=True), st.integers(1, 6), st.data())
    def test_rdinstret_in_region(self, code: bytes, count: int, data: st.DataObject) -> None:
        """The same inside a multi-block region, with the probe in its first block."""
        x = _state(data.draw)
        x[COUNTER] = count
        ref, jit = run_both(code, x=x)
        assert jit == ref
