"""Helpers shared by the JIT tests: the engine tests' machine builder and mini assembler, and a
runner that executes the same code under the interpreter and the JIT from identical state."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from hypothesis import strategies as st

_ENGINE_TESTS = str(Path(__file__).resolve().parent.parent / "engine")
if _ENGINE_TESTS not in sys.path:
    sys.path.insert(0, _ENGINE_TESTS)

from rv_support import (  # noqa: E402 - needs the path above
    CODE_BASE,
    DATA_BASE,
    EXIT,
    STACK_TOP,
    StubLinux,
    alu_immediate,
    assemble,
    enc,
    li,
    machine_with_code,
    need_tool,
    sigsegv_handler_machine,
    words,
)

from vmkit.async_executor.engine import InterpreterExecutor  # noqa: E402
from vmkit.async_executor.engine._context import AsyncExecutionContext  # noqa: E402
from vmkit.async_executor.engine._jit import JitExecutor  # noqa: E402
from vmkit.async_executor.isa import TABLE  # noqa: E402
from vmkit.async_executor.machine._machine import Machine  # noqa: E402

__all__ = [
    "CODE_BASE",
    "DATA_BASE",
    "EXIT",
    "STACK_TOP",
    "Outcome",
    "StubLinux",
    "assemble",
    "enc",
    "li",
    "machine_with_code",
    "need_tool",
    "run_both",
    "run_jit",
    "sigsegv_handler_machine",
    "words",
]


@dataclass(frozen=True)
class Outcome:
    """Everything an executor leaves behind that the two executors must agree on."""

    status: int
    message: str
    x: tuple[int, ...]
    f: tuple[int, ...]
    pc: int
    instret: int
    fflags: int
    data: bytes
    out: bytes


def _outcome(m: Machine, status: int) -> Outcome:
    assert m.termination is not None
    linux = m.linux
    out = bytes(linux.out) if isinstance(linux, StubLinux) else b""
    return Outcome(
        status,
        m.termination.message,
        tuple(m.hart.x[:32]),
        tuple(m.hart.f),
        m.hart.pc,
        m.hart.instret,
        m.hart.fflags,
        m.memory.peek(DATA_BASE, 0x4000),
        out,
    )


def _prepare(code: bytes, x: dict[int, int] | None, data: bytes, writable: bool) -> Machine:
    m = machine_with_code(code, writable_code=writable)
    for r, v in (x or {}).items():
        m.hart.x[r] = v
    if data:
        m.memory.write_bytes(DATA_BASE, data)
    return m


def run_jit(
    code: bytes,
    *,
    x: dict[int, int] | None = None,
    data: bytes = b"",
    budget: int | None = None,
    writable: bool = False,
    context: AsyncExecutionContext | None = None,
) -> tuple[Outcome, Machine, JitExecutor]:
    """Run ``code`` from CODE_BASE under a JitExecutor."""
    m = _prepare(code, x, data, writable)
    ex = JitExecutor(m, context)
    status = ex.run(m, max_instructions=budget)
    return _outcome(m, status), m, ex


def run_both(
    code: bytes,
    *,
    x: dict[int, int] | None = None,
    data: bytes = b"",
    budget: int | None = None,
    writable: bool = False,
) -> tuple[Outcome, Outcome]:
    """Run ``code`` under the interpreter and the JIT from the same state: (interp, jit)."""
    m = _prepare(code, x, data, writable)
    status = InterpreterExecutor(m).run(m, max_instructions=budget)
    ref = _outcome(m, status)
    jit, _m, _ex = run_jit(code, x=x, data=data, budget=budget, writable=writable)
    return ref, jit


# --- instruction generators shared by the differential tests (JIT and native tiers) ---

M64 = (1 << 64) - 1
#: s0: the data pointer no generated instruction writes.
BASE = 8
#: t6: the loop counter no generated instruction writes.
COUNTER = 31
#: Register values at the edges of the integer operations: signs, widths, shift amounts.
EDGES = [
    0,
    1,
    2,
    M64,
    M64 - 1,
    1 << 63,
    (1 << 63) - 1,
    1 << 31,
    (1 << 31) - 1,
    M64 - (1 << 31) + 1,
    (1 << 32) - 1,
    1 << 32,
    0xFF,
    0x8000,
    63,
    64,
]
ALU_SPECS = [s for s in TABLE if s.kind == "alu"]
MEM_SPECS = [s for s in TABLE if s.kind in ("load", "store") and s.dest == "x" and s.src == "x"]
dest_register = st.sampled_from([r for r in range(16) if r != BASE])
source_register = st.integers(0, 15)
register_value = st.one_of(st.sampled_from(EDGES), st.integers(0, M64))


@st.composite
def alu_instruction(draw: st.DrawFn) -> bytes:
    """One ALU instruction of any form, with immediates at and inside their edges."""
    spec = draw(st.sampled_from(ALU_SPECS))
    imm = draw(alu_immediate(spec))
    return words(
        enc(spec.name, draw(dest_register), draw(source_register), draw(source_register), imm)
    )


@st.composite
def mem_instruction(draw: st.DrawFn) -> bytes:
    """One integer load or store off BASE: half naturally aligned (the typed-view fast path),
    half anywhere."""
    spec = draw(st.sampled_from(MEM_SPECS))
    imm = draw(
        st.one_of(st.integers(-64, 63).map(lambda i: i * spec.width), st.integers(-512, 511))
    )
    return words(enc(spec.name, draw(dest_register), BASE, draw(source_register), imm))
