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

#: Bump when the code this module generates for the same guest bytes changes (new instructions,
#: other exits, a new ``io`` layout): the on-disk native code cache keys entries by it.
NATIVE_TRANSLATOR_VERSION: Final = 2

TLB_ENTRIES: Final = 1024
#: Entries of the chain table (``io[4]`` points at it): ``(pc, function address)`` pairs,
#: direct-mapped by ``(pc >> 1) % CHAIN_ENTRIES``, through which a region that jumps to the entry
#: of another compiled region calls it without returning to Python.
CHAIN_ENTRIES: Final = 4096
INVALID_TAG: Final = (1 << 64) - 1
#: Words of the ``io`` block.
IO_WORDS: Final = 6
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
            if instr is None or instr.spec.name not in NATIVE_OPS:
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


def build_region(module: ir.Module, name: str, blocks: Sequence[RegionBlock]) -> ir.Function:
    """Add the function for ``blocks`` (the entry block first) to ``module``."""
    emitter = _Emitter(module, name, blocks)
    for start, instrs, end in blocks:
        emitter.block(start, instrs, end)
    return emitter.fn
