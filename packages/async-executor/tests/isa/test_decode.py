"""Decoder tests: field extraction, the x0 sink, illegal and reserved encodings, RVC expansion."""

from __future__ import annotations

import random

import pytest

from vmkit.async_executor.isa import TABLE, decode, decode16, decode32, instr_length, spec_by_name
from vmkit.async_executor.isa._table import CSR_CYCLE, CSR_INSTRET, CSR_TIME


class TestDecode32:
    """32-bit instructions decode to the right record and operands."""

    def test_every_table_match_decodes_to_its_own_record(self) -> None:
        """Each record's match pattern (all free fields zero) decodes to that record."""
        for spec in TABLE:
            word = spec.match
            if spec.kind == "csr":
                word |= 0x001 << 20  # fflags: a CSR this hart has
            instr = decode32(word)
            assert instr is not None, spec.name
            assert instr.spec is spec

    def test_records_never_overlap(self) -> None:
        """No encoding matches two records: the table is unambiguous."""
        rng = random.Random(7)
        for spec in TABLE:
            for _ in range(50):
                word = spec.match | (rng.getrandbits(32) & ~spec.mask)
                owners = [s.name for s in TABLE if word & s.mask == s.match]
                assert owners == [spec.name]

    def test_i_type_immediate_is_sign_extended(self) -> None:
        """andi sp,sp,-16 (0xff017113) has imm -16 and rs1 = rd = 2."""
        instr = decode32(0xFF017113)
        assert instr is not None
        assert (instr.name, instr.rd, instr.rs1, instr.imm) == ("andi", 2, 2, -16)

    def test_branch_and_jump_offsets(self) -> None:
        """B and J immediates reassemble their scattered bits (values from objdump listings)."""
        bltz = decode32(0x06054E63)  # bltz a0,+0x7c
        assert bltz is not None
        assert (bltz.name, bltz.rs1, bltz.rs2, bltz.imm) == ("blt", 10, 0, 0x7C)
        back = decode32(0xFEF049E3)  # bgtz a5,-14
        assert back is not None
        assert (back.name, back.imm) == ("blt", -14)
        jal = decode32(0x2610E0EF)  # jal ra,+0xea60 (0x10474 -> 0x1eed4)
        assert jal is not None
        assert (jal.name, jal.rd, jal.imm) == ("jal", 1, 0x1EED4 - 0x10474)

    def test_store_immediate_and_u_immediate(self) -> None:
        """S immediates join imm[11:5] and imm[4:0]; U immediates keep bits 31:12 sign-extended."""
        sd = decode32(0xFE113C23)  # sd ra,-8(sp)
        assert sd is not None
        assert (sd.name, sd.rs1, sd.rs2, sd.imm) == ("sd", 2, 1, -8)
        lui = decode32(0xFFFFF537)  # lui a0,0xfffff
        assert lui is not None
        assert lui.imm == -4096

    def test_destination_x0_goes_to_the_sink(self) -> None:
        """An integer rd of 0 decodes to 32, the hart's write sink; FP rd 0 stays f0."""
        instr = decode32(0x00000013)  # addi x0,x0,0
        assert instr is not None
        assert instr.rd == 32
        fmv = decode32(0xF2000053)  # fmv.d.x ft0,zero
        assert fmv is not None
        assert fmv.rd == 0

    def test_shift_amounts_are_six_bits_on_rv64(self) -> None:
        """slli by 63 decodes; the W form with bit 25 set is illegal."""
        slli = decode32(0x03F51513)  # slli a0,a0,63
        assert slli is not None
        assert (slli.name, slli.imm) == ("slli", 63)
        assert decode32(0x0205151B) is None  # slliw with shamt[5] set

    def test_atomic_ordering_bits(self) -> None:
        """aq and rl are extracted from AMO encodings (sc.w.aq from a glibc listing)."""
        sc = decode32(0x1CE426AF)
        assert sc is not None
        assert (sc.name, sc.aq, sc.rl, sc.rd, sc.rs1, sc.rs2) == ("sc.w", 1, 0, 13, 8, 14)

    @pytest.mark.parametrize(
        "word",
        [
            0xFFFFFFFF,  # no such opcode
            0x0000007F,  # reserved major opcode
            0x0200D053 | (5 << 12),  # fadd.s with reserved rm 5
            0x02006053,  # fadd.s with reserved rm 6
            0xC0001073,  # csrrw zero,cycle,zero: write to a read-only counter ("unimp")
            0xC0102573 | (1 << 15),  # csrrs a0,time,sp: a set with rs1 != 0 writes
            0x30002573,  # csrrs a0,mstatus,zero: not a user CSR here
            0x1005252F | (1 << 20),  # lr.w with rs2 != 0
        ],
    )
    def test_illegal_encodings_decode_to_none(self, word: int) -> None:
        """Reserved opcodes, rounding modes, CSR numbers and counter writes are illegal."""
        assert decode32(word) is None

    def test_counter_reads_are_legal(self) -> None:
        """csrrs rd,cycle|time|instret,zero (rdcycle ...) decode with the CSR number in imm."""
        for csr in (CSR_CYCLE, CSR_TIME, CSR_INSTRET):
            instr = decode32(csr << 20 | 2 << 12 | 10 << 7 | 0x73)
            assert instr is not None
            assert (instr.name, instr.imm, instr.rd) == ("csrrs", csr, 10)

    def test_dynamic_rounding_mode_is_kept(self) -> None:
        """rm = 7 (dyn) decodes and is resolved when executed."""
        instr = decode32(0x0200F053)  # fadd.d ft0,ft0,ft0 with rm = dyn
        assert instr is not None
        assert instr.rm == 7


