"""What generated code calls at run time: the globals every block function sees (template
helpers and constants, atomics, LR/SC, fault raisers, struct packers and page views)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Final

from vmkit.async_executor.errors import BusError, GuestSignal, IllegalInstruction
from vmkit.async_executor.isa import _fp
from vmkit.async_executor.isa._decode import decode16, decode32
from vmkit.async_executor.isa._disasm import disassemble, disassemble_raw
from vmkit.async_executor.isa._table import (
    M32,
    M64,
    S32,
    TABLE,
    TEMPLATE_CONSTANTS,
    TEMPLATE_HELPERS,
    InstrSpec,
)
from vmkit.async_executor.machine._memory import PAGE_SHIFT, AddressSpace

_NS: dict[str, Any] = dict(TEMPLATE_HELPERS)


_NS.update(TEMPLATE_CONSTANTS)


_NS.update({name: getattr(_fp, name) for name in _fp.__all__})


def _make_amo(spec: InstrSpec) -> Callable[[AddressSpace, int, int, int], int]:
    width = spec.width
    mask = M32 if width == 4 else M64
    op: Callable[[int, int], int] = eval(f"lambda old, src: {spec.tmpl}", _NS)

    def amo(mem: AddressSpace, addr: int, src: int, pc: int) -> int:
        if addr & (width - 1):
            raise BusError(addr, "write", "misaligned atomic access", pc=pc)
        old = mem.load(addr, width)
        mem.store(addr, width, op(old, src & mask))
        if width == 4:
            return ((old ^ S32) - S32) & M64
        return old

    return amo


def _lr(mem: AddressSpace, hart: Any, addr: int, width: int, pc: int) -> int:
    if addr & (width - 1):
        raise BusError(addr, "read", "misaligned atomic access", pc=pc)
    value = mem.load(addr, width)
    hart.reservation = addr
    # Watching the page routes every write to it through the listeners, which break the
    # reservation (the executor's listener does), as the interpreter does.
    mem.watch_code_page(addr >> PAGE_SHIFT)
    if width == 4:
        return ((value ^ S32) - S32) & M64
    return value


def _sc(mem: AddressSpace, hart: Any, addr: int, width: int, value: int, pc: int) -> int:
    # Misaligned LR/SC/AMO: SIGBUS, as Linux and qemu-user deliver it.
    if addr & (width - 1):
        raise BusError(addr, "write", "misaligned atomic access", pc=pc)
    if hart.reservation != addr:
        hart.reservation = -1
        return 1
    # The reservation goes only once the store is done: a store that faults (SIGSEGV to a
    # handler, or an access a memory hook watches, which the hook stepper runs again) leaves
    # the hart as it was before the SC, as a precise fault must.
    mem.store(addr, width, value)
    hart.reservation = -1
    return 0


def _load_signed(mem: AddressSpace, addr: int, width: int) -> int:
    """Slow path of lb/lh/lw: the loaded value sign-extended to 64 bits."""
    sign = 1 << (8 * width - 1)
    return ((mem.load(addr, width) ^ sign) - sign) & M64


def _illegal(pc: int, raw: int) -> None:
    # The interpreter's wording, so both executors report the same message.
    raise IllegalInstruction(pc, raw, f"illegal instruction `{disassemble_raw(raw, pc)}`")


def _ebreak(pc: int) -> None:
    raise GuestSignal(5, pc=pc)  # SIGTRAP, as Linux delivers for ebreak in user mode


def _bad_rm(pc: int, raw: int, frm: int) -> None:
    instr = decode32(raw) if raw & 3 == 3 else decode16(raw)
    what = f"`{disassemble(instr, pc)}`" if instr is not None else hex(raw)
    raise IllegalInstruction(pc, raw, f"invalid dynamic rounding mode (frm={frm}) for {what}")


_STRUCTS: Final = {
    (1, False): struct.Struct("<B"),
    (2, False): struct.Struct("<H"),
    (4, False): struct.Struct("<I"),
    (8, False): struct.Struct("<Q"),
    (1, True): struct.Struct("<b"),
    (2, True): struct.Struct("<h"),
    (4, True): struct.Struct("<i"),
}


_SHIFT: Final = {2: 1, 4: 2, 8: 3}


#: ``memoryview.cast`` formats by (width, signed): aligned loads and stores index a typed view.
_VIEW: Final = {
    (2, False): "H",
    (2, True): "h",
    (4, False): "I",
    (4, True): "i",
    (8, False): "Q",
    (8, True): "Q",
}


#: Names every generated block sees as globals.
BLOCK_GLOBALS: Final[dict[str, Any]] = dict(_NS)


BLOCK_GLOBALS.update(
    {
        "U1": _STRUCTS[1, False].unpack_from,
        "U2": _STRUCTS[2, False].unpack_from,
        "U4": _STRUCTS[4, False].unpack_from,
        "U8": _STRUCTS[8, False].unpack_from,
        "I1": _STRUCTS[1, True].unpack_from,
        "I2": _STRUCTS[2, True].unpack_from,
        "I4": _STRUCTS[4, True].unpack_from,
        "P1": _STRUCTS[1, False].pack_into,
        "P2": _STRUCTS[2, False].pack_into,
        "P4": _STRUCTS[4, False].pack_into,
        "P8": _STRUCTS[8, False].pack_into,
        "LSX": _load_signed,
        "LR": _lr,
        "SC": _sc,
        "ILL": _illegal,
        "EBREAK": _ebreak,
        "BADRM": _bad_rm,
        "__builtins__": __builtins__,
    }
)


for _s in TABLE:
    if _s.kind == "amo":
        BLOCK_GLOBALS["AMO_" + _s.name.replace(".", "_")] = _make_amo(_s)
