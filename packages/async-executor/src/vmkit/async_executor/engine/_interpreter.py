"""The InterpreterExecutor: pre-decoded basic blocks of specialised closures.

Why one module of this size: the template specialisation, the block builder and the block loop
share the closure protocol (factory arguments, block tuples) and are tuned together for the
switch path; splitting them would put one hot path's pieces in several files.

Design note
-----------
Decode once, run many times. The first time a PC is reached, the instructions from it to the next
control transfer (or ``MAX_BLOCK`` instructions, or the end of the page) are decoded and each is
turned into a closure specialised for its operands: the table's template is pasted into a small
factory whose source is compiled once per template shape (``_factory``), and the factory is called
with the operand values, which the closure then reads as cell constants. So every template in the
table is proven to be executable Python by the interpreter, and the JIT can paste the same text.

Invariants:

* A block is ``(run, ops, n, nmem, sync, pcs)``: ``ops`` are the closures of its first
  ``n - 1`` instructions (they return nothing), ``run`` calls them and then the last one's closure,
  which returns the next PC (see ``_drive``); ``pcs`` holds the address of every instruction.
  ``nmem`` is the static count of memory accesses (for TLB statistics), ``sync`` says the block
  reads ``hart.instret``/``hart.pc`` (CSR counters, ecall), so the loop stores them first.
* ``hart.instret`` and ``hart.pc`` are exact at every block boundary the loop reports and at every
  fault: a fault raised by instruction ``i`` of a block retires exactly ``i`` instructions of it.
  The run loop keeps the count in a local and writes it back when it stops.
* The instruction budget is exact: a block that would overrun it runs only its first instructions.
* Code pages are watched through the AddressSpace (``watch_code_page``); a write to one calls our
  listener, which drops every block decoded from that page, so self-modifying code and ``fence.i``
  work without any check on the store fast path.
* LR/SC reservations across harts: LR records the address in ``hart.reservation`` and watches its
  page. Any later write to that page (a plain store or an SC or AMO from any hart sharing the
  AddressSpace, or a syscall writing guest memory) reaches the listener of every executor on that
  address space, which clears its hart's reservation when it lies on that page. SC succeeds only if
  the reservation still names its address. The reservation set is thus the whole 4 KiB page: an
  unrelated store to the same page makes an SC fail spuriously, which the ISA allows. SC and AMO
  stores always take the slow path so they are seen by the other harts' listeners.

* Faults the executor detects (SIGSEGV, SIGILL, SIGBUS) go to ``Machine.deliver_fault``: when the
  guest installed a handler for the signal, the run goes on in it, as on Linux (and as the JIT
  does); otherwise the fault ends the guest.
* :meth:`InterpreterExecutor.coroutine` runs the guest in slices under a moving absolute limit;
  a slice ends exactly on its limit, so a closed generator leaves the hart state exact.

Speed: the run loop does one dict lookup, a tuple unpack, a ``for`` over the closures and one call
per instruction; the closures hold X, the TLB dicts' ``get`` and every operand as cells; loads and
stores inline the TLB fast path of the contract and fall back to ``AddressSpace.load``/``store``.
"""

from __future__ import annotations

import importlib
import re
import struct
import time
import types
from collections.abc import Callable
from functools import partial
from types import CodeType
from typing import Any, Final

from vmkit.async_executor.engine._defaults import DEFAULT_SLICE
from vmkit.async_executor.engine._executor import NO_LIMIT, ExecutorBase, MachineLike
from vmkit.async_executor.engine._stats import ExecutionStats
from vmkit.async_executor.errors import (
    BudgetExhausted,
    BusError,
    GuestExit,
    GuestFault,
    GuestSignal,
    IllegalInstruction,
    SegmentationFault,
)
from vmkit.async_executor.isa._decode import FULL_DECODER, Decoder, Instr
from vmkit.async_executor.isa._disasm import disassemble, disassemble_raw
from vmkit.async_executor.isa._table import TEMPLATE_CONSTANTS, TEMPLATE_HELPERS, InstrSpec
from vmkit.async_executor.machine._hart import Hart
from vmkit.async_executor.machine._hooks import EnterHookedCode
from vmkit.async_executor.machine._memory import AddressSpace, GuestMemoryFault

