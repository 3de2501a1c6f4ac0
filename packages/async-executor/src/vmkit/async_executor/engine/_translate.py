"""Translation of RISC-V basic blocks into Python functions (the JIT's code generator).

Design note
-----------
A *block* starts at a guest pc and runs straight to the first control transfer (branch, jump,
``ecall``, ``ebreak``, ``fence.i``), a length cap, the end of the start page, or an instruction
that cannot be decoded. Each block becomes the source of one Python function

    def b(X, F, H, lim, R, W, mem, mach) -> next_pc

over the hart's register lists ``X``/``F``, the hart ``H``, the instruction limit ``lim`` (the
value ``H.instret`` may reach), the TLB ``get`` methods ``R``/``W``, the AddressSpace ``mem`` and
the Machine ``mach``. Nothing machine-specific is baked into the code, so one compiled block can
serve every machine whose guest bytes are the same.

Invariants of the generated code:

* Semantics come from the instruction table's templates (``InstrSpec.tmpl``), pasted with the
  operands bound: ``X[rs1]`` becomes a local ``x5`` (or the literal ``0`` for x0), ``imm``/``pc``
  and the constants become literals, so CPython's own constant folder folds immediate arithmetic.
  Registers whose value is known inside the block (after ``lui``, ``li``, ``auipc``, a link) are
  folded into literals by evaluating the template at translation time.
* Cheaper forms replace a template only where provably equal: a bound on each register's bit
  length (``_Gen.bits``: after ``andi``, ``lbu``, shifts ...) drops masks and sign extensions
  that cannot change the value (:func:`_narrow`). A register used as a memory base has at most
  48 bits once the access completed (:meth:`_Gen.accessed`: mappings lie below ``USER_TOP``),
  so pointer increments after it need no mask; a register known to be sign-extended from bit 31
  (:attr:`_Gen.sext`: W results, ``lw``/``lh``/``lb``, bitwise combinations of such values)
  makes ``sext.w`` a copy. An ALU result used exactly once before its
  register is overwritten, with nothing that can fault in between and none of the registers its
  expression reads (forwarded chains included) overwritten before the use, is pasted into its
  use (:func:`_forwardable`). A use that masks anyway (``andi``, ``and`` with a register, a W
  operation, which reads only the low 32 bits) takes the forwarded result unmasked
  (:meth:`_Gen.rs_low`): ``addiw a5,a5,7; andi a5,a5,255`` is ``(x15 + 7) & 255``. W results
  are sign-extended as ``(v + 2**31 & M32) - 2**31 & M64`` with ``addiw``'s immediate folded
  into the bias; ``blt``/``bge`` compare plainly when both operands are below 2**63, and in a
  self-loop an operand the loop never writes is sign-flipped once, before the loop.
* Terse source, because ``compile()`` is the cost of translation and the parser pays per token
  and most per parenthesised group: templates are stored with only the parentheses precedence
  needs (:func:`_minimal`), the 64- and 32-bit masks are the globals ``M64``/``M32`` (a global
  load costs about what a constant does), forwarded atoms go in bare.
* A straight block loads into locals only the registers it reads before writing them; registers
  the block writes are stored back at each exit, and only those. Writes to the x0 sink (index 32)
  are dropped; loads into it still access memory, because the access may fault.
* Budget: a block runs only whole. On entry it returns ``-1 - pc`` when ``H.instret + length``
  would pass ``lim``; the executor then runs a shorter, uncached translation. ``H.instret`` is set
  exactly at every exit.
* A block whose last instruction branches or jumps back to its own start becomes a
  ``for i in range((lim - n) // length)`` loop: the budget bounds the iterations up front, so an
  iteration pays for no count and no check, and a hot guest loop stays inside one Python frame.
* Regions: a loop through several blocks on one page (the entry block and the blocks on a cycle
  back to it, :func:`decode_region`) becomes one function, a ``while`` loop over a local guest pc
  that selects the block to run, each block with its own budget check (self-loops inside stay
  ``for`` loops).
* Decoding memoises per instruction word (raw word -> instruction, length, whether it ends a
  block: :data:`_DECODED`), a pure function of its key, so it cannot go stale when the guest
  rewrites code; it is bounded. Decoded blocks and generated source are never cached across
  calls: a translation always reads the bytes in memory at that moment.
* Loads and stores use the TLB fast path inline (``R(vpn)`` then ``struct`` ``unpack_from`` /
  ``pack_into``, or plain indexing for bytes) and fall back to ``mem.load``/``mem.store`` out of
  line (page crossing, TLB miss, fault, or a store into a watched code page: such pages are never
  in ``tlb_write``, which is how self-modifying code reaches the invalidation listener). In loops
  each access site remembers its page across iterations (``v<j>``, ``m<j>``): bytes by page
  number, wider accesses by page base and a typed ``memoryview`` of the page, so one mask
  (``a & ~(4096 - w) == v<j>``) tests page and alignment; misaligned accesses take the slow
  path. On a new page the typed view comes from the AddressSpace's view TLB (``mem.vrQ[vpn]``,
  ``mem.vwI[vpn]`` ...), one dict lookup instead of building a ``memoryview.cast`` per page
  change (a column walk through a matrix changes page every few iterations).
* Precise faults at zero cost on the hot path, and no handler code to compile: when a guest fault
  leaves a block, the executor finds the block's frame in the traceback, maps its line number to
  the faulting instruction (a table built with the source) and, from the frame's locals, stores the
  changed registers back and sets ``H.pc`` and ``H.instret`` exactly
  (:func:`recover_fault_state`). Lines that are not in the table (``ecall``) make the state exact
  themselves before they call out.

Example: ``lbu a1,0(a4); addi a4,a4,1; add s0,s0,a1; bne a4,a3,<itself>`` (a byte-sum loop)::

    def b(X, F, H, lim, R, W, mem, mach):
     n = H.instret
     if n > lim - 4: return -65537
     x8 = X[8]; x13 = X[13]; x14 = X[14]
     v1 = -1
     for i in range((lim - n) // 4):
      x11 = m1[a & 4095] if (a := x14) >> 12 == v1 else ((m1 := b)[a & 4095] if ... else ...)
      x14 = x14 + 1 & M64
      x8 = x8 + x11 & M64
      if not x14 != x13: break
     else:
      X[8] = x8; X[11] = x11; X[14] = x14; H.instret = n + (i + 1) * 4; ...
      return 65536
     X[8] = x8; X[11] = x11; X[14] = x14; H.instret = n + (i + 1) * 4; ...
     return 65552

Trade-off: ``compile()`` dominates translation (about 0.3 us per source character on the
reference machine; measured per statement: ~4.5 us for an ALU line, ~30 us for an inline load,
~35 us for an inline store), so the source is kept terse, blocks are capped at
:data:`MAX_BLOCK_INSNS` instructions, regions are formed only for loops, and compiled code is
reused by source text. The front end is cheaper: decoding a translation's blocks and generating
its source take about 22 us and 51 us (medians over the libc programs' blocks, against about
240 us in ``compile()``: ``benchmarks/bench_jit.py``'s translate phases, same machine).
"""

from __future__ import annotations

import ast
import re
import struct
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from vmkit.async_executor.errors import BusError, GuestSignal, IllegalInstruction
from vmkit.async_executor.isa import _fp
from vmkit.async_executor.isa._decode import FULL_DECODER, Decoder, Instr, decode16, decode32
from vmkit.async_executor.isa._disasm import disassemble, disassemble_raw
from vmkit.async_executor.isa._table import (
    M32,
    M64,
    S32,
    S64,
    TABLE,
    TEMPLATE_CONSTANTS,
    TEMPLATE_HELPERS,
    InstrSpec,
)
from vmkit.async_executor.machine._memory import PAGE_SHIFT, AddressSpace, GuestMemoryFault

__all__ = [
    "BLOCK_GLOBALS",
    "MAX_BLOCK_INSNS",
    "MAX_REGION_BLOCKS",
    "MAX_REGION_INSNS",
    "TRANSLATOR_VERSION",
    "BlockFunction",
    "DecodedBlock",
    "LineMap",
    "PreparedBlock",
    "TranslatedBlock",
    "compile_block_code",
    "decode_block",
    "decode_region",
    "finish_block",
    "function_code",
    "generate_region_source",
    "generate_source",
    "prepare_block",
    "recover_fault_state",
    "translate_block",
]

#: Bumped whenever generated code changes meaning (keys persistent code caches).
TRANSLATOR_VERSION: Final = 5
#: Longest block in instructions: long enough for unrolled loop bodies, short enough that the
#: median compile stays cheap.
MAX_BLOCK_INSNS: Final = 48

BlockFunction = Callable[..., int]
#: source line -> (instructions of the current block retired before it, its pc, the length of
#: the enclosing self-loop or 0). At a fault, instret = n + i * loop_length + retired.
LineMap = dict[int, tuple[int, int, int]]

_PAGE: Final = 1 << PAGE_SHIFT


@dataclass(slots=True)
class DecodedBlock:
    """The instructions of one block: ``(pc, instr or None, raw)``; None means undecodable."""

    start: int
    instrs: list[tuple[int, Instr | None, int]]
    #: pc after the last instruction (the fall-through successor).
    end: int
    #: guest pages the block's bytes lie on.
    pages: tuple[int, ...]


@dataclass(slots=True)
class TranslatedBlock:
    """A compiled block with everything needed to inspect, run and invalidate it."""

    pc: int
    fn: BlockFunction
    source: str
    length: int
    pages: tuple[int, ...]
    mem_ops: int
    loop: bool
    #: seconds spent decoding, generating and compiling this block.
    compile_time: float
    #: source lines that may fault -> where they are in the guest code (see :data:`LineMap`).
    lines: LineMap = field(default_factory=dict)
    #: pc of each guest instruction of the block.
    pcs: tuple[int, ...] = ()
    #: integer registers the block writes (kept in locals ``x<r>``).
    written: tuple[int, ...] = ()
    #: source line of the ``mach.syscall()`` call (0: none).
    syscall_line: int = 0
    #: the compiled code came from a code cache (no ``compile()`` was needed).
    reused_code: bool = False


# ------------------------------------------------------------------------------ discovery


