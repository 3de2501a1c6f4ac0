"""The hybrid's native tier (interpreter -> Python JIT -> native) against the interpreter.

The hybrid is made to tier up at once (JIT after 2 entries, a sample every 50 Python-tier
instructions, native after one sample, no warm-up), so that loops, the exits between the tiers,
budgets, slices and self-modifying code all cross the native tier; every run must leave exactly
the interpreter's registers, memory, pc, instret and exit status.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("llvmlite", reason="the native tier needs the [native] extra")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "jit"))
from jit_support import (
    BASE,
    COUNTER,
    DATA_BASE,
    EXIT,
    Outcome,
    _outcome,
    _prepare,
    alu_instruction,
    enc,
    mem_instruction,
    register_value,
    words,
)

from vmkit.async_executor.engine import HybridExecutor, InterpreterExecutor, _native_tierup
from vmkit.async_executor.engine.native import NativeExecutor
from vmkit.async_executor.machine._machine import Machine

_settings = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
_instr = st.one_of(alu_instruction(), alu_instruction(), mem_instruction())


def _eager(m: Machine, **options: int) -> HybridExecutor:
    """A hybrid that tiers up to native code almost at once."""
    hybrid = HybridExecutor(m, threshold=2, native=True, native_threshold=1, native_warmup=0)
    assert hybrid.native_tier is not None
    hybrid.native_tier.period = 50
    for name, value in options.items():
        setattr(hybrid.native_tier, name, value)
    return hybrid


def _loop(body: list[bytes], count: int) -> bytes:
    code = b"".join(body)
    back = len(code) + 4
    tail = words(enc("addi", COUNTER, COUNTER, imm=-1), enc("bne", 0, COUNTER, 0, -back))
    return code + tail + words(*EXIT)


def _both(
    code: bytes, x: dict[int, int], *, data: bytes = b"", budget: int | None = None
) -> tuple[Outcome, Outcome, HybridExecutor]:
    m = _prepare(code, x, data, False)
    ref = _outcome(m, InterpreterExecutor(m).run(m, max_instructions=budget))
    m = _prepare(code, x, data, False)
    hybrid = _eager(m)
    return ref, _outcome(m, hybrid.run(m, max_instructions=budget)), hybrid


def _state(draw: st.DrawFn) -> dict[int, int]:
    x = {r: draw(register_value) for r in range(1, 16)}
    x[BASE] = DATA_BASE + 0x2000
    return x


class TestTierUp:
    def test_a_hot_loop_moves_to_native_code(self) -> None:
        """A long loop is interpreted, translated, then compiled natively; the tiers' counts
        add up to the instructions retired and match the native tier's own counters."""
        body = [words(enc("add", 10, 10, 11), enc("xori", 11, 11, imm=5))]
        ref, got, hybrid = _both(_loop(body, 3000), {COUNTER: 3000, 11: 7})
        assert got == ref
        tiers = hybrid.tier_stats
        assert sum(t.instructions for t in tiers.values()) == hybrid.stats.instructions
        assert tiers["interp"].instructions > 0
        assert tiers["jit"].instructions > 0
        assert tiers["native"].instructions > ref.instret // 2
        native = hybrid.native_stats
        assert native is not None
        assert native.regions >= 1
        assert native.instructions == tiers["native"].instructions
        assert sum(native.exits.values()) == native.calls

    def test_warmup_keeps_short_runs_off_llvm(self) -> None:
        """Under the default warm-up a short run never starts the native tier."""
        body = [words(enc("add", 10, 10, 11))]
        m = _prepare(_loop(body, 3000), {COUNTER: 3000, 11: 3}, b"", False)
        hybrid = HybridExecutor(m, threshold=2, native=True)
        assert hybrid.native_tier is not None
        hybrid.native_tier.period = 50
        hybrid.run(m)
        assert hybrid.native_stats is None  # nothing compiled, LLVM never started
        assert hybrid.native_tier.ticks > 0
        assert hybrid.tier_stats["native"].instructions == 0

    def test_native_off(self) -> None:
        """native=False: two tiers, as before the native tier existed."""
        m = _prepare(_loop([words(enc("addi", 10, 10, imm=1))], 500), {COUNTER: 500}, b"", False)
        hybrid = HybridExecutor(m, native=False)
        assert hybrid.native_tier is None
        assert set(hybrid.tier_stats) == {"interp", "jit"}
        assert hybrid.run(m) == 500 & 0xFF  # the exit status is a0's low byte
        assert m.hart.x[10] == 500

    def test_a_loop_through_an_unsupported_instruction_is_declined(self) -> None:
        """A loop holding an instruction native code leaves at (here a CSR read) would exit
        on every turn: the tier-up leaves it translated."""
        csrr_cycle = 0xC0002073 | (12 << 7)  # csrrs a2, cycle, x0
        body = [words(enc("addi", 10, 10, imm=1)), csrr_cycle.to_bytes(4, "little")]
        m = _prepare(_loop(body, 2000), {COUNTER: 2000}, b"", False)
        hybrid = _eager(m)
        hybrid.run(m)
        assert hybrid.native_tier is not None
        assert hybrid.native_tier.declined >= 1
        assert hybrid.tier_stats["native"].instructions == 0
        assert m.hart.x[10] == 2000


