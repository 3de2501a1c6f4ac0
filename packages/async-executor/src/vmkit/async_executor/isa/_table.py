"""The one RV64GC instruction table: encodings, operands and semantics templates.

Design note
-----------
Every executor takes its knowledge of an instruction from this table: the decoder matches
``mask``/``match``, the disassembler prints ``args``, the interpreter turns ``tmpl`` into a
specialised closure and the translator (JIT) pastes the same ``tmpl`` into generated block source.
So the interpreter and the JIT cannot disagree about what an instruction does.

A record (:class:`InstrSpec`) has a ``kind`` that says how executors handle it:

``alu``      ``tmpl`` is a Python expression whose value (already masked to 64 bits) goes to X[rd].
``fp``       ``tmpl`` is one Python statement assigning ``F[rd]`` or ``X[rd]``; it may use ``rm``.
``branch``   ``tmpl`` is the taken condition; the target is ``pc + imm``.
``jal``      link ``pc + length`` into X[rd], jump to ``pc + imm``.
``jalr``     link, jump to ``(X[rs1] + imm) & ~1`` (masked to 64 bits).
``load``     ``width`` bytes from ``X[rs1] + imm``; ``signed``; ``dest`` "x" or "f" (f: NaN-box
             32-bit values).
``store``    ``width`` bytes of X[rs2] (or F[rs2] when ``src`` is "f") to ``X[rs1] + imm``.
``lr`` / ``sc`` / ``amo``  ``width`` 4 or 8, naturally aligned or SIGSEGV; for ``amo``, ``tmpl``
             is the new memory value as an expression over ``old`` and ``src`` (both unsigned
             ``width``-byte values); X[rd] gets ``old`` sign-extended.
``csr``      ``csr_op`` is "w", "s" or "c"; ``csr_imm`` says rs1 holds a 5-bit immediate.
``ecall``, ``ebreak``, ``fence``, ``fence_i``: structural, no template.

Names a template may use (the translator binds the same names): ``X`` (integer registers, 33
unsigned 64-bit ints; X[32] is the x0 write sink), ``F`` (raw 64-bit FP patterns), ``H`` (the hart,
passed as the ``st`` flag accumulator to FP functions), the operand names ``rd rs1 rs2 rs3 imm``,
``pc`` (this instruction's address), ``rm`` (a resolved rounding mode 0..4), the constants ``M64``,
``S64`` (the sign bit), ``M32``, ``S32``, and the helper functions in :data:`TEMPLATE_HELPERS` plus
every public function of :mod:`vmkit.async_executor.isa._fp`. Registers are indexed by the operand
*names*, e.g. ``X[rs1]``: a translator replaces ``X[rs1]`` textually with a local variable.

Signed views are computed with the flip trick: for unsigned ``a``, ``(a ^ S64) - S64`` is the
signed value, and ``(a ^ S64) < (b ^ S64)`` compares signed. No template calls a helper on the
hot integer path; division (rare, with RISC-V's no-trap rules) goes through helpers.
"""

from __future__ import annotations

import time
from typing import Final, Protocol

from vmkit.async_executor._record import FrozenRecord, init_field


class CsrState(Protocol):
    """The hart state the user CSRs read and write (``machine.Hart`` has it); a protocol so that
    the instruction set stays below the machine in the layers."""

    fflags: int
    frm: int
    fcsr: int
    instret: int


__all__ = [
    "CSR_CYCLE",
    "CSR_FCSR",
    "CSR_FFLAGS",
    "CSR_FRM",
    "CSR_INSTRET",
    "CSR_NAMES",
    "CSR_TIME",
    "EXTENSIONS",
    "M32",
    "M64",
    "S32",
    "S64",
    "TABLE",
    "TEMPLATE_CONSTANTS",
    "TEMPLATE_HELPERS",
    "TIME_HZ",
    "InstrSpec",
    "csr_read",
    "csr_write",
    "spec_by_name",
]

M64: Final = 0xFFFF_FFFF_FFFF_FFFF
S64: Final = 1 << 63
M32: Final = 0xFFFF_FFFF
S32: Final = 1 << 31

#: The extensions of RV64GC this table covers, in ISA-string order. "C" has no records of its
#: own: compressed forms decode to the records of their 32-bit equivalents.
EXTENSIONS: Final = ("I", "M", "A", "F", "D", "C", "Zicsr", "Zifencei")

