"""LLVM IR for a region of guest blocks: the native tier's code generator.

Design note
-----------
A region (the blocks the JIT's region discovery finds: an entry block and the loop through it)
becomes one function ``u64 region(u64 *regs, u64 *tlb, u64 *io)``:

* ``regs``: the 32 integer registers. They are loaded into SSA values (allocas that LLVM promotes)
  on entry and stored back on every exit, so the loop body runs in host registers.
* ``tlb``: the native software TLB, ``TLB_ENTRIES`` direct-mapped entries of four words
  (read tag, read host address, write tag, write host address) indexed by the guest page number.
  A tag is the page number or ``INVALID_TAG``. It is the only way native code reaches memory: a
  miss, a page-crossing access or an access the tag does not allow leaves native code, so native
  code can only ever touch the 4 KiB buffers of guest pages the address space granted it.
* ``io``: in ``[0]`` the hart's instret, ``[1]`` the absolute instret to stop at, ``[4]`` the
  chain table; out ``[0]`` instret (exact), ``[2]`` why the code returned (``EXIT_*``), ``[3]``
  the address of a memory access that missed; in and out ``[5]`` the LR/SC reservation
  (``NO_RESERVATION`` for none). The return value is the guest pc to continue at.
  Regions with floating point also use ``[6]`` the address of the 32 FP registers (raw 64-bit
  patterns, singles NaN-boxed), ``[7]`` fflags (in and out: written back on every exit) and
  ``[8]`` frm (in; it only changes through CSR instructions, which end native code, so it is
  read once on entry).
* Chaining: a jump or return to a pc outside the region looks that pc up in the chain table and,
  when it is the entry of another compiled region, tail-calls it (``musttail``: no stack growth),
  so loops nested across regions and call-heavy code stay in machine code.

LR/SC and AMOs (the A extension) compile with the interpreter's semantics. The reservation is a
guest address whose whole page is the reservation set; in Python, a reserved page is watched so
every write to it (any hart, a system call) breaks the reservation. Native code keeps it exact
without calling back: nothing else runs while native code does (guest threads run slices under
a process lock), a watched page never has a write entry in the native TLB (so an SC or AMO there
leaves native code and the interpreter performs it), and a reservation LR makes natively is on a
page that is not yet watched (an LR needs the page's write entry too), so in a region holding an
LR every store, SC and AMO that completes breaks a reservation on its page, and the region chains
to another only when no reservation is held (else it returns to Python, which watches the page
before anything else can write it). A failed SC writes no memory, as in
the interpreter; a misaligned atomic leaves native code just before it (the interpreter raises the
SIGBUS).

Exits are precise: every exit happens *before* an instruction, with instret counting exactly the
instructions retired, so the Python tiers continue from there. The budget is checked at the top
of every block (so at least once per loop iteration): a block that would overrun it is left to
the interpreter, which stops exactly on the limit. Instructions the native tier does not compile
(floating point, CSRs, atomics, ``ecall``, anything illegal) end native code just before them.
The integer semantics are RV64IM's: 64-bit wrap-around, W forms sign-extending their 32-bit
result, and the division rules (``x / 0 = -1``, ``x % 0 = x``, ``MIN / -1 = MIN``).

Floating point (F and D) compiles in round-to-nearest-even only: an instruction with another
static rounding mode is not compiled, and one with the dynamic mode leaves native code before it
when frm is not RNE. Results and flags are the interpreter's, bit for bit (see "Floating point"
below): the host computes in IEEE double (exact for the operations and ranges used), NaN results
become the canonical NaN, and every flag is derived from operand classes, result classes and an
exact error term. The few operand/result ranges where that derivation is not proven (results near
or in the subnormal range, FMA near overflow) leave native code before the instruction
(``EXIT_FP``) and the interpreter's exact integer path performs it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

# Through _llvm, which turns a missing llvmlite into NativeUnavailable (one line, not a traceback).
from vmkit.async_executor.engine.native._llvm import ir
from vmkit.async_executor.isa._decode import Instr

__all__ = [
    "CHAIN_ENTRIES",
    "EXIT_BUDGET",
    "EXIT_FP",
    "EXIT_LOAD",
    "EXIT_NEXT",
    "EXIT_STORE",
    "EXIT_UNSUPPORTED",
    "INVALID_TAG",
    "IO_WORDS",
    "NATIVE_OPS",
    "NATIVE_TRANSLATOR_VERSION",
    "NO_RESERVATION",
    "TLB_ENTRIES",
    "RegionBlock",
    "build_region",
    "compiles",
    "uses_fp",
]

#: The code left native code for a pc outside the region (branch, jump, return): continue there.
EXIT_NEXT: Final = 0
#: The next block would overrun the instruction limit: the interpreter runs it exactly.
EXIT_BUDGET: Final = 1
#: A load missed the native TLB (or crosses a page): the slow path serves it.
EXIT_LOAD: Final = 2
#: A store missed the native TLB (or crosses a page, or its page holds code).
EXIT_STORE: Final = 3
#: The next instruction is one the native tier does not compile.
EXIT_UNSUPPORTED: Final = 4
#: A floating-point instruction whose operands fall in a range where native code cannot prove its
#: flags exact (results near or below the smallest normal, FMA near overflow): the interpreter.
EXIT_FP: Final = 5

#: Bump when the code this module generates for the same guest bytes changes (new instructions,
#: other exits, a new ``io`` layout): the on-disk native code cache keys entries by it.
NATIVE_TRANSLATOR_VERSION: Final = 3

TLB_ENTRIES: Final = 1024
#: Entries of the chain table (``io[4]`` points at it): ``(pc, function address)`` pairs,
#: direct-mapped by ``(pc >> 1) % CHAIN_ENTRIES``, through which a region that jumps to the entry
#: of another compiled region calls it without returning to Python.
CHAIN_ENTRIES: Final = 4096
INVALID_TAG: Final = (1 << 64) - 1
#: Words of the ``io`` block.
IO_WORDS: Final = 9
#: ``io[5]`` when the hart holds no reservation (no guest address is all ones).
NO_RESERVATION: Final = (1 << 64) - 1

I64: Final = ir.IntType(64)
I32: Final = ir.IntType(32)
I128: Final = ir.IntType(128)
I1: Final = ir.IntType(1)
_PAGE_MASK: Final = 0xFFF

RegionBlock = tuple[int, Sequence[tuple[int, Instr | None, int]], int]
"""A block of the region: its start pc, its ``(pc, instr, raw)`` list and the pc after it."""


def _c(value: int, ty: ir.IntType = I64) -> ir.Constant:
    return ir.Constant(ty, value & ((1 << ty.width) - 1))


class _Emitter:
    """Builds one region function; one instance per region."""

    def __init__(self, module: ir.Module, name: str, blocks: Sequence[RegionBlock]) -> None:
        ptr = I64.as_pointer()
        self.fn = ir.Function(module, ir.FunctionType(I64, [ptr, ptr, ptr]), name)
        for arg in self.fn.args:
            arg.add_attribute("noalias")
        self.regs_arg, self.tlb, self.io = self.fn.args
        # A region that can take a reservation in native code must break it on its own stores
        # and return to Python rather than chain (see the design note).
        self.has_lr = any(
            instr is not None and instr.spec.kind == "lr"
            for _, instrs, _ in blocks
            for _, instr, _ in instrs
        )
        entry = self.fn.append_basic_block("entry")
        self.b = ir.IRBuilder(entry)
        b = self.b
        self.x: list[ir.AllocaInstr | None] = [None] + [
            b.alloca(I64, name=f"x{i}") for i in range(1, 32)
        ]
        self.icount = b.alloca(I64, name="icount")
        self.out_pc = b.alloca(I64, name="out_pc")
        self.out_reason = b.alloca(I64, name="out_reason")
        self.out_addr = b.alloca(I64, name="out_addr")
        self.sc_result = b.alloca(I64, name="sc_result")  # in the entry block: promoted to SSA
        for i in range(1, 32):
            b.store(b.load(b.gep(self.regs_arg, [_c(i)])), self.x[i])
        b.store(b.load(self.io), self.icount)
        self.limit = b.load(b.gep(self.io, [_c(1)]), name="limit")
        b.store(_c(0), self.out_addr)
        self.fp = _FpState(self, blocks) if uses_fp(blocks) else None
        self.exit_block = self.fn.append_basic_block("exit")
        self.labels = {start: self.fn.append_basic_block(f"b{start:x}") for start, _, _ in blocks}
        b.branch(self.labels[blocks[0][0]])
        self._emit_exit()

    # ------------------------------------------------------------------ registers and exits

    def get(self, r: int) -> ir.Value:
        if r == 0:
            return _c(0)
        slot = self.x[r]
        assert slot is not None
        return self.b.load(slot)

    def set(self, rd: int, value: ir.Value) -> None:
        if rd not in (0, 32):  # the decoder stores a write to x0 as 32, the write sink
            slot = self.x[rd]
            assert slot is not None
            self.b.store(value, slot)

    def _emit_exit(self) -> None:
        """The one exit: write the state back; a jump to another compiled region goes straight
        on into it (a tail call found in the chain table), anything else returns to Python."""
        b = ir.IRBuilder(self.exit_block)
        for i in range(1, 32):
            slot = self.x[i]
            assert slot is not None
            b.store(b.load(slot), b.gep(self.regs_arg, [_c(i)]))
        if self.fp is not None:
            self.fp.write_back(b)
        b.store(b.load(self.icount), self.io)
        reason = b.load(self.out_reason)
        b.store(reason, b.gep(self.io, [_c(2)]))
        b.store(b.load(self.out_addr), b.gep(self.io, [_c(3)]))
        pc = b.load(self.out_pc)
        chain_bb = self.fn.append_basic_block("chain")
        call_bb = self.fn.append_basic_block("chain_call")
        done_bb = self.fn.append_basic_block("done")
        chain = b.icmp_unsigned("==", reason, _c(EXIT_NEXT))
        if self.has_lr:
            # Only with no reservation held: one this region took must reach Python, which
            # watches its page, before code that does not check its stores against it runs.
            free = b.icmp_unsigned("==", b.load(b.gep(self.io, [_c(5)])), _c(NO_RESERVATION))
            chain = b.and_(chain, free)
        b.cbranch(chain, chain_bb, done_bb)
        b.position_at_end(chain_bb)
        table = b.inttoptr(b.load(b.gep(self.io, [_c(4)])), I64.as_pointer())
        slot = b.mul(b.and_(b.lshr(pc, _c(1)), _c(CHAIN_ENTRIES - 1)), _c(2))
        hit = b.icmp_unsigned("==", b.load(b.gep(table, [slot])), pc)
        b.cbranch(hit, call_bb, done_bb)
        b.position_at_end(call_bb)
        target = b.load(b.gep(table, [b.add(slot, _c(1))]))
        callee = b.inttoptr(target, self.fn.function_type.as_pointer())
        result = b.call(callee, [self.regs_arg, self.tlb, self.io], tail="musttail")
        b.ret(result)
        b.position_at_end(done_bb)
        b.ret(pc)

    def leave(self, pc: int | ir.Value, reason: int, retired: int = 0) -> None:
        """Exit native code before the instruction at ``pc``; ``retired`` instructions of the
        current block ran (instret is counted per block)."""
        b = self.b
        if retired:
            b.store(b.add(b.load(self.icount), _c(retired)), self.icount)
        b.store(pc if isinstance(pc, ir.Value) else _c(pc), self.out_pc)
        b.store(_c(reason), self.out_reason)
        b.branch(self.exit_block)

    def goto(self, pc: int, retired: int) -> None:
        """Continue at ``pc`` after a block of ``retired`` instructions: a branch inside the
        region, or an exit."""
        b = self.b
        b.store(b.add(b.load(self.icount), _c(retired)), self.icount)
        target = self.labels.get(pc)
        if target is not None:
            b.branch(target)
        else:
            self.leave(pc, EXIT_NEXT)

    # ------------------------------------------------------------------ blocks

    def block(self, start: int, instrs: Sequence[tuple[int, Instr | None, int]], end: int) -> None:
        b = self.b
        b.position_at_end(self.labels[start])
        n = len(instrs)
        over = b.icmp_unsigned(">", b.add(b.load(self.icount), _c(n)), self.limit)
        with b.if_then(over, likely=False):
            self.leave(start, EXIT_BUDGET)
        for k, (pc, instr, _raw) in enumerate(instrs):
            if instr is None or not compiles(instr):
                self.leave(pc, EXIT_UNSUPPORTED, k)
                return
            kind = instr.spec.kind
            if kind == "branch":
                self.branch(instr, pc, k + 1)
                return
            if kind == "jal":
                self.set(instr.rd, _c(pc + instr.length))
                self.goto((pc + instr.imm) & ((1 << 64) - 1), k + 1)
                return
            if kind == "jalr":
                target = b.and_(b.add(self.get(instr.rs1), _c(instr.imm)), _c(~1))
                self.set(instr.rd, _c(pc + instr.length))
                b.store(b.add(b.load(self.icount), _c(k + 1)), self.icount)
                self.leave(target, EXIT_NEXT)
                return
            NATIVE_OPS[instr.spec.name](self, instr, pc, k)
        self.goto(end, n)

    def branch(self, instr: Instr, pc: int, retired: int) -> None:
        b = self.b
        a, c = self.get(instr.rs1), self.get(instr.rs2)
        op, signed = _BRANCHES[instr.spec.name]
        cond = b.icmp_signed(op, a, c) if signed else b.icmp_unsigned(op, a, c)
        taken_bb = self.fn.append_basic_block()
        fall_bb = self.fn.append_basic_block()
        b.cbranch(cond, taken_bb, fall_bb)
        b.position_at_end(taken_bb)
        self.goto((pc + instr.imm) & ((1 << 64) - 1), retired)
        b.position_at_end(fall_bb)
        self.goto(pc + instr.length, retired)

    # ------------------------------------------------------------------ memory

    def _entry(
        self, addr: ir.Value, width: int, write: bool, pc: int, k: int, *, breaks: bool = True
    ) -> ir.Value:
        """The host pointer for ``width`` bytes at guest ``addr``; leaves native code on a
        miss or a page-crossing access (the slow path then faults or serves it). A write that
        ``breaks`` (a store that will complete) drops a reservation on its page."""
        b = self.b
        off = b.and_(addr, _c(_PAGE_MASK))
        vpn = b.lshr(addr, _c(12))
        slot = b.and_(vpn, _c(TLB_ENTRIES - 1))
        base = b.mul(slot, _c(4))
        tag = b.load(b.gep(self.tlb, [b.add(base, _c(2 if write else 0))]))
        crosses = b.icmp_unsigned(">", off, _c(4096 - width))
        miss = b.or_(b.icmp_unsigned("!=", tag, vpn), crosses)
        with b.if_then(miss, likely=False):
            b.store(addr, self.out_addr)
            self.leave(pc, EXIT_STORE if write else EXIT_LOAD, k)
        host = b.load(b.gep(self.tlb, [b.add(base, _c(3 if write else 1))]))
        if write and breaks and self.has_lr:
            # The store will complete: it breaks a reservation on its page (in Python the
            # watched page's listener would).
            slot_resv = b.gep(self.io, [_c(5)])
            same = b.icmp_unsigned("==", b.lshr(b.load(slot_resv), _c(12)), vpn)
            with b.if_then(same, likely=False):
                b.store(_c(NO_RESERVATION), slot_resv)
        ty = ir.IntType(8 * width)
        return b.inttoptr(b.add(host, off), ty.as_pointer())

    def _aligned(self, addr: ir.Value, width: int, pc: int, k: int) -> None:
        """A misaligned atomic leaves native code before it; the interpreter raises SIGBUS."""
        b = self.b
        misaligned = b.icmp_unsigned("!=", b.and_(addr, _c(width - 1)), _c(0))
        with b.if_then(misaligned, likely=False):
            self.leave(pc, EXIT_UNSUPPORTED, k)

    def _extend(self, value: ir.Value, width: int) -> ir.Value:
        """A loaded atomic value in a register: W forms sign-extend."""
        return self.b.sext(value, I64) if width < 8 else value

    def lr(self, instr: Instr, pc: int, k: int) -> None:
        b = self.b
        width = instr.spec.width
        addr = self.get(instr.rs1)
        self._aligned(addr, width, pc, k)
        ptr = self._entry(addr, width, False, pc, k)
        # The page must be writable natively too (not watched, not read-only), else the LR
        # leaves for the interpreter: the SC that follows can then succeed in native code, and
        # a reservation native code takes is never on a watched page.
        self._entry(addr, width, True, pc, k, breaks=False)
        self.set(instr.rd, self._extend(b.load(ptr, align=1), width))
        b.store(addr, b.gep(self.io, [_c(5)]))

    def sc(self, instr: Instr, pc: int, k: int) -> None:
        b = self.b
        width = instr.spec.width
        addr = self.get(instr.rs1)
        self._aligned(addr, width, pc, k)
        slot_resv = b.gep(self.io, [_c(5)])
        value = self.get(instr.rs2)
        if width < 8:
            value = b.trunc(value, ir.IntType(8 * width))
        result = self.sc_result
        b.store(_c(1), result)
        # Only a reserved address is stored to: a failing SC touches no memory (and so cannot
        # fault), as in the interpreter. A reservation Python made is on a watched page, whose
        # write misses the native TLB, so that SC leaves native code before it.
        with b.if_then(b.icmp_unsigned("==", b.load(slot_resv), addr)):
            ptr = self._entry(addr, width, True, pc, k)
            b.store(value, ptr, align=1)
            b.store(_c(0), result)
        b.store(_c(NO_RESERVATION), slot_resv)
        self.set(instr.rd, b.load(result))

    def amo(self, instr: Instr, pc: int, k: int) -> None:
        b = self.b
        width = instr.spec.width
        addr = self.get(instr.rs1)
        self._aligned(addr, width, pc, k)
        # Both entries before anything happens: an exit for either leaves the AMO undone.
        src_ptr = self._entry(addr, width, False, pc, k)
        dst_ptr = self._entry(addr, width, True, pc, k)
        ty = ir.IntType(8 * width)
        old = b.load(src_ptr, align=1)
        src = self.get(instr.rs2)
        if width < 8:
            src = b.trunc(src, ty)
        b.store(_AMO[instr.spec.name.partition(".")[0]](b, old, src), dst_ptr, align=1)
        self.set(instr.rd, self._extend(old, width))

    def load(self, instr: Instr, pc: int, k: int) -> None:
        b = self.b
        width = instr.spec.width
        addr = b.add(self.get(instr.rs1), _c(instr.imm))
        ptr = self._entry(addr, width, False, pc, k)
        value = b.load(ptr, align=1)
        if width < 8:
            value = b.sext(value, I64) if instr.spec.signed else b.zext(value, I64)
        self.set(instr.rd, value)

    def store(self, instr: Instr, pc: int, k: int) -> None:
        b = self.b
        width = instr.spec.width
        addr = b.add(self.get(instr.rs1), _c(instr.imm))
        ptr = self._entry(addr, width, True, pc, k)
        value = self.get(instr.rs2)
        if width < 8:
            value = b.trunc(value, ir.IntType(8 * width))
        b.store(value, ptr, align=1)


_BRANCHES: Final = {
    "beq": ("==", False),
    "bne": ("!=", False),
    "blt": ("<", True),
    "bge": (">=", True),
    "bltu": ("<", False),
    "bgeu": (">=", False),
}


def _pick(op: str, signed: bool) -> Callable[[ir.IRBuilder, ir.Value, ir.Value], ir.Value]:
    def make(b: ir.IRBuilder, old: ir.Value, src: ir.Value) -> ir.Value:
        keep = b.icmp_signed(op, old, src) if signed else b.icmp_unsigned(op, old, src)
        return b.select(keep, old, src)

    return make


#: The AMO operations on the memory value ``old`` and the register value ``src`` (both of the
#: access width, so ``add`` wraps at it and min/max compare at it).
_AMO: Final[dict[str, Callable[[ir.IRBuilder, ir.Value, ir.Value], ir.Value]]] = {
    "amoadd": lambda b, old, src: b.add(old, src),
    "amoswap": lambda b, old, src: src,
    "amoxor": lambda b, old, src: b.xor(old, src),
    "amoor": lambda b, old, src: b.or_(old, src),
    "amoand": lambda b, old, src: b.and_(old, src),
    "amomin": _pick("<", True),
    "amomax": _pick(">", True),
    "amominu": _pick("<", False),
    "amomaxu": _pick(">", False),
}

Op = Callable[[_Emitter, Instr, int, int], None]
_Make = Callable[[ir.IRBuilder, ir.Value, ir.Value], ir.Value]


def _operands(e: _Emitter, instr: Instr) -> tuple[ir.Value, ir.Value]:
    b_value = _c(instr.imm) if instr.spec.fmt in ("I", "IS", "ISW", "U") else e.get(instr.rs2)
    return e.get(instr.rs1), b_value


def _sext32(e: _Emitter, value32: ir.Value) -> ir.Value:
    return e.b.sext(value32, I64)


def _low(e: _Emitter, value: ir.Value) -> ir.Value:
    return e.b.trunc(value, I32)


def _binary(make: Callable[[ir.IRBuilder, ir.Value, ir.Value], ir.Value]) -> Op:
    def op(e: _Emitter, instr: Instr, pc: int, k: int) -> None:
        a, c = _operands(e, instr)
        e.set(instr.rd, make(e.b, a, c))

    return op


def _word(make: Callable[[ir.IRBuilder, ir.Value, ir.Value], ir.Value]) -> Op:
    """A W form: ``make`` computes on the low 32 bits; the result is sign-extended."""

    def op(e: _Emitter, instr: Instr, pc: int, k: int) -> None:
        a, c = _operands(e, instr)
        e.set(instr.rd, _sext32(e, make(e.b, _low(e, a), _low(e, c))))

    return op


def _compare(signed: bool) -> Callable[[ir.IRBuilder, ir.Value, ir.Value], ir.Value]:
    def make(b: ir.IRBuilder, a: ir.Value, c: ir.Value) -> ir.Value:
        cond = b.icmp_signed("<", a, c) if signed else b.icmp_unsigned("<", a, c)
        return b.zext(cond, I64)

    return make


def _high(signed_a: bool, signed_b: bool) -> _Make:
    def make(b: ir.IRBuilder, a: ir.Value, c: ir.Value) -> ir.Value:
        wa = b.sext(a, I128) if signed_a else b.zext(a, I128)
        wc = b.sext(c, I128) if signed_b else b.zext(c, I128)
        return b.trunc(b.lshr(b.mul(wa, wc), _c(64, I128)), I64)

    return make


def _division(
    signed: bool, remainder: bool
) -> Callable[[ir.IRBuilder, ir.Value, ir.Value], ir.Value]:
    """RISC-V division, width taken from the operands: no trap; ``x / 0`` is all ones, ``x % 0``
    is ``x``; signed ``MIN / -1`` is ``MIN`` and ``MIN % -1`` is 0."""

    def make(b: ir.IRBuilder, a: ir.Value, c: ir.Value) -> ir.Value:
        ty = a.type
        width = ty.width
        zero = b.icmp_unsigned("==", c, _c(0, ty))
        bad = zero
        if signed:
            overflow = b.and_(
                b.icmp_unsigned("==", a, _c(1 << (width - 1), ty)),
                b.icmp_unsigned("==", c, _c(-1, ty)),
            )
            bad = b.or_(zero, overflow)
        divisor = b.select(bad, _c(1, ty), c)  # a divisor the host instruction cannot trap on
        if remainder:
            value = b.srem(a, divisor) if signed else b.urem(a, divisor)
            value = b.select(zero, a, value)
            if signed:
                value = b.select(overflow, _c(0, ty), value)
        else:
            value = b.sdiv(a, divisor) if signed else b.udiv(a, divisor)
            value = b.select(zero, _c(-1, ty), value)
            if signed:
                value = b.select(overflow, a, value)
        return value

    return make


def _shift(kind: str, mask: int) -> Callable[[ir.IRBuilder, ir.Value, ir.Value], ir.Value]:
    def make(b: ir.IRBuilder, a: ir.Value, c: ir.Value) -> ir.Value:
        amount = b.and_(c, _c(mask, c.type))
        if kind == "shl":
            return b.shl(a, amount)
        return b.lshr(a, amount) if kind == "lshr" else b.ashr(a, amount)

    return make


def _const(value_of: Callable[[Instr, int], int]) -> Op:
    def op(e: _Emitter, instr: Instr, pc: int, k: int) -> None:
        e.set(instr.rd, _c(value_of(instr, pc)))

    return op


def _nothing(e: _Emitter, instr: Instr, pc: int, k: int) -> None:
    """``fence``: one hart, and stores to watched code pages never run natively."""


#: The instructions the native tier compiles, by name, with their emitters.
NATIVE_OPS: Final[dict[str, Op]] = {
    "lui": _const(lambda i, pc: i.imm),
    "auipc": _const(lambda i, pc: pc + i.imm),
    "addi": _binary(lambda b, a, c: b.add(a, c)),
    "slti": _binary(_compare(True)),
    "sltiu": _binary(_compare(False)),
    "xori": _binary(lambda b, a, c: b.xor(a, c)),
    "ori": _binary(lambda b, a, c: b.or_(a, c)),
    "andi": _binary(lambda b, a, c: b.and_(a, c)),
    "slli": _binary(_shift("shl", 63)),
    "srli": _binary(_shift("lshr", 63)),
    "srai": _binary(_shift("ashr", 63)),
    "addiw": _word(lambda b, a, c: b.add(a, c)),
    "slliw": _word(_shift("shl", 31)),
    "srliw": _word(_shift("lshr", 31)),
    "sraiw": _word(_shift("ashr", 31)),
    "add": _binary(lambda b, a, c: b.add(a, c)),
    "sub": _binary(lambda b, a, c: b.sub(a, c)),
    "sll": _binary(_shift("shl", 63)),
    "slt": _binary(_compare(True)),
    "sltu": _binary(_compare(False)),
    "xor": _binary(lambda b, a, c: b.xor(a, c)),
    "srl": _binary(_shift("lshr", 63)),
    "sra": _binary(_shift("ashr", 63)),
    "or": _binary(lambda b, a, c: b.or_(a, c)),
    "and": _binary(lambda b, a, c: b.and_(a, c)),
    "addw": _word(lambda b, a, c: b.add(a, c)),
    "subw": _word(lambda b, a, c: b.sub(a, c)),
    "sllw": _word(_shift("shl", 31)),
    "srlw": _word(_shift("lshr", 31)),
    "sraw": _word(_shift("ashr", 31)),
    "mul": _binary(lambda b, a, c: b.mul(a, c)),
    "mulh": _binary(_high(True, True)),
    "mulhsu": _binary(_high(True, False)),
    "mulhu": _binary(_high(False, False)),
    "div": _binary(_division(True, False)),
    "divu": _binary(_division(False, False)),
    "rem": _binary(_division(True, True)),
    "remu": _binary(_division(False, True)),
    "mulw": _word(lambda b, a, c: b.mul(a, c)),
    "divw": _word(_division(True, False)),
    "divuw": _word(_division(False, False)),
    "remw": _word(_division(True, True)),
    "remuw": _word(_division(False, True)),
    "fence": _nothing,
    # Control transfers are handled by the block emitter; listed so they count as native.
    "beq": _nothing,
    "bne": _nothing,
    "blt": _nothing,
    "bge": _nothing,
    "bltu": _nothing,
    "bgeu": _nothing,
    "jal": _nothing,
    "jalr": _nothing,
}
for _name in ("lb", "lh", "lw", "ld", "lbu", "lhu", "lwu"):
    NATIVE_OPS[_name] = _Emitter.load
for _name in ("sb", "sh", "sw", "sd"):
    NATIVE_OPS[_name] = _Emitter.store
for _sfx in ("w", "d"):
    NATIVE_OPS[f"lr.{_sfx}"] = _Emitter.lr
    NATIVE_OPS[f"sc.{_sfx}"] = _Emitter.sc
    for _amo in _AMO:
        NATIVE_OPS[f"{_amo}.{_sfx}"] = _Emitter.amo


# ---------------------------------------------------------------------------------- floating point
#
# Floating point
# --------------
# Registers: the region loads the FP registers it names from ``io[6]`` on entry and stores the
# ones it writes on every exit, as for the integer registers; fflags lives in an SSA slot,
# loaded from ``io[7]`` and stored back on every exit. A single is read NaN-boxed (upper 32 bits
# all ones, else the canonical NaN) and written boxed.
#
# Why the results are the interpreter's: the host's IEEE double arithmetic in its default
# environment (round to nearest even, no flush to zero, which LLVM assumes and never reorders
# without fast-math flags) is correctly rounded. Singles are computed in double and rounded once
# more to single; for +, -, *, / and sqrt that double rounding is innocuous (53 >= 2 * 24 + 2),
# products of singles are exact in double, and single FMA rounds the exact double sum to odd
# first (a TwoSum error term decides the last bit), which makes the final rounding correct.
# Every NaN result is replaced by the canonical NaN.
#
# Why the flags are exact:
# * NV: a signalling NaN operand, or a NaN result from non-NaN operands (inf - inf, 0 * inf,
#   0 / 0, inf / inf, sqrt of a negative), or for FMA inf * 0 whatever the addend.
# * DZ: division of a finite nonzero number by zero.
# * OF: an infinite result from finite operands (in RNE overflow always rounds to infinity).
# * UF: tininess is decided after rounding and needs the exact value; sums of floats whose result
#   is tiny are exact (they are multiples of the smallest subnormal), so add/sub never raise it,
#   and every other operation whose result could be tiny (or whose error term could underflow)
#   leaves native code before it (``EXIT_FP``) for the interpreter's exact path.
# * NX: the result differs from the exact value, tested with an error term that is exact in the
#   ranges native code accepts: Fast2Sum in both orders for add/sub (as the interpreter does);
#   the FMA residual ``fma(a, b, -r)`` for mul (exact when |r| >= 2**-960: the product's low part
#   is then a multiple of at least 2**-1074); ``fma(-q, b, a)`` for div (a nonzero remainder is a
#   multiple of at least 2**-1074 when |a|, |q| >= 2**-960, so it cannot round to zero);
#   ``fma(-r, r, a)`` for sqrt (a >= 2**-960); Boldo and Muller's ErrFma for FMA (the exact error
#   as a sum of two doubles, valid without underflow or overflow, which the accepted range
#   ensures); for singles, comparing the single result with the exact or round-to-odd double.

D: Final = ir.DoubleType()
F32: Final = ir.FloatType()
_FP_EXTS: Final = frozenset({"F", "D"})
_FP_FIELDS: Final = (("fd", "rd"), ("fs1", "rs1"), ("fs2", "rs2"), ("fs3", "rs3"))
_BOX: Final = 0xFFFFFFFF00000000
#: Results (and for div/sqrt operands) at least this large keep every error term exact.
_SMALL_D: Final = (1023 - 960) << 52  # bits of 2.0**-960
#: FMA intermediates below this cannot overflow.
_LARGE_D: Final = (1023 + 1000) << 52  # bits of 2.0**1000
#: Single results at least this large (as a double) are far from tininess.
_SMALL_S_AS_D: Final = (1023 - 125) << 52  # bits of 2.0**-125
NV_FLAG: Final = 16
DZ_FLAG: Final = 8
OF_FLAG: Final = 4
NX_FLAG: Final = 1


def uses_fp(blocks: Sequence[RegionBlock]) -> bool:
    """Whether a region holds a floating-point instruction native code compiles."""
    return any(
        i is not None and i.spec.ext in _FP_EXTS and compiles(i)
        for _, instrs, _ in blocks
        for _, i, _ in instrs
    )


def compiles(instr: Instr) -> bool:
    """Whether native code runs ``instr``: a compiled operation, and for one with a rounding
    mode, RNE (0) or the dynamic mode (7, checked against frm when the code runs)."""
    return instr.spec.name in NATIVE_OPS and (not instr.spec.has_rm or instr.rm in (0, 7))


class _FpState:
    """The FP registers, fflags and frm of one region function."""

    def __init__(self, e: _Emitter, blocks: Sequence[RegionBlock]) -> None:
        b = e.b
        self.io = e.io
        used: set[int] = set()
        self.written: set[int] = set()
        for _, instrs, _ in blocks:
            for _, instr, _ in instrs:
                if instr is None or instr.spec.ext not in _FP_EXTS or not compiles(instr):
                    continue
                args = instr.spec.args
                for arg, field in _FP_FIELDS:
                    if arg in args:
                        used.add(getattr(instr, field))
                if "fd" in args:
                    self.written.add(instr.rd)
        self.base = b.inttoptr(b.load(b.gep(e.io, [_c(6)])), I64.as_pointer(), name="fregs")
        self.f: dict[int, ir.AllocaInstr] = {}
        for r in sorted(used):
            slot = b.alloca(I64, name=f"f{r}")
            b.store(b.load(b.gep(self.base, [_c(r)])), slot)
            self.f[r] = slot
        self.fflags = b.alloca(I64, name="fflags")
        b.store(b.load(b.gep(e.io, [_c(7)])), self.fflags)
        self.frm = b.load(b.gep(e.io, [_c(8)]), name="frm")

    def write_back(self, b: ir.IRBuilder) -> None:
        for r in sorted(self.written):
            b.store(b.load(self.f[r]), b.gep(self.base, [_c(r)]))
        b.store(b.load(self.fflags), b.gep(self.io, [_c(7)]))


class _Fmt:
    """An IEEE format as native code handles it: integer and float types and bit masks."""

    def __init__(self, width: int, exp_bits: int) -> None:
        self.width = width
        self.ity = ir.IntType(width)
        self.fty = F32 if width == 32 else D
        frac = width - 1 - exp_bits
        self.sign = 1 << (width - 1)
        self.abs = self.sign - 1
        self.exp = ((1 << exp_bits) - 1) << frac
        self.frac = (1 << frac) - 1
        self.quiet = 1 << (frac - 1)
        self.qnan = self.exp | self.quiet


_S: Final = _Fmt(32, 8)
_DF: Final = _Fmt(64, 11)


def _fmt_of(instr: Instr) -> _Fmt:
    return _S if instr.spec.name.endswith(".s") else _DF


def _fget(e: _Emitter, r: int, fmt: _Fmt) -> ir.Value:
    """The operand bits of f register ``r``: a single is unboxed (canonical NaN if not boxed)."""
    assert e.fp is not None
    b = e.b
    value = b.load(e.fp.f[r])
    if fmt.width == 64:
        return value
    boxed = b.icmp_unsigned("==", b.lshr(value, _c(32)), _c(0xFFFFFFFF))
    return b.select(boxed, b.trunc(value, I32), _c(fmt.qnan, I32))


def _fset(e: _Emitter, r: int, bits: ir.Value) -> None:
    """Write ``bits`` (i32: a single, boxed; i64: raw) to f register ``r``."""
    assert e.fp is not None
    b = e.b
    if bits.type.width == 32:
        bits = b.or_(b.zext(bits, I64), _c(_BOX))
    b.store(bits, e.fp.f[r])


def _raise(e: _Emitter, flags: ir.Value) -> None:
    assert e.fp is not None
    b = e.b
    b.store(b.or_(b.load(e.fp.fflags), flags), e.fp.fflags)


def _flag(b: ir.IRBuilder, cond: ir.Value, bit: int) -> ir.Value:
    return b.select(cond, _c(bit), _c(0))


def _flags(b: ir.IRBuilder, *pairs: tuple[ir.Value, int]) -> ir.Value:
    out: ir.Value = _c(0)
    for cond, bit in pairs:
        out = b.or_(out, _flag(b, cond, bit))
    return out


def _rm_ok(e: _Emitter, instr: Instr, pc: int, k: int) -> None:
    """The dynamic rounding mode compiles as RNE: leave before the instruction otherwise."""
    if instr.spec.has_rm and instr.rm == 7:
        assert e.fp is not None
        b = e.b
        with b.if_then(b.icmp_unsigned("!=", e.fp.frm, _c(0)), likely=False):
            e.leave(pc, EXIT_UNSUPPORTED, k)


def _hard(e: _Emitter, cond: ir.Value, pc: int, k: int) -> None:
    """Leave native code before the instruction when ``cond``: the interpreter performs it."""
    with e.b.if_then(cond, likely=False):
        e.leave(pc, EXIT_FP, k)


# Bit-pattern predicates (on the integer bits of ``fmt``).
def _mag(b: ir.IRBuilder, x: ir.Value, fmt: _Fmt) -> ir.Value:
    return b.and_(x, _c(fmt.abs, fmt.ity))


def _is_nan(b: ir.IRBuilder, x: ir.Value, fmt: _Fmt) -> ir.Value:
    return b.icmp_unsigned(">", _mag(b, x, fmt), _c(fmt.exp, fmt.ity))


def _is_snan(b: ir.IRBuilder, x: ir.Value, fmt: _Fmt) -> ir.Value:
    quiet = b.icmp_unsigned("!=", b.and_(x, _c(fmt.quiet, fmt.ity)), _c(0, fmt.ity))
    return b.and_(_is_nan(b, x, fmt), b.not_(quiet))


def _is_inf(b: ir.IRBuilder, x: ir.Value, fmt: _Fmt) -> ir.Value:
    return b.icmp_unsigned("==", _mag(b, x, fmt), _c(fmt.exp, fmt.ity))


def _is_finite(b: ir.IRBuilder, x: ir.Value, fmt: _Fmt) -> ir.Value:
    return b.icmp_unsigned("<", _mag(b, x, fmt), _c(fmt.exp, fmt.ity))


def _is_zero(b: ir.IRBuilder, x: ir.Value, fmt: _Fmt) -> ir.Value:
    return b.icmp_unsigned("==", _mag(b, x, fmt), _c(0, fmt.ity))


def _finite_nonzero(b: ir.IRBuilder, x: ir.Value, fmt: _Fmt) -> ir.Value:
    return b.and_(_is_finite(b, x, fmt), b.not_(_is_zero(b, x, fmt)))


def _mag_below(b: ir.IRBuilder, x: ir.Value, fmt: _Fmt, bound: int) -> ir.Value:
    return b.icmp_unsigned("<", _mag(b, x, fmt), _c(bound, fmt.ity))


def _any(b: ir.IRBuilder, *conds: ir.Value) -> ir.Value:
    out = conds[0]
    for cond in conds[1:]:
        out = b.or_(out, cond)
    return out


def _all(b: ir.IRBuilder, *conds: ir.Value) -> ir.Value:
    out = conds[0]
    for cond in conds[1:]:
        out = b.and_(out, cond)
    return out


def _to_f(b: ir.IRBuilder, x: ir.Value, fmt: _Fmt) -> ir.Value:
    return b.bitcast(x, fmt.fty)


def _to_d(b: ir.IRBuilder, x: ir.Value, fmt: _Fmt) -> ir.Value:
    """The operand as a host double (exact for singles)."""
    value = b.bitcast(x, fmt.fty)
    return value if fmt.width == 64 else b.fpext(value, D)


def _bits(b: ir.IRBuilder, value: ir.Value) -> ir.Value:
    return b.bitcast(value, I64 if value.type == D else I32)


def _canonical(b: ir.IRBuilder, bits: ir.Value, fmt: _Fmt) -> ir.Value:
    return b.select(_is_nan(b, bits, fmt), _c(fmt.qnan, fmt.ity), bits)


def _intrinsic(e: _Emitter, name: str, nargs: int) -> ir.Function:
    module = e.fn.module
    try:
        fn = module.get_global(name)
    except KeyError:
        fn = ir.Function(module, ir.FunctionType(D, [D] * nargs), name)
    assert isinstance(fn, ir.Function)
    return fn


def _fma(e: _Emitter, x: ir.Value, y: ir.Value, z: ir.Value) -> ir.Value:
    return e.b.call(_intrinsic(e, "llvm.fma.f64", 3), [x, y, z])


def _two_sum_err(b: ir.IRBuilder, x: ir.Value, y: ir.Value, s: ir.Value) -> ir.Value:
    """Knuth's TwoSum: the exact error ``x + y - s`` of ``s = fl(x + y)`` (no overflow)."""
    yy = b.fsub(s, x)
    xx = b.fsub(s, yy)
    return b.fadd(b.fsub(x, xx), b.fsub(y, yy))


