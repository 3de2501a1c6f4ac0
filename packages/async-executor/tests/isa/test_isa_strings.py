"""ISA strings and the per-ISA decoder: a hart without an extension finds its encodings illegal."""

from __future__ import annotations

import pytest

from vmkit.async_executor.isa import (
    FULL_DECODER,
    RV64GC,
    TABLE,
    Isa,
    IsaError,
    decode32,
    decoder_for,
)

# Encodings (from the cross assembler): fadd.d fa0,fa0,fa1 / mul a0,a0,a1 / amoadd.w a0,a1,(a2)
# / flw fa0,0(a0) / csrr a0,fflags / csrr a0,cycle / c.addi a0,1 / c.fld fa0,0(a0)
FADD_D = 0x02B57553
MUL = 0x02B50533
AMOADD_W = 0x00B6252F
FLW = 0x00052507
CSRR_FFLAGS = 0x00102573
CSRR_CYCLE = 0xC0002573
C_ADDI = 0x0505
C_FLD = 0x2108


class TestParse:
    def test_g_is_the_full_set(self) -> None:
        assert Isa.parse("rv64gc") == RV64GC
        assert Isa.parse("RV64IMAFDC_Zicsr_Zifencei") == RV64GC
        assert RV64GC.name == "rv64imafdc_zicsr_zifencei"

    def test_reduced_sets(self) -> None:
        imac = Isa.parse("rv64imac")
        assert imac.extensions == {"I", "M", "A", "C", "Zifencei"}
        assert imac.name == "rv64imac_zifencei"
        assert "F" not in imac
        assert Isa.parse("rv64if").extensions == {"I", "F", "Zicsr", "Zifencei"}
        assert "Zicsr" in Isa.parse("rv64i_zicsr")

    @pytest.mark.parametrize(
        ("text", "words"),
        [
            ("rv32i", "starts with rv64"),
            ("rv64id", "D requires F"),
            ("rv64mi", "in the order"),
            ("rv64ix", "'x' is not offered"),
            ("rv64i_zba", "'zba' is not offered"),
            ("rv64gcv", "'v' is not offered"),
            ("rv64", "base integer set I is required"),
        ],
    )
    def test_errors_say_what_is_wrong(self, text: str, words: str) -> None:
        with pytest.raises(IsaError, match=words):
            Isa.parse(text)


class TestDecoder:
    def test_full_decoder_is_the_table_decoder(self) -> None:
        assert FULL_DECODER.decode32 is decode32
        assert decoder_for(Isa.parse("rv64gc")) is FULL_DECODER
        assert decoder_for(Isa.parse("rv64imac")) is decoder_for(Isa.parse("rv64imac"))

    def test_each_encoding_needs_its_extension(self) -> None:
        cases = {
            "rv64imac": {FADD_D: False, MUL: True, AMOADD_W: True, FLW: False},
            "rv64iafdc": {FADD_D: True, MUL: False, AMOADD_W: True, FLW: True},
            "rv64imfc": {FADD_D: False, MUL: True, AMOADD_W: False, FLW: True},
        }
        for text, expected in cases.items():
            decoder = decoder_for(Isa.parse(text))
            for word, legal in expected.items():
                assert (decoder.decode32(word) is not None) == legal, (text, hex(word))
                assert (decoder.decode(word) is not None) == legal

    def test_fp_csrs_exist_only_with_f(self) -> None:
        no_f = decoder_for(Isa.parse("rv64i_zicsr"))
        assert no_f.decode32(CSRR_FFLAGS) is None
        assert no_f.decode32(CSRR_CYCLE) is not None
        assert decoder_for(Isa.parse("rv64i")).decode32(CSRR_CYCLE) is None

    def test_compressed_forms_need_c_and_their_own_extension(self) -> None:
        assert decoder_for(Isa.parse("rv64imac")).decode16(C_ADDI) is not None
        assert decoder_for(Isa.parse("rv64imac")).decode16(C_FLD) is None
        assert decoder_for(Isa.parse("rv64imafd")).decode16(C_ADDI) is None
        assert decoder_for(RV64GC).decode16(C_FLD) is not None

    def test_every_record_is_reachable_from_the_full_set_only_with_its_extension(self) -> None:
        dependants = {"F": {"D"}, "Zicsr": {"F", "D"}}
        for spec in TABLE:
            if spec.ext == "I":
                continue
            without = Isa(RV64GC.extensions - {spec.ext, *dependants.get(spec.ext, set())})
            word = spec.match | (1 << 20 if spec.kind == "csr" else 0)  # csr 1: fflags
            assert decode32(word) is not None, spec.name
            assert decoder_for(without).decode32(word) is None, spec.name
