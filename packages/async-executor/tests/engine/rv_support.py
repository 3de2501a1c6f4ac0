"""Helpers for the engine tests: a machine with a stand-in Linux layer, an assembler wrapper.

The stand-in Linux knows only exit, exit_group and write (to a buffer): the engine tests exercise
instructions, not the syscall layer, which has its own tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import strategies as st

from vmkit.async_executor.errors import GuestExit
from vmkit.async_executor.isa import InstrSpec
from vmkit.async_executor.linux import Linux
from vmkit.async_executor.machine import PERM_R, PERM_W, PERM_X
from vmkit.async_executor.machine._machine import Machine

__all__ = [
    "CODE_BASE",
    "DATA_BASE",
    "EXIT",
    "STACK_TOP",
    "StubLinux",
    "assemble",
    "enc",
    "li",
    "machine_with_code",
    "need_tool",
    "sigsegv_handler_machine",
    "words",
]

CODE_BASE = 0x10000
DATA_BASE = 0x40000
DATA_SIZE = 0x4000
STACK_TOP = 0x80000
STACK_SIZE = 0x4000

_AS = "riscv64-linux-gnu-as"
_OBJCOPY = "riscv64-linux-gnu-objcopy"


def need_tool(name: str) -> None:
    """Skip the test when ``name`` is missing, unless REQUIRE_ORACLES=1 makes that a failure."""
    if shutil.which(name) is None:
        if os.environ.get("REQUIRE_ORACLES") == "1":
            pytest.fail(f"{name} is required (REQUIRE_ORACLES=1) but not installed")
        pytest.skip(f"{name} not installed")


class StubLinux:
    """exit/exit_group raise GuestExit; write appends to ``out``; anything else is -ENOSYS."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.calls: list[int] = []

    def syscall(self, machine: Machine) -> None:
        x = machine.hart.x
        nr = x[17]
        self.calls.append(nr)
        if nr in (93, 94):
            raise GuestExit(x[10] & 0xFF)
        if nr == 64:
            data = machine.memory.read_bytes(x[11], x[12])
            self.out += data
            x[10] = len(data)
            return
        x[10] = (1 << 64) - 38


def machine_with_code(code: bytes, *, writable_code: bool = False) -> Machine:
    """A machine with ``code`` at CODE_BASE (pc there), a data area and a stack (sp set)."""
    m = Machine(linux=StubLinux())  # type: ignore[arg-type]
    perms = PERM_R | PERM_X | (PERM_W if writable_code else 0)
    m.memory.map(CODE_BASE, max(len(code), 1), perms, code)
    m.memory.map(DATA_BASE, DATA_SIZE, PERM_R | PERM_W)
    m.memory.map(STACK_TOP - STACK_SIZE, STACK_SIZE, PERM_R | PERM_W)
    m.hart.pc = CODE_BASE
    m.hart.x[2] = STACK_TOP - 64
    return m


def sigsegv_handler_machine() -> Machine:
    """A guest (real Linux ABI) that installs a SIGSEGV handler exiting 42, then loads from 0."""
    handler = CODE_BASE + 44
    code = words(
        enc("addi", 10, 0, imm=11),  # 0: a0 = SIGSEGV
        *li(11, DATA_BASE),  # 4: a1 = &act
        enc("addi", 12, 0, imm=0),  # 12: a2 = NULL
        enc("addi", 13, 0, imm=8),  # 16: a3 = sizeof(sigset_t)
        enc("addi", 17, 0, imm=134),  # 20: rt_sigaction
        enc("ecall"),  # 24
        enc("ld", 5, 0, imm=0),  # 28: load from address 0: SIGSEGV
        enc("addi", 10, 0, imm=1),  # 32: not reached
        *EXIT,  # 36
        enc("addi", 10, 0, imm=42),  # 44: the handler exits with 42
        *EXIT,
    )
    m = Machine(None, None, Linux())
    m.memory.map(CODE_BASE, len(code), PERM_R | PERM_X, code)
    m.memory.map(DATA_BASE, 0x1000, PERM_R | PERM_W, handler.to_bytes(8, "little"))
    m.memory.map(STACK_TOP - 0x4000, 0x4000, PERM_R | PERM_W)
    m.hart.pc = CODE_BASE
    m.hart.x[2] = STACK_TOP - 64
    return m