def _nv(b: ir.IRBuilder, ops: Sequence[ir.Value], result_bits: ir.Value, fmt: _Fmt) -> ir.Value:
    """NV: a signalling NaN operand, or a NaN result from non-NaN operands."""
    snan = _any(b, *[_is_snan(b, x, fmt) for x in ops])
    some_nan = _any(b, *[_is_nan(b, x, fmt) for x in ops])
    return b.or_(snan, b.and_(_is_nan(b, result_bits, fmt), b.not_(some_nan)))


# --- loads, stores, moves, sign injection, classify (no flags) -------------------------------


def _fload(e: _Emitter, instr: Instr, pc: int, k: int) -> None:
    b = e.b
    width = instr.spec.width
    addr = b.add(e.get(instr.rs1), _c(instr.imm))
    ptr = e._entry(addr, width, False, pc, k)
    _fset(e, instr.rd, b.load(ptr, align=1))


def _fstore(e: _Emitter, instr: Instr, pc: int, k: int) -> None:
    b = e.b
    assert e.fp is not None
    width = instr.spec.width
    addr = b.add(e.get(instr.rs1), _c(instr.imm))
    ptr = e._entry(addr, width, True, pc, k)
    value = b.load(e.fp.f[instr.rs2])  # fsw stores the low word, boxed or not
    if width == 4:
        value = b.trunc(value, I32)
    b.store(value, ptr, align=1)