__all__ = ["DEFAULT_SLICE", "MAX_BLOCK", "InterpreterExecutor", "MachineLike"]

#: Longest basic block, in instructions: long enough that the per-block overhead is small,
#: short enough that a budget-limited partial block or a fault mid-block stays cheap.
MAX_BLOCK: Final = 64

_SIGTRAP: Final = 5
_NO_LIMIT: Final = NO_LIMIT


Block = tuple[Callable[[], int], tuple[Callable[[], Any], ...], int, int, bool, tuple[int, ...]]
Op = Callable[[], Any]

# ------------------------------------------------------------------------------ code generation

_CONST_RE: Final = re.compile(r"\b(M64|S64|M32|S32)\b")


def _fold(src: str) -> str:
    """Paste the template constants in as literals (LOAD_CONST beats a global lookup)."""
    src = src.replace("(imm & M64)", "immu")
    return _CONST_RE.sub(lambda m: hex(TEMPLATE_CONSTANTS[m.group(1)]), src)


_UNPACK: Final = {
    (2, False): "U16",
    (2, True): "I16",
    (4, False): "U32",
    (4, True): "I32",
    (8, False): "U64",
    (8, True): "U64",
}
_PACK: Final = {2: "P16", 4: "P32", 8: "P64"}

_FACTORY_ARGS: Final = (
    "X, F, H, R, W, LOAD, STORE, ctx, rd, rs1, rs2, rs3, imm, immu, pc, npc, rm, raw, k, aux"
)


def _base_namespace() -> dict[str, Any]:
    ns: dict[str, Any] = dict(TEMPLATE_HELPERS)
    ns.update(
        U16=struct.Struct("<H").unpack_from,
        I16=struct.Struct("<h").unpack_from,
        U32=struct.Struct("<I").unpack_from,
        I32=struct.Struct("<i").unpack_from,
        U64=struct.Struct("<Q").unpack_from,
        P16=struct.Struct("<H").pack_into,
        P32=struct.Struct("<I").pack_into,
        P64=struct.Struct("<Q").pack_into,
        GuestMemoryFault=GuestMemoryFault,
        SegmentationFault=SegmentationFault,
        BusError=BusError,
        IllegalInstruction=IllegalInstruction,
        GuestSignal=GuestSignal,
        disassemble_raw=disassemble_raw,
    )
    return ns


_NAMESPACE: Final[dict[str, Any]] = _base_namespace()
_fp_loaded = False


def _need_fp() -> None:
    """Bring the FP module's functions into the template namespace (on first FP instruction)."""
    global _fp_loaded
    if not _fp_loaded:
        fp = importlib.import_module("vmkit.async_executor.isa._fp")
        for name in fp.__all__:
            _NAMESPACE[name] = getattr(fp, name)
        _fp_loaded = True


_factories: dict[str, Callable[..., Op]] = {}


def _prebuilt() -> Any:
    """The generated module of precompiled factories and drivers (see ``_interp_gen``)."""
    from vmkit.async_executor.engine import _interp_prebuilt

    return _interp_prebuilt


def _factory(body: str) -> Callable[..., Op]:
    """Compile (once per distinct body) ``def f(<operands>): def op(): <body>; return op``."""
    fn = _factories.get(body)
    if fn is None:
        code = _prebuilt().FACTORIES.get(body)
        if code is not None:
            fn = types.FunctionType(code, _NAMESPACE)
            _factories[body] = fn
            return fn
        indented = "\n".join("        " + line for line in body.splitlines())
        src = f"def _make({_FACTORY_ARGS}):\n    def op():\n{indented}\n    return op\n"
        code = compile(src, "<interpreter template>", "exec")
        scope: dict[str, Any] = {}
        exec(code, _NAMESPACE, scope)
        fn = scope["_make"]
        _factories[body] = fn
    return fn


_MEM_FAULT: Final = "except GuestMemoryFault as e:\n    raise e.to_segfault(pc) from None"


def _sext_expr(value: str, width: int) -> str:
    if width == 8:
        return value
    bits = 8 * width
    sign = 1 << (bits - 1)
    return f"((({value}) ^ {sign:#x}) - {sign:#x}) & 0xffffffffffffffff"


