"""The facts on the instruction records agree with the records' own semantics templates.

The translator derives its analyses (which results are sign-extended, boolean, bitwise; which
operations copy an operand when the other is zero; the unmasked forms it forwards) from these
facts, so a wrong fact would make the JIT alone compute a wrong value. Each fact is checked here
by evaluating the template it describes on random operands.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmkit.async_executor.isa._table import (
    EXTENSIONS,
    M32,
    M64,
    S32,
    TABLE,
    TEMPLATE_CONSTANTS,
    TEMPLATE_HELPERS,
    InstrSpec,
)

ALU = [s for s in TABLE if s.kind == "alu"]
_WORDS = st.one_of(
    st.integers(0, M64),
    st.integers(0, 40).map(lambda n: (1 << n) - 1),  # small and all-ones values
    st.integers(0, M32).map(lambda v: ((v ^ S32) - S32) & M64),  # sign-extended words
    st.sampled_from([0, 1, S32, S32 - 1, M32, M64, 1 << 63]),
)


def _imm(spec: InstrSpec, draw: st.DrawFn) -> int:
    if spec.fmt == "IS":
        return draw(st.integers(0, 63))
    if spec.fmt == "ISW":
        return draw(st.integers(0, 31))
    if spec.fmt == "U":
        return ((draw(st.integers(0, (1 << 20) - 1)) << 12) ^ S32) - S32
    return draw(st.integers(-2048, 2047))


def _evaluate(expr: str, a: int, b: int, imm: int) -> int:
    x = [0] * 33
    x[1], x[2] = a, b
    names: dict[str, Any] = {**TEMPLATE_HELPERS, **TEMPLATE_CONSTANTS}
    names.update(X=x, rs1=1, rs2=2, rd=3, imm=imm, pc=0x10000)
    value = eval(expr, names)  # the table's own templates
    assert isinstance(value, int)
    return value


def _sext32(value: int) -> int:
    return (((value & M32) ^ S32) - S32) & M64


def _operands(spec: InstrSpec) -> tuple[bool, bool]:
    return "X[rs1]" in spec.tmpl, "X[rs2]" in spec.tmpl


@st.composite
def _cases(draw: st.DrawFn) -> tuple[InstrSpec, int, int, int]:
    spec = draw(st.sampled_from(ALU))
    return spec, draw(_WORDS), draw(_WORDS), _imm(spec, draw)


def test_every_record_names_a_known_extension() -> None:
    assert {s.ext for s in TABLE} <= set(EXTENSIONS) - {"C"}
    assert {s.result for s in ALU} <= {"x64", "sext32", "zext32", "bool"}
    assert all(not s.result for s in TABLE if s.kind != "alu")


def test_extension_of_familiar_instructions() -> None:
    by_name = {s.name: s for s in TABLE}
    assert [by_name[n].ext for n in ("addw", "mulw", "amoadd.d", "flw", "fld", "fcvt.s.d")] == [
        "I",
        "M",
        "A",
        "F",
        "D",
        "D",
    ]
    assert by_name["csrrs"].ext == "Zicsr"
    assert by_name["fence.i"].ext == "Zifencei"
    assert by_name["fmv.x.w"].ext == "F"


@settings(max_examples=1500, deadline=None)
@given(_cases())
def test_facts_hold_for_the_template(case: tuple[InstrSpec, int, int, int]) -> None:
    spec, a, b, imm = case
    value = _evaluate(spec.tmpl, a, b, imm)
    assert 0 <= value <= M64
    if spec.result == "sext32":
        assert value == _sext32(value), spec.name
    elif spec.result == "zext32":
        assert value <= M32, spec.name
    elif spec.result == "bool":
        assert value in (0, 1), spec.name
    if spec.wrap:
        modulus = 1 << spec.wrap_bits
        assert _evaluate(spec.wrap, a, b, imm) % modulus == value % modulus, spec.name
    if spec.bitwise:
        sa, sb = _sext32(a), _sext32(b)
        assert _evaluate(spec.tmpl, sa, sb, imm) == _sext32(_evaluate(spec.tmpl, sa, sb, imm))


@pytest.mark.parametrize("spec", [s for s in ALU if s.zero_identity], ids=lambda s: s.name)
@settings(max_examples=200, deadline=None)
@given(value=_WORDS)
def test_zero_identity(spec: InstrSpec, value: int) -> None:
    uses_a, uses_b = _operands(spec)
    if uses_b:
        assert _evaluate(spec.tmpl, value, 0, 0) == value
        assert _evaluate(spec.tmpl, 0, value, 0) == value
    else:
        assert uses_a
        assert _evaluate(spec.tmpl, value, 0, 0) == value


def test_facts_are_complete_for_the_word_forms() -> None:
    """Every RV64 W operation (opcodes OP-32 and OP-IMM-32) says its result is sign-extended:
    the translator no longer guesses this from a name ending in "w"."""
    word_ops = [s for s in ALU if s.match & 0x7F in (0x1B, 0x3B)]
    assert word_ops
    assert all(s.result == "sext32" for s in word_ops)
    assert next(s for s in ALU if s.name == "auipc").result == "x64"