def _fetch_page(mem: AddressSpace, pc: int) -> bytearray:
    page = mem.tlb_fetch.get(pc >> PAGE_SHIFT)
    if page is None:
        mem.fetch(pc, 2)  # page-table walk: fills the fetch TLB or raises GuestMemoryFault
        page = mem.tlb_fetch.get(pc >> PAGE_SHIFT)
        if page is None:  # pragma: no cover - the TLB was filled a moment ago
            raise GuestMemoryFault(pc, "fetch", "unmapped")
    return page


#: Each instruction word decoded so far: ``raw -> (instr or None, length, ends the block)``.
#: Decoding is a pure function of the raw word (a compressed half-word's low two bits are never
#: 11, so both forms share the key space without clashing), so an entry cannot go stale when the
#: guest rewrites its code: new bytes are a new key. Cleared when full, so a guest that generates
#: endless distinct words cannot grow it without bound. Shared by translating threads: any
#: interleaving of their reads and writes still yields only correct entries.
_DECODED: dict[int, tuple[Instr | None, int, bool]] = {}
_DECODED_MAX: Final = 1 << 16
#: The same for the decoders of reduced ISAs (a hart without some extensions), by decoder.
_DECODED_REDUCED: dict[Decoder, dict[int, tuple[Instr | None, int, bool]]] = {}


def _decode_raw(
    raw: int, decoder: Decoder = FULL_DECODER, memo: dict[int, Any] = _DECODED
) -> tuple[Instr | None, int, bool]:
    """Decode ``raw`` (16 or 32 bits, by its low two bits) into :data:`_DECODED`'s form."""
    instr = decoder.decode32(raw) if raw & 3 == 3 else decoder.decode16(raw)
    if instr is None:
        entry: tuple[Instr | None, int, bool] = (None, 4 if raw & 3 == 3 else 2, True)
    else:
        entry = (instr, instr.length, instr.spec.ends_block)
    if len(memo) >= _DECODED_MAX:
        memo.clear()
    memo[raw] = entry
    return entry


def decode_block(
    mem: AddressSpace,
    pc: int,
    max_insns: int = MAX_BLOCK_INSNS,
    decoder: Decoder = FULL_DECODER,
) -> DecodedBlock:
    """Decode the block starting at ``pc`` (at most ``max_insns`` instructions) with
    ``decoder`` (the hart's ISA).

    Raises GuestMemoryFault when the first instruction cannot be fetched; a later fetch fault or
    an undecodable later instruction just ends the block before it (its own block reports it).
    """
    start = pc
    vpn = pc >> PAGE_SHIFT
    page_end = (vpn + 1) << PAGE_SHIFT
    page = _fetch_page(mem, pc)
    instrs: list[tuple[int, Instr | None, int]] = []
    pages = [vpn]
    limit = max(1, max_insns)
    decoded = _DECODED if decoder is FULL_DECODER else _DECODED_REDUCED.setdefault(decoder, {})
    while True:
        off = pc & (_PAGE - 1)
        if off <= _PAGE - 4:
            raw = page[off] | page[off + 1] << 8
            if raw & 3 == 3:
                raw |= page[off + 2] << 16 | page[off + 3] << 24
        else:
            try:
                raw = mem.fetch(pc, 2)
                if raw & 3 == 3:
                    raw = mem.fetch(pc, 4)
                    if (pc + 3) >> PAGE_SHIFT != vpn:
                        pages.append((pc + 3) >> PAGE_SHIFT)
            except GuestMemoryFault:
                if not instrs:
                    raise
                break
        instr, length, ends = decoded.get(raw) or _decode_raw(raw, decoder, decoded)
        if instr is None:
            if not instrs:
                instrs.append((pc, None, raw))
                pc += length
            break
        instrs.append((pc, instr, raw))
        pc += length
        if ends or pc >= page_end or len(instrs) >= limit:
            break
    return DecodedBlock(start, instrs, pc, tuple(pages))


# ------------------------------------------------------------------------------ templates

_CONST_TEXT: Final = {name: str(value) for name, value in TEMPLATE_CONSTANTS.items()}
_NAME_RE: Final = re.compile(
    r"X\[(rs1|rs2|rd)\]|F\[(rs1|rs2|rs3|rd)\]|\b(imm|pc|rm|M64|S64|M32|S32)\b"
)
_PLACE: Final = {
    "rs1": "{a}",
    "rs2": "{b}",
    "rd": "{d}",
    "imm": "{i}",
    "pc": "{p}",
    "rm": "{r}",
}


def _to_format(tmpl: str) -> str:
    """A template as a ``str.format`` pattern: registers, ``imm``, ``pc`` and ``rm`` become holes,
    named constants become literals."""

    def repl(m: re.Match[str]) -> str:
        if m.group(1):
            return _PLACE[m.group(1)]
        if m.group(2):
            return "F[{f" + m.group(2) + "}]"
        word = m.group(3)
        return _CONST_TEXT.get(word) or _PLACE[word]

    return _NAME_RE.sub(repl, tmpl.replace("{", "{{").replace("}", "}}"))


_NS: dict[str, Any] = dict(TEMPLATE_HELPERS)
_NS.update(TEMPLATE_CONSTANTS)
_NS.update({name: getattr(_fp, name) for name in _fp.__all__})


def _folder(tmpl: str) -> Callable[[int, int, int, int], int]:
    """``tmpl`` as a function of (X[rs1], X[rs2], imm, pc) for folding known values."""
    body = tmpl.replace("X[rs1]", "a").replace("X[rs2]", "b")
    fn: Callable[[int, int, int, int], int] = eval(f"lambda a, b, imm, pc: {body}", _NS)
    return fn


def _minimal(tmpl: str) -> str:
    """``tmpl`` with only the parentheses Python's precedence needs: the parser spends far more
    on a parenthesised group than on an operator (``(a + 1) & m`` parses about a quarter slower
    than ``a + 1 & m``), and compile time is the cost of translation."""
    return ast.unparse(ast.parse(tmpl, mode="eval"))


_ALU_FORMAT: Final = {s.name: _to_format(_minimal(s.tmpl)) for s in TABLE if s.kind == "alu"}
_ALU_FOLD: Final = {s.name: _folder(s.tmpl) for s in TABLE if s.kind == "alu"}
_BRANCH_FORMAT: Final = {s.name: _to_format(_minimal(s.tmpl)) for s in TABLE if s.kind == "branch"}
_FP_FORMAT: Final = {s.name: _to_format(s.tmpl) for s in TABLE if s.kind == "fp"}
_ALU_SPECS: Final = tuple(s for s in TABLE if s.kind == "alu")
#: ALU ops that copy their other operand when one operand is zero (``mv``, ``c.mv`` ...).
_ZERO_IDENTITY: Final = frozenset(s.name for s in _ALU_SPECS if s.zero_identity)


def _make_amo(spec: InstrSpec) -> Callable[[AddressSpace, int, int, int], int]:
    width = spec.width
    mask = M32 if width == 4 else M64
    op: Callable[[int, int], int] = eval(f"lambda old, src: {spec.tmpl}", _NS)

    def amo(mem: AddressSpace, addr: int, src: int, pc: int) -> int:
        if addr & (width - 1):
            raise BusError(addr, "write", "misaligned atomic access", pc=pc)
        old = mem.load(addr, width)
        mem.store(addr, width, op(old, src & mask))
        if width == 4:
            return ((old ^ S32) - S32) & M64
        return old

    return amo


def _lr(mem: AddressSpace, hart: Any, addr: int, width: int, pc: int) -> int:
    if addr & (width - 1):
        raise BusError(addr, "read", "misaligned atomic access", pc=pc)
    value = mem.load(addr, width)
    hart.reservation = addr
    # Watching the page routes every write to it through the listeners, which break the
    # reservation (the executor's listener does), as the interpreter does.
    mem.watch_code_page(addr >> PAGE_SHIFT)
    if width == 4:
        return ((value ^ S32) - S32) & M64
    return value


def _sc(mem: AddressSpace, hart: Any, addr: int, width: int, value: int, pc: int) -> int:  # noqa: PLR0917 - called from generated code
    # Misaligned LR/SC/AMO: SIGBUS, as Linux and qemu-user deliver it.
    if addr & (width - 1):
        raise BusError(addr, "write", "misaligned atomic access", pc=pc)
    ok = hart.reservation == addr
    hart.reservation = -1
    if not ok:
        return 1
    mem.store(addr, width, value)
    return 0


def _load_signed(mem: AddressSpace, addr: int, width: int) -> int:
    """Slow path of lb/lh/lw: the loaded value sign-extended to 64 bits."""
    sign = 1 << (8 * width - 1)
    return ((mem.load(addr, width) ^ sign) - sign) & M64


def _illegal(pc: int, raw: int) -> None:
    # The interpreter's wording, so both executors report the same message.
    raise IllegalInstruction(pc, raw, f"illegal instruction `{disassemble_raw(raw, pc)}`")


def _ebreak(pc: int) -> None:
    raise GuestSignal(5, pc=pc)  # SIGTRAP, as Linux delivers for ebreak in user mode


def _bad_rm(pc: int, raw: int, frm: int) -> None:
    instr = decode32(raw) if raw & 3 == 3 else decode16(raw)
    what = f"`{disassemble(instr, pc)}`" if instr is not None else hex(raw)
    raise IllegalInstruction(pc, raw, f"invalid dynamic rounding mode (frm={frm}) for {what}")


_STRUCTS: Final = {
    (1, False): struct.Struct("<B"),
    (2, False): struct.Struct("<H"),
    (4, False): struct.Struct("<I"),
    (8, False): struct.Struct("<Q"),
    (1, True): struct.Struct("<b"),
    (2, True): struct.Struct("<h"),
    (4, True): struct.Struct("<i"),
}

_SHIFT: Final = {2: 1, 4: 2, 8: 3}
#: ``memoryview.cast`` formats by (width, signed): aligned loads and stores index a typed view.
_VIEW: Final = {
    (2, False): "H",
    (2, True): "h",
    (4, False): "I",
    (4, True): "i",
    (8, False): "Q",
    (8, True): "Q",
}