def _load_body(spec: InstrSpec) -> str:
    w = spec.width
    if spec.dest == "f":
        dst = "F[rd]"
        conv_fast = "0xffffffff00000000 | " if w == 4 else ""
        fast = f"{dst} = {conv_fast}{_UNPACK[(w, False)]}(b, o)[0]"
        slow = f"{dst} = {conv_fast}v"
    elif w == 1:
        fast_val = "b[a & 4095]"
        fast = "X[rd] = " + (_sext_expr(fast_val, 1) if spec.signed else fast_val)
        slow = "X[rd] = " + (_sext_expr("v", 1) if spec.signed else "v")
    else:
        fmt = _UNPACK[(w, spec.signed)]
        fast = f"X[rd] = {fmt}(b, o)[0]" + (" & 0xffffffffffffffff" if spec.signed else "")
        slow = "X[rd] = " + (_sext_expr("v", w) if spec.signed else "v")
    lines = ["a = (X[rs1] + imm) & 0xffffffffffffffff", "b = R(a >> 12)", "if b is not None:"]
    if w == 1:
        lines += [f"    {fast}", "    return"]
    else:
        lines += [
            "    o = a & 4095",
            f"    if o <= {4096 - w}:",
            f"        {fast}",
            "        return",
        ]
    lines += ["try:", f"    v = LOAD(a, {w})", *_MEM_FAULT.splitlines(), slow]
    return "\n".join(lines)


def _store_body(spec: InstrSpec) -> str:
    w = spec.width
    src = "F[rs2]" if spec.src == "f" else "X[rs2]"
    lines = ["a = (X[rs1] + imm) & 0xffffffffffffffff", "b = W(a >> 12)", "if b is not None:"]
    if w == 1:
        lines += [f"    b[a & 4095] = {src} & 255", "    return"]
    else:
        val = src if w == 8 else f"{src} & {(1 << (8 * w)) - 1:#x}"
        lines += [
            "    o = a & 4095",
            f"    if o <= {4096 - w}:",
            f"        {_PACK[w]}(b, o, {val})",
            "        return",
        ]
    lines += ["try:", f"    STORE(a, {w}, {src})", *_MEM_FAULT.splitlines()]
    return "\n".join(lines)


def _atomic_check(access: str, w: int) -> list[str]:
    return [
        "a = X[rs1]",
        f"if a & {w - 1}:",
        f"    raise BusError(a, {access!r}, 'misaligned atomic access', pc=pc)",
    ]


_SEXT32_HEAD: Final = "(((("
_SEXT32_TAIL: Final = ") & M32) ^ S32) - S32) & M64"


def _specialise(instr: Instr) -> str:
    """The template with operands known at decode time folded in: x0 sources become 0.

    Also a peephole the interpreter applies to the table's W forms: sign-extending the low word
    with ``((v & M32) ^ S32) - S32) & M64`` costs three big-int operations; testing the sign bit
    of the masked word costs one compare (about 40% less time per W instruction).
    """
    tmpl = instr.spec.tmpl
    if instr.name == "addi" and instr.imm == 0:
        return "X[rs1]"  # mv
    if instr.rs1 == 0:
        tmpl = tmpl.replace("X[rs1]", "0")
    if instr.rs2 == 0:
        tmpl = tmpl.replace("X[rs2]", "0")
    if tmpl.startswith(_SEXT32_HEAD) and tmpl.endswith(_SEXT32_TAIL) and "X[" in tmpl:
        word = tmpl[len(_SEXT32_HEAD) : -len(_SEXT32_TAIL)]
        tmpl = f"(_w if (_w := ({word}) & M32) < S32 else _w | 0xFFFFFFFF00000000)"
    return tmpl


#: None: ``aux`` is fixed; True: ``aux`` is the branch target pc + imm; code: a constant (auipc)
#: evaluated with the pc.
_AuxRule = CodeType | bool | None
#: What an encoding decodes to, for :meth:`InterpreterExecutor._build`: (instruction or None if
#: illegal, length, factory bound to the machine, ends the block, the op itself when it is the
#: same at every address, accesses memory, needs an exact instret, how ``aux`` follows from the
#: pc, ``aux`` when it does not).
_Decoded = tuple[
    Instr | None, int, Callable[..., Op] | None, bool, Op | None, bool, bool, _AuxRule, object
]
_U32: Final = struct.Struct("<I").unpack_from
#: Operands that make an op differ from one address to the next.
_PER_PC_NAMES: Final = frozenset({"pc", "npc", "k", "aux"})
_freevars: dict[Callable[..., Op], frozenset[str]] = {}