def _fmv_x_w(e: _Emitter, instr: Instr, pc: int, k: int) -> None:
    assert e.fp is not None
    b = e.b
    e.set(instr.rd, b.sext(b.trunc(b.load(e.fp.f[instr.rs1]), I32), I64))


def _fmv_x_d(e: _Emitter, instr: Instr, pc: int, k: int) -> None:
    assert e.fp is not None
    e.set(instr.rd, e.b.load(e.fp.f[instr.rs1]))


def _fmv_w_x(e: _Emitter, instr: Instr, pc: int, k: int) -> None:
    _fset(e, instr.rd, e.b.trunc(e.get(instr.rs1), I32))


def _fmv_d_x(e: _Emitter, instr: Instr, pc: int, k: int) -> None:
    _fset(e, instr.rd, e.get(instr.rs1))


def _sgnj(kind: str) -> Op:
    def op(e: _Emitter, instr: Instr, pc: int, k: int) -> None:
        b = e.b
        fmt = _fmt_of(instr)
        a = _fget(e, instr.rs1, fmt)
        c = _fget(e, instr.rs2, fmt)
        sign = _c(fmt.sign, fmt.ity)
        if kind == "x":
            value = b.xor(a, b.and_(c, sign))
        else:
            src = c if kind == "" else b.not_(c)
            value = b.or_(_mag(b, a, fmt), b.and_(src, sign))
        _fset(e, instr.rd, value)

    return op