CSR_FFLAGS: Final = 0x001
CSR_FRM: Final = 0x002
CSR_FCSR: Final = 0x003
CSR_CYCLE: Final = 0xC00
CSR_TIME: Final = 0xC01
CSR_INSTRET: Final = 0xC02

#: The CSRs a user-mode RV64GC hart has here, by number, with their assembler names.
CSR_NAMES: Final = {
    CSR_FFLAGS: "fflags",
    CSR_FRM: "frm",
    CSR_FCSR: "fcsr",
    CSR_CYCLE: "cycle",
    CSR_TIME: "time",
    CSR_INSTRET: "instret",
}


class InstrSpec(FrozenRecord):
    """One instruction of the table (see the module notes for ``kind`` and ``tmpl``).

    ``fmt`` names the encoding format the decoder extracts fields with: R, R4, I, IS (shift by a
    6-bit shamt), ISW (5-bit shamt), S, B, U, J, A (atomics), CSR, CSRI, FENCE, NONE.
    ``args`` lists the operands as the disassembler prints them: ``xd xs1 xs2 fd fs1 fs2 fs3 imm
    uimm mem target csr rm pred``.
    """

    __slots__ = (
        "name",
        "mask",
        "match",
        "fmt",
        "kind",
        "args",
        "tmpl",
        "width",
        "signed",
        "dest",
        "src",
        "csr_op",
        "csr_imm",
        "has_rm",
        "ends_block",
        "mem",
        "ext",
        "result",
        "bitwise",
        "zero_identity",
        "wrap",
        "wrap_bits",
    )

    name: str
    mask: int
    match: int
    fmt: str
    kind: str
    args: tuple[str, ...]
    tmpl: str
    width: int
    signed: bool
    dest: str
    src: str
    csr_op: str
    csr_imm: bool
    #: the instruction reads the dynamic rounding mode when its rm field is 7.
    has_rm: bool
    #: the instruction ends a basic block (control transfer, system call, fence.i ...).
    ends_block: bool
    #: the instruction may access memory (counted in TLB statistics).
    mem: bool
    #: the extension the instruction belongs to (see :data:`EXTENSIONS`); a machine configured
    #: without it treats the encoding as illegal.
    ext: str
    #: for ``alu``: how the 64-bit result is extended. ``"x64"`` any 64-bit value; ``"sext32"``
    #: sign-extended from bit 31 (RV64's W forms); ``"zext32"`` zero-extended from bit 31
    #: (``.uw`` forms); ``"bool"`` 0 or 1.
    result: str
    #: for ``alu``: the result's bits 31..63 are a bitwise function of the operands' bits
    #: 31..63, so sign-extended operands give a sign-extended result.
    bitwise: bool
    #: for ``alu``: when one register operand (or the immediate) is zero the result is the
    #: other operand unchanged (``mv`` is ``addi rd, rs, 0``).
    zero_identity: bool
    #: for ``alu``: an expression over the template's names whose value equals the result modulo
    #: ``2**wrap_bits`` without the final mask or extension ("" when there is none).
    wrap: str
    wrap_bits: int

    def __init__(
        self,
        name: str,
        mask: int,
        match: int,
        fmt: str,
        kind: str,
        args: tuple[str, ...],
        tmpl: str = "",
        width: int = 0,
        signed: bool = False,
        dest: str = "x",
        src: str = "x",
        csr_op: str = "",
        csr_imm: bool = False,
        has_rm: bool = False,
        ends_block: bool = False,
        mem: bool = False,
        ext: str = "I",
        result: str = "",
        bitwise: bool = False,
        zero_identity: bool = False,
        wrap: str = "",
        wrap_bits: int = 0,
    ) -> None:
        init_field(self, "name", name)
        init_field(self, "mask", mask)
        init_field(self, "match", match)
        init_field(self, "fmt", fmt)
        init_field(self, "kind", kind)
        init_field(self, "args", args)
        init_field(self, "tmpl", tmpl)
        init_field(self, "width", width)
        init_field(self, "signed", signed)
        init_field(self, "dest", dest)
        init_field(self, "src", src)
        init_field(self, "csr_op", csr_op)
        init_field(self, "csr_imm", csr_imm)
        init_field(self, "has_rm", has_rm)
        init_field(self, "ends_block", ends_block)
        init_field(self, "mem", mem)
        init_field(self, "ext", ext)
        init_field(self, "result", result)
        init_field(self, "bitwise", bitwise)
        init_field(self, "zero_identity", zero_identity)
        init_field(self, "wrap", wrap)
        init_field(self, "wrap_bits", wrap_bits)