#: Names every generated block sees as globals.
BLOCK_GLOBALS: Final[dict[str, Any]] = dict(_NS)
BLOCK_GLOBALS.update(
    {
        "U1": _STRUCTS[1, False].unpack_from,
        "U2": _STRUCTS[2, False].unpack_from,
        "U4": _STRUCTS[4, False].unpack_from,
        "U8": _STRUCTS[8, False].unpack_from,
        "I1": _STRUCTS[1, True].unpack_from,
        "I2": _STRUCTS[2, True].unpack_from,
        "I4": _STRUCTS[4, True].unpack_from,
        "P1": _STRUCTS[1, False].pack_into,
        "P2": _STRUCTS[2, False].pack_into,
        "P4": _STRUCTS[4, False].pack_into,
        "P8": _STRUCTS[8, False].pack_into,
        "LSX": _load_signed,
        "LR": _lr,
        "SC": _sc,
        "ILL": _illegal,
        "EBREAK": _ebreak,
        "BADRM": _bad_rm,
        "__builtins__": __builtins__,
    }
)
for _s in TABLE:
    if _s.kind == "amo":
        BLOCK_GLOBALS["AMO_" + _s.name.replace(".", "_")] = _make_amo(_s)


# ------------------------------------------------------------------------------ generation

# Facts about results, all read from the instruction records (InstrSpec.result, .bitwise ...).
_BOOLEAN: Final = frozenset(s.name for s in _ALU_SPECS if s.result == "bool")
#: Operations whose result is sign-extended from bit 31 (RV64's W forms).
_W_OPS: Final = frozenset(s.name for s in _ALU_SPECS if s.result == "sext32")
#: Bitwise operations: sign-extended operands give a sign-extended result (the bits 31 to 63
#: of the result are one function of the operands' equal bits 31 to 63). Immediates are
#: sign-extended 12-bit values, so they always qualify.
_BITWISE: Final = frozenset(s.name for s in _ALU_SPECS if s.bitwise)


def _branch_cond(name: str, a: str, b: str, wa: int = 64, wb: int = 64) -> str:
    """The taken condition of a branch: the template's, or an int's truth value when it
    compares with zero for (in)equality (``beqz``/``bnez``: one test instead of a compare), or
    a plain comparison for ``blt``/``bge`` when both operands (bit lengths at most ``wa``,
    ``wb``) are below 2**63, where signed and unsigned order agree."""
    if name in ("beq", "bne") and "0" in (a, b):
        value = b if a == "0" else a
        return value if name == "bne" else f"not {value}"
    if name in ("blt", "bge") and max(wa, wb) < 64:
        return f"{a} {'<' if name == 'blt' else '>='} {b}"
    return _BRANCH_FORMAT[name].format(a=a, b=b)


_NarrowRule = Callable[[str, str, int, int, int], tuple[str, int] | None]
#: Rules for cheaper expressions than the template's when operand widths make its masking moot,
#: by operation: ``rule(a, b, wa, wb, imm)`` (see :func:`_narrow`).
_NARROW_RULES: dict[str, _NarrowRule] = {}


def _rule(*names: str) -> Callable[[_NarrowRule], _NarrowRule]:
    def register(rule: _NarrowRule) -> _NarrowRule:
        for name in names:
            _NARROW_RULES[name] = rule
        return rule

    return register


def _imm_width(imm: int) -> int:
    return imm.bit_length() if imm >= 0 else 64


@_rule("andi")
def _narrow_andi(a: str, b: str, wa: int, wb: int, imm: int) -> tuple[str, int] | None:
    return (f"{a} & {imm}", min(wa, _imm_width(imm))) if imm >= 0 else None


@_rule("and")
def _narrow_and(a: str, b: str, wa: int, wb: int, imm: int) -> tuple[str, int] | None:
    return f"{a} & {b}", min(wa, wb)


@_rule("or")
def _narrow_or(a: str, b: str, wa: int, wb: int, imm: int) -> tuple[str, int] | None:
    return (f"{a} | {b}", max(wa, wb)) if max(wa, wb) < 64 else None


@_rule("xor")
def _narrow_xor(a: str, b: str, wa: int, wb: int, imm: int) -> tuple[str, int] | None:
    return (f"{a} ^ {b}", max(wa, wb)) if max(wa, wb) < 64 else None


@_rule("ori")
def _narrow_ori(a: str, b: str, wa: int, wb: int, imm: int) -> tuple[str, int] | None:
    return (f"{a} | {imm}", max(wa, _imm_width(imm))) if imm >= 0 and wa < 64 else None


@_rule("xori")
def _narrow_xori(a: str, b: str, wa: int, wb: int, imm: int) -> tuple[str, int] | None:
    return (f"{a} ^ {imm}", max(wa, _imm_width(imm))) if imm >= 0 and wa < 64 else None


@_rule("srli")
def _narrow_srli(a: str, b: str, wa: int, wb: int, imm: int) -> tuple[str, int] | None:
    return f"{a} >> {imm}", max(wa - imm, 0)


@_rule("slli")
def _narrow_slli(a: str, b: str, wa: int, wb: int, imm: int) -> tuple[str, int] | None:
    return (f"{a} << {imm}", wa + imm) if wa + imm <= 64 else None


@_rule("add")
def _narrow_add(a: str, b: str, wa: int, wb: int, imm: int) -> tuple[str, int] | None:
    return (f"{a} + {b}", max(wa, wb) + 1) if max(wa, wb) < 64 else None


@_rule("addi")
def _narrow_addi(a: str, b: str, wa: int, wb: int, imm: int) -> tuple[str, int] | None:
    return (f"{a} + {imm}", max(wa, _imm_width(imm)) + 1) if imm >= 0 and wa < 64 else None


@_rule("addiw")
def _narrow_addiw(a: str, b: str, wa: int, wb: int, imm: int) -> tuple[str, int] | None:
    if imm == 0 and wa <= 31:  # sext.w of a value that already fits
        return a, wa
    if imm > 0 and max(wa, _imm_width(imm)) <= 30:
        return f"{a} + {imm}", max(wa, _imm_width(imm)) + 1
    if imm < 0 and wa <= 31:  # the sum lies in (-2**31, 2**31): its own sign extension
        return f"{a} - {-imm} & {M64}", 64
    return None


@_rule("addw")
def _narrow_addw(a: str, b: str, wa: int, wb: int, imm: int) -> tuple[str, int] | None:
    return (f"{a} + {b}", max(wa, wb) + 1) if max(wa, wb) <= 30 else None


@_rule("subw")
def _narrow_subw(a: str, b: str, wa: int, wb: int, imm: int) -> tuple[str, int] | None:
    # The difference lies in (-2**31, 2**31) (``negw`` of a small value): its own extension.
    return (f"{a} - {b} & {M64}", 64) if max(wa, wb) <= 31 else None


@_rule("srliw")
def _narrow_srliw(a: str, b: str, wa: int, wb: int, imm: int) -> tuple[str, int] | None:
    if imm < 1:
        return None
    if wa <= 32:
        return f"{a} >> {imm}", max(wa - imm, 0)
    return f"({a} & {M32}) >> {imm}", 32 - imm


@_rule("slliw")
def _narrow_slliw(a: str, b: str, wa: int, wb: int, imm: int) -> tuple[str, int] | None:
    return (f"{a} << {imm}", wa + imm) if wa + imm <= 31 else None


@_rule("mul")
def _narrow_mul(a: str, b: str, wa: int, wb: int, imm: int) -> tuple[str, int] | None:
    return (f"{a} * {b}", wa + wb) if wa + wb <= 64 else None


@_rule("mulw")
def _narrow_mulw(a: str, b: str, wa: int, wb: int, imm: int) -> tuple[str, int] | None:
    return (f"{a} * {b}", wa + wb) if wa + wb <= 31 else None


def _narrow(  # noqa: PLR0917 - operands of one instruction, positional for brevity
    name: str, a: str, b: str, wa: int, wb: int, imm: int
) -> tuple[str, int] | None:
    """A cheaper expression than the template's when operand widths make its masking moot.

    ``wa``/``wb`` bound the bit lengths of the operands ``a``/``b``. Returns ``(expr, width)`` or
    None to use the template. Each rule drops only a mask or sign extension that cannot change
    the value: e.g. ``(a << 2) & M64`` is ``a << 2`` when ``a`` has at most 62 bits, and the
    sign extension of a W result is the identity when the result is below 2**31.
    """
    rule = _NARROW_RULES.get(name)
    return rule(a, b, wa, wb, imm) if rule is not None else None


def _wrap_format(spec: InstrSpec) -> str:
    return _to_format(_minimal(spec.wrap))


#: Results as unmasked expressions equal to the result modulo ``2**bits`` (operands are
#: register values below 2**64, so these stay below 2**128): ``(format, bits)``.
_LAZY: Final = {s.name: (_wrap_format(s), s.wrap_bits) for s in _ALU_SPECS if s.wrap}


def _is_sum(spec: InstrSpec) -> bool:
    tree = ast.parse(spec.wrap, mode="eval").body
    return isinstance(tree, ast.BinOp) and isinstance(tree.op, ast.Add | ast.Sub)


def _biased(fmt: str) -> str:
    # An immediate last operand takes the bias into itself (``{i}`` is then ``imm + 2**31``
    # modulo 2**32, see ``alu``): one addition fewer in the generated code.
    return fmt if fmt.endswith(" + {i}") else f"{fmt} + 2147483648"


#: W operations computed as ``((inner + 2**31) & M32) - 2**31 & M64``: a sign extension that
#: needs only the low 32 bits of its operands (so they may come unmasked). These are the
#: sign-extended operations whose low word is a sum or difference (``addw``, ``addiw``, ``subw``).
_SEXT_OPS: Final = {
    s.name: _biased(_wrap_format(s))
    for s in _ALU_SPECS
    if s.result == "sext32" and s.wrap_bits == 32 and _is_sum(s)
}


def _narrow_w(name: str, wa: int, wb: int, imm: int) -> bool:
    """Whether :func:`_narrow` has a mask-free form of the W operation ``name``."""
    return _narrow(name, "a", "b", wa, wb, imm) is not None


#: A name or a literal: pasted into another expression without parentheses.
_ATOM: Final = re.compile(r"-?\w+")

_BARRIER_FREE: Final = frozenset({"alu", "branch", "jal", "jalr", "fence"})


