"""The Python source generator: one block (straight, or a ``for`` loop when it jumps back to
itself) and regions (a ``while`` loop over the blocks of a loop), with the line map that lets a
fault be traced back to its guest instruction.

Why one module of this size: the generator is one state machine (``_Gen``: register facts, bit
widths, forwarding and access sites as a block is walked) that the block and region generators
drive; the facts it consults and the discovery it starts from are the other modules.
"""

from __future__ import annotations

import re
from typing import Final

from vmkit.async_executor._record import FrozenRecord, init_field
from vmkit.async_executor.engine._translate._blocks import (
    _PAGE,
    DecodedBlock,
    _ender,
    _fusable_cycles,
    _has_atomics,
    _innermost_first,
    _mem_ops,
    _self_loop,
)
from vmkit.async_executor.engine._translate._facts import (
    _ATOM,
    _BITWISE,
    _BOOLEAN,
    _LAZY,
    _SEXT_OPS,
    _W_OPS,
    _ZERO_IDENTITY,
    _forwardable,
    _loop_invariant,
    _narrow,
    _narrow_w,
)
from vmkit.async_executor.engine._translate._runtime import _SHIFT, _VIEW
from vmkit.async_executor.engine._translate._templates import (
    _ALU_FOLD,
    _ALU_FORMAT,
    _BRANCH_FORMAT,
    _FP_FORMAT,
)
from vmkit.async_executor.isa._decode import Instr
from vmkit.async_executor.isa._table import (
    M32,
    M64,
    S32,
    S64,
    TABLE,
)

#: source line -> (instructions of the current block retired before it, its pc, the length of
#: the enclosing self-loop or 0). At a fault, instret = n + i * loop_length + retired.
LineMap = dict[int, tuple[int, int, int]]


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

    def alu(self, k: int, pc: int, ins: Instr) -> None:  # noqa: PLR0912, PLR0915 - one case per instruction kind: the generator walks the table
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
        elif _SEXT_OPS[name] is not None and not _narrow_w(name, wa, wb, imm):
            low_a = low_b = 32
        at = (self.rs_low(rs1, low_a) if low_a else self.rs(rs1)) if uses_a else "0"
        bt = (self.rs_low(rs2, low_b) if low_b else self.rs(rs2)) if uses_b else "0"
        if low_a == 32 or low_b == 32:
            biased = _SEXT_OPS[name]
            assert biased is not None
            inner = biased.format(a=at, b=bt, i=(imm + S32) & M32)
            expr, bits = f"({inner} & {M32}) - {S32} & {M64}", 64
        else:
            narrow = _narrow(name, at, bt, wa, wb, imm)
            if narrow is not None:
                expr, bits = narrow
            else:
                expr = _ALU_FORMAT[name].format(a=at, b=bt, i=imm, p=pc)
                bits = 1 if name in _BOOLEAN else 64
        # The unmasked form matters only to a forwarded result.
        lazy = _LAZY[name] if k in self.forward else None
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

    def load(self, k: int, ins: Instr) -> None:  # noqa: PLR0912 - one case per instruction kind: the generator walks the table
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


class GeneratedSource(FrozenRecord):
    """What a generator produced for a block or a region.

    Attributes:
        source: the Python source of the block function ``b``.
        lines: source line (1-based) that can raise a guest fault -> its guest instruction
            (see :data:`LineMap`).
        written: the integer registers the code assigns (held in locals ``x<r>``).
        mem_ops: memory accesses per execution (counted into ``mem.tlb_accesses``).
        loop: the block runs as a ``for`` loop (it jumps back to its own start).
        syscall_line: the line calling ``mach.syscall()`` (0 when there is no ``ecall``).
    """

    __slots__ = ("source", "lines", "written", "mem_ops", "loop", "syscall_line")
    source: str
    lines: LineMap
    written: tuple[int, ...]
    mem_ops: int
    loop: bool
    syscall_line: int

    def __init__(
        self,
        source: str,
        lines: LineMap,
        written: tuple[int, ...],
        mem_ops: int,
        loop: bool = False,
        syscall_line: int = 0,
    ) -> None:
        init_field(self, "source", source)
        init_field(self, "lines", lines)
        init_field(self, "written", written)
        init_field(self, "mem_ops", mem_ops)
        init_field(self, "loop", loop)
        init_field(self, "syscall_line", syscall_line)


def generate_source(block: DecodedBlock) -> GeneratedSource:  # noqa: PLR0912, PLR0915 - one case per instruction kind: the generator walks the table
    """Python source of ``block`` (a straight block, or a loop when it jumps to its own start)."""
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
    loop = _self_loop(block)
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
    return GeneratedSource(source, line_map, written, g.mem_ops, loop, syscall_line)


_M64_RE: Final = re.compile(rf"& {M64}\b")


_M32_RE: Final = re.compile(rf"& {M32}\b")


def _named_masks(source: str) -> str:
    """``& 18446744073709551615`` as ``& M64`` (and M32): a global load costs about what a
    constant does, and ``compile()`` time grows with the source's length."""
    # One pass per literal with a constant replacement (no Python callback per match): the two
    # literals cannot overlap, and neither replacement makes or breaks a match of the other.
    return _M32_RE.sub("& M32", _M64_RE.sub("& M64", source))


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


def generate_region_source(blocks: list[DecodedBlock]) -> GeneratedSource:  # noqa: PLR0912, PLR0915 - one case per instruction kind: the generator walks the table
    """Python source of a multi-block region: a ``while`` loop over a local guest pc ``p`` whose
    body selects the block to run, so a guest loop spanning several blocks never leaves the
    function.

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
        self_loop = _self_loop(block)
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
    return GeneratedSource(_named_masks("\n".join(lines) + "\n"), line_map, written, g.mem_ops)
