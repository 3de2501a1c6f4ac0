"""The native tier against the interpreter (itself checked against Unicorn and qemu).

Random RV64IM sequences, straight and looped, with loads and stores, division edge cases,
faults at random places, budgets and self-modifying code: native code must leave exactly the
interpreter's registers, memory, pc, instret and exit status. Regions compile on first entry
(threshold 1), so every example runs natively as far as native code goes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("llvmlite", reason="the native tier needs the [native] extra")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "jit"))
from jit_support import (
    ALU_SPECS,
    BASE,
    COUNTER,
    DATA_BASE,
    EDGES,
    EXIT,
    M64,
    MEM_SPECS,
    Outcome,
    _outcome,
    _prepare,
    alu_instruction,
    enc,
    mem_instruction,
    register_value,
    words,
)

from vmkit.async_executor.engine import InterpreterExecutor
from vmkit.async_executor.engine.native import NativeExecutor
from vmkit.async_executor.isa import InstrSpec

_settings = settings(
    max_examples=int(os.environ.get("NATIVE_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)


_instr = st.one_of(alu_instruction(), alu_instruction(), mem_instruction())


def _state(draw: st.DrawFn) -> dict[int, int]:
    x = {r: draw(register_value) for r in range(1, 16)}
    x[BASE] = DATA_BASE + 0x2000
    return x


def _loop(body: list[bytes], count: int) -> bytes:
    code = b"".join(body)
    back = len(code) + 4
    tail = words(enc("addi", COUNTER, COUNTER, imm=-1), enc("bne", 0, COUNTER, 0, -back))
    return code + tail + words(*EXIT)


def _run(
    code: bytes, *, x: dict[int, int], data: bytes = b"", budget: int | None = None
) -> tuple[Outcome, Outcome, NativeExecutor]:
    m = _prepare(code, x, data, False)
    ref = _outcome(m, InterpreterExecutor(m).run(m, max_instructions=budget))
    m = _prepare(code, x, data, False)
    native = NativeExecutor(m, threshold=1)
    return ref, _outcome(m, native.run(m, max_instructions=budget)), native


class TestSequences:
    @_settings
    @given(st.lists(_instr, min_size=1, max_size=14), st.data())
    def test_straight_line(self, body: list[bytes], data: st.DataObject) -> None:
        x = _state(data.draw)
        mem = data.draw(st.binary(min_size=64, max_size=64)) * 256
        ref, native, ex = _run(b"".join(body) + words(*EXIT), x=x, data=mem)
        assert native == ref
        assert ex.native_stats.regions >= 1

    @_settings
    @given(st.lists(_instr, min_size=1, max_size=10), st.integers(1, 6), st.data())
    def test_loops(self, body: list[bytes], count: int, data: st.DataObject) -> None:
        x = _state(data.draw)
        x[COUNTER] = count
        ref, native, ex = _run(_loop(body, count), x=x, data=bytes(range(256)) * 64)
        assert native == ref
        assert ex.native_stats.instructions > 0

    @_settings
    @given(st.lists(_instr, min_size=1, max_size=10), st.integers(1, 5), st.data())
    def test_faults_are_precise(self, body: list[bytes], count: int, data: st.DataObject) -> None:
        """With s0 near the end of the data area some accesses fault: same pc, instret, regs."""
        x = _state(data.draw)
        x[BASE] = DATA_BASE + 0x4000 - data.draw(st.integers(0, 600))
        x[COUNTER] = count
        ref, native, _ = _run(_loop(body, count), x=x)
        assert native == ref

    @_settings
    @given(st.lists(_instr, min_size=1, max_size=8), st.integers(2, 8), st.data())
    def test_budgets_stop_exactly(self, body: list[bytes], count: int, data: st.DataObject) -> None:
        x = _state(data.draw)
        x[COUNTER] = count
        budget = data.draw(st.integers(0, count * (len(body) + 2) + 3))
        ref, native, _ = _run(_loop(body, count), x=x, budget=budget)
        assert native == ref


class TestMemorySafety:
    @_settings
    @given(st.integers(0, M64), st.sampled_from(MEM_SPECS), st.data())
    def test_wild_pointers_fault_like_the_interpreter(
        self, base: int, spec: InstrSpec, data: st.DataObject
    ) -> None:
        """Any 64-bit base address: the access either lands in a mapped page (and agrees) or
        faults exactly as in the interpreter; native code never touches the host."""
        x = _state(data.draw)
        x[BASE] = base
        x[COUNTER] = 3
        imm = data.draw(st.integers(-2048, 2047))
        body = [words(enc(spec.name, 5, BASE, 6, imm)), words(enc("addi", BASE, BASE, imm=8))]
        ref, native, _ = _run(_loop(body, 3), x=x)
        assert native == ref

    def test_unmapping_a_page_drops_native_translations(self) -> None:
        """A page the native TLB entered is unmapped between two slices: the next access faults."""
        body = [words(enc("ld", 5, BASE, 0, 0)), words(enc("addi", 6, 6, imm=1))]
        x = {BASE: DATA_BASE, COUNTER: 1000}
        m = _prepare(_loop(body, 1000), x, b"", False)
        ex = NativeExecutor(m, threshold=1)
        gen = ex.coroutine(m, slice_instructions=500)
        next(gen)
        assert ex.native_stats.instructions > 0
        m.memory.unmap(DATA_BASE, 0x4000)
        with pytest.raises(StopIteration) as done:
            next(gen)
        assert done.value.value == 128 + 11  # SIGSEGV at the load, not a stale host read
        assert m.termination is not None
        assert m.hart.pc == m.termination.pc

    def test_code_written_by_the_guest_is_recompiled(self) -> None:
        """The loop stores a new instruction over its own body: native code is dropped."""
        # a0 += 1 each turn, until the store turns that addi into "addi a0, a0, 100".
        new = enc("addi", 10, 10, imm=100)
        patch = DATA_BASE  # the new word is at the start of the data area
        body = [
            words(enc("addi", 10, 10, imm=1)),
            words(enc("lw", 7, BASE, 0, 0)),
            words(enc("sw", 0, 9, 7, 0)),  # *(s1) = new word; s1 points at the addi above
        ]
        x = {BASE: patch, 9: 0x10000, COUNTER: 5}
        data = new.to_bytes(4, "little")
        m = _prepare(_loop(body, 5), x, data, True)
        ref = _outcome(m, InterpreterExecutor(m).run(m))
        m = _prepare(_loop(body, 5), x, data, True)
        ex = NativeExecutor(m, threshold=1)
        assert _outcome(m, ex.run(m)) == ref
        assert ref.x[10] == 1 + 4 * 100  # the first turn ran the old code, the others the new
        assert ex.native_stats.dropped >= 1


_IMMEDIATES = {
    "I": [0, 1, -1, 2, 31, 32, 63, 2047, -2048, -2],
    "IS": [0, 1, 31, 32, 63],
    "ISW": [0, 1, 15, 31],
    "U": [0, 0x1000, 0x7FFFF000, 0x80000000, 0xFFFFF000],
}


def _table_loop(ops: list[int], pairs: int) -> bytes:
    """For k in range(pairs): a = data[2k], b = data[2k + 1]; each of ``ops`` (encodings reading
    x5, x6 and writing x7) runs and its x7 is stored to the result area, one slot per op."""
    body = [enc("ld", 5, BASE, 0, 0), enc("ld", 6, BASE, 0, 8)]
    for n, op in enumerate(ops):
        body += [op, enc("sd", 0, 9, 7, 8 * n)]
    body += [enc("addi", BASE, BASE, imm=16), enc("addi", 9, 9, imm=8 * len(ops))]
    return _loop([words(*body)], pairs)


@pytest.mark.parametrize("spec", ALU_SPECS, ids=lambda s: s.name)
def test_every_operation_on_edge_values(spec: InstrSpec) -> None:
    """Each ALU operation on every pair of edge values (and edge immediates) gives the
    interpreter's result: a table-driven loop, so one native region covers all pairs."""
    if spec.fmt in _IMMEDIATES:
        ops = [enc(spec.name, 7, 5, 6, imm) for imm in _IMMEDIATES[spec.fmt]]
        pairs = [(a, 0) for a in EDGES]
    else:
        ops = [enc(spec.name, 7, 5, 6)]
        pairs = [(a, b) for a in EDGES for b in EDGES]
    data = b"".join(a.to_bytes(8, "little") + b.to_bytes(8, "little") for a, b in pairs)
    results = DATA_BASE + len(data)
    x = {BASE: DATA_BASE, 9: results, COUNTER: len(pairs)}
    code = _table_loop(ops, len(pairs))
    ref, native, ex = _run(code, x=x, data=data)
    assert native == ref
    assert ref.status == 0  # every result fitted the data area
    assert ex.native_stats.instructions > len(pairs)  # the loop ran natively