def _reads(ins: Instr) -> list[int]:
    """Integer registers ``ins`` reads (x0 excluded)."""
    spec = ins.spec
    kind = spec.kind
    regs: list[int] = []
    if kind in ("alu", "fp"):
        if "X[rs1]" in spec.tmpl:
            regs.append(ins.rs1)
        if "X[rs2]" in spec.tmpl:
            regs.append(ins.rs2)
    elif kind in ("branch", "amo", "sc"):
        regs += [ins.rs1, ins.rs2]
    elif kind == "store":
        regs += [ins.rs1, ins.rs2] if spec.src == "x" else [ins.rs1]
    elif kind in ("load", "lr", "jalr") or (kind == "csr" and not spec.csr_imm):
        regs.append(ins.rs1)
    elif kind == "ecall":
        regs += list(range(10, 18))
    return [r for r in regs if r != 0]


def _writes(ins: Instr) -> int | None:
    """The integer register ``ins`` writes, if any (never x0 or the sink)."""
    spec = ins.spec
    if ins.rd in (0, 32) or "xd" not in spec.args:
        return None
    return ins.rd


def _read_mode(spec: InstrSpec) -> int:
    """Which operand registers an instruction of ``spec`` reads, as :func:`_reads` says: bit 1
    ``rs1``, bit 2 ``rs2``, bit 4 the system call's argument registers."""
    kind = spec.kind
    if kind in {"alu", "fp"}:
        return ("X[rs1]" in spec.tmpl) | ("X[rs2]" in spec.tmpl) << 1
    if kind in {"branch", "amo", "sc"}:
        return 3
    if kind == "store":
        return 3 if spec.src == "x" else 1
    if kind in {"load", "lr", "jalr"} or (kind == "csr" and not spec.csr_imm):
        return 1
    return 4 if kind == "ecall" else 0


#: Per operation, what forwarding needs: ``(is ALU, cannot fault, read mode (see
#: :func:`_read_mode`), may write an integer register)``. A small table every block shares, so
#: it stays in the CPU caches between translations.
_FACTS: Final = {
    s.name: (s.kind == "alu", s.kind in _BARRIER_FREE, _read_mode(s), "xd" in s.args) for s in TABLE
}


def _forwardable(instrs: list[Instr]) -> set[int]:
    """Indices of ALU instructions whose result can go straight into its one use.

    Instruction ``i`` writing ``r`` qualifies when ``r`` is written again later in the same
    straight-line run (so the value never needs to reach the hart), it is read exactly once up to
    and including that redefinition, nothing from ``i`` to the redefinition can fault (a precise
    fault must find ``r`` in its local), and ``i``'s sources are not overwritten before the use.
    """
    out: set[int] = set()
    facts = [_FACTS[ins.name] for ins in instrs]
    n = len(facts)
    # Registers each forwarded expression reads: its instruction's sources plus those of the
    # forwarded expressions pasted into it (a chain of forwards reads its first sources only
    # where the last use sits, so none of them may change before that use).
    deps: dict[int, set[int]] = {}
    feeds: dict[int, list[int]] = {}
    for i in range(n):
        alu, _free, _mode, writes_x = facts[i]
        ins = instrs[i]
        r = ins.rd
        if not alu or not writes_x or r in {0, 32}:
            continue
        # One scan to the redefinition of r: every instruction up to and including it must be
        # unable to fault, and r (never x0) must be read exactly once on the way. Only
        # instructions that cannot fault are looked at, and none of them is ecall.
        uses = 0
        use = -1
        redef = False
        for j in range(i + 1, n):
            _alu, free_j, mode_j, writes_j = facts[j]
            if not free_j:
                break
            other = instrs[j]
            count = (mode_j & 1 and other.rs1 == r) + (mode_j & 2 and other.rs2 == r)
            if count:
                if use < 0:
                    use = j
                uses += count
                if uses > 1:
                    break
            if writes_j and other.rd == r:
                redef = True
                break
        if not redef or uses != 1:
            continue
        sources = set(_reads(ins))
        if i in feeds:
            for p in feeds[i]:
                sources |= deps[p]
        if any(
            facts[j][3] and instrs[j].rd not in {0, 32} and instrs[j].rd in sources
            for j in range(i + 1, use)
        ):
            continue
        out.add(i)
        deps[i] = sources
        feeds.setdefault(use, []).append(i)
    return out


#: Local names of the integer registers (``x<r>``), prebuilt: every operand needs one.
_XNAME: Final = tuple(f"x{r}" for r in range(33))
#: Whether each ALU template reads ``X[rs1]`` and ``X[rs2]``.
_ALU_OPERANDS: Final = {
    s.name: ("X[rs1]" in s.tmpl, "X[rs2]" in s.tmpl) for s in TABLE if s.kind == "alu"
}


#: ``X[r] = x<r>`` (store back) and ``x<r> = X[r]`` (load) for each register, prebuilt.
_STORE_BACK: Final = tuple(f"X[{r}] = x{r}" for r in range(33))
_LOAD_IN: Final = tuple(f"x{r} = X[{r}]" for r in range(33))


