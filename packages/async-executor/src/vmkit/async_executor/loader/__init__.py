"""Load static RISC-V 64 Linux executables into a fresh :class:`~.machine.Machine`."""

from __future__ import annotations

from vmkit.async_executor.loader._elf import (
    HWCAP_RV64IMAFDC,
    PIE_LOAD_BASE,
    LoadedImage,
    build_initial_stack,
    load_elf,
    parse_elf,
)
from vmkit.async_executor.loader._program import load_program

__all__ = [
    "HWCAP_RV64IMAFDC",
    "PIE_LOAD_BASE",
    "LoadedImage",
    "build_initial_stack",
    "load_elf",
    "load_program",
    "parse_elf",
]
