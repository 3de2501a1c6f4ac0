"""What the generator knows about instructions and values: the registers an instruction reads and
writes, which ALU results can be forwarded into their single use, the bit-width narrowing rules
(:func:`_narrow`), and the registers a loop never writes."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from vmkit.async_executor.engine._translate._templates import PerName, _minimal, _to_format
from vmkit.async_executor.isa._decode import Instr
from vmkit.async_executor.isa._table import (
    M32,
    M64,
    TABLE,
    InstrSpec,
)

_ALU_SPECS: Final = tuple(s for s in TABLE if s.kind == "alu")


#: ALU ops that copy their other operand when one operand is zero (``mv``, ``c.mv`` ...).
_ZERO_IDENTITY: Final = frozenset(s.name for s in _ALU_SPECS if s.zero_identity)


# Facts about results, all read from the instruction records (InstrSpec.result, .bitwise ...).
_BOOLEAN: Final = frozenset(s.name for s in _ALU_SPECS if s.result == "bool")


#: Operations whose result is sign-extended from bit 31 (RV64's W forms).
_W_OPS: Final = frozenset(s.name for s in _ALU_SPECS if s.result == "sext32")


#: Bitwise operations: sign-extended operands give a sign-extended result (the bits 31 to 63
#: of the result are one function of the operands' equal bits 31 to 63). Immediates are
#: sign-extended 12-bit values, so they always qualify.
_BITWISE: Final = frozenset(s.name for s in _ALU_SPECS if s.bitwise)


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


def _narrow(name: str, a: str, b: str, wa: int, wb: int, imm: int) -> tuple[str, int] | None:
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
#: register values below 2**64, so these stay below 2**128): ``(format, bits)``, or None.
_LAZY: Final[PerName[tuple[str, int] | None]] = PerName(
    lambda s: (_wrap_format(s), s.wrap_bits) if s.kind == "alu" and s.wrap else None
)


def _is_sum(spec: InstrSpec) -> bool:
    import ast  # on the first translation, not at start-up

    tree = ast.parse(spec.wrap, mode="eval").body
    return isinstance(tree, ast.BinOp) and isinstance(tree.op, ast.Add | ast.Sub)


def _biased(fmt: str) -> str:
    # An immediate last operand takes the bias into itself (``{i}`` is then ``imm + 2**31``
    # modulo 2**32, see ``alu``): one addition fewer in the generated code.
    return fmt if fmt.endswith(" + {i}") else f"{fmt} + 2147483648"


#: W operations computed as ``((inner + 2**31) & M32) - 2**31 & M64``: a sign extension that
#: needs only the low 32 bits of its operands (so they may come unmasked). These are the
#: sign-extended operations whose low word is a sum or difference (``addw``, ``addiw``, ``subw``);
#: None for every other name.
_SEXT_OPS: Final[PerName[str | None]] = PerName(
    lambda s: (
        _biased(_wrap_format(s))
        if s.kind == "alu" and s.result == "sext32" and s.wrap_bits == 32 and _is_sum(s)
        else None
    )
)


def _narrow_w(name: str, wa: int, wb: int, imm: int) -> bool:
    """Whether :func:`_narrow` has a mask-free form of the W operation ``name``."""
    return _narrow(name, "a", "b", wa, wb, imm) is not None


#: A name or a literal: pasted into another expression without parentheses.
_ATOM: Final = re.compile(r"-?\w+")


_BARRIER_FREE: Final = frozenset({"alu", "branch", "jal", "jalr", "fence"})


def _reads(ins: Instr) -> list[int]:
    """Integer registers ``ins`` reads (x0 excluded), from :func:`_read_mode`."""
    mode = _read_mode(ins.spec)
    regs: list[int] = []
    if mode & 1:
        regs.append(ins.rs1)
    if mode & 2:
        regs.append(ins.rs2)
    if mode & 4:
        regs += range(10, 18)  # the system call's number and arguments
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


def _loop_invariant(instrs: list[tuple[int, Instr | None, int]]) -> frozenset[int]:
    """Integer registers no instruction of ``instrs`` writes (constant across a self-loop)."""
    written = {_writes(ins) for _pc, ins, _raw in instrs if ins is not None}
    return frozenset(r for r in range(1, 32) if r not in written)