class _Gen:
    """Source builder for one block (see the module notes for the shape of the code)."""

    def __init__(self, block: DecodedBlock) -> None:
        self.block = block
        self.body: list[tuple[str, int]] = []  # (line, instruction index or -1)
        self.used: set[int] = set()
        self.written: set[int] = set()
        self.known: dict[int, int] = {}
        #: upper bound on the bit length of a register's value (absent: 64) after the
        #: instructions generated so far; lets masks and sign extensions be dropped when they
        #: provably change nothing.
        self.bits: dict[int, int] = {}
        #: registers known to hold a sign-extended 32-bit value (bits 31 to 63 all equal): W
        #: results, signed narrow loads, and bitwise combinations of such values, so that a
        #: ``sext.w`` of one is a plain copy.
        self.sext: set[int] = set()
        #: the retired-instruction count at the start of the current pass (loops add i * len).
        self.count = "n"
        #: indices of instructions whose result is forwarded into its single use (see
        #: :func:`_forwardable`), and the expressions waiting for that use, by register.
        self.forward: set[int] = set()
        self.pending: dict[int, str] = {}
        #: for a pending register, an unmasked form of its expression, equal to the value
        #: modulo ``2**bits``: ``(text, bits)`` (see :meth:`rs_low`).
        self.lazy: dict[int, tuple[str, int]] = {}
        #: registers read before the block writes them: the only ones a straight block loads.
        self.read_first: set[int] = set()
        #: remember each access site's page across iterations (in loops, see :meth:`site`).
        self.site_cache = False
        #: assignments to run once before the current self-loop (loop-invariant operands).
        self.hoisted: list[str] = []
        self.sites = 0
        self.mem_ops = 0

    # --- operands
    def rd(self, r: int) -> str:
        """Local name for writing integer register ``r`` (``_`` for the x0 sink)."""
        if r in {0, 32}:
            return "_"
        self.clobber(r)
        return _XNAME[r]

    def clobber(self, r: int) -> None:
        """Register ``r`` (not x0) is about to be written: it is used and written, and every
        fact about its old value is dropped. Every write goes through here."""
        self.used.add(r)
        self.written.add(r)
        if r in self.known:
            del self.known[r]
        if r in self.bits:
            del self.bits[r]
        self.sext.discard(r)

    def rs(self, r: int) -> str:
        """Source text for reading integer register ``r`` (a literal when known)."""
        if r == 0:
            return "0"
        if r in self.pending:
            pending = self.pending.pop(r)
            self.lazy.pop(r, None)
            return pending
        value = self.known.get(r)
        if value is not None:
            return str(value)
        self.used.add(r)
        if r not in self.written:
            self.read_first.add(r)
        return _XNAME[r]

    def rs_low(self, r: int, bits: int) -> str:
        """Source text for register ``r`` where only its value modulo ``2**bits`` matters: a
        forwarded result's unmasked form when it has one (``(x + 7) & 255`` needs no 64-bit
        mask nor sign extension of ``x + 7`` first), else :meth:`rs`."""
        lazy = self.lazy.get(r)
        if lazy is not None and lazy[1] >= bits and r in self.pending:
            del self.pending[r], self.lazy[r]
            return f"({lazy[0]})"
        return self.rs(r)

    def branch_cond(self, ender: Instr, invariant: frozenset[int] = frozenset()) -> str:
        """The taken condition of the branch ``ender`` (see :func:`_branch_cond`).

        In a loop, a signed comparison flips the sign bit of an operand register the loop never
        writes once, before the loop, into ``s<r>`` (see :attr:`hoisted`).
        """
        a, b = self.rs(ender.rs1), self.rs(ender.rs2)
        wa, wb = self.width(ender.rs1), self.width(ender.rs2)
        if ender.name in ("blt", "bge") and max(wa, wb) == 64 and invariant:
            flipped = []
            for r, text in ((ender.rs1, a), (ender.rs2, b)):
                if r in invariant and text == f"x{r}":
                    self.hoisted.append(f"s{r} = x{r} ^ {S64}")
                    flipped.append(f"s{r}")
                else:
                    flipped.append(f"{text} ^ {S64}")
            return f"{flipped[0]} {'<' if ender.name == 'blt' else '>='} {flipped[1]}"
        return _branch_cond(ender.name, a, b, wa, wb)

    def width(self, r: int) -> int:
        """Upper bound on the bit length of register ``r``'s current value."""
        if r == 0:
            return 0
        if r in self.known:
            return self.known[r].bit_length()
        return self.bits.get(r, 64)

    def is_sext32(self, r: int) -> bool:
        """Whether register ``r`` provably holds the sign extension of its low 32 bits."""
        if r == 0:
            return True
        value = self.known.get(r)
        if value is not None:
            return (value + S32) & M64 < 1 << 32
        return r in self.sext or self.bits.get(r, 64) <= 31

    def accessed(self, ins: Instr) -> None:
        """Record what a completed access through ``rs1 + imm`` proves: the address lies in
        ``[MIN_MAP_ADDR, USER_TOP)`` (nothing is mapped elsewhere, see the AddressSpace notes)
        and ``|imm| < 2048 < MIN_MAP_ADDR``, so ``rs1`` is that address minus ``imm`` with no
        wrap-around and below ``2**48``: pointer increments after it need no 64-bit mask."""
        r = ins.rs1
        if r != 0 and r not in self.known:
            self.bits[r] = min(self.bits.get(r, 64), 48)

    def value(self, r: int) -> int | None:
        if r == 0:
            return 0
        return self.known.get(r)

    def emit(self, line: str, k: int = -1) -> None:
        self.body.append((line, k))

    def set_const(self, r: int, value: int) -> None:
        if r in {0, 32}:
            return
        self.clobber(r)
        self.known[r] = value
        self.body.append((f"{_XNAME[r]} = {value}", -1))

    def addr(self, ins: Instr) -> str:
        base = self.value(ins.rs1)
        if base is not None:
            return str((base + ins.imm) & M64)
        if ins.imm == 0:
            return self.rs(ins.rs1)
        return f"{self.rs(ins.rs1)} + {ins.imm} & {M64}"

    # --- instructions
    def block_body(
        self, block: DecodedBlock, straight: list[tuple[int, Instr | None, int]]
    ) -> None:
        """Generate ``straight``, the instructions of ``block`` before its ender, into a fresh
        :attr:`body`, with forwarding decided over the whole block."""
        self.body = []
        self.forward = _forwardable([ins for _pc, ins, _raw in block.instrs if ins is not None])
        alu, instr = self.alu, self.instr
        for k, (pc, ins, _raw) in enumerate(straight):
            assert ins is not None
            if ins.spec.kind == "alu":  # the commonest kind without going through instr()
                alu(k, pc, ins)
            else:
                instr(k, pc, ins)

    def instr(self, k: int, pc: int, ins: Instr) -> None:
        spec = ins.spec
        kind = spec.kind
        if kind == "alu":
            self.alu(k, pc, ins)
        elif kind == "load":
            self.load(k, ins)
        elif kind == "store":
            self.store(k, ins)
        elif kind == "fp":
            self.fp(k, pc, ins)
        elif kind == "csr":
            self.csr(k, ins)
        elif kind in ("lr", "sc", "amo"):
            self.atomic(k, pc, ins)
        elif kind in ("fence", "fence_i"):
            pass  # stores into watched code pages already invalidated their blocks
        else:  # pragma: no cover - block enders are handled by the caller
            raise AssertionError(kind)

    def alu(self, k: int, pc: int, ins: Instr) -> None:
        rd = ins.rd
        if rd == 32:
            return  # pure: a write to x0 has no effect at all
        name = ins.name
        rs1 = ins.rs1
        rs2 = ins.rs2
        imm = ins.imm
        uses_a, uses_b = _ALU_OPERANDS[name]
        known = self.known
        a = (0 if rs1 == 0 else known.get(rs1)) if uses_a else 0
        b = (0 if rs2 == 0 else known.get(rs2)) if uses_b else 0
        if a is not None and b is not None:  # an unused operand counts as a known 0
            self.set_const(rd, _ALU_FOLD[name](a, b, imm, pc))
            return
        if name == "addiw" and imm == 0 and self.is_sext32(rs1):
            # sext.w of a value that is already sign-extended from bit 31: a copy, and nothing
            # at all when it copies a register onto itself.
            if rd != rs1 or rs1 in self.pending:
                self.assign(k, rd, self.rs(rs1), self.width(rs1))
                self.sext.add(rd)
            return
        # Whether the result is sign-extended from bit 31, decided before rd (which may be a
        # source) is overwritten.
        sext = name in _W_OPS or (
            name in _BITWISE and self.is_sext32(ins.rs1) and (not uses_b or self.is_sext32(ins.rs2))
        )
        if name in _ZERO_IDENTITY:
            other: int | None = None
            if name in ("addi", "ori", "xori") and imm == 0:
                other = rs1
            elif uses_b and a == 0:
                other = rs2
            elif uses_b and b == 0:
                other = rs1
            if other is not None:
                bits = self.width(other)
                sext = self.is_sext32(other)
                self.assign(k, rd, self.rs(other), bits)
                if sext:
                    self.sext.add(rd)
                return
        wa = self.width(rs1) if uses_a else 0
        wb = self.width(rs2) if uses_b else 0
        # Operands of which only the low bits matter may come unmasked (see rs_low).
        low_a = low_b = 0
        if name == "andi" and imm >= 0:
            low_a = max(imm.bit_length(), 1)
        elif name == "and":
            low_a = 64  # the other operand, a register value, has no bits above 63
        elif name in _SEXT_OPS and not _narrow_w(name, wa, wb, imm):
            low_a = low_b = 32
        at = (self.rs_low(rs1, low_a) if low_a else self.rs(rs1)) if uses_a else "0"
        bt = (self.rs_low(rs2, low_b) if low_b else self.rs(rs2)) if uses_b else "0"
        if low_a == 32 or low_b == 32:
            inner = _SEXT_OPS[name].format(a=at, b=bt, i=(imm + S32) & M32)
            expr, bits = f"({inner} & {M32}) - {S32} & {M64}", 64
        else:
            narrow = _narrow(name, at, bt, wa, wb, imm)
            if narrow is not None:
                expr, bits = narrow
            else:
                expr = _ALU_FORMAT[name].format(a=at, b=bt, i=imm, p=pc)
                bits = 1 if name in _BOOLEAN else 64
        # The unmasked form matters only to a forwarded result.
        lazy = _LAZY.get(name) if k in self.forward else None
        self.assign(
            k,
            rd,
            expr,
            bits,
            (lazy[0].format(a=at, b=bt, i=imm), lazy[1]) if lazy is not None else None,
        )
        if sext:
            self.sext.add(ins.rd)

    def assign(
        self, k: int, r: int, expr: str, bits: int, lazy: tuple[str, int] | None = None
    ) -> None:
        """``x<r> = expr``, or, when instruction ``k``'s result has a single use before ``r`` is
        redefined and nothing in between can fault, hand ``expr`` (and ``lazy``, its value modulo
        a power of two without the final mask, for uses that mask anyway) to that use instead."""
        if k in self.forward:
            self.rd(r)  # the register's old facts die here all the same
            self.pending[r] = expr if _ATOM.fullmatch(expr) else f"({expr})"
            if lazy is not None:
                self.lazy[r] = lazy
            else:
                self.lazy.pop(r, None)
        elif r in {0, 32}:
            self.body.append((f"_ = {expr}", -1))
        else:
            self.clobber(r)
            self.body.append((f"{_XNAME[r]} = {expr}", -1))
        if bits < 64:
            self.bits[r] = bits

    def site(self) -> int:
        """A new memory-access site whose page (vpn ``v<j>``, view ``m<j>``) is remembered
        across loop iterations."""
        self.sites += 1
        return self.sites

    def load(self, k: int, ins: Instr) -> None:
        self.mem_ops += 1
        w = ins.spec.width
        signed = ins.spec.signed and w < 8
        to_f = ins.spec.dest == "f"
        slow = f"LSX(mem, a, {w})" if signed else f"mem.load(a, {w})"
        addr = self.addr(ins)
        if w == 1:
            # A byte never crosses a page: index the bytearray, no struct call, no bound check.
            # Signed bytes are sign-extended once, around the whole expression.
            slow = "mem.load(a, 1)"
            if self.site_cache:
                j = self.site()
                line = (
                    f"m{j}[a & 4095] if (a := {addr}) >> 12 == v{j} else ((m{j} := b)[a & 4095]"
                    f" if (b := R(a >> 12)) and (v{j} := a >> 12) >= 0 else {slow})"
                )
            else:
                line = f"b[a & 4095] if (b := R((a := {addr}) >> 12)) else {slow}"
            if signed:
                line = f"((({line}) ^ 128) - 128) & {M64}"
        else:
            fast = f"{'I' if signed else 'U'}{w}(b, o)[0]"
            if signed:
                fast += f" & {M64}"
            if self.site_cache:
                # Aligned accesses index a typed view of the page remembered from the last
                # iteration; others take the struct fast path, then the slow path.
                j = self.site()
                idx = f"(a & 4095) >> {_SHIFT[w]}"
                view = f"m{j}[{idx}]"
                fresh = f"(m{j} := b)[{idx}]"
                if signed:
                    view, fresh = f"{view} & {M64}", f"{fresh} & {M64}"
                # v<j> holds the page's base address: one mask tests page and alignment.
                # Misaligned accesses go to the slow path: rare, and a shorter line compiles
                # faster. A new page's typed view comes from the memory's view TLB.
                line = (
                    f"{view} if (a := {addr}) & {~(_PAGE - w)} == v{j} else ({fresh}"
                    f" if not a & {w - 1} and (b := mem.vr{_VIEW[w, signed]}[a >> 12])"
                    f" and (v{j} := a & -4096) >= 0 else {slow})"
                )
            else:
                line = (
                    f"{fast} if (b := R((a := {addr}) >> 12)) and (o := a & 4095) <= "
                    f"{_PAGE - w} else {slow}"
                )
        self.accessed(ins)
        if to_f:
            if w == 4:
                self.emit(f"F[{ins.rd}] = {0xFFFFFFFF00000000} | ({line})", k)
            else:
                self.emit(f"F[{ins.rd}] = {line}", k)
        else:
            self.emit(f"{self.rd(ins.rd)} = {line}", k)
            if not signed and w < 8 and ins.rd != 32:
                self.bits[ins.rd] = 8 * w
            elif signed and ins.rd != 32:
                self.sext.add(ins.rd)

    def store(self, k: int, ins: Instr) -> None:
        self.mem_ops += 1
        w = ins.spec.width
        if ins.spec.src == "f":
            val = f"F[{ins.rs2}]"
            if w < 8:
                val += f" & {(1 << (8 * w)) - 1}"
        else:
            known = self.value(ins.rs2)
            if known is not None:
                val = str(known & ((1 << (8 * w)) - 1))
            else:
                val = self.rs(ins.rs2)
                if w < 8 and self.width(ins.rs2) > 8 * w:
                    val += f" & {(1 << (8 * w)) - 1}"
        if self.site_cache:
            j = self.site()
            addr = self.addr(ins)
            if w == 1:
                self.emit(f"if (a := {addr}) >> 12 == v{j}: m{j}[a & 4095] = {val}", k)
                self.emit(
                    f"elif (b := W(a >> 12)) and (v{j} := a >> 12) >= 0: "
                    f"(m{j} := b)[a & 4095] = {val}",
                    k,
                )
            else:
                idx = f"(a & 4095) >> {_SHIFT[w]}"
                self.emit(f"if (a := {addr}) & {~(_PAGE - w)} == v{j}: m{j}[{idx}] = {val}", k)
                self.emit(
                    f"elif not a & {w - 1} and (b := mem.vw{_VIEW[w, False]}[a >> 12]) and "
                    f"(v{j} := a & -4096) >= 0: (m{j} := b)[{idx}] = {val}",
                    k,
                )
        elif w == 1:
            self.emit(f"if (b := W((a := {self.addr(ins)}) >> 12)): b[a & 4095] = {val}", k)
        else:
            self.emit(
                f"if (b := W((a := {self.addr(ins)}) >> 12)) and (o := a & 4095) <= "
                f"{_PAGE - w}: P{w}(b, o, {val})",
                k,
            )
        self.emit(f"else: mem.store(a, {w}, {val})", k)
        self.accessed(ins)

    def rm_text(self, k: int, pc: int, ins: Instr) -> str:
        if not ins.spec.has_rm:
            return "0"
        if ins.rm != 7:
            return str(ins.rm)
        self.emit(f"if (r := H.frm) > 4: BADRM({pc}, {ins.raw}, r)", k)
        return "r"

    def fp(self, k: int, pc: int, ins: Instr) -> None:
        rm = self.rm_text(k, pc, ins)
        stmt = _FP_FORMAT[ins.name]
        src = self.rs(ins.rs1) if "{a}" in stmt else "0"
        target = self.rd(ins.rd) if stmt.startswith("{d}") else "_"
        text = stmt.format(
            a=src, d=target, frd=ins.rd, frs1=ins.rs1, frs2=ins.rs2, frs3=ins.rs3, r=rm
        )
        self.emit(text, k)

    def csr(self, k: int, ins: Instr) -> None:
        op = ins.spec.csr_op
        csr = ins.imm
        if ins.spec.csr_imm:
            src = str(ins.rs1)
            writes = op == "w" or ins.rs1 != 0
        else:
            src = self.rs(ins.rs1)
            writes = op == "w" or ins.rs1 != 0
        # csr_read counts instret from the hart: make it exact for this instruction.
        self.emit(f"H.instret = {self.count} + {k}", k)
        self.emit(f"c = csr_read(H, {csr}, 0)", k)
        if writes:
            if op == "w":
                new = src
            elif op == "s":
                new = f"c | {src}"
            else:
                new = f"c & ~{src}"
            # Evaluate the source before rd is overwritten (rd may equal rs1).
            self.emit(f"csr_write(H, {csr}, {new})", k)
        if ins.rd != 32:
            self.emit(f"{self.rd(ins.rd)} = c", k)

    def atomic(self, k: int, pc: int, ins: Instr) -> None:
        self.mem_ops += 1
        w = ins.spec.width
        addr = self.rs(ins.rs1)
        kind = ins.spec.kind
        if kind == "lr":
            call = f"LR(mem, H, {addr}, {w}, {pc})"
        elif kind == "sc":
            call = f"SC(mem, H, {addr}, {w}, {self.rs(ins.rs2)}, {pc})"
        else:
            call = f"AMO_{ins.name.replace('.', '_')}(mem, {addr}, {self.rs(ins.rs2)}, {pc})"
        self.emit(f"{self.rd(ins.rd)} = {call}", k)


