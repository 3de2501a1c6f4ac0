"""LR/SC and AMOs in native code, against the interpreter.

Random loops mixing atomics with ALU operations and plain loads and stores near the atomic's
address (so stores break reservations, on the same page and beside it), misaligned atomics, and
the cases where a reservation crosses between native code and the Python tiers: native code must
leave exactly the interpreter's registers, memory, pc, instret and exit status, and the
reservation must be broken exactly when the interpreter's is.
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
    BASE,
    COUNTER,
    DATA_BASE,
    EXIT,
    Outcome,
    _outcome,
    _prepare,
    alu_instruction,
    dest_register,
    enc,
    mem_instruction,
    register_value,
    source_register,
    words,
)

from vmkit.async_executor.engine import InterpreterExecutor
from vmkit.async_executor.engine.native import NativeExecutor
from vmkit.async_executor.engine.native._ir import NATIVE_OPS
from vmkit.async_executor.isa import TABLE

ATOMIC_SPECS = [s for s in TABLE if s.kind in ("lr", "sc", "amo")]

_settings = settings(
    max_examples=int(os.environ.get("NATIVE_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)


@st.composite
def atomic_instruction(draw: st.DrawFn) -> bytes:
    """One LR, SC or AMO on the address in BASE."""
    spec = draw(st.sampled_from(ATOMIC_SPECS))
    rs2 = 0 if spec.kind == "lr" else draw(source_register)
    return words(enc(spec.name, draw(dest_register), BASE, rs2))


def _loop(body: list[bytes], count: int) -> bytes:
    code = b"".join(body)
    back = len(code) + 4
    tail = words(enc("addi", COUNTER, COUNTER, imm=-1), enc("bne", 0, COUNTER, 0, -back))
    return code + tail + words(*EXIT)


def _run(
    code: bytes, x: dict[int, int], data: bytes = b""
) -> tuple[Outcome, Outcome, NativeExecutor]:
    m = _prepare(code, x, data, False)
    ref = _outcome(m, InterpreterExecutor(m).run(m))
    m = _prepare(code, x, data, False)
    native = NativeExecutor(m, threshold=1, cache=False)
    return ref, _outcome(m, native.run(m)), native


def test_every_atomic_compiles_natively() -> None:
    assert ATOMIC_SPECS
    assert all(s.name in NATIVE_OPS for s in ATOMIC_SPECS)


@_settings
@given(
    st.lists(
        st.one_of(atomic_instruction(), atomic_instruction(), alu_instruction(), mem_instruction()),
        min_size=1,
        max_size=12,
    ),
    st.integers(1, 6),
    st.sampled_from([0, 0, 0, 0, 1, 2, 4]),
    st.data(),
)
def test_random_loops_with_atomics(
    body: list[bytes], count: int, misalign: int, data: st.DataObject
) -> None:
    x = {r: data.draw(register_value) for r in range(1, 16)}
    x[BASE] = DATA_BASE + 0x2000 + 8 * data.draw(st.integers(-64, 63)) + misalign
    x[COUNTER] = count
    ref, native, ex = _run(_loop(body, count), x, bytes(range(256)) * 64)
    assert native == ref
    if not misalign:
        assert ex.native_stats.instructions > 0


def _counter_loop(extra: list[int]) -> bytes:
    """``count`` times: an atomic increment of the word at BASE with an LR/SC retry loop, the
    ``extra`` instructions between the LR and the SC; a1 counts the SC failures."""
    retry = [
        enc("lr.d", 5, BASE),
        enc("addi", 5, 5, imm=1),
        *extra,
        enc("sc.d", 6, BASE, 5),
    ]
    back = 4 * (len(retry) + 1)
    code = words(
        *retry,
        enc("add", 11, 11, 6),  # a1 += the SC's result (1 on failure)
        enc("bne", 0, 6, 0, -(back)),  # failed: retry from the LR
        enc("addi", COUNTER, COUNTER, imm=-1),
        enc("bne", 0, COUNTER, 0, -(back + 8)),
    )
    return code + words(*EXIT)


def test_lr_sc_counter_runs_natively() -> None:
    x = {BASE: DATA_BASE + 0x100, COUNTER: 50, 11: 0}
    ref, native, ex = _run(_counter_loop([]), x)
    assert native == ref
    assert int.from_bytes(ref.data[0x100:0x108], "little") == 50
    assert ref.x[11] == 0  # nothing broke the reservations
    assert ex.native_stats.exits["unsupported"] == 1  # the final ecall only
    assert ex.native_stats.instructions >= 50 * 6


def test_a_store_to_the_reserved_page_breaks_the_reservation() -> None:
    """A store between LR and SC to the same page makes every SC fail; one to the next page
    does not."""
    for offset, fails in ((0x400, True), (0x1000, False)):
        store = enc("sd", 0, 9, 0, 0)  # to s1 = BASE + offset
        code = words(
            enc("lr.d", 5, BASE),
            store,
            enc("sc.d", 6, BASE, 5),
            enc("add", 11, 11, 6),
            enc("addi", COUNTER, COUNTER, imm=-1),
            enc("bne", 0, COUNTER, 0, -20),
        ) + words(*EXIT)
        x = {BASE: DATA_BASE + 0x100, 9: DATA_BASE + 0x100 + offset, COUNTER: 20, 11: 0}
        ref, native, ex = _run(code, x)
        assert native == ref
        assert ref.x[11] == (20 if fails else 0)
        assert ex.native_stats.exits["unsupported"] == 1  # the final ecall only


def test_sc_without_a_reservation_fails_and_writes_nothing() -> None:
    """An SC to an unmapped address without a reservation fails without faulting, as in the
    interpreter; an SC to another address than the reserved one fails and drops it."""
    unmapped = 0x7000_0000
    code = words(
        enc("lui", 9, imm=unmapped),
        enc("sc.d", 6, 9, 5),  # no reservation: fails, no fault
        enc("lr.d", 5, BASE),
        enc("sc.w", 7, 9, 5),  # reserved BASE, not s1: fails, drops the reservation
        enc("sc.d", 12, BASE, 5),  # the reservation is gone: fails
        enc("addi", COUNTER, COUNTER, imm=-1),
        enc("bne", 0, COUNTER, 0, -20),
    ) + words(*EXIT)
    x = {BASE: DATA_BASE + 0x100, COUNTER: 10}
    ref, native, ex = _run(code, x)
    assert native == ref
    assert (ref.x[6], ref.x[7], ref.x[12]) == (1, 1, 1)
    assert ref.status == 0
    assert ex.native_stats.exits["unsupported"] == 1  # the final ecall only


def test_a_reservation_taken_natively_is_broken_by_the_interpreter() -> None:
    """LR in native code; the interpreter then runs an instruction native code does not compile
    (a CSR read) and a store to the reserved page; the SC, native again, must fail: the page was
    watched when native code returned with the reservation."""
    code = words(
        enc("lr.d", 5, BASE),
        enc("csrrs", 7, 0, imm=0xC02),  # rdinstret: not compiled, the interpreter runs it ...
        enc("sd", 0, BASE, 0, 0x80),  # ... and this store to the reserved page
        enc("beq", 0, 0, 0, 4),  # ends the interpreter's block
        enc("sc.d", 6, BASE, 5),
        enc("add", 11, 11, 6),
        enc("addi", COUNTER, COUNTER, imm=-1),
        enc("bne", 0, COUNTER, 0, -28),
    ) + words(*EXIT)
    x = {BASE: DATA_BASE + 0x100, COUNTER: 8, 11: 0}
    ref, native, ex = _run(code, x)
    assert native == ref
    assert ref.x[11] == 8  # every SC failed
    assert ex.native_stats.exits["unsupported"] > 0  # the CSR read left native code


def test_amo_on_a_reserved_page_leaves_native_code_and_breaks_the_reservation() -> None:
    """A reservation taken by the interpreter watches its page: an AMO there cannot be done in
    native code (no write entry), so the interpreter does it, and the reservation is broken."""
    code = words(
        enc("csrrs", 7, 0, imm=0xC02),  # keeps the LR in the interpreter's block
        enc("lr.d", 5, BASE),
        enc("beq", 0, 0, 0, 4),
        enc("amoadd.d", 12, BASE, 13),
        enc("sc.d", 6, BASE, 5),
        enc("add", 11, 11, 6),
        enc("addi", COUNTER, COUNTER, imm=-1),
        enc("bne", 0, COUNTER, 0, -28),
    ) + words(*EXIT)
    x = {BASE: DATA_BASE + 0x100, COUNTER: 6, 11: 0, 13: 5}
    ref, native, _ex = _run(code, x)
    assert native == ref
    assert ref.x[11] == 6
    assert int.from_bytes(ref.data[0x100:0x108], "little") == 30


@pytest.mark.parametrize("spec", ATOMIC_SPECS, ids=lambda s: s.name)
def test_each_atomic_on_edge_values(spec: object) -> None:
    """Each AMO (and LR, SC) on memory and register values at the edges of its width."""
    from jit_support import EDGES

    name = spec.name  # type: ignore[attr-defined]
    width = spec.width  # type: ignore[attr-defined]
    pairs = [(a, b) for a in EDGES[::2] for b in EDGES[1::2]]
    words_at = b"".join(a.to_bytes(8, "little") for a, _ in pairs)
    lr = [enc(f"lr.{name[-1]}", 0, BASE)] if spec.kind == "sc" else []  # type: ignore[attr-defined]
    body = words(
        enc("ld", 13, 9, 0, 0),  # the register operand
        *lr,
        enc(name, 7, BASE, 13),
        enc("sd", 0, 10, 7, 0),  # the result register
        enc("addi", BASE, BASE, imm=8),
        enc("addi", 9, 9, imm=8),
        enc("addi", 10, 10, imm=8),
    )
    regs = b"".join(b.to_bytes(8, "little") for _, b in pairs)
    x = {
        BASE: DATA_BASE,
        9: DATA_BASE + len(words_at),
        10: DATA_BASE + 2 * len(words_at),
        COUNTER: len(pairs),
    }
    assert width in (4, 8)
    ref, native, ex = _run(_loop([body], len(pairs)), x, words_at + regs)
    assert native == ref
    assert ref.status == 0
    assert ex.native_stats.exits["unsupported"] == 1  # the final ecall only