class TestDifferential:
    @_settings
    @given(st.lists(_instr, min_size=1, max_size=10), st.integers(50, 400), st.data())
    def test_loops(self, body: list[bytes], count: int, data: st.DataObject) -> None:
        x = _state(data.draw)
        x[COUNTER] = count
        ref, got, _ = _both(_loop(body, count), x, data=bytes(range(256)) * 64)
        assert got == ref

    @_settings
    @given(st.lists(_instr, min_size=1, max_size=8), st.integers(50, 300), st.data())
    def test_faults_are_precise(self, body: list[bytes], count: int, data: st.DataObject) -> None:
        """s0 walks off the end of the data area: the fault is the interpreter's, exactly."""
        x = _state(data.draw)
        x[BASE] = DATA_BASE + 0x4000 - data.draw(st.integers(0, 3000))
        x[COUNTER] = count
        step = words(enc("addi", BASE, BASE, imm=8))
        ref, got, _ = _both(_loop([*body, step], count), x)
        assert got == ref

    @_settings
    @given(st.lists(_instr, min_size=1, max_size=6), st.integers(100, 300), st.data())
    def test_budgets_stop_exactly(self, body: list[bytes], count: int, data: st.DataObject) -> None:
        """Budgets anywhere, also long after the loop went native."""
        x = _state(data.draw)
        x[COUNTER] = count
        budget = data.draw(st.integers(0, count * (len(body) + 2) + 3))
        ref, got, _ = _both(_loop(body, count), x, budget=budget)
        assert got == ref

    def test_slices_resume_exactly(self) -> None:
        """The coroutine protocol in odd-sized slices: the same end state, every slice exact."""
        body = [words(enc("add", 10, 10, 11), enc("sd", 0, BASE, 10, 0), enc("ld", 12, BASE, 0, 0))]
        x = {COUNTER: 4000, 11: 3, BASE: DATA_BASE}
        code = _loop(body, 4000)
        m = _prepare(code, x, b"", False)
        ref = _outcome(m, InterpreterExecutor(m).run(m))
        m = _prepare(code, x, b"", False)
        hybrid = _eager(m)
        steps = hybrid.coroutine(m, slice_instructions=997)
        slices = 0
        status = None
        while status is None:
            try:
                next(steps)
            except StopIteration as done:
                status = done.value
            else:
                slices += 1
                assert m.hart.instret == 997 * slices
        assert _outcome(m, status) == ref
        assert hybrid.tier_stats["native"].instructions > 0


def test_code_written_after_native_compile_is_recompiled() -> None:
    """Half-way through a long loop the guest rewrites an instruction of the loop (compiled
    natively by then): the native region is dropped and the new code runs."""
    new = enc("addi", 10, 10, imm=100)
    code = words(
        enc("addi", 10, 10, imm=1),  # 0: patched into addi a0, a0, 100
        enc("bne", 0, COUNTER, 30, 12),  # 4: patch only when t6 == t5
        enc("lw", 7, BASE, 0, 0),  # 8
        enc("sw", 0, 9, 7, 0),  # 12: over the instruction at 0
        enc("addi", COUNTER, COUNTER, imm=-1),  # 16
        enc("bne", 0, COUNTER, 0, -20),  # 20
        *EXIT,
    )
    x = {BASE: DATA_BASE, 9: 0x10000, COUNTER: 3000, 30: 1000}
    data = new.to_bytes(4, "little")
    m = _prepare(code, x, data, True)
    ref = _outcome(m, InterpreterExecutor(m).run(m))
    assert ref.x[10] == 2001 + 999 * 100
    m = _prepare(code, x, data, True)
    hybrid = _eager(m)
    assert _outcome(m, hybrid.run(m)) == ref
    native = hybrid.native_stats
    assert native is not None
    assert native.dropped >= 1
    assert native.regions >= 2  # the rewritten loop went native again


def test_a_loop_whose_trip_count_llvm_computes_in_128_bits() -> None:
    """Seven ALU instructions looped 239 times: LLVM vectorises the loop and computes its trip
    count under the budget check with a 128-bit division, a call into libgcc (``__udivti3``)
    that MCJIT must resolve; it once jumped to address 0 (a host crash)."""
    body = [
        words(enc("or", 12, 4, 9)),
        words(enc("slli", 7, 4, imm=45)),
        words(enc("auipc", 12, 0, imm=0x6BE8 << 12)),
        words(enc("slti", 6, 0, imm=380)),
        words(enc("addi", BASE, BASE, imm=8)),
    ]
    x = {4: 1 << 31, 9: 1 << 63, BASE: DATA_BASE, COUNTER: 239}
    ref, got, hybrid = _both(_loop(body, 239), x)
    assert got == ref
    assert hybrid.tier_stats["native"].instructions > 0
    m = _prepare(_loop(body, 239), x, b"", False)
    native = NativeExecutor(m, threshold=1)
    assert _outcome(m, native.run(m)) == ref


def test_native_required_without_llvmlite_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """native=True without llvmlite: NativeUnavailable naming the extra; auto just turns off."""
    from vmkit.async_executor.errors import AsyncExecutorError

    monkeypatch.setattr(_native_tierup, "native_available", lambda: False)
    monkeypatch.setitem(sys.modules, "llvmlite", None)
    monkeypatch.setitem(sys.modules, "llvmlite.binding", None)
    for name in [n for n in sys.modules if n.startswith("vmkit.async_executor.engine.native")]:
        monkeypatch.delitem(sys.modules, name)
    m = _prepare(words(*EXIT), {}, b"", False)
    with pytest.raises(AsyncExecutorError, match=r"vmkit-async-executor\[native\]"):
        HybridExecutor(m, native=True)
    assert HybridExecutor(m).native_tier is None
