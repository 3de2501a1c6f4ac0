"""The architectural state of one RV64GC hart (hardware thread) in user mode.

Integer registers hold unsigned 64-bit values (0 .. 2**64-1): every result is masked to 64
bits once, and signed views are computed where an instruction needs them. ``x`` has 33 slots:
x0..x31 and a write sink at index 32. The decoder sends every write whose ``rd`` is 0 to the
sink, so executors never test for x0 and ``x[0]`` stays 0 without any code.

Floating-point registers hold raw 64-bit patterns, never Python floats, so NaN payloads, signed
zeros and NaN-boxed single-precision values survive every move exactly.
"""

from __future__ import annotations

__all__ = ["X_SINK", "Hart"]

#: Index of the write-only sink that stands for x0 as a destination.
X_SINK = 32


class Hart:
    """Registers, pc, floating-point status and the LR/SC reservation of one hart."""

    __slots__ = ("f", "fflags", "frm", "instret", "pc", "reservation", "x")

    def __init__(self, pc: int = 0) -> None:
        self.x: list[int] = [0] * 33
        self.f: list[int] = [0] * 32
        self.pc = pc
        #: Accrued floating-point exception flags (NV DZ OF UF NX, bits 4..0 of fcsr).
        self.fflags = 0
        #: Dynamic rounding mode (bits 7..5 of fcsr).
        self.frm = 0
        #: Instructions retired so far; executors keep it exact at every block boundary and fault.
        self.instret = 0
        #: Address reserved by the last LR, or -1 when there is no reservation.
        self.reservation = -1

    @property
    def fcsr(self) -> int:
        """The floating-point control and status register: frm << 5 | fflags."""
        return (self.frm << 5) | self.fflags

    @fcsr.setter
    def fcsr(self, value: int) -> None:
        self.fflags = value & 0x1F
        self.frm = (value >> 5) & 0x7
