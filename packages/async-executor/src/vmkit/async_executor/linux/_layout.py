"""The process's memory layout and map policy: where the stack goes, the program break, and the
mmap allocator, over an :class:`AddressSpace` (which only knows pages, permissions and TLBs).

Design notes
------------
* Layout follows qemu-riscv64 (7.x), the reference this engine is compared with, so that even a
  program printing pointers prints the same ones: ``brk`` grows up from the page after the
  program's bss; at ``MMAP_BASE`` - 8 MiB - 8 KiB = 0x40_0000_0000 lie a guard page (no access)
  and the 8 MiB stack, whose top ``STACK_TOP`` is followed by the sigreturn trampoline page;
  hint-less ``mmap`` allocates bottom-up from ``MMAP_BASE`` and never goes back into holes below
  its cursor (as qemu's ``mmap_next_start``). Nothing is randomised, so runs are reproducible.
* Why here and not in the address space: this is the kernel's policy (another kernel, or Linux
  with ASLR, would place things elsewhere), while pages, permissions, limits and TLBs are the
  machine's. One :class:`ProcessMemory` belongs to one address space; the Linux layer keeps one
  per address space it serves (threads sharing memory share it).
* Every mapping is checked against the guest memory limit (``AddressSpace.affordable``) before
  anything is mapped, and refusals are counted there.
"""

from __future__ import annotations

from typing import Final

from vmkit.async_executor.machine._memory import (
    PAGE_MASK,
    PAGE_SIZE,
    PERM_R,
    PERM_W,
    AddressSpace,
    GuestMemoryFault,
)

__all__ = [
    "MMAP_BASE",
    "SIGTRAMP_PAGE",
    "STACK_GUARD",
    "STACK_SIZE",
    "STACK_TOP",
    "ProcessMemory",
]

#: The stack's guard page (mapped with no access, so an overflow faults) and the stack above it.
STACK_GUARD: Final = 0x40_0000_0000
#: Size of the stack mapping (RLIMIT_STACK's usual 8 MiB).
STACK_SIZE: Final = 8 << 20
STACK_TOP: Final = STACK_GUARD + PAGE_SIZE + STACK_SIZE
#: The page after the stack holds the signal-return trampoline (where qemu-user puts it).
SIGTRAMP_PAGE: Final = STACK_TOP
#: Where hint-less mmap starts allocating, bottom-up.
MMAP_BASE: Final = SIGTRAMP_PAGE + PAGE_SIZE


def _pages(length: int) -> int:
    return (length + PAGE_MASK) & ~PAGE_MASK


class ProcessMemory:
    """The program break and the mmap allocator of one process's address space."""

    __slots__ = ("_mmap_next", "brk", "brk_start", "memory")

    def __init__(self, memory: AddressSpace) -> None:
        self.memory = memory
        #: First address of the heap (page aligned) and the current program break.
        self.brk_start = 0
        self.brk = 0
        self._mmap_next = MMAP_BASE

    def set_brk(self, new: int) -> int:
        """Move the program break as the brk syscall does; returns the resulting break.

        Asking for 0 or for an address below the heap's start returns the current break; a
        break that would run into another mapping is refused (the old break is returned).
        """
        if new < self.brk_start:
            return self.brk
        mem = self.memory
        old_end = _pages(self.brk)
        new_end = _pages(new)
        if new_end > old_end:
            if (
                new_end > STACK_GUARD
                or not mem.is_range_free(old_end, new_end - old_end)
                or not mem.affordable(old_end, new_end - old_end)
            ):
                return self.brk
            mem.map(old_end, new_end - old_end, PERM_R | PERM_W)
        elif new_end < old_end:
            mem.unmap(new_end, old_end - new_end)
        self.brk = new
        return new

    def find_free(self, length: int, hint: int = 0) -> int | None:
        """A free page-aligned range of ``length`` bytes: at ``hint`` if free, else bottom-up.

        Without a usable hint the search starts at the allocator's cursor and moves up past
        occupied pages. None when user space is exhausted.
        """
        length = _pages(length)
        if length <= 0:
            return None
        mem = self.memory
        if not hint & PAGE_MASK and mem.fits(hint, length) and mem.is_range_free(hint, length):
            return hint
        return mem.first_gap(self._mmap_next, length)

    def mmap(self, addr: int, length: int, perms: int, *, fixed: bool = False) -> int | None:
        """Map zeroed anonymous pages; returns the address, or None when no room is left.

        An allocation found by the bottom-up search moves the cursor past it; hinted and fixed
        mappings leave the cursor alone (as qemu-user's allocator does).
        """
        length = _pages(length)
        mem = self.memory
        if not mem.affordable(addr if fixed else None, length):
            return None
        if fixed:
            if not mem.fits(addr, length):
                return None
            start: int | None = addr
        else:
            start = self.find_free(length, addr)
        if start is None:
            return None
        mem.map(start, length, perms)
        if not fixed and start != addr and start >= self._mmap_next:
            self._mmap_next = start + length
        return start

    def remap(self, old: int, old_len: int, new_len: int, *, may_move: bool) -> int | None:
        """mremap: shrink or grow the mapping at ``old``; None when it cannot (ENOMEM).

        Raises:
            GuestMemoryFault: part of ``[old, old + old_len)`` is not mapped (EFAULT).
        """
        old_len = _pages(old_len)
        new_len = _pages(new_len)
        mem = self.memory
        if not mem.is_fully_mapped(old, old_len):
            raise GuestMemoryFault(old, "remap", "unmapped")
        if new_len <= old_len:
            mem.unmap(old + new_len, old_len - new_len)
            return old
        if not mem.affordable(None, new_len - old_len):
            return None
        tail_perms = mem.perms_at(old + old_len - 1) or 0
        if mem.fits(old, new_len) and mem.is_range_free(old + old_len, new_len - old_len):
            mem.map(old + old_len, new_len - old_len, tail_perms)
            return old
        if not may_move:
            return None
        new = self.find_free(new_len)
        if new is None:
            return None
        mem.move(old, new, old_len)
        mem.map(new + old_len, new_len - old_len, tail_perms)
        if new >= self._mmap_next:
            self._mmap_next = new + new_len
        return new
