"""RV64GC instruction set: the instruction table, the decoder and the disassembler."""

from __future__ import annotations

from vmkit.async_executor.isa._decode import Instr, decode, decode16, decode32, instr_length
from vmkit.async_executor.isa._disasm import disassemble, disassemble_raw
from vmkit.async_executor.isa._table import TABLE, InstrSpec, spec_by_name

__all__ = [
    "TABLE",
    "Instr",
    "InstrSpec",
    "decode",
    "decode16",
    "decode32",
    "disassemble",
    "disassemble_raw",
    "instr_length",
    "spec_by_name",
]