def generate_source(
    block: DecodedBlock,
) -> tuple[str, LineMap, tuple[int, ...], int, bool, int]:
    """Python source of ``block``.

    Returns ``(source, lines, written, mem_ops, is_loop, syscall_line)``: ``lines`` maps a source
    line (1-based) that can raise a guest fault to its guest instruction (see :data:`LineMap`),
    ``written``
    lists the integer registers the block assigns (held in locals ``x<r>``), ``syscall_line`` is
    the line calling ``mach.syscall()`` (0 when the block has no ``ecall``).
    """
    g = _Gen(block)
    instrs = block.instrs
    length = len(instrs)
    start = block.start
    last_pc, last, last_raw = instrs[-1]
    straight = instrs
    ender: Instr | None = None
    if last is None or last.spec.ends_block:
        straight = instrs[:-1]
        ender = last
    loop = (
        ender is not None
        and ender.spec.kind in ("branch", "jal")
        and (last_pc + ender.imm) & M64 == start
    )
    if loop:
        g.count = f"n + i * {length}"
    g.site_cache = loop and not _has_atomics([block])
    g.block_body(block, straight)

    # --- the block's end: where control goes next
    kend = length - 1
    exit_expr = str(block.end)
    cond: str | None = None
    ecall = False
    if last is None:
        g.emit(f"ILL({last_pc}, {last_raw})", kend)
    elif ender is not None:
        kind = ender.spec.kind
        if kind == "branch":
            target = (last_pc + ender.imm) & M64
            cond = g.branch_cond(ender, _loop_invariant(instrs) if loop else frozenset())
            if not loop:
                exit_expr = f"{target} if {cond} else {block.end}"
        elif kind == "jal":
            target = (last_pc + ender.imm) & M64
            g.set_const(ender.rd, (last_pc + ender.length) & M64)
            if loop:
                cond = "True"
            else:
                exit_expr = str(target)
        elif kind == "jalr":
            # The target is computed before the link: rd may equal rs1.
            g.emit(f"t = {g.rs(ender.rs1)} + {ender.imm} & {M64 - 1}")
            g.set_const(ender.rd, (last_pc + ender.length) & M64)
            exit_expr = "t"
        elif kind == "ecall":
            ecall = True
        elif kind == "ebreak":
            g.emit(f"EBREAK({last_pc})", kend)
        elif kind == "fence_i":
            pass
        else:  # pragma: no cover - the table has no other block enders
            raise AssertionError(kind)

    # --- assemble
    written = tuple(sorted(g.written))
    wb = "; ".join([_STORE_BACK[r] for r in written])
    wb_sep = wb + "; " if wb else ""
    lines: list[str] = [
        "def b(X, F, H, lim, R, W, mem, mach):",
        " n = H.instret",
        f" if n > lim - {length}: return {-1 - start}",
    ]
    # Every path through a single block assigns each written register before the block exits
    # (a loop runs its body at least once), so write-only registers need no load; a fault before
    # the assignment finds no local and leaves the hart's value, which is then still right.
    if g.read_first:
        lines.append(" " + "; ".join([_LOAD_IN[r] for r in sorted(g.read_first)]))
    if g.sites:
        lines.append(" " + " = ".join(f"v{j}" for j in range(1, g.sites + 1)) + " = -1")
    ind = " "
    if loop:
        # The budget bounds the iterations up front, so an iteration costs no count or test.
        lines.extend(f" {text}" for text in g.hoisted)
        lines.append(f" for i in range((lim - n) // {length}):")
        ind = "  "
    body = g.body
    first = len(lines) + 1  # the line number of the body's first line
    loop_length = length if loop else 0
    line_map: dict[int, tuple[int, int, int]] = {
        first + j: (k, instrs[k][0], loop_length) for j, (_text, k) in enumerate(body) if k >= 0
    }
    lines += [ind + text for text, _k in body]
    if loop:
        if not body and cond == "True":
            # ``j .`` (``for(;;);``): nothing to do per turn, but Python needs a statement.
            lines.append("  pass")
        done = f"n + (i + 1) * {length}"
        count = f"; mem.tlb_accesses += (i + 1) * {g.mem_ops}" if g.mem_ops else ""
        if cond != "True":
            lines.append(f"  if not {cond}: break")
        lines.append(" else:")
        lines.append(f"  {wb_sep}H.instret = {done}{count}")
        lines.append(f"  return {start}")
        lines.append(f" {wb_sep}H.instret = {done}{count}")
    else:
        count = f"; mem.tlb_accesses += {g.mem_ops}" if g.mem_ops else ""
        lines.append(f" {wb_sep}H.instret = n + {length}{count}")
    syscall_line = 0
    if ecall:
        lines.append(f" H.pc = {last_pc}")
        lines.append(" mach.syscall()")
        syscall_line = len(lines)
        # A syscall may redirect the guest (it then sets H.pc); usually it falls through.
        lines.append(f" return {block.end} if (t := H.pc) == {last_pc} else t")
    else:
        lines.append(f" return {exit_expr}")
    source = _named_masks("\n".join(lines) + "\n")
    return source, line_map, written, g.mem_ops, loop, syscall_line


_M64_RE: Final = re.compile(rf"& {M64}\b")
_M32_RE: Final = re.compile(rf"& {M32}\b")


def _named_masks(source: str) -> str:
    """``& 18446744073709551615`` as ``& M64`` (and M32): a global load costs about what a
    constant does, and ``compile()`` time grows with the source's length."""
    # One pass per literal with a constant replacement (no Python callback per match): the two
    # literals cannot overlap, and neither replacement makes or breaks a match of the other.
    return _M32_RE.sub("& M32", _M64_RE.sub("& M64", source))


# ------------------------------------------------------------------------------ regions

#: Most blocks one region (one Python function) holds, and most instructions.
MAX_REGION_BLOCKS: Final = 6
MAX_REGION_INSNS: Final = 96


def _ender(block: DecodedBlock) -> Instr | None:
    last = block.instrs[-1][1]
    return last if last is not None and last.spec.ends_block else None


def _successors(block: DecodedBlock) -> list[int]:
    last_pc, last, _raw = block.instrs[-1]
    assert last is not None
    if last.spec.kind == "branch":
        return [(last_pc + last.imm) & M64, block.end]
    if last.spec.kind == "jal":
        return [(last_pc + last.imm) & M64]
    return [block.end]


def _links(block: DecodedBlock) -> list[int] | None:
    """:func:`_successors` of a block that can join a region, else None: blocks that end in a
    direct jump, a branch or a plain fall-through can."""
    last_pc, last, _raw = block.instrs[-1]
    if last is None:
        return None
    spec = last.spec
    if not spec.ends_block:
        return [block.end]
    if spec.kind == "branch":
        return [(last_pc + last.imm) & M64, block.end]
    if spec.kind == "jal":
        return [(last_pc + last.imm) & M64]
    return None