def _fclass(e: _Emitter, instr: Instr, pc: int, k: int) -> None:
    b = e.b
    fmt = _fmt_of(instr)
    a = _fget(e, instr.rs1, fmt)
    negative = b.icmp_unsigned("!=", b.and_(a, _c(fmt.sign, fmt.ity)), _c(0, fmt.ity))
    exp = b.and_(a, _c(fmt.exp, fmt.ity))
    frac_zero = b.icmp_unsigned("==", b.and_(a, _c(fmt.frac, fmt.ity)), _c(0, fmt.ity))
    exp_all = b.icmp_unsigned("==", exp, _c(fmt.exp, fmt.ity))
    exp_zero = b.icmp_unsigned("==", exp, _c(0, fmt.ity))
    quiet = b.icmp_unsigned("!=", b.and_(a, _c(fmt.quiet, fmt.ity)), _c(0, fmt.ity))

    def signed(neg: int, pos: int) -> ir.Value:
        return b.select(negative, _c(neg), _c(pos))

    value = signed(0x002, 0x040)  # normal
    value = b.select(b.and_(exp_zero, b.not_(frac_zero)), signed(0x004, 0x020), value)
    value = b.select(b.and_(exp_zero, frac_zero), signed(0x008, 0x010), value)
    nan = b.select(quiet, _c(0x200), _c(0x100))
    value = b.select(exp_all, b.select(frac_zero, signed(0x001, 0x080), nan), value)
    e.set(instr.rd, value)


