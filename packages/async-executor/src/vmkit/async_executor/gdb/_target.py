"""The register set the stub describes to gdb (``target.xml``) and how each register is read
and written on a hart or a stopped guest thread.

Numbering follows gdb's RISC-V port: x0..x31 are 0..31, pc is 32, f0..f31 are 33..64, and the
floating-point CSRs fflags, frm and fcsr are 66, 67 and 68 (65 + their CSR number).
"""

from __future__ import annotations

from typing import Any, Final

from vmkit.async_executor.isa._disasm import FREG_NAMES, XREG_NAMES

__all__ = ["FCSR", "FFLAGS", "FRM", "PC", "TARGET_XML", "read_register", "register_size",
           "write_register"]  # fmt: skip

PC: Final = 32
F0: Final = 33
FFLAGS: Final = 66
FRM: Final = 67
FCSR: Final = 68
_M64: Final = (1 << 64) - 1

#: x0..x31 and f0..f31 by their ABI names, as the disassembler prints them (gdb accepts
#: them; x8 is "s0", which gdb also knows as fp).
_X_NAMES: Final = XREG_NAMES[:32]
_F_NAMES: Final = FREG_NAMES


def _x_reg(i: int, name: str) -> str:
    kind = {"ra": "code_ptr", "sp": "data_ptr", "gp": "data_ptr", "s0": "data_ptr"}.get(name, "int")
    return f'    <reg name="{name}" bitsize="64" type="{kind}" regnum="{i}"/>'


TARGET_XML: Final = "\n".join(
    [
        '<?xml version="1.0"?>',
        '<!DOCTYPE target SYSTEM "gdb-target.dtd">',
        '<target version="1.0">',
        "  <architecture>riscv:rv64</architecture>",
        "  <osabi>GNU/Linux</osabi>",
        '  <feature name="org.gnu.gdb.riscv.cpu">',
        *(_x_reg(i, name) for i, name in enumerate(_X_NAMES)),
        f'    <reg name="pc" bitsize="64" type="code_ptr" regnum="{PC}"/>',
        "  </feature>",
        '  <feature name="org.gnu.gdb.riscv.fpu">',
        '    <union id="riscv_double">',
        '      <field name="float" type="ieee_single"/>',
        '      <field name="double" type="ieee_double"/>',
        "    </union>",
        *(
            f'    <reg name="{name}" bitsize="64" type="riscv_double" regnum="{F0 + i}"/>'
            for i, name in enumerate(_F_NAMES)
        ),
        f'    <reg name="fflags" bitsize="32" type="int" regnum="{FFLAGS}"/>',
        f'    <reg name="frm" bitsize="32" type="int" regnum="{FRM}"/>',
        f'    <reg name="fcsr" bitsize="32" type="int" regnum="{FCSR}"/>',
        "  </feature>",
        "</target>",
    ]
).encode()
"""The target description gdb reads with ``qXfer:features:read:target.xml``."""


def register_size(regnum: int) -> int | None:
    """Size in bytes of register ``regnum``, or None when there is no such register."""
    if 0 <= regnum <= F0 + 31:
        return 8
    if regnum in (FFLAGS, FRM, FCSR):
        return 4
    return None


def read_register(state: Any, regnum: int) -> int:
    """Register ``regnum`` of ``state`` (a Hart, or a GuestThread that is not running).

    Raises:
        KeyError: no such register.
    """
    if 0 <= regnum < 32:
        return int(state.x[regnum]) if regnum else 0
    if regnum == PC:
        return int(state.pc)
    if F0 <= regnum < F0 + 32:
        return int(state.f[regnum - F0])
    if regnum == FFLAGS:
        return int(state.fflags)
    if regnum == FRM:
        return int(state.frm)
    if regnum == FCSR:
        return int(state.frm) << 5 | int(state.fflags)
    raise KeyError(regnum)


def write_register(state: Any, regnum: int, value: int) -> None:
    """Set register ``regnum`` of ``state`` (writes to x0 are ignored, as the hart does).

    Raises:
        KeyError: no such register.
    """
    if 0 <= regnum < 32:
        if regnum:
            state.x[regnum] = value & _M64
    elif regnum == PC:
        state.pc = value & _M64
    elif F0 <= regnum < F0 + 32:
        state.f[regnum - F0] = value & _M64
    elif regnum == FFLAGS:
        state.fflags = value & 0x1F
    elif regnum == FRM:
        state.frm = value & 0x7
    elif regnum == FCSR:
        state.fflags, state.frm = value & 0x1F, (value >> 5) & 0x7
    else:
        raise KeyError(regnum)
