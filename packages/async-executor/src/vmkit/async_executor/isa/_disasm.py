"""A disassembler that prints instructions the way GNU ``objdump -d`` does (binutils 2.40).

Design note
-----------
Output follows objdump's default (alias-preferring) style so SIGILL messages and traces read like
the listings people already know: ABI register names, the common pseudo-instructions (``li``,
``mv``, ``ret``, ``beqz``, ``csrr``, ``fmv.d`` ...), compressed instructions shown as their 32-bit
equivalents, branch and jump targets as absolute hex addresses (objdump's ``<symbol+off>`` is not
printed: there is no symbol table here), shift amounts and ``lui``/``auipc`` immediates in hex.
It is checked against objdump output of compiled programs in the tests.
"""

from __future__ import annotations

from typing import Final

from vmkit.async_executor.isa._decode import Instr, decode
from vmkit.async_executor.isa._table import CSR_NAMES

__all__ = ["FREG_NAMES", "XREG_NAMES", "disassemble", "disassemble_raw"]

XREG_NAMES: Final = [
    "zero",
    "ra",
    "sp",
    "gp",
    "tp",
    "t0",
    "t1",
    "t2",
    "s0",
    "s1",
    "a0",
    "a1",
    "a2",
    "a3",
    "a4",
    "a5",
    "a6",
    "a7",
    "s2",
    "s3",
    "s4",
    "s5",
    "s6",
    "s7",
    "s8",
    "s9",
    "s10",
    "s11",
    "t3",
    "t4",
    "t5",
    "t6",
    "zero",
]
FREG_NAMES: Final = [
    "ft0",
    "ft1",
    "ft2",
    "ft3",
    "ft4",
    "ft5",
    "ft6",
    "ft7",
    "fs0",
    "fs1",
    "fa0",
    "fa1",
    "fa2",
    "fa3",
    "fa4",
    "fa5",
    "fa6",
    "fa7",
    "fs2",
    "fs3",
    "fs4",
    "fs5",
    "fs6",
    "fs7",
    "fs8",
    "fs9",
    "fs10",
    "fs11",
    "ft8",
    "ft9",
    "ft10",
    "ft11",
]
_RM_NAMES: Final = ("rne", "rtz", "rdn", "rup", "rmm", "rm5", "rm6", "dyn")

_IMM_FORM_NAMES: Final = {
    "addi": "add",
    "xori": "xor",
    "ori": "or",
    "andi": "and",
    "slli": "sll",
    "srli": "srl",
    "srai": "sra",
    "addiw": "addw",
    "slliw": "sllw",
    "srliw": "srlw",
    "sraiw": "sraw",
}

_ZERO_FORMS: Final = {"beq": "beqz", "bne": "bnez", "blt": "bltz", "bge": "bgez"}

_X = XREG_NAMES
_F = FREG_NAMES


def _fence_set(bits: int) -> str:
    return "".join(c for c, b in zip("iorw", (8, 4, 2, 1), strict=True) if bits & b) or "0"