def decode_region(
    mem: AddressSpace,
    pc: int,
    max_insns: int = MAX_BLOCK_INSNS,
    max_blocks: int = MAX_REGION_BLOCKS,
    decoder: Decoder = FULL_DECODER,
) -> list[DecodedBlock]:
    """The blocks of the region entered at ``pc``: the entry block first, then the blocks it
    reaches by direct branches and jumps on the same page (breadth first, within the caps).

    Only the loop through the entry block is kept (see :func:`_loop_through_entry`); without
    one the entry block alone is returned.
    """
    first = decode_block(mem, pc, max_insns, decoder)
    links = _links(first)
    if links is None:
        return [first]
    vpn = pc >> PAGE_SHIFT
    found = {pc}
    # Targets turned away stay turned away within one call (memory does not change meanwhile,
    # and the instruction total only grows), so they are not decoded again.
    refused: set[int] = set()
    order = [first]
    succ = [links]
    total = len(first.instrs)
    head = 0
    while head < len(order):
        targets = succ[head]
        head += 1
        for target in targets:
            if target in found or target >> PAGE_SHIFT != vpn:
                continue
            if len(order) >= max_blocks:  # full: keep what loops back to the entry
                return _loop_through_entry(order, succ)
            if target in refused:
                continue
            try:
                block = decode_block(mem, target, max_insns, decoder)
            except GuestMemoryFault:
                refused.add(target)
                continue
            links = _links(block)
            if links is None or total + len(block.instrs) > MAX_REGION_INSNS:
                refused.add(target)
                continue
            found.add(target)
            order.append(block)
            succ.append(links)
            total += len(block.instrs)
    return _loop_through_entry(order, succ)


def _loop_through_entry(blocks: list[DecodedBlock], succ: list[list[int]]) -> list[DecodedBlock]:
    """The entry block and the blocks of ``blocks`` on a cycle back to it (``succ``: each
    block's successors).

    Only loops headed by the entry repay a region: entering it then usually means iterating,
    while the cost of entering and leaving (every register the region touches is loaded and
    stored back) is paid once. Blocks that merely branch away are left to their own functions.
    """
    entry = blocks[0].start
    # The kept blocks after the entry must include one that goes back to it.
    for targets in succ[1:]:
        if entry in targets:
            break
    else:
        return [blocks[0]]
    # Blocks from which the entry can be reached inside the region: backwards from the entry.
    preds: dict[int, list[int]] = {}
    for k, targets in enumerate(succ):
        for t in targets:
            preds.setdefault(t, []).append(k)
    reaches = {entry}
    todo = [entry]
    while todo:
        for k in preds.get(todo.pop(), ()):
            start = blocks[k].start
            if start not in reaches:
                reaches.add(start)
                todo.append(start)
    kept = [k for k, b in enumerate(blocks) if b.start in reaches]
    if len(kept) > 1 and any(t == entry for k in kept[1:] for t in succ[k]):
        return [blocks[k] for k in kept]
    return [blocks[0]]


def _loop_invariant(instrs: list[tuple[int, Instr | None, int]]) -> frozenset[int]:
    """Integer registers no instruction of ``instrs`` writes (constant across a self-loop)."""
    written = {_writes(ins) for _pc, ins, _raw in instrs if ins is not None}
    return frozenset(r for r in range(1, 32) if r not in written)


def _has_atomics(blocks: list[DecodedBlock]) -> bool:
    """LR watches a page in the middle of a block, so remembered pages would go stale."""
    for b in blocks:
        for _pc, ins, _raw in b.instrs:
            if ins is not None and ins.spec.kind in {"lr", "sc", "amo"}:
                return True
    return False


def _innermost_first(blocks: list[DecodedBlock]) -> list[DecodedBlock]:
    """``blocks`` ordered by the length of the shortest cycle through each (stable): the
    ``if``/``elif`` chain that selects the next block then finds the blocks of inner loops,
    which run most, after the fewest comparisons."""
    n = len(blocks)
    index = {b.start: i for i, b in enumerate(blocks)}
    succ = [_successors(b) for b in blocks]

    def cycle(i: int) -> int:
        start = blocks[i].start
        frontier, seen, depth = [i], {start}, 0
        while frontier:
            depth += 1
            nxt = []
            for f in frontier:
                for t in succ[f]:
                    if t == start:
                        return depth
                    if t in index and t not in seen:
                        seen.add(t)
                        nxt.append(index[t])
            frontier = nxt
        return n + 1

    keys = [cycle(i) for i in range(n)]
    return [blocks[i] for i in sorted(range(n), key=keys.__getitem__)]


#: Most blocks a fused cycle (see :func:`_fusable_cycles`) holds.
MAX_CYCLE_BLOCKS: Final = 4


def _self_loop(block: DecodedBlock) -> bool:
    ender = _ender(block)
    return (
        ender is not None
        and ender.spec.kind in ("branch", "jal")
        and (block.instrs[-1][0] + ender.imm) & M64 == block.start
    )


def _fusable_cycles(blocks: list[DecodedBlock]) -> list[list[DecodedBlock]]:
    """Disjoint short cycles of a region's blocks (each block's successor on the cycle is one of
    its branch targets), innermost first, to run as one loop (see :func:`_emit_cycle`).

    A loop whose body spans several blocks (``for`` with an ``if`` inside, a loop whose test is
    at the top) otherwise pays the region's dispatch (the ``if p ==`` chain, a budget check, a
    pc assignment) once per block; fused, the blocks run back to back in one ``for`` loop with
    side exits, as a self-loop does. Self-loops stay as they are.
    """
    starts = {b.start: b for b in blocks}
    taken: set[int] = {b.start for b in blocks if _self_loop(b)}
    cycles: list[list[DecodedBlock]] = []
    for head in _innermost_first(blocks):
        if head.start in taken:
            continue
        # Breadth-first search for the shortest way back to the head.
        parent: dict[int, int] = {}
        frontier = [head.start]
        found = False
        for _depth in range(MAX_CYCLE_BLOCKS):
            nxt: list[int] = []
            for pc in frontier:
                for t in _successors(starts[pc]):
                    if t == head.start:
                        parent[t] = pc
                        found = True
                        break
                    if t in starts and t not in taken and t not in parent:
                        parent[t] = pc
                        nxt.append(t)
                if found:
                    break
            if found or not nxt:
                break
            frontier = nxt
        if not found:
            continue
        path = [head.start]
        pc = parent[head.start]
        while pc != head.start:
            path.append(pc)
            pc = parent[pc]
        path = [path[0], *reversed(path[1:])]
        cycle = [starts[pc] for pc in path]
        if len(cycle) < 2 or sum(len(b.instrs) for b in cycle) > MAX_REGION_INSNS:
            continue
        cycles.append(cycle)
        taken.update(path)
    return cycles


def _mem_ops(block: DecodedBlock) -> int:
    """Memory accesses one run of ``block`` counts (as the generator's ``mem_ops``)."""
    return sum(
        1
        for _pc, ins, _raw in block.instrs
        if ins is not None and ins.spec.kind in ("load", "store", "lr", "sc", "amo")
    )


def _emit_cycle(
    g: _Gen,
    cycle: list[DecodedBlock],
    out: list[str],
    marks: list[tuple[int, int, int, int]],
    limits: set[int],
) -> bool:
    """One dispatch case running the cycle ``cycle`` as a ``for`` loop over whole turns, added
    to the region's lines ``out`` (and its faulting lines to ``marks``, as
    :func:`generate_region_source` keeps them).

    As a self-loop, the budget bounds the turns up front; instruction ``k`` of the ``j``-th
    block is instruction ``prefix_j + k`` of a loop of the cycle's total length, so fault
    recovery and instret need nothing new. A block whose branch leaves the cycle gets a side
    exit that accounts the partial turn and continues the region's dispatch at the target.

    Returns False, emitting nothing, when a side exit is always taken (its condition folded to a
    constant): such a cycle never completes a turn. The generator's register bookkeeping may
    then list registers the region does not touch, which only costs a load and a store.
    """
    total = sum(len(b.instrs) for b in cycle)
    mtotal = sum(_mem_ops(b) for b in cycle)
    head = cycle[0].start
    case = [
        f"  {'if' if not out else 'elif'} p == {head}:",
        f"   if n > l{total}: p = {-1 - head}; break",
        f"   for i in range((lim - n) // {total}):",
    ]
    case_marks: list[tuple[int, int, int]] = []  # (index in case, instruction index, pc)
    prefix = mprefix = 0
    g.known.clear()
    g.bits.clear()
    g.sext.clear()
    for j, block in enumerate(cycle):
        # Facts flow from one block of the turn to the next: inside the loop they run back to
        # back, and the next block is entered from nowhere else.
        length = len(block.instrs)
        ender = _ender(block)
        straight = block.instrs[:-1] if ender is not None else block.instrs
        last_pc = block.instrs[-1][0]
        g.count = f"n + i * {total} + {prefix}" if prefix else f"n + i * {total}"
        g.block_body(block, straight)
        nxt = cycle[(j + 1) % len(cycle)].start
        exit_text: str | None = None
        if ender is not None and ender.spec.kind == "branch":
            target = (last_pc + ender.imm) & M64
            if target != block.end:
                cond = g.branch_cond(ender)
                if target == nxt:
                    exit_text, other = f"not {cond}", block.end
                else:
                    exit_text, other = cond, target
        elif ender is not None:  # jal: the link is a known constant
            g.set_const(ender.rd, (last_pc + ender.length) & M64)
        for text, k in g.body:
            case.append("    " + text)
            if k >= 0:
                case_marks.append((len(case), prefix + k, block.instrs[k][0]))
        prefix += length
        mprefix += _mem_ops(block)
        if exit_text is not None:
            if _ALWAYS.fullmatch(exit_text):
                return False
            partial = f"i * {mtotal} + {mprefix}" if mprefix else f"i * {mtotal}"
            count = f"; ma += {partial}" if mtotal else ""
            leave = f"p = {other}; n += i * {total} + {prefix}{count}; break"
            case.append(f"    if {exit_text}: {leave}")
    if len(case) == 3:
        case.append("    pass")  # a cycle of jumps only (``1: j 2f; 2: j 1b``): an empty turn
    count = f"; ma += (i + 1) * {mtotal}" if mtotal else ""
    case.append("   else:")
    case.append(f"    n += (i + 1) * {total}{count}; p = {-1 - head}; break")
    base = len(out)
    marks.extend((base + at, k, pc, total) for at, k, pc in case_marks)
    out.extend(case)
    limits.add(total)
    return True