def assemble(source: str, *, march: str = "rv64gc") -> bytes:
    """Assemble RISC-V ``source`` (with the cross assembler) into raw bytes at address 0."""
    need_tool(_AS)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp, "a.s")
        src.write_text(".option norelax\n.text\n" + source + "\n")
        obj = Path(tmp, "a.o")
        subprocess.run(
            [_AS, f"-march={march}", "-mabi=lp64d", "-o", str(obj), str(src)],
            check=True,
            capture_output=True,
        )
        out = Path(tmp, "a.bin")
        subprocess.run(
            [_OBJCOPY, "-O", "binary", "-j", ".text", str(obj), str(out)],
            check=True,
            capture_output=True,
        )
        return out.read_bytes()


def enc(
    name: str,
    rd: int = 0,
    rs1: int = 0,
    rs2: int = 0,
    imm: int = 0,
    *,
    rs3: int = 0,
    rm: int | None = None,
    aq: int = 0,
    rl: int = 0,
) -> int:
    """Encode one 32-bit instruction from its table record (a test-only mini assembler).

    For CSR instructions ``imm`` is the CSR number; for the immediate CSR forms ``rs1`` is the
    5-bit immediate. ``rm`` defaults to 7 (dynamic) for instructions that have one.
    """
    from vmkit.async_executor.isa import spec_by_name

    spec = spec_by_name(name)
    w = spec.match
    fmt = spec.fmt
    if fmt not in ("S", "B"):
        w |= (rd & 31) << 7
    w |= (rs1 & 31) << 15
    if fmt in ("R", "R4", "S", "B", "A") and not spec.mask & (0x1F << 20):
        w |= (rs2 & 31) << 20
    if fmt == "R4":
        w |= (rs3 & 31) << 27
    if spec.has_rm:
        w |= (7 if rm is None else rm) << 12
    if fmt == "A":
        w |= (aq & 1) << 26 | (rl & 1) << 25
    if fmt in ("I", "CSR", "CSRI"):
        w |= (imm & 0xFFF) << 20
    elif fmt in ("IS", "ISW"):
        w |= (imm & 0x3F) << 20
    elif fmt == "S":
        w |= ((imm >> 5) & 0x7F) << 25 | (imm & 0x1F) << 7
    elif fmt == "B":
        w |= ((imm >> 12) & 1) << 31 | ((imm >> 5) & 0x3F) << 25
        w |= ((imm >> 1) & 0xF) << 8 | ((imm >> 11) & 1) << 7
    elif fmt == "U":
        w |= imm & 0xFFFFF000
    elif fmt == "J":
        w |= ((imm >> 20) & 1) << 31 | ((imm >> 1) & 0x3FF) << 21
        w |= ((imm >> 11) & 1) << 20 | ((imm >> 12) & 0xFF) << 12
    return w


def words(*instructions: int) -> bytes:
    """Little-endian bytes of 32-bit instruction words."""
    return b"".join(i.to_bytes(4, "little") for i in instructions)


def li(rd: int, value: int) -> list[int]:
    """Instructions loading a 32-bit signed ``value`` into ``rd`` (lui + addiw)."""
    value &= 0xFFFFFFFF
    if value & 0x80000000:
        value -= 1 << 32
    lo = ((value & 0xFFF) ^ 0x800) - 0x800
    hi = (value - lo) & 0xFFFFF000
    return [enc("lui", rd, imm=hi), enc("addiw", rd, rd, imm=lo)]


EXIT = [enc("addi", 17, 0, imm=93), enc("ecall")]


def alu_immediate(spec: InstrSpec) -> st.SearchStrategy[int]:
    """Immediates for an ALU instruction of ``spec``'s format, at and inside their edges (the
    differential tests' generators draw from it)."""
    if spec.fmt == "U":
        return st.integers(0, 0xFFFFF).map(lambda hi: hi << 12)
    if spec.fmt == "IS":
        return st.integers(0, 63)
    if spec.fmt == "ISW":
        return st.integers(0, 31)
    return st.one_of(st.sampled_from([0, 1, -1, 2047, -2048]), st.integers(-2048, 2047))