def _op_freevars(make: Callable[..., Op]) -> frozenset[str]:
    """The factory's operands that the op it returns reads (its closure's free variables)."""
    names = _freevars.get(make)
    if names is None:
        code = make.__code__
        inner = next(c for c in code.co_consts if isinstance(c, CodeType))
        names = _freevars[make] = frozenset(inner.co_freevars)
    return names


_Plan = tuple[Callable[..., Op], bool, CodeType | None]
_plans: dict[tuple[str, bool, bool, bool, bool], _Plan] = {}


def _plan(instr: Instr) -> _Plan:
    """(closure factory, ends the block, code of a constant ALU result) for ``instr``.

    Cached by everything :func:`_body` looks at, so decoding a new instruction costs a dict
    lookup and a factory call, not source generation.
    """
    key = (instr.name, instr.rs1 == 0, instr.rs2 == 0, instr.imm == 0, instr.rm == 7)
    plan = _plans.get(key)
    if plan is None:
        body, ends = _body(instr)
        const = None
        if instr.spec.kind == "alu":
            tmpl = _specialise(instr)
            if "X[" not in tmpl:
                # li, lui, auipc: the value depends only on imm and pc.
                const = compile(_fold(tmpl), "<interpreter constant>", "eval")
        plan = (_factory(body), ends, const)
        _plans[key] = plan
    return plan


def _body(instr: Instr) -> tuple[str, bool]:  # noqa: PLR0911, PLR0912 - one case per instruction kind: a table written as code
    """Closure body for ``instr`` and whether it ends the block (returns the next PC).

    For a constant ALU result (see :func:`_constant`) the body stores ``aux``.
    """
    spec = instr.spec
    kind = spec.kind
    if kind == "alu":
        tmpl = _specialise(instr)
        if "X[" not in tmpl:
            return "X[rd] = aux", False
        return f"X[rd] = {_fold(tmpl)}", False
    if kind == "fp":
        _need_fp()
        body = spec.tmpl
        if spec.has_rm and instr.rm == 7:
            body = (
                "rm = H.frm\n"
                "if rm > 4:\n"
                "    raise IllegalInstruction(pc, raw, 'invalid dynamic rounding mode (frm='"
                " + str(rm) + ') for `' + disassemble_raw(raw, pc) + '`')\n" + body
            )
        return _fold(body), False
    if kind == "branch":
        return f"if {_fold(_specialise(instr))}:\n    return aux\nreturn npc", True
    if kind == "jal":
        return "X[rd] = npc\nreturn aux", True
    if kind == "jalr":
        return "t = (X[rs1] + imm) & 0xfffffffffffffffe\nX[rd] = npc\nreturn t", True
    if kind == "load":
        return _load_body(spec), False
    if kind == "store":
        return _store_body(spec), False
    w = spec.width
    mask = (1 << (8 * w)) - 1
    if kind == "lr":
        lines = [
            *_atomic_check("read", w),
            "try:",
            f"    v = LOAD(a, {w})",
            *_MEM_FAULT.splitlines(),
            f"X[rd] = {_sext_expr('v', w)}",
            "ctx._reserve(a)",
        ]
        return "\n".join(lines), False
    if kind == "sc":
        lines = [
            *_atomic_check("write", w),
            "if H.reservation == a:",
            "    try:",
            f"        STORE(a, {w}, X[rs2] & {mask:#x})",
            "    except GuestMemoryFault as e:",
            "        raise e.to_segfault(pc) from None",
            "    X[rd] = 0",
            "else:",
            "    X[rd] = 1",
            "H.reservation = -1",
        ]
        return "\n".join(lines), False
    if kind == "amo":
        lines = [
            *_atomic_check("write", w),
            "try:",
            f"    old = LOAD(a, {w})",
            f"    src = X[rs2] & {mask:#x}",
            f"    STORE(a, {w}, {_fold(spec.tmpl)})",
            *_MEM_FAULT.splitlines(),
            f"X[rd] = {_sext_expr('old', w)}",
        ]
        return "\n".join(lines), False
    if kind == "csr":
        src = "rs1" if spec.csr_imm else "X[rs1]"
        writes = spec.csr_op == "w" or instr.rs1 != 0
        new = {"w": src, "s": f"old | {src}", "c": f"old & ~{src} & 0xffffffffffffffff"}
        lines = ["old = csr_read(H, imm, k)"]
        if writes:
            lines.append(f"csr_write(H, imm, {new[spec.csr_op]})")
        lines.append("X[rd] = old")
        return "\n".join(lines), False
    if kind == "ecall":
        return (
            "H.pc = pc\nctx._syscall()\nt = H.pc\nreturn npc if t == pc else t",
            True,
        )
    if kind == "ebreak":
        return f"H.pc = pc\nraise GuestSignal({_SIGTRAP}, pc=pc)", True
    if kind == "fence":
        return "pass", False
    if kind == "fence_i":
        # Decoded blocks of written pages are already dropped by the code-watch listener.
        return "return npc", True
    raise AssertionError(f"no interpreter template for kind {kind!r}")  # pragma: no cover