# --- compares, min, max --------------------------------------------------------------------


def _compare_fp(op: str) -> Op:
    """feq (quiet: NV only for sNaN), flt and fle (signalling: NV for any NaN)."""

    def emit(e: _Emitter, instr: Instr, pc: int, k: int) -> None:
        b = e.b
        fmt = _fmt_of(instr)
        a = _fget(e, instr.rs1, fmt)
        c = _fget(e, instr.rs2, fmt)
        # Ordered comparisons: false with a NaN operand, and -0 == +0, as RISC-V wants.
        cond = b.fcmp_ordered(op, _to_f(b, a, fmt), _to_f(b, c, fmt))
        if op == "==":
            invalid = b.or_(_is_snan(b, a, fmt), _is_snan(b, c, fmt))
        else:
            invalid = b.or_(_is_nan(b, a, fmt), _is_nan(b, c, fmt))
        e.set(instr.rd, b.zext(cond, I64))
        _raise(e, _flag(b, invalid, NV_FLAG))

    return emit


def _minmax(is_min: bool) -> Op:
    """RISC-V 2.2 fmin/fmax (minimumNumber/maximumNumber): a NaN operand yields the other
    operand, two NaNs the canonical NaN, -0 < +0, NV for a signalling NaN."""

    def emit(e: _Emitter, instr: Instr, pc: int, k: int) -> None:
        b = e.b
        fmt = _fmt_of(instr)
        a = _fget(e, instr.rs1, fmt)
        c = _fget(e, instr.rs2, fmt)
        fa, fc = _to_f(b, a, fmt), _to_f(b, c, fmt)
        first, second = ("<", ">") if is_min else (">", "<")
        # Equal values have equal bits except +0/-0, where OR picks -0 and AND +0.
        tie = b.or_(a, c) if is_min else b.and_(a, c)
        value = b.select(
            b.fcmp_ordered(first, fa, fc),
            a,
            b.select(b.fcmp_ordered(second, fa, fc), c, tie),
        )
        na, nc = _is_nan(b, a, fmt), _is_nan(b, c, fmt)
        value = b.select(na, c, b.select(nc, a, value))
        value = b.select(b.and_(na, nc), _c(fmt.qnan, fmt.ity), value)
        _fset(e, instr.rd, value)
        _raise(e, _flag(b, b.or_(_is_snan(b, a, fmt), _is_snan(b, c, fmt)), NV_FLAG))

    return emit