def _div(a: int, b: int) -> int:
    """DIV: signed 64-bit division rounding toward zero; /0 gives -1, overflow gives INT64_MIN."""
    if b == 0:
        return M64
    sa = (a ^ S64) - S64
    sb = (b ^ S64) - S64
    q = abs(sa) // abs(sb)
    if (sa < 0) != (sb < 0):
        q = -q
    return q & M64


def _divu(a: int, b: int) -> int:
    """DIVU: unsigned 64-bit division; /0 gives all ones."""
    return a // b if b else M64


def _rem(a: int, b: int) -> int:
    """REM: signed remainder with the dividend's sign; %0 gives the dividend."""
    if b == 0:
        return a
    sa = (a ^ S64) - S64
    sb = (b ^ S64) - S64
    r = abs(sa) % abs(sb)
    if sa < 0:
        r = -r
    return r & M64


def _remu(a: int, b: int) -> int:
    """REMU: unsigned remainder; %0 gives the dividend."""
    return a % b if b else a


def _sx32(v: int) -> int:
    """The low 32 bits of ``v`` sign-extended to an unsigned 64-bit value."""
    return (((v & M32) ^ S32) - S32) & M64


def _divw(a: int, b: int) -> int:
    """DIVW: signed 32-bit division of the low words, result sign-extended."""
    a &= M32
    b &= M32
    if b == 0:
        return M64
    sa = (a ^ S32) - S32
    sb = (b ^ S32) - S32
    q = abs(sa) // abs(sb)
    if (sa < 0) != (sb < 0):
        q = -q
    return _sx32(q)


