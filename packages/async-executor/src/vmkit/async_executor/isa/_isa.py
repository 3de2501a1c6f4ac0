"""Which extensions a hart implements: an ISA string such as ``rv64imac`` or ``rv64gc``.

Design note
-----------
Every instruction record names its extension (``InstrSpec.ext``); a hart configured without
that extension decodes the encoding as illegal, so the guest gets SIGILL exactly where a real
RV64IMAC core would trap (the same per-extension checks QEMU makes). The full RV64GC set is the
default and costs nothing: its decoder is the table's own.

ISA strings follow the RISC-V naming rules: ``rv64``, then single-letter extensions in canonical
order (``g`` stands for ``imafd`` with Zicsr and Zifencei), then multi-letter ones separated by
underscores. As in ISA strings written before Zicsr and Zifencei were split out of the base, a
string with ``f`` implies Zicsr, and every string implies Zifencei (``fence.i`` is how a program
that writes code makes it visible; qemu-riscv64 always offers it).
"""

from __future__ import annotations

from typing import Final

from vmkit.async_executor._record import FrozenRecord, init_field
from vmkit.async_executor.isa._table import EXTENSIONS

__all__ = ["RV64GC", "Isa", "IsaError"]

_SINGLE: Final = "imafdc"  # canonical order of the single-letter extensions offered here
_MULTI: Final = {name.lower(): name for name in EXTENSIONS if len(name) > 1}


class IsaError(ValueError):
    """An ISA string names an extension that is unknown or whose prerequisite is missing."""


class Isa(FrozenRecord):
    """A set of extensions of :data:`~vmkit.async_executor.isa._table.EXTENSIONS`."""

    __slots__ = ("extensions",)
    extensions: frozenset[str]

    def __init__(self, extensions: frozenset[str]) -> None:
        init_field(self, "extensions", extensions)
        unknown = self.extensions - set(EXTENSIONS)
        if unknown:
            raise IsaError(f"unknown extension(s) {', '.join(sorted(unknown))}")
        if "I" not in self.extensions:
            raise IsaError("the base integer set I is required")
        if "D" in self.extensions and "F" not in self.extensions:
            raise IsaError("extension D requires F")
        if "F" in self.extensions and "Zicsr" not in self.extensions:
            raise IsaError("extension F requires Zicsr (its fflags, frm and fcsr)")

    @classmethod
    def parse(cls, text: str) -> Isa:
        """The set an ISA string such as ``rv64gc``, ``rv64imac`` or ``rv64imafd_zicsr`` names.

        Raises:
            IsaError: not an RV64 ISA string, or it names an extension this hart lacks.
        """
        lowered = text.strip().lower()
        if not lowered.startswith("rv64"):
            raise IsaError(f"{text!r}: an ISA string starts with rv64 (only RV64 is emulated)")
        singles, *multis = lowered[4:].split("_")
        chosen = {"Zifencei"}
        position = -1
        for letter in singles.replace("g", "imafd"):
            if letter not in _SINGLE:
                raise IsaError(f"{text!r}: extension {letter!r} is not offered (rv64gc at most)")
            if _SINGLE.index(letter) <= position:
                raise IsaError(f"{text!r}: single-letter extensions go in the order {_SINGLE}")
            position = _SINGLE.index(letter)
            chosen.add(letter.upper())
        if "g" in singles or "F" in chosen:
            chosen.add("Zicsr")
        for multi in multis:
            if multi not in _MULTI:
                raise IsaError(f"{text!r}: extension {multi!r} is not offered")
            chosen.add(_MULTI[multi])
        return cls(frozenset(chosen))

    @property
    def name(self) -> str:
        """The canonical ISA string, e.g. ``rv64imafdc_zicsr_zifencei``."""
        singles = "".join(c for c in _SINGLE if c.upper() in self.extensions)
        multis = [m for m in _MULTI if _MULTI[m] in self.extensions]
        return "_".join([f"rv64{singles}", *multis])

    def __contains__(self, extension: object) -> bool:
        return extension in self.extensions

    def __str__(self) -> str:
        return self.name


#: Everything this emulator implements: RV64IMAFDC with Zicsr and Zifencei.
RV64GC: Final = Isa(frozenset(EXTENSIONS))