#: A side-exit condition that folded to a true constant (``7``, ``not 0``).
_ALWAYS: Final = re.compile(r"-?[1-9]\d*|not 0")


def generate_region_source(
    blocks: list[DecodedBlock],
) -> tuple[str, LineMap, tuple[int, ...], int]:
    """Python source of a multi-block region: a ``while`` loop over a local guest pc ``p`` whose
    body selects the block to run, so a guest loop spanning several blocks never leaves the
    function. Returns ``(source, lines, written, mem_ops)`` as :func:`generate_source`.

    Each block checks the budget before it runs (a refusal leaves with ``-1 - pc`` as a single
    block does); a block that branches to itself runs as a nested ``for`` loop; a cycle through
    several blocks runs fused as one (see :func:`_emit_cycle`); registers are written back once,
    when control leaves the region.
    """
    g = _Gen(blocks[0])
    g.site_cache = not _has_atomics(blocks)
    entry = blocks[0].start
    out: list[str] = []  # the lines inside ``while True:``, indented
    # Per line that may fault: (its index in ``out``, instruction index, pc, loop length).
    marks: list[tuple[int, int, int, int]] = []
    limits: set[int] = set()  # block lengths: ``l<k>`` is ``lim - k``, computed once
    fused_heads = set()
    for cycle in _fusable_cycles(blocks):
        if _emit_cycle(g, cycle, out, marks, limits):
            fused_heads.add(cycle[0].start)
    for block in _innermost_first(blocks):
        if block.start in fused_heads:
            continue  # its dispatch case is the fused cycle's
        g.known.clear()
        g.bits.clear()
        g.sext.clear()
        instrs = block.instrs
        length = len(instrs)
        ender = _ender(block)
        straight = instrs[:-1] if ender is not None else instrs
        last_pc = instrs[-1][0]
        target = block.end
        if ender is not None:
            target = (last_pc + ender.imm) & M64
        self_loop = ender is not None and target == block.start
        g.count = f"n + i * {length}" if self_loop else "n"
        ops_before = g.mem_ops
        g.block_body(block, straight)
        cond = "True"
        g.hoisted = []
        if ender is not None and ender.spec.kind == "branch":
            cond = g.branch_cond(ender, _loop_invariant(instrs) if self_loop else frozenset())
        elif ender is not None:  # jal: the link is a known constant
            g.set_const(ender.rd, (last_pc + ender.length) & M64)
        mops = g.mem_ops - ops_before
        head = "if" if not out else "elif"
        out.append(f"  {head} p == {block.start}:")
        limits.add(length)
        out.append(f"   if n > l{length}: p = {-1 - block.start}; break")
        loop_len = length if self_loop else 0
        if self_loop:
            out += ["   " + text for text in g.hoisted]
            out.append(f"   for i in range((lim - n) // {length}):")
        ind = "    " if self_loop else "   "
        for text, k in g.body:
            out.append(ind + text)
            if k >= 0:
                marks.append((len(out), k, instrs[k][0], loop_len))
        if self_loop:
            count = f"; ma += (i + 1) * {mops}" if mops else ""
            if cond != "True":
                out.append(f"    if not {cond}: break")
            elif not g.body:
                out.append("    pass")  # ``j .``: an empty turn still needs a statement
            out.append("   else:")
            out.append(f"    n += (i + 1) * {length}{count}; p = {-1 - block.start}; break")
            out.append(f"   n += (i + 1) * {length}{count}")
            out.append(f"   p = {block.end}")
        else:
            count = f"; ma += {mops}" if mops else ""
            out.append(f"   n += {length}{count}")
            if cond == "True":
                out.append(f"   p = {target}")
            else:
                out.append(f"   p = {target} if {cond} else {block.end}")
    written = tuple(sorted(g.written))
    wb = "; ".join([_STORE_BACK[r] for r in written])
    lines = ["def b(X, F, H, lim, R, W, mem, mach):", " n = H.instret"]
    if g.used:
        lines.append(" " + "; ".join([_LOAD_IN[r] for r in sorted(g.used)]))
    if g.mem_ops:
        lines.append(" ma = 0")
    if g.sites:
        lines.append(" " + " = ".join(f"v{j}" for j in range(1, g.sites + 1)) + " = -1")
    lines.append(" " + "; ".join(f"l{k} = lim - {k}" for k in sorted(limits)))
    lines.append(f" p = {entry}")
    lines.append(" while True:")
    base = len(lines)
    line_map: LineMap = {base + j: (k, ipc, loop_len) for j, k, ipc, loop_len in marks}
    lines += out
    lines.append("  else: break")
    tail = f"{wb}; " if wb else ""
    count = "; mem.tlb_accesses += ma" if g.mem_ops else ""
    lines.append(f" {tail}H.instret = n{count}")
    lines.append(" return p")
    return _named_masks("\n".join(lines) + "\n"), line_map, written, g.mem_ops


@dataclass(slots=True)
class PreparedBlock:
    """A block (or region) decoded and turned into Python source, not yet compiled: what a
    background compiler ships to another process (see :func:`prepare_block`)."""

    pc: int
    source: str
    length: int
    pages: tuple[int, ...]
    mem_ops: int
    loop: bool
    lines: LineMap
    pcs: tuple[int, ...]
    written: tuple[int, ...]
    syscall_line: int
    #: seconds spent decoding and generating.
    prepare_time: float

    @property
    def filename(self) -> str:
        """The file name the block's code carries (tracebacks and profilers show it)."""
        return f"<jit {self.pc:#x}>"


def prepare_block(
    mem: AddressSpace,
    pc: int,
    max_insns: int = MAX_BLOCK_INSNS,
    *,
    region: bool = True,
    decoder: Decoder = FULL_DECODER,
) -> PreparedBlock:
    """Decode the block (or, with ``region``, the region) at ``pc`` with ``decoder`` (the
    hart's ISA) and generate its source.

    Raises GuestMemoryFault when ``pc`` itself cannot be fetched.
    """
    t0 = time.perf_counter()
    blocks = (
        decode_region(mem, pc, max_insns, decoder=decoder)
        if region
        else [decode_block(mem, pc, max_insns, decoder)]
    )
    block = blocks[0]
    if len(blocks) > 1:
        source, line_map, written, mem_ops = generate_region_source(blocks)
        loop, syscall_line = False, 0
        pages = tuple(sorted({vpn for b in blocks for vpn in b.pages}))
    else:
        source, line_map, written, mem_ops, loop, syscall_line = generate_source(block)
        pages = block.pages
    return PreparedBlock(
        pc=pc,
        source=source,
        length=sum(len(b.instrs) for b in blocks),
        pages=pages,
        mem_ops=mem_ops,
        loop=loop,
        lines=line_map,
        pcs=tuple(ipc for b in blocks for ipc, _i, _r in b.instrs),
        written=written,
        syscall_line=syscall_line,
        prepare_time=time.perf_counter() - t0,
    )


def function_code(module: types.CodeType) -> types.CodeType:
    """The code of the block function ``b`` in the module code ``compile()`` made of its source."""
    return next(c for c in module.co_consts if isinstance(c, types.CodeType))


def compile_block_code(source: str, filename: str) -> types.CodeType:
    """``compile()`` of a block's source: the code object of its function ``b``."""
    return function_code(compile(source, filename, "exec"))


def finish_block(
    prepared: PreparedBlock, code: types.CodeType, compile_time: float, *, reused: bool
) -> TranslatedBlock:
    """The runnable block: ``prepared``'s compiled ``code`` bound to the block globals.

    ``compile_time`` is what compiling took (0 when ``reused`` code came from a cache); the
    block's ``compile_time`` adds the preparation.
    """
    fn: BlockFunction = types.FunctionType(code, BLOCK_GLOBALS, "b")
    result = TranslatedBlock(
        pc=prepared.pc,
        fn=fn,
        source=prepared.source,
        length=prepared.length,
        pages=prepared.pages,
        mem_ops=prepared.mem_ops,
        loop=prepared.loop,
        compile_time=prepared.prepare_time + compile_time,
        lines=prepared.lines,
        pcs=prepared.pcs,
        written=prepared.written,
        syscall_line=prepared.syscall_line,
        reused_code=reused,
    )
    fn.jit_block = result  # type: ignore[attr-defined]  # the executor's way back on faults
    return result


def translate_block(
    mem: AddressSpace,
    pc: int,
    max_insns: int = MAX_BLOCK_INSNS,
    *,
    region: bool = True,
    code_cache: dict[str, types.CodeType] | None = None,
    decoder: Decoder = FULL_DECODER,
) -> TranslatedBlock:
    """Decode, generate and compile the block (or, with ``region``, the region) at ``pc``.

    ``code_cache`` maps generated source to its compiled code: the source determines the
    function completely, so identical guest code (the same program in another machine, or
    translated again after a flush) skips ``compile()``, the dominant cost.

    Raises GuestMemoryFault when ``pc`` itself cannot be fetched.
    """
    prepared = prepare_block(mem, pc, max_insns, region=region, decoder=decoder)
    t0 = time.perf_counter()
    code = code_cache.get(prepared.source) if code_cache is not None else None
    reused = code is not None
    if code is None:
        code = compile_block_code(prepared.source, prepared.filename)
        if code_cache is not None:
            code_cache[prepared.source] = code
    return finish_block(prepared, code, time.perf_counter() - t0, reused=reused)


def recover_fault_state(
    block: TranslatedBlock, frame_locals: dict[str, Any], lineno: int, hart: Any
) -> bool:
    """Make the hart's state precise after a guest fault inside ``block``'s function.

    ``frame_locals`` and ``lineno`` come from the block's frame in the exception's traceback. The
    registers the block changed are stored back, ``hart.pc`` is set to the faulting instruction
    and ``hart.instret`` counts exactly the instructions before it. Returns False when the line is
    not a faulting instruction (the block already made the state exact, e.g. around ``ecall``).
    """
    where = block.lines.get(lineno)
    if where is None:
        return False
    retired, pc, loop_length = where
    x = hart.x
    for r in block.written:
        value = frame_locals.get(f"x{r}")
        if value is not None:
            x[r] = value
    base = frame_locals["n"]
    if loop_length:
        base += frame_locals.get("i", 0) * loop_length
    hart.instret = base + retired
    hart.pc = pc
    return True
