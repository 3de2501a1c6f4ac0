"""RV64GC instruction set: the instruction table, the decoder and the disassembler."""

from __future__ import annotations

from vmkit.async_executor.isa._decode import (
    FULL_DECODER,
    Decoder,
    Instr,
    decode,
    decode16,
    decode32,
    decoder_for,
    instr_length,
)
from vmkit.async_executor.isa._disasm import disassemble, disassemble_raw
from vmkit.async_executor.isa._isa import RV64GC, Isa, IsaError
from vmkit.async_executor.isa._table import TABLE, InstrSpec, spec_by_name

__all__ = [
    "FULL_DECODER",
    "RV64GC",
    "TABLE",
    "Decoder",
    "Instr",
    "InstrSpec",
    "Isa",
    "IsaError",
    "decode",
    "decode16",
    "decode32",
    "decoder_for",
    "disassemble",
    "disassemble_raw",
    "instr_length",
    "spec_by_name",
]