_drivers: dict[int, Callable[..., Callable[[], int]]] = {}


def _drive(ops: tuple[Op, ...] | list[Op], term: Callable[[], int]) -> Callable[[], int]:
    """One function that calls a block's closures in a straight line and returns the next pc.

    Calling ``o0(); o1(); ...`` from generated code saves the ``for`` loop's bytecodes per
    instruction (about 15% of an interpreted instruction); the code is compiled once per block
    length and shared by every block of that length.
    """
    n = len(ops)
    make = _drivers.get(n)
    if make is None:
        drivers = _prebuilt().DRIVERS
        if n < len(drivers):
            make = _drivers[n] = types.FunctionType(drivers[n], {})
    if make is None:
        params = "".join(f"o{i}, " for i in range(n))
        calls = "".join(f"        o{i}()\n" for i in range(n))
        src = (
            f"def _drive({params}term):\n    def run():\n{calls}"
            "        return term()\n    return run\n"
        )
        scope: dict[str, Any] = {}
        exec(compile(src, "<interpreter block driver>", "exec"), {}, scope)
        make = scope["_drive"]
        _drivers[n] = make
    return make(*ops, term)


def _illegal_op(pc: int, raw: int, reason: str) -> Op:
    def op() -> None:
        raise IllegalInstruction(pc, raw, reason)

    return op


def _enter_hooked_op(pc: int) -> Op:
    def op() -> None:
        raise EnterHookedCode(pc)

    return op


def _fetch_fault_op(fault: SegmentationFault) -> Op:
    def op() -> None:
        raise fault

    return op


def _fallthrough(npc: int) -> Callable[[], int]:
    def term() -> int:
        return npc

    return term


# ------------------------------------------------------------------------------ the executor


