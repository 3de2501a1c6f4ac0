"""The native tier's floating point against the interpreter (itself checked against Unicorn and
qemu): every compiled F and D instruction on edge values and random values, compared on
registers, memory and the flags each operation raised; rounding modes native code does not
compile; and whole C programs with floating point against qemu-riscv64.

Each table test runs one operation per loop turn between FP loads and stores, then reads and
clears fflags with a CSR instruction (which ends native code, so the next turn enters native code
afresh) and stores the flags: memory then holds every result and every turn's flags.
"""

from __future__ import annotations

import math
import os
import struct
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
    EDGES,
    EXIT,
    M64,
    Outcome,
    _outcome,
    _prepare,
    enc,
    words,
)

from vmkit.async_executor.engine import InterpreterExecutor
from vmkit.async_executor.engine.native import NativeExecutor
from vmkit.async_executor.engine.native._ir import NATIVE_OPS
from vmkit.async_executor.isa import TABLE, InstrSpec
from vmkit.async_executor.isa._table import CSR_FFLAGS

_settings = settings(
    max_examples=int(os.environ.get("NATIVE_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)

S64 = 1 << 63
BOX = 0xFFFFFFFF00000000


def d(value: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", value))[0]  # type: ignore[no-any-return]


def s(value: float) -> int:
    return struct.unpack("<I", struct.pack("<f", value))[0]  # type: ignore[no-any-return]


_D_EDGES_POS = [
    0,
    1,  # smallest subnormal
    0x000FFFFFFFFFFFFF,  # largest subnormal
    0x0010000000000000,  # smallest normal
    0x0010000000000001,
    0x7FEFFFFFFFFFFFFF,  # largest finite
    0x7FEFFFFFFFFFFFFE,
    0x7FF0000000000000,  # infinity
    0x7FF8000000000000,  # canonical quiet NaN
    0x7FF8000000000123,  # quiet NaN with a payload
    0x7FF0000000000001,  # signalling NaNs
    0x7FF4000000000000,
    d(1.0),
    d(1.5),
    d(2.0),
    d(3.0),
    d(0.1),
    d(math.pi),
    d(1.0) + 1,  # 1 + ulp
    d(1.0) - 1,  # 1 - ulp/2
    d(2.0**-960),  # at the bounds of the ranges native code accepts
    d(2.0**-960) - 1,
    d(1.5 * 2.0**-961),
    d(2.0**-537),
    d(2.0**-511),
    d(2.0**511),
    d(2.0**512),
    d(2.0**1000),
    d(2.0**1023),
    d(1.5 * 2.0**1023),
    d(2.0**-1022 * 3),
    d(2.0**53),
]
D_EDGES = _D_EDGES_POS + [v | S64 for v in _D_EDGES_POS if v not in (0x7FF0000000000001,)]

_S_EDGES_POS = [
    0,
    1,
    0x007FFFFF,
    0x00800000,
    0x00800001,
    0x7F7FFFFF,
    0x7F7FFFFE,
    0x7F800000,
    0x7FC00000,
    0x7FC00123,
    0x7F800001,
    0x7FA00000,
    s(1.0),
    s(1.5),
    s(2.0),
    s(3.0),
    s(0.1),
    s(math.pi),
    s(1.0) + 1,
    s(1.0) - 1,
    s(2.0**-125),
    s(2.0**-125) - 1,
    s(2.0**-63),
    s(2.0**63),
    s(2.0**64),
    s(2.0**127),
    s(1.5 * 2.0**127),
    s(2.0**24),
]
#: Singles as held in f registers: NaN-boxed, plus a few patterns that are not boxed (read as
#: the canonical NaN) to check the unboxing.
S_EDGES = [BOX | v for v in _S_EDGES_POS + [v | 0x80000000 for v in _S_EDGES_POS]] + [
    0x3F800000,
    0x7FFFFFFF3F800000,
    0xFFFFFFFE00000000,
]

#: Around the integer conversions' rounding and saturation boundaries.
_CONVERT_VALUES = [
    0.5,
    1.5,
    2.5,
    -0.5,
    -1.5,
    -2.5,
    0.49999999999999994,
    2147483647.4,
    2147483647.5,
    -2147483648.5,
    -2147483649.0,
    4294967295.5,
    4294967296.0,
    -1.0,
    2.0**63,
    -(2.0**63),
    2.0**63 - 1024,
    2.0**64,
    2.0**64 - 2048,
    16777217.0,
    2.0**53 + 2,
]
D_CONVERT = [d(v) for v in _CONVERT_VALUES]
S_CONVERT = [BOX | s(v) for v in _CONVERT_VALUES if v != 0.49999999999999994]
INT_EDGES = sorted(
    {
        v & M64
        for v in [
            *EDGES,
            2**53,
            2**53 + 1,
            -(2**53) - 1,
            2**24 + 1,
            -(2**24) - 1,
            2**63 - 1,
            2**64 - 1,
            2**31 + 1,
            3 << 60,
            (2**53 - 1) << 11,
            2**63 + 1,
        ]
    }
)
_ints = st.one_of(
    st.sampled_from(INT_EDGES),
    st.integers(0, M64),
    st.builds(lambda m, e: (m << e) & M64, st.integers(-(2**25), 2**55), st.integers(0, 40)),
)

FP_SPECS = [
    spec
    for spec in TABLE
    if spec.ext in ("F", "D") and spec.name in NATIVE_OPS and spec.kind == "fp"
]
# Registers of the table loop: operands f5..f7 (and x5 for the moves from x), results f11/x11
# (a0 holds the exit status).
_CASE = 48  # bytes per case: three operand words, the FP result, the integer result, the flags
_CHUNK = 0x4000 // _CASE


def _operands(spec: InstrSpec) -> int:
    return sum(1 for a in spec.args if a in ("fs1", "fs2", "fs3", "xs1"))


def _table_code(op: int, count: int) -> bytes:
    """A loop over ``count`` cases at s0: load the operands, run ``op``, store its results and
    the flags it raised (read and cleared through fflags)."""
    body = [
        enc("fld", 5, BASE, 0, 0),
        enc("fld", 6, BASE, 0, 8),
        enc("fld", 7, BASE, 0, 16),
        enc("ld", 5, BASE, 0, 0),
        op,
        enc("fsd", 0, BASE, 11, 24),
        enc("sd", 0, BASE, 11, 32),
        enc("csrrw", 6, 0, 0, CSR_FFLAGS),
        enc("sd", 0, BASE, 6, 40),
        enc("addi", BASE, BASE, imm=_CASE),
        enc("addi", COUNTER, COUNTER, imm=-1),
    ]
    code = words(*body)
    back = len(code)
    return code + words(enc("bne", 0, COUNTER, 0, -back), *EXIT)


def _run_cases(
    op: int, cases: list[tuple[int, int, int]], *, frm: int = 0
) -> tuple[Outcome, Outcome, NativeExecutor]:
    data = b"".join(
        a.to_bytes(8, "little") + b.to_bytes(8, "little") + c.to_bytes(8, "little") + bytes(24)
        for a, b, c in cases
    )
    code = _table_code(op, len(cases))
    x = {BASE: DATA_BASE, COUNTER: len(cases)}
    m = _prepare(code, x, data, False)
    m.hart.frm = frm
    ref = _outcome(m, InterpreterExecutor(m).run(m))
    m = _prepare(code, x, data, False)
    m.hart.frm = frm
    native = NativeExecutor(m, threshold=1)
    return ref, _outcome(m, native.run(m)), native


def _encode(spec: InstrSpec, rm: int | None = None) -> int:
    return enc(spec.name, 11, 5, 6, rs3=7, rm=rm)


def _edges(spec: InstrSpec) -> list[int]:
    return S_EDGES if spec.name.endswith(".s") and "x" not in spec.name.split(".")[1:] else D_EDGES


def _source(spec: InstrSpec) -> str:
    """What the instruction reads: "x" (an integer register), "s" or "d"."""
    if "xs1" in spec.args:
        return "x"
    parts = spec.name.split(".")
    if parts[0] == "fcvt":
        return parts[2]
    return "s" if parts[-1] in ("s", "w") else "d"


def _edge_cases(spec: InstrSpec) -> list[tuple[int, int, int]]:
    source = _source(spec)
    edges = {"x": INT_EDGES, "s": S_EDGES, "d": D_EDGES}[source]
    if spec.name.startswith("fcvt") and source != "x":
        edges = edges + (S_CONVERT if source == "s" else D_CONVERT)
    n = _operands(spec)
    if n == 1:
        return [(a, 0, 0) for a in edges]
    if n == 2:
        return [(a, b, 0) for a in edges for b in edges]
    few = edges[:: max(1, len(edges) // 11)]
    return [(a, b, c) for a in few for b in few for c in few]


def _check(op: int, cases: list[tuple[int, int, int]], *, frm: int = 0) -> NativeExecutor:
    for i in range(0, len(cases), _CHUNK):
        ref, native, ex = _run_cases(op, cases[i : i + _CHUNK], frm=frm)
        assert ref.status == 0, ref.message
        assert _first_difference(ref, native) is None
        assert native == ref
    return ex


def _first_difference(ref: Outcome, native: Outcome) -> str | None:
    """The first case whose results or flags differ, readably (for the assertion message)."""
    for k in range(len(ref.data) // _CASE):
        want = ref.data[k * _CASE : (k + 1) * _CASE]
        got = native.data[k * _CASE : (k + 1) * _CASE]
        if want != got:
            a, b, c, *want_out = struct.unpack("<6Q", want)
            got_out = struct.unpack("<6Q", got)[3:]
            return (
                f"case {k}: operands {a:#x} {b:#x} {c:#x}: interpreter (f, x, flags) "
                f"{[hex(v) for v in want_out]}, native {[hex(v) for v in got_out]}"
            )
    return None


@pytest.mark.parametrize("spec", FP_SPECS, ids=lambda s: s.name)
def test_every_fp_operation_on_edge_values(spec: InstrSpec) -> None:
    """Every compiled FP instruction on every pair (for FMA: triples of a subset) of edge
    values, NaN-boxed singles and unboxed patterns included: results and each case's flags."""
    ex = _check(_encode(spec, 0 if spec.has_rm else None), _edge_cases(spec))
    assert ex.native_stats.instructions > 0


_bits64 = st.one_of(st.sampled_from(D_EDGES), st.integers(0, M64), st.floats().map(d))
_bits32 = st.one_of(
    st.sampled_from(S_EDGES),
    st.integers(0, 0xFFFFFFFF).map(lambda v: BOX | v),
    st.floats(width=32).map(lambda v: BOX | s(v)),
)


@_settings
@given(st.sampled_from(FP_SPECS), st.data())
def test_random_operands(spec: InstrSpec, data: st.DataObject) -> None:
    """Random operands (any bit pattern, random floats, edges) for a random FP instruction."""
    values = {"x": _ints, "s": _bits32, "d": _bits64}[_source(spec)]
    cases = data.draw(st.lists(st.tuples(values, values, values), min_size=1, max_size=30))
    _check(_encode(spec, data.draw(st.sampled_from([0, 7])) if spec.has_rm else None), cases)


@_settings
@given(st.lists(st.integers(0, M64), min_size=4, max_size=4), st.integers(-64, 63))
def test_fp_loads_and_stores(values: list[int], offset: int) -> None:
    """flw boxes, fsw stores the low word of any register (boxed or not), fld/fsd move 64 bits,
    also at unaligned addresses and through a page boundary's slow path."""
    body = [
        enc("flw", 1, BASE, 0, 8 * 64 + offset),
        enc("fld", 2, BASE, 0, 8 * 64 + offset + 3),
        enc("fsw", 0, BASE, 1, 8 * 128 + offset),
        enc("fsw", 0, BASE, 2, 8 * 129 + offset),
        enc("fsd", 0, BASE, 1, 8 * 130 + offset),
        enc("fsd", 0, BASE, 2, 8 * 131 - offset),
        enc("fld", 3, BASE, 0, 0x1FFD),  # crosses into the next page: the slow path
        enc("fsd", 0, BASE, 3, 0x2FFE),
        enc("addi", COUNTER, COUNTER, imm=-1),
    ]
    code = words(*body)
    code += words(enc("bne", 0, COUNTER, 0, -len(code)), *EXIT)
    data = b"".join(v.to_bytes(8, "little") for v in values) * 500
    x = {BASE: DATA_BASE, COUNTER: 3}
    m = _prepare(code, x, data, False)
    ref = _outcome(m, InterpreterExecutor(m).run(m))
    m = _prepare(code, x, data, False)
    native = NativeExecutor(m, threshold=1)
    assert _outcome(m, native.run(m)) == ref
    assert native.native_stats.instructions > 0


ARITH_SPECS = [
    spec
    for spec in FP_SPECS
    if spec.name.split(".")[0]
    in ("fadd", "fsub", "fmul", "fdiv", "fsqrt", "fmadd", "fmsub", "fnmsub", "fnmadd")
]


def _scaled64(m: int, e: int) -> int:
    return d(math.ldexp(m, e))


def _scaled32(m: int, e: int) -> int:
    return BOX | s(math.ldexp(m, e))


#: Doubles for arithmetic: wide significands at every scale (the subnormal range, the bounds of
#: what native code accepts, near overflow), short significands whose results are often exact,
#: and edge values.
_arith64 = st.one_of(
    st.sampled_from(D_EDGES),
    st.floats().map(d),
    st.builds(_scaled64, st.integers(-(2**53), 2**53), st.integers(-1130, 970)),
    st.builds(_scaled64, st.integers(-(2**53), 2**53), st.integers(-1030, -900)),
    st.builds(_scaled64, st.integers(-64, 64), st.integers(-40, 40)),
)
_arith32 = st.one_of(
    st.sampled_from(S_EDGES),
    st.floats(width=32).map(lambda v: BOX | s(v)),
    st.builds(_scaled32, st.integers(-(2**24), 2**24), st.integers(-175, 103)),
    st.builds(_scaled32, st.integers(-(2**24), 2**24), st.integers(-160, -120)),
    st.builds(_scaled32, st.integers(-64, 64), st.integers(-20, 20)),
)


def _as_float(bits: int, single: bool) -> float:
    if single:
        return struct.unpack("<f", struct.pack("<I", bits & 0xFFFFFFFF))[0]  # type: ignore[no-any-return]
    return struct.unpack("<d", struct.pack("<Q", bits))[0]  # type: ignore[no-any-return]


@st.composite
def _arith_case(draw: st.DrawFn, single: bool) -> tuple[int, int, int]:
    values = _arith32 if single else _arith64
    a, b, c = draw(values), draw(values), draw(values)
    if draw(st.booleans()):
        # An addend that (nearly) cancels the product: the FMA result is then its rounding
        # error, exact or not, the case the error term has to get right.
        product = _as_float(a, single) * _as_float(b, single)
        if math.isfinite(product) and abs(product) < (2.0**127 if single else 2.0**1023):
            tweak = draw(st.sampled_from([1.0, 1.0 + 2.0**-52, 1.0 - 2.0**-30, 0.5]))
            value = -product * tweak
            c = BOX | s(value) if single else d(value)
    return a, b, c


@pytest.mark.parametrize("spec", ARITH_SPECS, ids=lambda s: s.name)
@settings(
    max_examples=int(os.environ.get("NATIVE_FP_EXAMPLES", "12")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(data=st.data())
def test_arithmetic_on_random_values(spec: InstrSpec, data: st.DataObject) -> None:
    """Arithmetic on random values at every scale and on nearly cancelling FMAs: results and
    flags (NX, UF, OF included) exactly the interpreter's, whether native code computes them or
    leaves the case to the interpreter."""
    single = spec.name.endswith(".s")
    cases = data.draw(st.lists(_arith_case(single), min_size=20, max_size=60))
    _check(_encode(spec, 0), cases)


@pytest.mark.parametrize("name", ["fmul.d", "fdiv.s", "fmadd.d", "fsqrt.d"])
def test_tiny_results_leave_native_code(name: str) -> None:
    """Results near the subnormal range (where tininess needs the exact value) are left to the
    interpreter: an EXIT_FP exit, and still the interpreter's results and flags."""
    tiny = d(2.0**-1000) if name.endswith(".d") else BOX | s(2.0**-70)
    small = d(2.0**-60) if name.endswith(".d") else BOX | s(2.0**-60)
    big = d(2.0**60) if name.endswith(".d") else BOX | s(2.0**60)
    cases = [(tiny, small, 0), (tiny, big, 0), (small, small, 0), (tiny, tiny, tiny)]
    ex = _check(enc(name, 11, 5, 6, rs3=7, rm=0), cases)
    assert ex.native_stats.exits["fp"] >= 1


@pytest.mark.parametrize("name", ["fadd.d", "fmul.s", "fmadd.d", "fsqrt.s", "fdiv.d"])
@pytest.mark.parametrize(("rm", "frm"), [(1, 0), (2, 0), (3, 0), (4, 0), (7, 1), (7, 3), (7, 4)])
def test_other_rounding_modes_leave_native_code(name: str, rm: int, frm: int) -> None:
    """A static rounding mode other than RNE is not compiled, and the dynamic one leaves native
    code when frm is not RNE: each turn exits before the instruction and the interpreter's
    directed rounding gives its results and flags."""
    edges = S_EDGES if name.endswith(".s") else D_EDGES
    values = edges[::3]
    cases = [
        (a, b, values[(i + j) % len(values)])
        for i, a in enumerate(values)
        for j, b in enumerate(values[:8])
    ]
    ex = _check(enc(name, 11, 5, 6, rs3=7, rm=rm), cases, frm=frm)
    assert ex.native_stats.exits["unsupported"] >= len(cases)
    assert ex.native_stats.exits["fp"] == 0


_PROGRAMS = Path(__file__).resolve().parent / "fp_programs"
_GUEST = Path(__file__).resolve().parents[2] / "guest"


#: --engine native, and the hybrid with its native tier compiling at once (its regions are
#: entered from the Python tiers, through NativeExecutor.call_region).
_FP_ENGINES = {
    "native": ["--engine", "native", "--jit-threshold", "2"],
    "hybrid-native": [
        *("--engine", "hybrid", "--jit-threshold", "2", "--native"),
        *("--native-threshold", "1", "--native-warmup", "0"),
    ],
}


@pytest.mark.matrix_once
@pytest.mark.parametrize("engine", _FP_ENGINES)
@pytest.mark.parametrize(
    "source", [_PROGRAMS / "numeric.c", _GUEST / "fpprintf.c"], ids=lambda p: p.stem
)
def test_fp_programs_match_qemu(
    source: Path, engine: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Whole C programs with floating point (hot FMA-contracted loops, flags read through fenv,
    printf of doubles, a non-RNE rounding mode) print what qemu-riscv64 prints, with FP code
    retired natively."""
    import json
    import shutil
    import subprocess

    from vmkit.async_executor.cli import main

    gcc, qemu = shutil.which("riscv64-linux-gnu-gcc"), shutil.which("qemu-riscv64")
    if gcc is None or qemu is None:
        if os.environ.get("REQUIRE_ORACLES") == "1":
            pytest.fail("riscv64-linux-gnu-gcc and qemu-riscv64 are required (REQUIRE_ORACLES=1)")
        pytest.skip("needs riscv64-linux-gnu-gcc and qemu-riscv64")
    program = tmp_path / source.stem
    subprocess.run([gcc, "-O2", "-static", "-o", str(program), str(source), "-lm"], check=True)
    want = subprocess.run(
        [qemu, str(program)], capture_output=True, check=False, timeout=120, env={}
    )
    capfd.readouterr()
    status = main(["run", *_FP_ENGINES[engine], "--stats", "--stats-format", "json", str(program)])
    out, err = capfd.readouterr()
    assert (out.encode(), status) == (want.stdout, want.returncode)
    native = json.loads(err.strip().splitlines()[-1])["native"]
    assert native["regions"] > 0
    assert native["instructions"] > 0


CONVERT_SPECS = [spec for spec in FP_SPECS if spec.name.startswith("fcvt")]


@pytest.mark.parametrize("spec", CONVERT_SPECS, ids=lambda s: s.name)
@settings(
    max_examples=int(os.environ.get("NATIVE_FP_EXAMPLES", "12")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(data=st.data())
def test_conversions_on_random_values(spec: InstrSpec, data: st.DataObject) -> None:
    """Conversions on random values (wide integers, values around every rounding and saturation
    boundary, any bit pattern) with RNE, static or dynamic: results and flags."""
    source = _source(spec)
    if source == "x":
        values = _ints
    elif source == "s":
        values = st.one_of(_arith32, st.sampled_from(S_CONVERT))
    else:
        values = st.one_of(_arith64, st.sampled_from(D_CONVERT))
    cases = data.draw(st.lists(st.tuples(values, st.just(0), st.just(0)), min_size=20, max_size=60))
    _check(_encode(spec, data.draw(st.sampled_from([0, 7])) if spec.has_rm else None), cases)