# --- arithmetic (RNE) ----------------------------------------------------------------------


#: What an arithmetic emitter computes before the flags: the result bits (NaNs not yet
#: canonical), whether it is inexact when finite, and when to leave it to the interpreter.
_Computed = tuple[ir.Value, ir.Value, ir.Value | None]


def _positive(b: ir.IRBuilder, a: ir.Value, fmt: _Fmt) -> ir.Value:
    """A finite, nonzero, positive operand (the only sqrt operand with a rounding error)."""
    return _all(b, _finite_nonzero(b, a, fmt), b.icmp_unsigned("<", a, _c(fmt.sign, fmt.ity)))


def _both_finite_nonzero(b: ir.IRBuilder, a: ir.Value, c: ir.Value, fmt: _Fmt) -> ir.Value:
    return b.and_(_finite_nonzero(b, a, fmt), _finite_nonzero(b, c, fmt))


def _ne0(b: ir.IRBuilder, v: ir.Value) -> ir.Value:
    """``v != 0`` for a host double, false when it is NaN."""
    return b.fcmp_ordered("!=", v, ir.Constant(D, 0.0))


def _tiny_single(b: ir.IRBuilder, r: ir.Value) -> ir.Value:
    """The double ``r`` is nonzero and so small its single rounding could be tiny."""
    rb = _bits(b, r)
    return _all(b, _finite_nonzero(b, rb, _DF), _mag_below(b, rb, _DF, _SMALL_S_AS_D))


def _sum(e: _Emitter, fmt: _Fmt, a: ir.Value, c: ir.Value, x: ir.Value, y: ir.Value) -> _Computed:
    b = e.b
    r = b.fadd(x, y)
    # Fast2Sum in both orders: the sum is exact iff r - x == y and r - y == x. A tiny sum is
    # always exact, so addition never needs the interpreter.
    err = b.or_(b.fcmp_unordered("!=", b.fsub(r, x), y), b.fcmp_unordered("!=", b.fsub(r, y), x))
    if fmt.width == 64:
        return _bits(b, r), err, None
    rs = b.fptrunc(r, F32)
    return _bits(b, rs), b.or_(err, b.fcmp_unordered("!=", b.fpext(rs, D), r)), None


def _product(
    e: _Emitter, fmt: _Fmt, a: ir.Value, c: ir.Value, x: ir.Value, y: ir.Value
) -> _Computed:
    b = e.b
    r = b.fmul(x, y)
    if fmt.width == 32:  # the double product of singles is exact
        rs = b.fptrunc(r, F32)
        return _bits(b, rs), b.fcmp_unordered("!=", b.fpext(rs, D), r), _tiny_single(b, r)
    rb = _bits(b, r)
    err = _ne0(b, _fma(e, x, y, b.fneg(r)))
    hard = _all(
        b,
        _both_finite_nonzero(b, a, c, fmt),
        _is_finite(b, rb, _DF),
        _mag_below(b, rb, _DF, _SMALL_D),
    )
    return rb, err, hard