class InterpreterExecutor(ExecutorBase):
    """Runs a guest from pre-decoded basic blocks of specialised closures.

    Args:
        machine: the machine to run; may also be given to :meth:`run`.
        trace: called with ``"<pc>: <disassembly>"`` before every instruction executes (slow;
            for debugging). Blocks decoded before it was set are not traced.
    """

    def __init__(
        self, machine: MachineLike | None = None, *, trace: Callable[[str], None] | None = None
    ) -> None:
        self.stats = ExecutionStats()
        self.trace = trace
        #: Whether blocks end before code a code hook covers (see ``machine._hooks``); the
        #: hook stepper's own interpreter runs that code, so it does not.
        self.honour_code_hooks = True
        self._machine: MachineLike | None = None
        self._memory: AddressSpace | None = None
        self._decoder: Decoder = FULL_DECODER
        self._cache: dict[int, Block] = {}
        self._page_blocks: dict[int, list[int]] = {}
        # Per machine: decoded encodings and the factories bound to its hart and memory.
        self._decoded_words: dict[int, _Decoded] = {}
        self._bound: dict[Callable[..., Op], Callable[..., Op]] = {}
        if machine is not None:
            self._bind(machine)

    # -------------------------------------------------------------------------- binding

    def _bind(self, machine: MachineLike | None) -> MachineLike:
        if machine is None:
            if self._machine is None:
                raise ValueError("no machine to run: pass one to the executor or to run()")
            return self._machine
        if machine is not self._machine:
            if self._memory is not None:
                self._memory.remove_code_write_listener(self._on_code_write)
            self._machine = machine
            self._memory = machine.memory
            # A machine-like without an ISA of its own is a full RV64GC hart.
            self._decoder = getattr(machine, "decoder", FULL_DECODER)
            self._memory.add_code_write_listener(self._on_code_write)
            self._decoded_words.clear()
            self._bound.clear()
            self.flush()
        return machine

    @property
    def machine(self) -> MachineLike | None:
        """The machine this executor runs (None before one is given)."""
        return self._machine

    def _stepping_interpreter(self) -> InterpreterExecutor:
        return InterpreterExecutor()

    def flush(self) -> None:
        """Forget every decoded block."""
        self._cache.clear()
        self._page_blocks.clear()

    @property
    def cached_blocks(self) -> int:
        """Number of decoded blocks in the cache."""
        return len(self._cache)

    def _on_code_write(self, vpn: int) -> None:
        """AddressSpace listener: page ``vpn`` (watched) was written, unmapped or re-protected."""
        starts = self._page_blocks.pop(vpn, None)
        if starts:
            cache = self._cache
            for start in starts:
                cache.pop(start, None)
        machine = self._machine
        if machine is not None:
            hart = machine.hart
            if hart.reservation >= 0 and hart.reservation >> 12 == vpn:
                hart.reservation = -1

    def _reserve(self, addr: int) -> None:
        """LR: reserve ``addr`` and watch its page so any write to it breaks the reservation."""
        assert self._machine is not None
        assert self._memory is not None
        self._machine.hart.reservation = addr
        self._memory.watch_code_page(addr >> 12)

    def _syscall(self) -> None:
        assert self._machine is not None
        self._machine.syscall()

    # -------------------------------------------------------------------------- decoding

    def _fetch(self, addr: int, size: int) -> int:
        assert self._memory is not None
        buf = self._memory.tlb_fetch.get(addr >> 12)
        off = addr & 0xFFF
        if buf is not None and off <= 0x1000 - size:
            return int.from_bytes(buf[off : off + size], "little")
        return self._memory.fetch(addr, size)

    def _decode_at(self, addr: int) -> tuple[int, int]:
        """(raw bits, length) of the instruction at ``addr``; may raise the fetch fault."""
        low = self._fetch(addr, 2)
        if low & 3 != 3:
            return low, 2
        return low | self._fetch(addr + 2, 2) << 16, 4

    def _decoded(self, raw: int, length: int) -> _Decoded:
        """What :meth:`_build` needs to know of the encoding ``raw``, decoded once per machine.

        An encoding means the same wherever it sits, so the decode, the plan lookup and the
        binding of the factory to this machine are paid once per distinct word, not once per
        address; ops whose code never looks at their address are even built only once.
        """
        decoder = self._decoder
        instr = decoder.decode16(raw) if length == 2 else decoder.decode32(raw)
        entry: _Decoded
        if instr is None:
            entry = (None, length, None, True, None, False, False, None, None)
        else:
            machine = self._machine
            assert machine is not None
            make, ends, const = _plan(instr)
            bound = self._bound.get(make)
            if bound is None:
                hart = machine.hart
                mem = machine.memory
                bound = partial(
                    make,
                    hart.x,
                    hart.f,
                    hart,
                    mem.tlb_read.get,
                    mem.tlb_write.get,
                    mem.load,
                    mem.store,
                    self,
                )
                self._bound[make] = bound
            spec = instr.spec
            imm = instr.imm
            immu = imm & 0xFFFF_FFFF_FFFF_FFFF
            aux: object = None
            rule: _AuxRule = None
            if spec.kind in ("branch", "jal"):
                rule = True
            elif const is not None and "pc" in const.co_names:
                rule = const
            elif const is not None:
                aux = eval(const, _NAMESPACE, {"imm": imm, "immu": immu})
            sync = spec.kind in ("csr", "ecall", "ebreak")
            entry = (instr, length, bound, ends, None, spec.mem, sync, rule, aux)
            per_pc = _PER_PC_NAMES if rule is not None else _PER_PC_NAMES - {"aux"}
            if not _op_freevars(make) & per_pc:
                # The op reads no address-dependent operand: one op serves every address.
                shared = self._make_op(entry, 0, 0)
                entry = (instr, length, bound, ends, shared, spec.mem, sync, rule, aux)
        self._decoded_words[raw] = entry
        return entry

    def _make_op(self, entry: _Decoded, pc: int, k: int) -> Op:
        """The op of the decoded ``entry`` at ``pc``, the ``k``-th of its block."""
        instr, length, bound, _, _, _, _, rule, aux = entry
        assert instr is not None
        assert bound is not None
        imm = instr.imm
        immu = imm & 0xFFFF_FFFF_FFFF_FFFF
        if rule is True:
            aux = (pc + imm) & 0xFFFF_FFFF_FFFF_FFFF
        elif isinstance(rule, CodeType):
            aux = eval(rule, _NAMESPACE, {"imm": imm, "immu": immu, "pc": pc})
        return bound(
            instr.rd,
            instr.rs1,
            instr.rs2,
            instr.rs3,
            imm,
            immu,
            pc,
            (pc + length) & 0xFFFF_FFFF_FFFF_FFFF,
            instr.rm,
            instr.raw,
            k,
            aux,
        )

    def _build(self, start: int) -> Block:  # noqa: PLR0912, PLR0915 - the block builder's loop, one frame on purpose: start-up is measured
        """Decode the block at ``start`` into closures and cache it."""
        mem = self._memory
        assert mem is not None
        decoded_words = self._decoded_words
        ops: list[Op] = []
        pcs: list[int] = []
        start_page = start >> 12
        pages = {start_page}
        nmem = 0
        sync = False
        pc = start
        term: Callable[[], int] | None = None
        trace = self.trace
        hooked = mem.code_hooked if self.honour_code_hooks else None
        if hooked is not None and hooked(start):
            # The stepper runs hooked code: this block only hands over to it (not cached).
            op = _enter_hooked_op(start)
            return (_drive((), op), (op,), 1, 0, False, (start,))
        page = mem.tlb_fetch.get(start_page)
        while True:
            if hooked is not None and pcs and hooked(pc):
                term = _fallthrough(pc)  # the block ends where hooked code begins
                break
            off = pc & 0xFFF
            if page is not None and off <= 0xFFC:
                raw = _U32(page, off)[0]
                if raw & 3 != 3:
                    raw &= 0xFFFF
            else:
                try:
                    raw, length = self._decode_at(pc)
                except GuestMemoryFault as fault:
                    if not pcs:
                        # Nothing to run: a block whose only op raises the fetch fault (not cached).
                        op = _fetch_fault_op(fault.to_segfault(pc))
                        return (_drive((), op), (op,), 1, 0, False, (pc,))
                    term = _fallthrough(pc)
                    break
                if off + length > 0x1000:
                    pages.add(start_page + 1)
                page = mem.tlb_fetch.get(start_page)
            entry = decoded_words.get(raw)
            if entry is None:
                entry = self._decoded(raw, 2 if raw & 3 != 3 else 4)
            instr, length, _, ends, shared, is_mem, is_sync, _, _ = entry
            pcs.append(pc)
            if instr is None:
                reason = f"illegal instruction `{disassemble_raw(raw, pc)}`"
                term = _as_term(_illegal_op(pc, raw, reason))
                break
            if is_mem:
                nmem += 1
            if is_sync:
                sync = True
            op = shared if shared is not None else self._make_op(entry, pc, len(pcs) - 1)
            if trace is not None:
                op = _traced(op, trace, f"{pc:#x}: {disassemble(instr, pc)}")
            if ends:
                term = op
                break
            pc = (pc + length) & 0xFFFF_FFFF_FFFF_FFFF
            if len(pcs) >= MAX_BLOCK or pc >> 12 != start_page:
                ops.append(op)
                term = _fallthrough(pc)
                break
            ops.append(op)
        block: Block = (_drive(ops, term), tuple(ops), len(pcs), nmem, sync, tuple(pcs))
        self._cache[start] = block
        page_blocks = self._page_blocks
        for vpn in pages:
            mem.watch_code_page(vpn)
            page_blocks.setdefault(vpn, []).append(start)
        return block

    # -------------------------------------------------------------------------- execution

    def execute_block(self, pc: int | None = None) -> int:
        """Run the one basic block at ``pc`` (default: the hart's pc) and return the next pc.

        ``hart.pc`` and ``hart.instret`` are updated; guest faults propagate as GuestFault /
        GuestExit with the hart's state exact at the faulting instruction.
        """
        machine = self._bind(None)
        hart = machine.hart
        if pc is None:
            pc = hart.pc
        t0 = time.perf_counter()
        before = hart.instret
        try:
            self._loop(hart, pc, 1, _NO_LIMIT)
        finally:
            self.stats.wall_time += time.perf_counter() - t0
            self.stats.instructions += hart.instret - before
        return hart.pc

    def step(self, pc: int, limit: int | None = None) -> int:
        """Run the one basic block at ``pc`` and return the next pc (the hybrid's cold path).

        ``limit`` is an absolute ``hart.instret`` at which to stop (None: no limit); a block that
        would pass it runs only up to it and raises :class:`BudgetExhausted` (carrying ``limit``).
        Unlike :meth:`execute_block` this keeps no wall-time statistics (it is called once per
        cold block). ``hart.pc`` and ``hart.instret`` are exact afterwards, also when it raises
        GuestExit or GuestFault; faults are not delivered to the guest's handlers here.
        """
        machine = self._machine
        if machine is None:
            raise ValueError("no machine to run: pass one to the executor first")
        hart = machine.hart
        self._loop(hart, pc, 1, _NO_LIMIT if limit is None else limit)
        return hart.pc

    def _until(self, machine: MachineLike, limit: int, budget: int | None) -> BaseException:
        """Run from ``hart.pc`` until the guest ends or instret reaches ``limit``; return why
        (GuestExit, GuestFault, or BudgetExhausted carrying the absolute ``limit``)."""
        hart = machine.hart
        t0 = time.perf_counter()
        before = hart.instret
        try:
            self._loop(hart, hart.pc, _NO_LIMIT, limit)
            raise AssertionError("unreachable: the loop only ends by an exception")
        except (BudgetExhausted, GuestExit, GuestFault) as e:
            return e
        finally:
            self.stats.wall_time += time.perf_counter() - t0
            self.stats.instructions += hart.instret - before

    def _loop(self, hart: Hart, pc: int, max_blocks: int, limit: int) -> None:
        """Run blocks from ``pc``; ``limit`` is the absolute instret to stop at.

        Returns after ``max_blocks`` blocks; otherwise ends only by an exception (GuestExit,
        GuestFault, BudgetExhausted), always with ``hart.pc``/``hart.instret`` exact.
        """
        cache_get = self._cache.get
        build = self._build
        mem = self._memory
        assert mem is not None
        icount = hart.instret
        naccess = 0
        nblocks = 0
        block: Block | None = None
        try:
            while nblocks < max_blocks:
                block = cache_get(pc)
                if block is None:
                    block = build(pc)
                run, ops, n, nmem, sync, pcs = block
                if icount + n > limit:
                    # Run exactly up to the budget, then stop at the next instruction.
                    k = limit - icount
                    for op in ops[:k]:
                        op()
                    icount += k
                    pc = pcs[k]
                    raise BudgetExhausted(limit, pc)
                if sync:
                    hart.instret = icount
                pc = run()
                icount += n
                naccess += nmem
                nblocks += 1
        except GuestExit:
            # Raised by the ecall ending the block: it retired.
            assert block is not None
            icount += block[2]
            nblocks += 1
            pc = hart.pc
            raise
        except GuestFault as fault:
            if block is not None:
                pcs = block[5]
                if fault.pc is None:
                    fault.pc = hart.pc
                if fault.pc in pcs:
                    icount += pcs.index(fault.pc)
                    nblocks += 1
                pc = fault.pc
            raise
        finally:
            hart.instret = icount
            hart.pc = pc
            mem.tlb_accesses += naccess
            self.stats.executions += nblocks


def _traced(op: Op, trace: Callable[[str], None], line: str) -> Op:
    def traced() -> Any:
        trace(line)
        return op()

    return traced


def _as_term(op: Op) -> Callable[[], int]:
    return op