class TestDecode16:
    """Compressed instructions expand to their 32-bit records with length 2."""

    def test_length_from_low_bits(self) -> None:
        """Low bits 11 mean 32 bits, anything else 16."""
        assert instr_length(0x0003) == 4
        assert [instr_length(h) for h in (0, 1, 2)] == [2, 2, 2]

    @pytest.mark.parametrize(
        ("half", "name", "fields"),
        [
            (0x7131, "addi", {"rd": 2, "rs1": 2, "imm": -192}),  # c.addi16sp
            (0x4681, "addi", {"rd": 13, "rs1": 0, "imm": 0}),  # c.li a3,0
            (0x2781, "addiw", {"rd": 15, "rs1": 15, "imm": 0}),  # sext.w a5,a5
            (0x8082, "jalr", {"rd": 32, "rs1": 1, "imm": 0}),  # ret
            (0x9782, "jalr", {"rd": 1, "rs1": 15, "imm": 0}),  # c.jalr a5
            (0xA42E, "fsd", {"rs1": 2, "rs2": 11, "imm": 8}),  # c.fsdsp fa1,8(sp)
            (0xB920, "fsd", {"rs1": 10, "rs2": 8, "imm": 112}),  # c.fsd fs0,112(a0)
            (0x070E, "slli", {"rd": 14, "rs1": 14, "imm": 3}),  # c.slli a4,3
            (0x9002, "ebreak", {}),
        ],
    )
    def test_expansions(self, half: int, name: str, fields: dict[str, int]) -> None:
        """Encodings taken from a glibc objdump listing expand to the 32-bit equivalent."""
        instr = decode16(half)
        assert instr is not None
        assert instr.name == name
        assert instr.length == 2
        assert instr.raw == half
        for key, value in fields.items():
            assert getattr(instr, key) == value, key

    def test_branch_offsets(self) -> None:
        """c.j and c.beqz offsets (objdump: 0x10506 j 0x1050e; 0x10470 beqz a5,0x10478)."""
        j = decode16(0xA021)
        assert j is not None
        assert (j.name, j.rd, j.imm) == ("jal", 32, 8)
        beqz = decode16(0xC781)
        assert beqz is not None
        assert (beqz.name, beqz.rs1, beqz.rs2, beqz.imm) == ("beq", 15, 0, 8)

    @pytest.mark.parametrize(
        "half",
        [
            0x0000,  # the all-zero half-word is defined illegal
            0x0004,  # c.addi4spn with nzuimm = 0
            0x8000,  # Q0 funct3 4: reserved
            0x2001,  # c.addiw with rd = 0
            0x6101,  # c.addi16sp with nzimm = 0
            0x6501,  # c.lui a0 with nzimm = 0
            0x9C41,  # Q1 reserved arithmetic (bit 12 set, op 10)
            0x4002,  # c.lwsp with rd = 0
            0x6002,  # c.ldsp with rd = 0
            0x8002,  # c.jr with rs1 = 0
        ],
    )
    def test_reserved_encodings_are_illegal(self, half: int) -> None:
        """Reserved and illegal compressed encodings decode to None."""
        assert decode16(half) is None

    def test_decode_dispatches_on_length(self) -> None:
        """decode() picks the 16- or 32-bit decoder from the low bits."""
        assert decode(0x8082) is decode16(0x8082)
        assert decode(0x00000013) is decode32(0x00000013)

    def test_funct3_of_expanded_encoding(self) -> None:
        """funct3 is the 32-bit equivalent's field (c.lw -> 2), and rm for FP arithmetic."""
        lw = decode16(0x4398)  # c.lw a4,0(a5)
        assert lw is not None
        assert (lw.name, lw.funct3) == ("lw", 2)
        fadd = decode32(0x0200F053)
        assert fadd is not None
        assert fadd.funct3 == 7

    def test_compressed_records_are_table_records(self) -> None:
        """Expansions use the very records of the table (the interpreter sees one instruction)."""
        instr = decode16(0x8082)
        assert instr is not None
        assert instr.spec is spec_by_name("jalr")