def _alias(i: Instr, pc: int) -> str | None:  # noqa: PLR0911, PLR0912 - one case per operand form
    """objdump's preferred pseudo-instruction for ``i``, or None to print it plainly."""
    n = i.name
    rd, rs1, rs2, imm = i.rd, i.rs1, i.rs2, i.imm
    if i.length == 2:
        hint = _compressed_hint(i)
        if hint is not None:
            return hint
    if n == "addi":
        if rd == 32 and rs1 == 0 and imm == 0:
            return "nop"
        if rs1 == 0:
            return f"li\t{_X[rd]},{imm}"
        if imm == 0:
            return f"mv\t{_X[rd]},{_X[rs1]}"
    elif n == "add" and i.length == 2 and rs1 == 0:
        return f"mv\t{_X[rd]},{_X[rs2]}"  # c.mv
    elif n == "addiw" and imm == 0:
        return f"sext.w\t{_X[rd]},{_X[rs1]}"
    elif n == "andi" and imm == 255:
        return f"zext.b\t{_X[rd]},{_X[rs1]}"
    elif n == "xori" and imm == -1:
        return f"not\t{_X[rd]},{_X[rs1]}"
    elif n == "sltiu" and imm == 1:
        return f"seqz\t{_X[rd]},{_X[rs1]}"
    elif n in ("sub", "subw") and rs1 == 0:
        return f"{'neg' if n == 'sub' else 'negw'}\t{_X[rd]},{_X[rs2]}"
    elif n == "sltu" and rs1 == 0:
        return f"snez\t{_X[rd]},{_X[rs2]}"
    elif n == "slt" and rs2 == 0:
        return f"sltz\t{_X[rd]},{_X[rs1]}"
    elif n == "slt" and rs1 == 0:
        return f"sgtz\t{_X[rd]},{_X[rs2]}"
    elif i.spec.kind == "branch":
        t = f"{(pc + imm) & 0xFFFFFFFFFFFFFFFF:x}"
        if rs2 == 0 and n in ("beq", "bne", "blt", "bge"):
            return f"{_ZERO_FORMS[n]}\t{_X[rs1]},{t}"
        if rs1 == 0 and n in ("blt", "bge"):
            return f"{'bgtz' if n == 'blt' else 'blez'}\t{_X[rs2]},{t}"
    elif n == "jal":
        t = f"{(pc + imm) & 0xFFFFFFFFFFFFFFFF:x}"
        if rd == 32:
            return f"j\t{t}"
        if rd == 1:
            return f"jal\t{t}"
    elif n == "jalr":
        if rd == 32 and rs1 == 1 and imm == 0:
            return "ret"
        if rd == 32:
            return f"jr\t{_X[rs1]}" if imm == 0 else f"jr\t{imm}({_X[rs1]})"
        if rd == 1:
            return f"jalr\t{_X[rs1]}" if imm == 0 else f"jalr\t{imm}({_X[rs1]})"
    elif i.spec.kind == "csr":
        return _csr_alias(i)
    elif n in ("fsgnj.s", "fsgnj.d", "fsgnjn.s", "fsgnjn.d", "fsgnjx.s", "fsgnjx.d") and rs1 == rs2:
        op = {"fsgnj": "fmv", "fsgnjn": "fneg", "fsgnjx": "fabs"}[n[:-2]]
        return f"{op}{n[-2:]}\t{_F[rd]},{_F[rs1]}"
    elif n == "fence":
        pred, succ, fm = (imm >> 4) & 15, imm & 15, (imm >> 8) & 15
        if fm == 8 and pred == 3 and succ == 3:
            return "fence.tso"
        if pred == 15 and succ == 15:
            return "fence"
        return f"fence\t{_fence_set(pred)},{_fence_set(succ)}"
    return None


def _compressed_hint(i: Instr) -> str | None:  # noqa: PLR0911 - one case per operand form
    """objdump's spelling of RVC hints (no architectural effect) and other c.-only forms."""
    n, rd, imm = i.name, i.rd, i.imm
    funct3 = i.raw >> 13
    quadrant = i.raw & 3
    if quadrant == 1 and funct3 == 0:  # c.addi
        if rd == 32 and imm != 0:
            return f"c.nop\t{imm}"
        if rd != 32 and imm == 0:
            return f"add\t{_X[rd]},{_X[rd]},0"
    elif quadrant == 1 and funct3 == 2 and rd == 32:
        return f"c.li\tzero,{imm}"
    elif n == "lui" and rd == 32:
        return f"c.lui\tzero,{(imm >> 12) & 0xFFFFF:#x}"
    elif n in ("slli", "srli", "srai") and imm == 0:
        return f"c.{n}64\t{_X[rd]}"
    elif n == "slli" and rd == 32:
        return f"c.slli\tzero,{imm:#x}"
    elif n == "add" and rd == 32:
        return f"c.{'add' if i.raw >> 12 & 1 else 'mv'}\tzero,{_X[i.rs2]}"
    return None


