"""Decoding RV64GC machine code (32-bit and 16-bit forms) into :class:`Instr` records.

Design note
-----------
Decoding happens once per guest PC (executors cache what they build from it), so the decoder
favours clarity: the 32-bit decoder scans the table records of the word's major opcode in table
order and extracts fields by the record's format; results are memoised per raw word. Every
compressed form is expanded to the record of its 32-bit equivalent with ``length`` 2, so executors
and the translator never see a compressed instruction as such.

Invariants: an integer destination ``rd`` of 0 is stored as 32 (the hart's write sink), so executors
never test for x0; FP destinations keep their number. Reserved and illegal encodings (including
c.addi4spn with a zero immediate, the all-zero half-word, static rounding modes 5 and 6, unknown
CSRs and writes to read-only counters) decode to ``None``; executors turn that into SIGILL only when
the instruction is reached.
"""

from __future__ import annotations

from typing import Final

from vmkit.async_executor.isa._isa import RV64GC, Isa
from vmkit.async_executor.isa._table import CSR_NAMES, TABLE, InstrSpec, spec_by_name

__all__ = [
    "FULL_DECODER",
    "Decoder",
    "Instr",
    "decode",
    "decode16",
    "decode32",
    "decoder_for",
    "instr_length",
]


class Instr:
    """One decoded instruction: its table record and operand values.

    ``imm`` is a signed Python int (sign-extended as the format says); for CSR instructions ``imm``
    is the CSR number and, for the immediate forms, ``rs1`` holds the 5-bit unsigned immediate.
    ``raw`` is the encoding as fetched (16 bits for compressed forms), ``length`` 2 or 4.
    """

    __slots__ = (
        "aq",
        "imm",
        "length",
        "name",
        "raw",
        "rd",
        "rl",
        "rm",
        "rs1",
        "rs2",
        "rs3",
        "spec",
    )

    def __init__(
        self,
        spec: InstrSpec,
        raw: int,
        length: int,
        *,
        rd: int = 0,
        rs1: int = 0,
        rs2: int = 0,
        rs3: int = 0,
        imm: int = 0,
        rm: int = 0,
        aq: int = 0,
        rl: int = 0,
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.raw = raw
        self.length = length
        # The x0 write sink (see Hart): only integer destinations are redirected.
        self.rd = 32 if rd == 0 and "xd" in spec.args else rd
        self.rs1 = rs1
        self.rs2 = rs2
        self.rs3 = rs3
        self.imm = imm
        self.rm = rm
        self.aq = aq
        self.rl = rl

    @property
    def funct3(self) -> int:
        """The funct3 field of the (expanded) 32-bit encoding; for F/D it is the rounding mode."""
        if self.spec.mask & 0x7000:
            return (self.spec.match >> 12) & 7
        return self.rm

    def __repr__(self) -> str:
        return (
            f"Instr({self.name}, rd={self.rd}, rs1={self.rs1}, rs2={self.rs2}, rs3={self.rs3}, "
            f"imm={self.imm}, rm={self.rm}, length={self.length}, raw={self.raw:#x})"
        )


def instr_length(low_half: int) -> int:
    """Length in bytes of the instruction whose first 16 bits are ``low_half`` (2 or 4)."""
    return 4 if low_half & 3 == 3 else 2


def _sext(value: int, bits: int) -> int:
    sign = 1 << (bits - 1)
    return (value & (sign * 2 - 1) ^ sign) - sign


_BY_OPCODE: Final[dict[int, list[InstrSpec]]] = {}
for _s in TABLE:
    _BY_OPCODE.setdefault(_s.match & 0x7F, []).append(_s)

_CSR_READ_ONLY_MASK: Final = 0xC00  # csr[11:10] == 0b11 marks a read-only CSR


def _fields32(spec: InstrSpec, w: int) -> Instr | None:  # noqa: PLR0912 - one case per encoding format
    rd = (w >> 7) & 31
    rs1 = (w >> 15) & 31
    rs2 = (w >> 20) & 31
    funct3 = (w >> 12) & 7
    fmt = spec.fmt
    imm = 0
    rs3 = 0
    aq = rl = 0
    if fmt in ("I", "CSR", "CSRI", "FENCE"):
        # imm[11:0] = inst[31:20]
        imm = _sext(w >> 20, 12)
    elif fmt == "IS":
        imm = (w >> 20) & 0x3F  # shamt[5:0] = inst[25:20]
    elif fmt == "ISW":
        imm = (w >> 20) & 0x1F  # shamt[4:0] = inst[24:20]
    elif fmt == "S":
        # imm[11:5] = inst[31:25], imm[4:0] = inst[11:7]
        imm = _sext(((w >> 25) << 5) | ((w >> 7) & 0x1F), 12)
        rd = 0
    elif fmt == "B":
        # imm[12|10:5] = inst[31|30:25], imm[4:1|11] = inst[11:8|7]
        imm = _sext(
            ((w >> 31) & 1) << 12
            | ((w >> 7) & 1) << 11
            | ((w >> 25) & 0x3F) << 5
            | ((w >> 8) & 0xF) << 1,
            13,
        )
        rd = 0
    elif fmt == "U":
        imm = _sext(w & 0xFFFFF000, 32)  # imm[31:12] = inst[31:12]
    elif fmt == "J":
        # imm[20|10:1|11|19:12] = inst[31|30:21|20|19:12]
        imm = _sext(
            ((w >> 31) & 1) << 20
            | ((w >> 12) & 0xFF) << 12
            | ((w >> 20) & 1) << 11
            | ((w >> 21) & 0x3FF) << 1,
            21,
        )
    elif fmt == "R4":
        rs3 = (w >> 27) & 31
    elif fmt == "A":
        aq = (w >> 26) & 1
        rl = (w >> 25) & 1
    rm = funct3
    if spec.has_rm and rm in (5, 6):
        return None  # reserved rounding modes
    if spec.kind == "csr":
        csr = imm & 0xFFF
        imm = csr
        if csr not in CSR_NAMES:
            return None
        writes = spec.csr_op == "w" or rs1 != 0
        if writes and csr & _CSR_READ_ONLY_MASK == _CSR_READ_ONLY_MASK:
            return None
    return Instr(spec, w, 4, rd=rd, rs1=rs1, rs2=rs2, rs3=rs3, imm=imm, rm=rm, aq=aq, rl=rl)


_cache32: dict[int, Instr | None] = {}


def decode32(word: int) -> Instr | None:
    """Decode a 32-bit instruction word; None when it is not a legal RV64GC instruction."""
    try:
        return _cache32[word]
    except KeyError:
        pass
    result: Instr | None = None
    for spec in _BY_OPCODE.get(word & 0x7F, ()):
        if word & spec.mask == spec.match:
            result = _fields32(spec, word)
            break
    if len(_cache32) < 1 << 16:
        _cache32[word] = result
    return result


# --- RVC --------------------------------------------------------------------------------------

_S = spec_by_name


def _mk(name: str, h: int, **fields: int) -> Instr:
    spec = _S(name)
    rm = fields.pop("rm", 7 if spec.has_rm else 0)
    return Instr(spec, h, 2, rm=rm, **fields)


def _b(h: int, hi: int, lo: int) -> int:
    """Bits hi..lo of the half-word ``h``."""
    return (h >> lo) & ((1 << (hi - lo + 1)) - 1)


def _q0(h: int) -> Instr | None:  # noqa: PLR0911 - one case per compressed opcode
    funct3 = h >> 13
    rdp = _b(h, 4, 2) + 8  # rd' / rs2' = inst[4:2] + 8
    rs1p = _b(h, 9, 7) + 8  # rs1' = inst[9:7] + 8
    if funct3 == 0:
        # c.addi4spn: nzuimm[5:4|9:6|2|3] = inst[12:11|10:7|6|5]
        imm = _b(h, 12, 11) << 4 | _b(h, 10, 7) << 6 | _b(h, 6, 6) << 2 | _b(h, 5, 5) << 3
        if imm == 0:
            return None  # reserved, and covers the all-zero half-word (defined illegal)
        return _mk("addi", h, rd=rdp, rs1=2, imm=imm)
    # c.lw/c.sw: uimm[5:3|2|6] = inst[12:10|6|5]; c.ld/c.sd/c.fld/c.fsd: uimm[5:3|7:6] = [12:10|6:5]
    uimm_w = _b(h, 12, 10) << 3 | _b(h, 6, 6) << 2 | _b(h, 5, 5) << 6
    uimm_d = _b(h, 12, 10) << 3 | _b(h, 6, 5) << 6
    if funct3 == 1:
        return _mk("fld", h, rd=rdp, rs1=rs1p, imm=uimm_d)
    if funct3 == 2:
        return _mk("lw", h, rd=rdp, rs1=rs1p, imm=uimm_w)
    if funct3 == 3:
        return _mk("ld", h, rd=rdp, rs1=rs1p, imm=uimm_d)
    if funct3 == 5:
        return _mk("fsd", h, rs1=rs1p, rs2=rdp, imm=uimm_d)
    if funct3 == 6:
        return _mk("sw", h, rs1=rs1p, rs2=rdp, imm=uimm_w)
    if funct3 == 7:
        return _mk("sd", h, rs1=rs1p, rs2=rdp, imm=uimm_d)
    return None  # funct3 4 is reserved


def _ci_imm(h: int) -> int:
    """imm[5] = inst[12], imm[4:0] = inst[6:2], sign-extended (c.addi, c.li, c.andi ...)."""
    return _sext(_b(h, 12, 12) << 5 | _b(h, 6, 2), 6)


def _q1(h: int) -> Instr | None:  # noqa: PLR0911, PLR0912 - one case per compressed opcode
    funct3 = h >> 13
    rd = _b(h, 11, 7)
    if funct3 == 0:
        return _mk("addi", h, rd=rd, rs1=rd, imm=_ci_imm(h))  # c.addi / c.nop (hints are legal)
    if funct3 == 1:
        if rd == 0:
            return None  # c.addiw with rd=0 is reserved
        return _mk("addiw", h, rd=rd, rs1=rd, imm=_ci_imm(h))
    if funct3 == 2:
        return _mk("addi", h, rd=rd, rs1=0, imm=_ci_imm(h))  # c.li
    if funct3 == 3:
        if rd == 2:
            # c.addi16sp: nzimm[9|4|6|8:7|5] = inst[12|6|5|4:3|2]
            imm = _sext(
                _b(h, 12, 12) << 9
                | _b(h, 6, 6) << 4
                | _b(h, 5, 5) << 6
                | _b(h, 4, 3) << 7
                | _b(h, 2, 2) << 5,
                10,
            )
            if imm == 0:
                return None
            return _mk("addi", h, rd=2, rs1=2, imm=imm)
        # c.lui: nzimm[17|16:12] = inst[12|6:2]
        imm = _sext(_b(h, 12, 12) << 17 | _b(h, 6, 2) << 12, 18)
        if imm == 0:
            return None
        return _mk("lui", h, rd=rd, imm=imm)
    if funct3 == 4:
        rdp = _b(h, 9, 7) + 8
        funct2 = _b(h, 11, 10)
        if funct2 == 0:  # c.srli: shamt[5|4:0] = inst[12|6:2]
            return _mk("srli", h, rd=rdp, rs1=rdp, imm=_b(h, 12, 12) << 5 | _b(h, 6, 2))
        if funct2 == 1:
            return _mk("srai", h, rd=rdp, rs1=rdp, imm=_b(h, 12, 12) << 5 | _b(h, 6, 2))
        if funct2 == 2:
            return _mk("andi", h, rd=rdp, rs1=rdp, imm=_ci_imm(h))
        rs2p = _b(h, 4, 2) + 8
        op = _b(h, 6, 5)
        if _b(h, 12, 12) == 0:
            name = ("sub", "xor", "or", "and")[op]
        else:
            if op >= 2:
                return None  # reserved
            name = ("subw", "addw")[op]
        return _mk(name, h, rd=rdp, rs1=rdp, rs2=rs2p)
    if funct3 == 5:
        # c.j: imm[11|4|9:8|10|6|7|3:1|5] = inst[12|11|10:9|8|7|6|5:3|2]
        imm = _sext(
            _b(h, 12, 12) << 11
            | _b(h, 11, 11) << 4
            | _b(h, 10, 9) << 8
            | _b(h, 8, 8) << 10
            | _b(h, 7, 7) << 6
            | _b(h, 6, 6) << 7
            | _b(h, 5, 3) << 1
            | _b(h, 2, 2) << 5,
            12,
        )
        return _mk("jal", h, rd=0, imm=imm)
    # c.beqz / c.bnez: imm[8|4:3] = inst[12|11:10], imm[7:6|2:1|5] = inst[6:5|4:3|2]
    imm = _sext(
        _b(h, 12, 12) << 8
        | _b(h, 11, 10) << 3
        | _b(h, 6, 5) << 6
        | _b(h, 4, 3) << 1
        | _b(h, 2, 2) << 5,
        9,
    )
    return _mk("beq" if funct3 == 6 else "bne", h, rs1=_b(h, 9, 7) + 8, rs2=0, imm=imm)


def _q2(h: int) -> Instr | None:  # noqa: PLR0911 - one case per compressed opcode
    funct3 = h >> 13
    rd = _b(h, 11, 7)
    rs2 = _b(h, 6, 2)
    if funct3 == 0:  # c.slli: shamt[5|4:0] = inst[12|6:2]; rd=0 is a hint
        return _mk("slli", h, rd=rd, rs1=rd, imm=_b(h, 12, 12) << 5 | rs2)
    # c.lwsp: uimm[5|4:2|7:6] = inst[12|6:4|3:2]; c.ldsp/c.fldsp: uimm[5|4:3|8:6] = [12|6:5|4:2]
    uimm_w = _b(h, 12, 12) << 5 | _b(h, 6, 4) << 2 | _b(h, 3, 2) << 6
    uimm_d = _b(h, 12, 12) << 5 | _b(h, 6, 5) << 3 | _b(h, 4, 2) << 6
    if funct3 == 1:
        return _mk("fld", h, rd=rd, rs1=2, imm=uimm_d)
    if funct3 == 2:
        return _mk("lw", h, rd=rd, rs1=2, imm=uimm_w) if rd else None
    if funct3 == 3:
        return _mk("ld", h, rd=rd, rs1=2, imm=uimm_d) if rd else None
    if funct3 == 4:
        if _b(h, 12, 12) == 0:
            if rs2 == 0:
                return _mk("jalr", h, rd=0, rs1=rd, imm=0) if rd else None  # c.jr
            return _mk("add", h, rd=rd, rs1=0, rs2=rs2)  # c.mv
        if rs2 == 0:
            if rd == 0:
                return _mk("ebreak", h)
            return _mk("jalr", h, rd=1, rs1=rd, imm=0)  # c.jalr
        return _mk("add", h, rd=rd, rs1=rd, rs2=rs2)  # c.add
    # c.swsp: uimm[5:2|7:6] = inst[12:9|8:7]; c.sdsp/c.fsdsp: uimm[5:3|8:6] = inst[12:10|9:7]
    uimm_sw = _b(h, 12, 9) << 2 | _b(h, 8, 7) << 6
    uimm_sd = _b(h, 12, 10) << 3 | _b(h, 9, 7) << 6
    if funct3 == 5:
        return _mk("fsd", h, rs1=2, rs2=rs2, imm=uimm_sd)
    if funct3 == 6:
        return _mk("sw", h, rs1=2, rs2=rs2, imm=uimm_sw)
    return _mk("sd", h, rs1=2, rs2=rs2, imm=uimm_sd)


_cache16: dict[int, Instr | None] = {}


def decode16(half: int) -> Instr | None:
    """Decode a compressed (RVC) half-word into its 32-bit equivalent's record, length 2."""
    try:
        return _cache16[half]
    except KeyError:
        pass
    quadrant = half & 3
    if quadrant == 0:
        result = _q0(half)
    elif quadrant == 1:
        result = _q1(half)
    elif quadrant == 2:
        result = _q2(half)
    else:
        raise ValueError(f"{half:#06x} is not a compressed instruction (low bits 11)")
    _cache16[half] = result
    return result


def decode(raw: int) -> Instr | None:
    """Decode ``raw`` (16 bits if its low two bits are not 11, else 32 bits); None if illegal."""
    if raw & 3 == 3:
        return decode32(raw & 0xFFFFFFFF)
    return decode16(raw & 0xFFFF)


_FP_CSRS: Final = frozenset({0x001, 0x002, 0x003})  # fflags, frm, fcsr: present with F only


class Decoder:
    """Decoding for one :class:`~vmkit.async_executor.isa._isa.Isa`: encodings of extensions the
    hart lacks decode to None (illegal), like every reserved encoding.

    The full RV64GC decoder's methods are the module's own functions, so the default costs
    nothing; a reduced one filters their results and memoises its own answers.
    """

    __slots__ = ("_cache16", "_cache32", "decode16", "decode32", "isa")

    def __init__(self, isa: Isa) -> None:
        self.isa = isa
        self._cache16: dict[int, Instr | None] = {}
        self._cache32: dict[int, Instr | None] = {}
        if isa.extensions == RV64GC.extensions:
            self.decode16 = decode16
            self.decode32 = decode32
        else:
            self.decode16 = self._decode16
            self.decode32 = self._decode32

    def _allowed(self, instr: Instr | None) -> Instr | None:
        if instr is None or instr.spec.ext not in self.isa.extensions:
            return None
        if instr.spec.kind == "csr" and instr.imm in _FP_CSRS and "F" not in self.isa.extensions:
            return None
        return instr

    def _decode32(self, word: int) -> Instr | None:
        try:
            return self._cache32[word]
        except KeyError:
            pass
        result = self._allowed(decode32(word))
        if len(self._cache32) < 1 << 16:
            self._cache32[word] = result
        return result

    def _decode16(self, half: int) -> Instr | None:
        try:
            return self._cache16[half]
        except KeyError:
            pass
        result = self._allowed(decode16(half)) if "C" in self.isa.extensions else None
        self._cache16[half] = result
        return result

    def decode(self, raw: int) -> Instr | None:
        """Decode ``raw`` as :func:`decode` does, for this decoder's ISA."""
        if raw & 3 == 3:
            return self.decode32(raw & 0xFFFFFFFF)
        return self.decode16(raw & 0xFFFF)


_DECODERS: dict[Isa, Decoder] = {}


def decoder_for(isa: Isa) -> Decoder:
    """The decoder of ``isa`` (one per ISA, so machines of one ISA share its memo)."""
    decoder = _DECODERS.get(isa)
    if decoder is None:
        decoder = _DECODERS.setdefault(isa, Decoder(isa))
    return decoder


#: The decoder of the full RV64GC set.
FULL_DECODER: Final = decoder_for(RV64GC)