def _quotient(
    e: _Emitter, fmt: _Fmt, a: ir.Value, c: ir.Value, x: ir.Value, y: ir.Value
) -> _Computed:
    b = e.b
    r = b.fdiv(x, y)
    both = _both_finite_nonzero(b, a, c, fmt)  # otherwise the quotient is exact, inf or NaN
    if fmt.width == 32:
        # q * y is exact in double: the single quotient is exact iff it gives x back.
        rs = b.fptrunc(r, F32)
        err = b.and_(both, b.fcmp_unordered("!=", b.fmul(b.fpext(rs, D), y), x))
        return _bits(b, rs), err, b.and_(both, _tiny_single(b, r))
    rb = _bits(b, r)
    err = b.and_(both, _ne0(b, _fma(e, b.fneg(r), y, x)))
    small = b.or_(_mag_below(b, a, _DF, _SMALL_D), _mag_below(b, rb, _DF, _SMALL_D))
    return rb, err, b.and_(both, small)


def _root(e: _Emitter, fmt: _Fmt, a: ir.Value, c: ir.Value, x: ir.Value, y: ir.Value) -> _Computed:
    b = e.b
    r = e.b.call(_intrinsic(e, "llvm.sqrt.f64", 1), [x])
    positive = _positive(b, a, fmt)
    if fmt.width == 32:  # roots of singles are normal singles; q * q is exact in double
        rs = b.fptrunc(r, F32)
        back = b.fpext(rs, D)
        return _bits(b, rs), b.and_(positive, b.fcmp_unordered("!=", b.fmul(back, back), x)), None
    err = b.and_(positive, _ne0(b, _fma(e, b.fneg(r), r, x)))
    return _bits(b, r), err, b.and_(positive, _mag_below(b, a, _DF, _SMALL_D))


_COMPUTE: Final = {"add": _sum, "sub": _sum, "mul": _product, "div": _quotient, "sqrt": _root}


def _arith(kind: str) -> Op:
    """fadd, fsub, fmul, fdiv and fsqrt in RNE with exact flags (see the note above)."""
    compute = _COMPUTE[kind]

    def emit(e: _Emitter, instr: Instr, pc: int, k: int) -> None:
        b = e.b
        fmt = _fmt_of(instr)
        _rm_ok(e, instr, pc, k)
        a = _fget(e, instr.rs1, fmt)
        c = a if kind == "sqrt" else _fget(e, instr.rs2, fmt)
        x, y = _to_d(b, a, fmt), _to_d(b, c, fmt)
        if kind == "sub":
            y = b.fneg(y)
        result, err, hard = compute(e, fmt, a, c, x, y)
        if hard is not None:
            _hard(e, hard, pc, k)
        fin_a, fin_c = _is_finite(b, a, fmt), _is_finite(b, c, fmt)
        dz: ir.Value = _c(0, I1)
        if kind == "div":
            dz = _all(b, _is_zero(b, c, fmt), _finite_nonzero(b, a, fmt))
        overflow = _all(b, _is_inf(b, result, fmt), fin_a, fin_c, b.not_(dz))
        inexact = b.or_(b.and_(_is_finite(b, result, fmt), err), overflow)
        invalid = _nv(b, [a] if kind == "sqrt" else [a, c], result, fmt)
        flags = _flags(
            b, (invalid, NV_FLAG), (dz, DZ_FLAG), (overflow, OF_FLAG), (inexact, NX_FLAG)
        )
        _fset(e, instr.rd, _canonical(b, result, fmt))
        _raise(e, flags)

    return emit


def _fused_single(e: _Emitter, x: ir.Value, y: ir.Value, z: ir.Value) -> _Computed:
    """Single FMA: the exact double product plus the addend, rounded to odd at 53 bits (the
    TwoSum error says whether and on which side it was inexact), then rounded once to single."""
    b = e.b
    p = b.fmul(x, y)  # exact
    s = b.fadd(p, z)
    err = _two_sum_err(b, p, z, s)
    sb = _bits(b, s)
    # An inexact sum with an even last bit moves one step toward the exact value, which keeps
    # it on the exact value's side of every single.
    inexact_d = b.fcmp_ordered("!=", err, ir.Constant(D, 0.0))  # (NaN when s is not finite)
    even = b.icmp_unsigned("==", b.and_(sb, _c(1)), _c(0))
    away = b.icmp_signed(">=", b.xor(sb, _bits(b, err)), _c(0))  # same signs
    odd = b.select(b.and_(inexact_d, even), b.add(sb, b.select(away, _c(1), _c(-1))), sb)
    ro = b.bitcast(odd, D)
    rs = b.fptrunc(ro, F32)
    err_any = b.or_(inexact_d, b.fcmp_unordered("!=", b.fpext(rs, D), ro))
    return _bits(b, rs), err_any, _tiny_single(b, ro)


def _fused_double(e: _Emitter, x: ir.Value, y: ir.Value, z: ir.Value) -> _Computed:
    """Double FMA: the host's fma, and Boldo and Muller's ErrFma for its exact error
    (``x * y + z - r == gamma + alpha2``, valid without underflow or overflow)."""
    b = e.b
    r = _fma(e, x, y, z)
    u1 = b.fmul(x, y)
    u2 = _fma(e, x, y, b.fneg(u1))
    alpha1 = b.fadd(z, u2)
    alpha2 = _two_sum_err(b, z, u2, alpha1)
    beta1 = b.fadd(u1, alpha1)
    beta2 = _two_sum_err(b, u1, alpha1, beta1)
    gamma = b.fadd(b.fsub(beta1, r), beta2)
    err = _ne0(b, b.fadd(gamma, alpha2))

    def in_range(v: ir.Value) -> ir.Value:
        m = _mag(b, _bits(b, v), _DF)
        return b.and_(b.icmp_unsigned(">=", m, _c(_SMALL_D)), b.icmp_unsigned("<", m, _c(_LARGE_D)))

    # Outside these ranges the product's error term or an intermediate sum could underflow or
    # overflow (an infinite r is an overflow, which needs no error term).
    ok = _all(b, in_range(u1), in_range(r), _mag_below(b, _bits(b, z), _DF, _LARGE_D))
    hard = b.and_(b.not_(_is_inf(b, _bits(b, r), _DF)), b.not_(ok))
    return _bits(b, r), err, hard


def _fused(negate_product: bool, negate_c: bool) -> Op:
    """fmadd, fmsub, fnmsub, fnmadd: ``(+/-)(a * b) (+/-) c`` rounded once, RNE, exact flags."""

    def emit(e: _Emitter, instr: Instr, pc: int, k: int) -> None:
        b = e.b
        fmt = _fmt_of(instr)
        _rm_ok(e, instr, pc, k)
        ops = [_fget(e, r, fmt) for r in (instr.rs1, instr.rs2, instr.rs3)]
        x, y, z = (_to_d(b, v, fmt) for v in ops)
        if negate_product:
            x = b.fneg(x)
        if negate_c:
            z = b.fneg(z)
        result, err, hard = (_fused_single if fmt.width == 32 else _fused_double)(e, x, y, z)
        # Only a nonzero finite product with a finite addend has a rounding error.
        rounds = _all(b, _both_finite_nonzero(b, ops[0], ops[1], fmt), _is_finite(b, ops[2], fmt))
        assert hard is not None
        _hard(e, b.and_(rounds, hard), pc, k)
        a, c = ops[0], ops[1]
        inf_times_zero = b.or_(
            b.and_(_is_inf(b, a, fmt), _is_zero(b, c, fmt)),
            b.and_(_is_zero(b, a, fmt), _is_inf(b, c, fmt)),
        )
        # The spec makes inf * 0 invalid even when the addend is a quiet NaN.
        invalid = b.or_(_nv(b, ops, result, fmt), inf_times_zero)
        finite = _all(b, *[_is_finite(b, v, fmt) for v in ops])
        overflow = b.and_(_is_inf(b, result, fmt), finite)
        inexact = b.or_(_all(b, _is_finite(b, result, fmt), rounds, err), overflow)
        flags = _flags(b, (invalid, NV_FLAG), (overflow, OF_FLAG), (inexact, NX_FLAG))
        _fset(e, instr.rd, _canonical(b, result, fmt))
        _raise(e, flags)

    return emit


