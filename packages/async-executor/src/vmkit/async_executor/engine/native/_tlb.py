"""The native tier's software TLB: guest page number -> host address of the page's buffer.

Design note
-----------
Native code reaches guest memory only through this table (see ``_ir``): ``TLB_ENTRIES``
direct-mapped entries of (read tag, read address, write tag, write address). An entry is filled
from the address space's own checked walk (:meth:`AddressSpace.page_for`), so it exists only for
an access the guest may make, never for a watched code page's writes; the buffer is pinned by a
ctypes view while the entry holds its address (a pinned bytearray cannot be resized, so the
address stays valid). The whole table is dropped whenever the address space's ``tlb_epoch``
moves (an unmap, a re-protect, a page becoming watched, a flush): stale entries can never be used,
because native code only runs after :meth:`NativeTlb.sync` has checked the epoch.
"""

from __future__ import annotations

import ctypes
from typing import Final

from vmkit.async_executor.engine.native._ir import INVALID_TAG, TLB_ENTRIES
from vmkit.async_executor.machine._memory import PAGE_SHIFT, PAGE_SIZE, AddressSpace

__all__ = ["NativeTlb"]

_PAGE_VIEW: Final = ctypes.c_char * PAGE_SIZE


class NativeTlb:
    """One native TLB for one address space."""

    def __init__(self, memory: AddressSpace) -> None:
        self.memory = memory
        self.table = (ctypes.c_uint64 * (4 * TLB_ENTRIES))()
        self.address = ctypes.addressof(self.table)
        # An empty table to copy over the live one: a flush is one memmove, not a Python loop
        # (flushes are frequent: every LR watches its page, which moves the epoch).
        self._empty = (ctypes.c_uint64 * (4 * TLB_ENTRIES))()
        for i in range(0, 4 * TLB_ENTRIES, 2):
            self._empty[i] = INVALID_TAG
        self._pins: dict[int, ctypes.Array[ctypes.c_char]] = {}
        self._epoch = -1
        self.fills = 0
        self.flushes = 0
        self.sync()

    def sync(self) -> None:
        """Drop every entry if the address space changed a translation since the last fill."""
        if self._epoch != self.memory.tlb_epoch:
            self._epoch = self.memory.tlb_epoch
            ctypes.memmove(self.address, self._empty, ctypes.sizeof(self.table))
            self._pins.clear()
            self.flushes += 1

    def fill(self, addr: int, write: bool) -> bool:
        """Enter the page of ``addr`` for reads (or writes); False when the address space does
        not allow that access without its slow path (unmapped, not permitted, watched code), or
        when the page is entered already (then the access crosses into the next page, which
        only the slow path serves: resuming native code would miss again, for ever)."""
        vpn = addr >> PAGE_SHIFT
        slot = 4 * (vpn & (TLB_ENTRIES - 1)) + (2 if write else 0)
        if self.table[slot] == vpn:
            return False
        page = self.memory.page_for(addr, "write" if write else "read")
        if page is None:
            return False
        view = _PAGE_VIEW.from_buffer(page)
        self._pins[slot] = view
        self.table[slot] = vpn
        self.table[slot + 1] = ctypes.addressof(view)
        self.fills += 1
        return True