def _divuw(a: int, b: int) -> int:
    """DIVUW: unsigned 32-bit division, result sign-extended."""
    a &= M32
    b &= M32
    return _sx32(a // b) if b else M64


def _remw(a: int, b: int) -> int:
    """REMW: signed 32-bit remainder, result sign-extended; %0 gives the dividend."""
    a &= M32
    b &= M32
    if b == 0:
        return _sx32(a)
    sa = (a ^ S32) - S32
    sb = (b ^ S32) - S32
    r = abs(sa) % abs(sb)
    if sa < 0:
        r = -r
    return _sx32(r)


def _remuw(a: int, b: int) -> int:
    """REMUW: unsigned 32-bit remainder, result sign-extended; %0 gives the dividend."""
    a &= M32
    b &= M32
    return _sx32(a % b) if b else _sx32(a)


_TIME_NS: Final = time.monotonic_ns
#: Frequency of the ``time`` CSR: 10 MHz, the timebase Linux reports for qemu's virt machine.
TIME_HZ: Final = 10_000_000


def csr_read(hart: CsrState, csr: int, offset: int) -> int:
    """Value of a user CSR; ``offset`` is how many instructions of the current block retired
    before this one (executors keep ``hart.instret`` exact only at block boundaries)."""
    if csr == CSR_FFLAGS:
        return hart.fflags
    if csr == CSR_FRM:
        return hart.frm
    if csr == CSR_FCSR:
        return hart.fcsr
    if csr in (CSR_CYCLE, CSR_INSTRET):
        # One instruction per cycle: cycle counts retired instructions, like qemu-user's icount.
        return (hart.instret + offset) & M64
    if csr == CSR_TIME:
        return _TIME_NS() // (1_000_000_000 // TIME_HZ)
    raise ValueError(f"CSR {csr:#x} is not implemented")  # the decoder rejects these


def csr_write(hart: CsrState, csr: int, value: int) -> None:
    """Write a user CSR (the decoder rejects writes to the read-only counters)."""
    if csr == CSR_FFLAGS:
        hart.fflags = value & 0x1F
    elif csr == CSR_FRM:
        hart.frm = value & 0x7
    elif csr == CSR_FCSR:
        hart.fcsr = value & 0xFF
    else:
        raise ValueError(f"CSR {csr:#x} is read-only or not implemented")


#: Helper functions templates may call, by the name templates use.
TEMPLATE_HELPERS: Final = {
    "div64": _div,
    "divu64": _divu,
    "rem64": _rem,
    "remu64": _remu,
    "divw32": _divw,
    "divuw32": _divuw,
    "remw32": _remw,
    "remuw32": _remuw,
    "sx32": _sx32,
    "csr_read": csr_read,
    "csr_write": csr_write,
}

#: Constants templates use by name (a translator may fold them).
TEMPLATE_CONSTANTS: Final = {"M64": M64, "S64": S64, "M32": M32, "S32": S32}

# ---------------------------------------------------------------------------------------------
# Encoding helpers. Bit positions (RISC-V unprivileged spec, chapter "Base Instruction Formats"):
#   opcode [6:0], rd [11:7], funct3 [14:12], rs1 [19:15], rs2 [24:20], funct7 [31:25],
#   rs3 [31:27] and fmt [26:25] for R4, funct5 [31:27] for atomics (aq [26], rl [25]).
# ---------------------------------------------------------------------------------------------

_OPC = 0x7F
_F3 = 0x7 << 12
_F7 = 0x7F << 25
_RS2 = 0x1F << 20
_RS1 = 0x1F << 15
_RD = 0x1F << 7
_F5 = 0x1F << 27
_FMT = 0x3 << 25


def _enc(
    opcode: int,
    funct3: int | None = None,
    funct7: int | None = None,
    *,
    rs2: int | None = None,
    funct5: int | None = None,
    fmt: int | None = None,
    hi6: int | None = None,
) -> tuple[int, int]:
    """Mask and match for the fixed fields of an encoding."""
    mask, match = _OPC, opcode
    if funct3 is not None:
        mask |= _F3
        match |= funct3 << 12
    if funct7 is not None:
        mask |= _F7
        match |= funct7 << 25
    if rs2 is not None:
        mask |= _RS2
        match |= rs2 << 20
    if funct5 is not None:
        mask |= _F5
        match |= funct5 << 27
    if fmt is not None:
        mask |= _FMT
        match |= fmt << 25
    if hi6 is not None:  # imm[11:6] of RV64 shifts by immediate
        mask |= 0x3F << 26
        match |= hi6 << 26
    return mask, match


_specs: list[InstrSpec] = []


def _add(name: str, enc: tuple[int, int], fmt: str, kind: str, args: str, **kw: object) -> None:
    mask, match = enc
    if kind == "alu":
        kw.setdefault("result", "x64")
    _specs.append(
        InstrSpec(name, mask, match, fmt, kind, tuple(args.split()) if args else (), **kw)  # type: ignore[arg-type]
    )


# --- RV64I ----------------------------------------------------------------------------------
_add("lui", _enc(0x37), "U", "alu", "xd imm", tmpl="imm & M64", result="sext32")
_add("auipc", _enc(0x17), "U", "alu", "xd imm", tmpl="(pc + imm) & M64")
_add("jal", _enc(0x6F), "J", "jal", "xd target", ends_block=True)
_add("jalr", _enc(0x67, 0), "I", "jalr", "xd mem", ends_block=True)

_SIGNED_LT = "(X[rs1] ^ S64) < (X[rs2] ^ S64)"
for _n, _f3, _cond in (
    ("beq", 0, "X[rs1] == X[rs2]"),
    ("bne", 1, "X[rs1] != X[rs2]"),
    ("blt", 4, _SIGNED_LT),
    ("bge", 5, "(X[rs1] ^ S64) >= (X[rs2] ^ S64)"),
    ("bltu", 6, "X[rs1] < X[rs2]"),
    ("bgeu", 7, "X[rs1] >= X[rs2]"),
):
    _add(_n, _enc(0x63, _f3), "B", "branch", "xs1 xs2 target", tmpl=_cond, ends_block=True)

for _n, _f3, _wd, _sg in (
    ("lb", 0, 1, True),
    ("lh", 1, 2, True),
    ("lw", 2, 4, True),
    ("ld", 3, 8, False),  # 64 bits fill the register: signedness is moot
    ("lbu", 4, 1, False),
    ("lhu", 5, 2, False),
    ("lwu", 6, 4, False),
):
    _add(_n, _enc(0x03, _f3), "I", "load", "xd mem", width=_wd, signed=_sg, mem=True)
for _n, _f3, _wd in (("sb", 0, 1), ("sh", 1, 2), ("sw", 2, 4), ("sd", 3, 8)):
    _add(_n, _enc(0x23, _f3), "S", "store", "xs2 mem", width=_wd, mem=True)

# Facts for the translator's analyses (see InstrSpec): zero identities, bitwise operations,
# boolean results and the unmasked ("wrap") forms.
_ZERO_ID: Final = {"zero_identity": True}
_BITWISE_ZERO_ID: Final = {"bitwise": True, "zero_identity": True}
_BOOL: Final = {"result": "bool"}
for _n, _f3, _e, _facts in (
    ("addi", 0, "(X[rs1] + imm) & M64", {**_ZERO_ID, "wrap": "X[rs1] + imm", "wrap_bits": 64}),
    ("slti", 2, "int((X[rs1] ^ S64) < ((imm & M64) ^ S64))", _BOOL),
    ("sltiu", 3, "int(X[rs1] < (imm & M64))", _BOOL),
    ("xori", 4, "X[rs1] ^ (imm & M64)", _BITWISE_ZERO_ID),
    ("ori", 6, "X[rs1] | (imm & M64)", _BITWISE_ZERO_ID),
    ("andi", 7, "X[rs1] & imm", {"bitwise": True}),
):
    _add(_n, _enc(0x13, _f3), "I", "alu", "xd xs1 imm", tmpl=_e, **_facts)
_add(
    "slli",
    _enc(0x13, 1, hi6=0),
    "IS",
    "alu",
    "xd xs1 imm",
    tmpl="(X[rs1] << imm) & M64",
    wrap="X[rs1] << imm",
    wrap_bits=64,
)
_add("srli", _enc(0x13, 5, hi6=0), "IS", "alu", "xd xs1 imm", tmpl="X[rs1] >> imm")
_add(
    "srai",
    _enc(0x13, 5, hi6=0x10),
    "IS",
    "alu",
    "xd xs1 imm",
    tmpl="(((X[rs1] ^ S64) - S64) >> imm) & M64",
)

# W forms compute on the low word and sign-extend: ((v & M32) ^ S32) - S32, then mask to 64 bits.
_add(
    "addiw",
    _enc(0x1B, 0),
    "I",
    "alu",
    "xd xs1 imm",
    tmpl="((((X[rs1] + imm) & M32) ^ S32) - S32) & M64",
    result="sext32",
    wrap="X[rs1] + imm",
    wrap_bits=32,
)
_add(
    "slliw",
    _enc(0x1B, 1, 0),
    "ISW",
    "alu",
    "xd xs1 imm",
    tmpl="((((X[rs1] << imm) & M32) ^ S32) - S32) & M64",
    result="sext32",
    wrap="X[rs1] << imm",
    wrap_bits=32,
)
_add(
    "srliw",
    _enc(0x1B, 5, 0),
    "ISW",
    "alu",
    "xd xs1 imm",
    tmpl="((((X[rs1] & M32) >> imm) ^ S32) - S32) & M64",
    result="sext32",
)
_add(
    "sraiw",
    _enc(0x1B, 5, 0x20),
    "ISW",
    "alu",
    "xd xs1 imm",
    tmpl="(((((X[rs1] & M32) ^ S32) - S32) >> imm) & M64)",
    result="sext32",
)

_M: Final = {"ext": "M"}
_SUM: Final = "X[rs1] + X[rs2]"
_DIFF: Final = "X[rs1] - X[rs2]"
_PRODUCT: Final = "X[rs1] * X[rs2]"
_W: Final = {"result": "sext32"}
for _n, _f3, _f7, _e, _facts in (
    ("add", 0, 0, "(X[rs1] + X[rs2]) & M64", {**_ZERO_ID, "wrap": _SUM}),
    ("sub", 0, 0x20, "(X[rs1] - X[rs2]) & M64", {"wrap": _DIFF}),
    ("sll", 1, 0, "(X[rs1] << (X[rs2] & 63)) & M64", {}),
    ("slt", 2, 0, f"int({_SIGNED_LT})", _BOOL),
    ("sltu", 3, 0, "int(X[rs1] < X[rs2])", _BOOL),
    ("xor", 4, 0, "X[rs1] ^ X[rs2]", _BITWISE_ZERO_ID),
    ("srl", 5, 0, "X[rs1] >> (X[rs2] & 63)", {}),
    ("sra", 5, 0x20, "(((X[rs1] ^ S64) - S64) >> (X[rs2] & 63)) & M64", {}),
    ("or", 6, 0, "X[rs1] | X[rs2]", _BITWISE_ZERO_ID),
    ("and", 7, 0, "X[rs1] & X[rs2]", {"bitwise": True}),
    ("mul", 0, 1, "(X[rs1] * X[rs2]) & M64", {**_M, "wrap": _PRODUCT}),
    ("mulh", 1, 1, "((((X[rs1] ^ S64) - S64) * ((X[rs2] ^ S64) - S64)) >> 64) & M64", _M),
    ("mulhsu", 2, 1, "((((X[rs1] ^ S64) - S64) * X[rs2]) >> 64) & M64", _M),
    ("mulhu", 3, 1, "(X[rs1] * X[rs2]) >> 64", _M),
    ("div", 4, 1, "div64(X[rs1], X[rs2])", _M),
    ("divu", 5, 1, "divu64(X[rs1], X[rs2])", _M),
    ("rem", 6, 1, "rem64(X[rs1], X[rs2])", _M),
    ("remu", 7, 1, "remu64(X[rs1], X[rs2])", _M),
):
    if "wrap" in _facts:
        _facts = {**_facts, "wrap_bits": 64}
    _add(_n, _enc(0x33, _f3, _f7), "R", "alu", "xd xs1 xs2", tmpl=_e, **_facts)

for _n, _f3, _f7, _e, _facts in (
    ("addw", 0, 0, "((((X[rs1] + X[rs2]) & M32) ^ S32) - S32) & M64", {"wrap": _SUM}),
    ("subw", 0, 0x20, "((((X[rs1] - X[rs2]) & M32) ^ S32) - S32) & M64", {"wrap": _DIFF}),
    ("sllw", 1, 0, "((((X[rs1] << (X[rs2] & 31)) & M32) ^ S32) - S32) & M64", {}),
    ("srlw", 5, 0, "((((X[rs1] & M32) >> (X[rs2] & 31)) ^ S32) - S32) & M64", {}),
    ("sraw", 5, 0x20, "((((X[rs1] & M32) ^ S32) - S32) >> (X[rs2] & 31)) & M64", {}),
    ("mulw", 0, 1, "((((X[rs1] * X[rs2]) & M32) ^ S32) - S32) & M64", {**_M, "wrap": _PRODUCT}),
    ("divw", 4, 1, "divw32(X[rs1], X[rs2])", _M),
    ("divuw", 5, 1, "divuw32(X[rs1], X[rs2])", _M),
    ("remw", 6, 1, "remw32(X[rs1], X[rs2])", _M),
    ("remuw", 7, 1, "remuw32(X[rs1], X[rs2])", _M),
):
    if "wrap" in _facts:
        _facts = {**_facts, "wrap_bits": 32}
    _add(_n, _enc(0x3B, _f3, _f7), "R", "alu", "xd xs1 xs2", tmpl=_e, **_W, **_facts)

_add("fence", _enc(0x0F, 0), "FENCE", "fence", "pred")
_add("fence.i", _enc(0x0F, 1), "NONE", "fence_i", "", ends_block=True, ext="Zifencei")
_add("ecall", (0xFFFFFFFF, 0x00000073), "NONE", "ecall", "", ends_block=True)
_add("ebreak", (0xFFFFFFFF, 0x00100073), "NONE", "ebreak", "", ends_block=True)

# --- Zicsr ------------------------------------------------------------------------------------
for _n, _f3, _op, _isimm in (
    ("csrrw", 1, "w", False),
    ("csrrs", 2, "s", False),
    ("csrrc", 3, "c", False),
    ("csrrwi", 5, "w", True),
    ("csrrsi", 6, "s", True),
    ("csrrci", 7, "c", True),
):
    _add(
        _n,
        _enc(0x73, _f3),
        "CSRI" if _isimm else "CSR",
        "csr",
        "xd csr uimm" if _isimm else "xd csr xs1",
        csr_op=_op,
        csr_imm=_isimm,
        ext="Zicsr",
    )

# --- A: LR/SC and AMOs, .w (funct3 2) and .d (funct3 3) ------------------------------------------
_AMO_OPS = (
    ("amoadd", 0b00000, "(old + src) & {M}"),
    ("amoswap", 0b00001, "src"),
    ("amoxor", 0b00100, "old ^ src"),
    ("amoor", 0b01000, "old | src"),
    ("amoand", 0b01100, "old & src"),
    ("amomin", 0b10000, "old if (old ^ {S}) < (src ^ {S}) else src"),
    ("amomax", 0b10100, "old if (old ^ {S}) > (src ^ {S}) else src"),
    ("amominu", 0b11000, "old if old < src else src"),
    ("amomaxu", 0b11100, "old if old > src else src"),
)
for _sfx, _f3, _wd, _m, _sb in (("w", 2, 4, "M32", "S32"), ("d", 3, 8, "M64", "S64")):
    _add(
        f"lr.{_sfx}",
        _enc(0x2F, _f3, rs2=0, funct5=0b00010),
        "A",
        "lr",
        "xd amem",
        width=_wd,
        mem=True,
        ext="A",
    )
    _add(
        f"sc.{_sfx}",
        _enc(0x2F, _f3, funct5=0b00011),
        "A",
        "sc",
        "xd xs2 amem",
        width=_wd,
        mem=True,
        ext="A",
    )
    for _n, _f5, _e in _AMO_OPS:
        _add(
            f"{_n}.{_sfx}",
            _enc(0x2F, _f3, funct5=_f5),
            "A",
            "amo",
            "xd xs2 amem",
            tmpl=_e.format(M=_m, S=_sb),
            width=_wd,
            mem=True,
            ext="A",
        )

# --- F and D ----------------------------------------------------------------------------------
_FP_START: Final = len(_specs)
_add("flw", _enc(0x07, 2), "I", "load", "fd mem", width=4, dest="f", mem=True)
_add("fld", _enc(0x07, 3), "I", "load", "fd mem", width=8, dest="f", mem=True)
_add("fsw", _enc(0x27, 2), "S", "store", "fs2 mem", width=4, src="f", mem=True)
_add("fsd", _enc(0x27, 3), "S", "store", "fs2 mem", width=8, src="f", mem=True)


def _read_s(reg: str) -> str:
    return f"unbox_s(F[{reg}])"


def _write_s(expr: str) -> str:
    return f"F[rd] = box_s({expr})"


def _read_d(reg: str) -> str:
    return f"F[{reg}]"


def _write_d(expr: str) -> str:
    return f"F[rd] = {expr}"


for _p, _fmtbits in (("s", 0), ("d", 1)):
    # Singles live NaN-boxed in F: read with unbox_s, write with box_s.
    _r = _read_s if _p == "s" else _read_d
    _w = _write_s if _p == "s" else _write_d

    for _n, _opc in (("fmadd", 0x43), ("fmsub", 0x47), ("fnmsub", 0x4B), ("fnmadd", 0x4F)):
        _add(
            f"{_n}.{_p}",
            _enc(_opc, fmt=_fmtbits),
            "R4",
            "fp",
            "fd fs1 fs2 fs3 rm",
            tmpl=_w(f"{_n}_{_p}({_r('rs1')}, {_r('rs2')}, {_r('rs3')}, rm, H)"),
            has_rm=True,
        )
    for _n, _f7 in (("fadd", 0x00), ("fsub", 0x04), ("fmul", 0x08), ("fdiv", 0x0C)):
        _add(
            f"{_n}.{_p}",
            _enc(0x53, funct7=_f7 | _fmtbits),
            "R",
            "fp",
            "fd fs1 fs2 rm",
            tmpl=_w(f"{_n}_{_p}({_r('rs1')}, {_r('rs2')}, rm, H)"),
            has_rm=True,
        )
    _add(
        f"fsqrt.{_p}",
        _enc(0x53, funct7=0x2C | _fmtbits, rs2=0),
        "R",
        "fp",
        "fd fs1 rm",
        tmpl=_w(f"fsqrt_{_p}({_r('rs1')}, rm, H)"),
        has_rm=True,
    )
    for _n, _f3 in (("fsgnj", 0), ("fsgnjn", 1), ("fsgnjx", 2)):
        _add(
            f"{_n}.{_p}",
            _enc(0x53, _f3, 0x10 | _fmtbits),
            "R",
            "fp",
            "fd fs1 fs2",
            tmpl=_w(f"{_n}_{_p}({_r('rs1')}, {_r('rs2')})"),
        )
    for _n, _f3 in (("fmin", 0), ("fmax", 1)):
        _add(
            f"{_n}.{_p}",
            _enc(0x53, _f3, 0x14 | _fmtbits),
            "R",
            "fp",
            "fd fs1 fs2",
            tmpl=_w(f"{_n}_{_p}({_r('rs1')}, {_r('rs2')}, H)"),
        )
    for _n, _f3 in (("feq", 2), ("flt", 1), ("fle", 0)):
        _add(
            f"{_n}.{_p}",
            _enc(0x53, _f3, 0x50 | _fmtbits),
            "R",
            "fp",
            "xd fs1 fs2",
            tmpl=f"X[rd] = {_n}_{_p}({_r('rs1')}, {_r('rs2')}, H)",
        )
    _add(
        f"fclass.{_p}",
        _enc(0x53, 1, 0x70 | _fmtbits, rs2=0),
        "R",
        "fp",
        "xd fs1",
        tmpl=f"X[rd] = fclass_{_p}({_r('rs1')})",
    )
    for _k, _it in enumerate(("w", "wu", "l", "lu")):
        _add(
            f"fcvt.{_it}.{_p}",
            _enc(0x53, funct7=0x60 | _fmtbits, rs2=_k),
            "R",
            "fp",
            "xd fs1 rm",
            tmpl=f"X[rd] = fcvt_{_it}_{_p}({_r('rs1')}, rm, H)",
            has_rm=True,
        )
        # int -> double conversions of 32-bit ints are exact: objdump prints no rounding mode.
        _exact = _p == "d" and _it in ("w", "wu")
        _add(
            f"fcvt.{_p}.{_it}",
            _enc(0x53, funct7=0x68 | _fmtbits, rs2=_k),
            "R",
            "fp",
            "fd xs1" if _exact else "fd xs1 rm",
            tmpl=_w(f"fcvt_{_p}_{_it}(X[rs1], rm, H)"),
            has_rm=True,
        )

_add(
    "fcvt.s.d",
    _enc(0x53, funct7=0x20, rs2=1),
    "R",
    "fp",
    "fd fs1 rm",
    tmpl="F[rd] = box_s(fcvt_s_d(F[rs1], rm, H))",
    has_rm=True,
)
_add(
    "fcvt.d.s",
    _enc(0x53, funct7=0x21, rs2=0),
    "R",
    "fp",
    "fd fs1",
    tmpl="F[rd] = fcvt_d_s(unbox_s(F[rs1]), H)",
)
# Moves copy raw bits: fmv.x.w sign-extends the low word, fmv.w.x NaN-boxes it.
_add(
    "fmv.x.w",
    _enc(0x53, 0, 0x70, rs2=0),
    "R",
    "fp",
    "xd fs1",
    tmpl="X[rd] = ((((F[rs1] & M32) ^ S32) - S32) & M64)",
)
_add("fmv.x.d", _enc(0x53, 0, 0x71, rs2=0), "R", "fp", "xd fs1", tmpl="X[rd] = F[rs1]")
_add(
    "fmv.w.x",
    _enc(0x53, 0, 0x78, rs2=0),
    "R",
    "fp",
    "fd xs1",
    tmpl="F[rd] = 0xFFFFFFFF00000000 | (X[rs1] & M32)",
)
_add("fmv.d.x", _enc(0x53, 0, 0x79, rs2=0), "R", "fp", "fd xs1", tmpl="F[rd] = X[rs1]")

# Every record since _FP_START belongs to F, or to D when it loads, stores or converts to or from
# a double (its name says ".d", or it is fld/fsd).
_specs[_FP_START:] = [
    s.replace(ext="D" if ".d" in s.name or s.name in ("fld", "fsd") else "F")
    for s in _specs[_FP_START:]
]

#: Every instruction of RV64GC (the compressed forms decode to these records).
TABLE: Final[tuple[InstrSpec, ...]] = tuple(_specs)

_BY_NAME: Final = {s.name: s for s in TABLE}


def spec_by_name(name: str) -> InstrSpec:
    """The table record named ``name`` (KeyError if there is none)."""
    return _BY_NAME[name]