# --- conversions (RNE) ---------------------------------------------------------------------

_INT_RANGES: Final = {  # the integer type's lowest and highest value
    "w": (-(1 << 31), (1 << 31) - 1),
    "wu": (0, (1 << 32) - 1),
    "l": (-(1 << 63), (1 << 63) - 1),
    "lu": (0, (1 << 64) - 1),
}


def _int_intrinsic(e: _Emitter, name: str) -> ir.Function:
    module = e.fn.module
    try:
        fn = module.get_global(name)
    except KeyError:
        fn = ir.Function(module, ir.FunctionType(I64, [I64, I1]), name)
    assert isinstance(fn, ir.Function)
    return fn


def _round_even(b: ir.IRBuilder, x: ir.Value) -> ir.Value:
    """``x`` rounded to an integer, ties to even: adding and subtracting 2**52 makes the host's
    RNE addition do the rounding for |x| < 2**52; larger doubles (and inf, NaN) are integers."""
    magic = ir.Constant(D, 2.0**52)
    sign = b.and_(_bits(b, x), _c(1 << 63))
    mag = b.bitcast(b.and_(_bits(b, x), _c((1 << 63) - 1)), D)
    rounded = b.fsub(b.fadd(mag, magic), magic)
    small = b.fcmp_ordered("<", mag, magic)
    return b.bitcast(b.or_(_bits(b, b.select(small, rounded, mag)), sign), D)


def _to_int(it: str) -> Op:
    """fcvt.{w,wu,l,lu}.{s,d}: round to nearest even, saturate with NV (NaN gives the maximum),
    NX when in range and inexact; 32-bit results sign-extended."""
    lo, hi = _INT_RANGES[it]
    signed = not it.endswith("u")

    def emit(e: _Emitter, instr: Instr, pc: int, k: int) -> None:
        b = e.b
        fmt = _fmt_of(instr)
        _rm_ok(e, instr, pc, k)
        a = _fget(e, instr.rs1, fmt)
        x = _to_d(b, a, fmt)
        r = _round_even(b, x)
        # The bounds as doubles: lo is a power of two (or 0); above hi means >= hi + 1, which
        # is a power of two too, so both comparisons are exact.
        below = b.fcmp_ordered("<", r, ir.Constant(D, float(lo)))
        above = b.fcmp_ordered(">=", r, ir.Constant(D, float(hi + 1)))
        nan = _is_nan(b, a, fmt)
        invalid = _any(b, nan, below, above)
        safe = b.select(invalid, ir.Constant(D, 0.0), r)
        value = b.fptosi(safe, I64) if signed else b.fptoui(safe, I64)
        if it in ("w", "wu"):
            value = b.sext(b.trunc(value, I32), I64)
        saturated = b.select(b.or_(nan, above), _c(hi), _c(lo))
        if it == "wu":
            saturated = b.select(b.or_(nan, above), _c(-1), _c(0))  # 2**32 - 1 sign-extended
        e.set(instr.rd, b.select(invalid, saturated, value))
        inexact = b.and_(b.not_(invalid), b.fcmp_unordered("!=", r, x))
        _raise(e, _flags(b, (invalid, NV_FLAG), (inexact, NX_FLAG)))

    return emit


def _from_int(it: str) -> Op:
    """fcvt.{s,d}.{w,wu,l,lu}: the host's conversion rounds to nearest even; NX when the
    integer has more significant bits (from its highest to its lowest set bit) than the format
    holds."""
    signed = not it.endswith("u")

    def emit(e: _Emitter, instr: Instr, pc: int, k: int) -> None:
        b = e.b
        fmt = _S if instr.spec.name.startswith("fcvt.s.") else _DF  # the destination's format
        _rm_ok(e, instr, pc, k)
        v = e.get(instr.rs1)
        if it in ("w", "wu"):
            v = b.sext(b.trunc(v, I32), I64) if signed else b.zext(b.trunc(v, I32), I64)
        conv = b.sitofp if signed else b.uitofp
        result = _bits(b, conv(v, fmt.fty))
        negative = b.icmp_signed("<", v, _c(0)) if signed else _c(0, I1)
        mag = b.select(negative, b.neg(v), v)  # |MIN| is 2**63 as an unsigned value
        zero = b.icmp_unsigned("==", mag, _c(0))
        safe = b.select(zero, _c(1), mag)
        lead = b.call(_int_intrinsic(e, "llvm.ctlz.i64"), [safe, _c(1, I1)])
        trail = b.call(_int_intrinsic(e, "llvm.cttz.i64"), [safe, _c(1, I1)])
        span = b.sub(b.sub(_c(64), lead), trail)
        p = 24 if fmt.width == 32 else 53
        inexact = b.icmp_unsigned(">", span, _c(p))
        _fset(e, instr.rd, result)
        _raise(e, _flag(b, inexact, NX_FLAG))

    return emit


def _fcvt_s_d(e: _Emitter, instr: Instr, pc: int, k: int) -> None:
    """Narrowing: one RNE rounding; results that could be tiny go to the interpreter."""
    b = e.b
    _rm_ok(e, instr, pc, k)
    a = _fget(e, instr.rs1, _DF)
    x = b.bitcast(a, D)
    rs = b.fptrunc(x, F32)
    result = _bits(b, rs)
    _hard(e, _tiny_single(b, x), pc, k)
    overflow = b.and_(_is_inf(b, result, _S), _is_finite(b, a, _DF))
    inexact = b.or_(
        b.and_(_is_finite(b, result, _S), b.fcmp_unordered("!=", b.fpext(rs, D), x)), overflow
    )
    invalid = _is_snan(b, a, _DF)
    _fset(e, instr.rd, _canonical(b, result, _S))
    _raise(e, _flags(b, (invalid, NV_FLAG), (overflow, OF_FLAG), (inexact, NX_FLAG)))


def _fcvt_d_s(e: _Emitter, instr: Instr, pc: int, k: int) -> None:
    """Widening is exact; a NaN becomes the canonical NaN (NV if it signalled)."""
    b = e.b
    a = _fget(e, instr.rs1, _S)
    result = _bits(b, b.fpext(b.bitcast(a, F32), D))
    _fset(e, instr.rd, b.select(_is_nan(b, a, _S), _c(_DF.qnan), result))
    _raise(e, _flag(b, _is_snan(b, a, _S), NV_FLAG))


def _fp_ops() -> dict[str, Op]:
    ops: dict[str, Op] = {
        "flw": _fload,
        "fld": _fload,
        "fsw": _fstore,
        "fsd": _fstore,
        "fmv.x.w": _fmv_x_w,
        "fmv.x.d": _fmv_x_d,
        "fmv.w.x": _fmv_w_x,
        "fmv.d.x": _fmv_d_x,
        "fcvt.s.d": _fcvt_s_d,
        "fcvt.d.s": _fcvt_d_s,
    }
    for p in ("s", "d"):
        ops[f"fsgnj.{p}"] = _sgnj("")
        ops[f"fsgnjn.{p}"] = _sgnj("n")
        ops[f"fsgnjx.{p}"] = _sgnj("x")
        ops[f"fclass.{p}"] = _fclass
        ops[f"feq.{p}"] = _compare_fp("==")
        ops[f"flt.{p}"] = _compare_fp("<")
        ops[f"fle.{p}"] = _compare_fp("<=")
        ops[f"fmin.{p}"] = _minmax(True)
        ops[f"fmax.{p}"] = _minmax(False)
        for kind in ("add", "sub", "mul", "div", "sqrt"):
            ops[f"f{kind}.{p}"] = _arith(kind)
        ops[f"fmadd.{p}"] = _fused(False, False)
        ops[f"fmsub.{p}"] = _fused(False, True)
        ops[f"fnmsub.{p}"] = _fused(True, False)
        ops[f"fnmadd.{p}"] = _fused(True, True)
        for it in ("w", "wu", "l", "lu"):
            ops[f"fcvt.{it}.{p}"] = _to_int(it)
            ops[f"fcvt.{p}.{it}"] = _from_int(it)
    return ops


NATIVE_OPS.update(_fp_ops())


def build_region(module: ir.Module, name: str, blocks: Sequence[RegionBlock]) -> ir.Function:
    """Add the function for ``blocks`` (the entry block first) to ``module``."""
    emitter = _Emitter(module, name, blocks)
    for start, instrs, end in blocks:
        emitter.block(start, instrs, end)
    return emitter.fn