def _csr_alias(i: Instr) -> str | None:
    n, rd, csr = i.name, i.rd, i.imm
    src = str(i.rs1) if i.spec.csr_imm else _X[i.rs1]
    cname = CSR_NAMES.get(csr, f"{csr:#x}")
    op = i.spec.csr_op
    if op == "s" and i.rs1 == 0 and not i.spec.csr_imm:
        if csr in (0xC00, 0xC01, 0xC02):
            return f"rd{cname}\t{_X[rd]}"
        special = {1: "frflags", 2: "frrm", 3: "frcsr"}.get(csr)
        if special:
            return f"{special}\t{_X[rd]}"
        return f"csrr\t{_X[rd]},{cname}"
    if op == "w" and csr in (1, 2, 3):
        base = {1: "fsflags", 2: "fsrm", 3: "fscsr"}[csr]
        if i.spec.csr_imm:
            base += "i"
        return f"{base}\t{src}" if rd == 32 else f"{base}\t{_X[rd]},{src}"
    if rd == 32:
        return f"csr{op}\t{cname},{src}"
    del n
    return None


def disassemble(instr: Instr, pc: int = 0) -> str:  # noqa: PLR0912 - one case per operand form
    """objdump-style text of a decoded instruction at address ``pc`` (mnemonic, tab, operands)."""
    alias = _alias(instr, pc)
    if alias is not None:
        return alias
    spec = instr.spec
    name = spec.name
    if spec.kind in ("lr", "sc", "amo"):
        name += {(0, 0): "", (1, 0): ".aq", (0, 1): ".rl", (1, 1): ".aqrl"}[(instr.aq, instr.rl)]
    ops: list[str] = []
    for a in spec.args:
        if a == "xd":
            ops.append(_X[instr.rd])
        elif a == "fd":
            ops.append(_F[instr.rd])
        elif a == "xs1":
            ops.append(_X[instr.rs1])
        elif a == "fs1":
            ops.append(_F[instr.rs1])
        elif a == "xs2":
            ops.append(_X[instr.rs2])
        elif a == "fs2":
            ops.append(_F[instr.rs2])
        elif a == "fs3":
            ops.append(_F[instr.rs3])
        elif a == "imm":
            if spec.fmt == "U":
                ops.append(f"{(instr.imm >> 12) & 0xFFFFF:#x}")
            elif spec.fmt in ("IS", "ISW"):
                ops.append(f"{instr.imm:#x}")
            else:
                ops.append(str(instr.imm))
        elif a == "mem":
            ops.append(f"{instr.imm}({_X[instr.rs1]})")
        elif a == "amem":
            ops.append(f"({_X[instr.rs1]})")
        elif a == "target":
            ops.append(f"{(pc + instr.imm) & 0xFFFFFFFFFFFFFFFF:x}")
        elif a == "csr":
            ops.append(CSR_NAMES.get(instr.imm, f"{instr.imm:#x}"))
        elif a == "uimm":
            ops.append(str(instr.rs1))
        elif a == "rm":
            if instr.rm != 7:
                ops.append(_RM_NAMES[instr.rm])
        elif a == "pred":
            ops.append(_fence_set((instr.imm >> 4) & 15))
            ops.append(_fence_set(instr.imm & 15))
    if spec.kind == "csr" and spec.csr_imm:
        name = name[:-1]  # binutils prints csrrwi as csrrw ... with an immediate operand
    if spec.kind == "alu" and spec.fmt in ("I", "IS", "ISW"):
        # binutils 2.40 prints register-immediate ALU forms under the register form's name.
        name = _IMM_FORM_NAMES.get(name, name)
    return f"{name}\t{','.join(ops)}" if ops else name


def disassemble_raw(raw: int, pc: int = 0) -> str:
    """Disassemble raw bits; an illegal encoding prints as objdump's ``.2byte``/``.4byte``."""
    instr = decode(raw)
    if instr is None:
        if raw & 0xFFFF == 0:
            return "unimp"
        if raw & 3 == 3:
            return f".4byte\t{raw & 0xFFFFFFFF:#x}"
        return f".2byte\t{raw & 0xFFFF:#x}"
    return disassemble(instr, pc)
