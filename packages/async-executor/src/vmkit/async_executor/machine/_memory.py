"""The guest address space: 4 KiB pages with R/W/X permissions and a software TLB in front.

Design notes
------------
* The page table is two dicts keyed by virtual page number (``addr >> 12``): ``_perms`` holds the
  permission bits of every mapped page and ``_pages`` the page contents, a ``bytearray(4096)``.
  Pages are materialised lazily on first touch, so a large anonymous ``mmap`` costs one dict entry
  per page, not 4 KiB of host memory per page.
* The TLB is three plain dicts, ``tlb_read``, ``tlb_write`` and ``tlb_fetch``, mapping a page
  number to the page's bytearray. An entry exists only when that access is allowed, so an executor's
  fast path is one ``dict.get`` plus a ``struct`` unpack, and a miss (``None``) sends it to the slow
  path (:meth:`AddressSpace.load`, :meth:`store`, :meth:`fetch`), which walks the page table, checks
  permissions, fills the TLB and raises :class:`GuestMemoryFault` when the access is not allowed.
* Invariant: executors keep references to the three TLB dicts, so they are never rebound, only
  mutated in place. Every change of a mapping or of permissions removes the affected entries.
* Typed views: the JIT indexes aligned 2-, 4- and 8-byte data through ``memoryview.cast`` views of
  a page. Building one costs about ten times a dict lookup, so views are cached per page and
  format in :class:`ViewTLB` dicts (``vrQ[vpn]``: the page as unsigned 64-bit words for reading,
  ``vwI[vpn]`` as 32-bit words for writing, ...), each filled from its base TLB and dropped
  together with it. A lookup of a page the base TLB lacks gives None and caches nothing.
* Mappings lie in ``[PAGE_SIZE, USER_TOP)``: page 0 is never mapped (as Linux's
  ``mmap_min_addr``) and nothing lies above the Sv48 user space. So an address an access used
  successfully is below ``2**47``: the JIT relies on that to drop 64-bit masks on pointer
  increments.
* The TLB is bounded (it is a cache, not the page table): when a dict holds ``TLB_CAPACITY``
  entries the oldest is evicted (dict insertion order makes that FIFO and cheap).
* Code watching: a page that holds pre-decoded or translated code is *watched*. It is kept out of
  ``tlb_write`` so every store to it takes the slow path, which performs the store and then tells
  each registered listener ``callback(vpn)``; unmapping or re-protecting a watched page does the
  same. The page is then unwatched until an executor decodes it again. That is how self-modifying
  code (GCC's nested-function trampolines on the stack) and ``fence.i`` stay correct.
* Misaligned accesses are allowed and may cross pages (Linux emulates them for user code on
  RISC-V and qemu-user allows them); LR/SC/AMO alignment is the executor's business.
* Where things go in the address space (stack, program break, mmap) is the kernel's policy, not
  the address space's: ``linux/_layout.py`` keeps qemu-riscv64's layout and allocator.
"""

from __future__ import annotations

from collections.abc import Callable, Container

from vmkit.async_executor.errors import AsyncExecutorError, SegmentationFault
from vmkit.async_executor.limits import DEFAULT_LIMITS, GuestLimits, LimitCounters
from vmkit.async_executor.machine._ranges import PageRuns

__all__ = [
    "MIN_MAP_ADDR",
    "PAGE_MASK",
    "PAGE_SHIFT",
    "PAGE_SIZE",
    "PERM_R",
    "PERM_W",
    "PERM_X",
    "TLB_CAPACITY",
    "USER_TOP",
    "AddressSpace",
    "GuestMemoryFault",
    "ViewTLB",
]

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
#: Mask of the offset inside a page.
PAGE_MASK = PAGE_SIZE - 1

#: Permission bits; the same values as Linux's PROT_READ, PROT_WRITE and PROT_EXEC.
PERM_R = 1
PERM_W = 2
PERM_X = 4

#: End of the guest's user address space (Sv48).
USER_TOP = 1 << 47
#: Lowest mappable address: page 0 stays unmapped, so null-pointer accesses always fault.
MIN_MAP_ADDR = PAGE_SIZE
#: Entries per TLB dict: 1024 pages cover 4 MiB, far more than the loop kernels touch at once.
TLB_CAPACITY = 1024

_ACCESS_PERM = {"read": PERM_R, "write": PERM_W, "fetch": PERM_X}

CodeWriteListener = Callable[[int], None]


class GuestMemoryFault(AsyncExecutorError):
    """An access the page table does not allow; executors turn it into a SIGSEGV, syscalls EFAULT.

    ``access`` is ``"read"``, ``"write"`` or ``"fetch"``; ``reason`` is ``"unmapped"`` or
    ``"permission denied"``.
    """

    def __init__(self, addr: int, access: str, reason: str) -> None:
        super().__init__(f"{access} of {addr:#x}: {reason}")
        self.addr = addr
        self.access = access
        self.reason = reason

    def to_segfault(self, pc: int | None = None) -> SegmentationFault:
        """The SIGSEGV this fault becomes when the guest instruction at ``pc`` caused it."""
        return SegmentationFault(self.addr, self.access, self.reason, pc=pc)


def _page_range(addr: int, length: int) -> range:
    """Page numbers covering ``[addr, addr + length)``."""
    return range(addr >> PAGE_SHIFT, (addr + length + PAGE_MASK) >> PAGE_SHIFT)


class ViewTLB(dict[int, "memoryview | None"]):
    """Page number -> a typed ``memoryview`` of the page (see the design notes), built on first
    lookup from the base TLB ``base``; None (not cached) when ``base`` lacks the page."""

    __slots__ = ("_base", "_fmt")

    def __init__(self, base: dict[int, bytearray], fmt: str) -> None:
        super().__init__()
        self._base = base
        self._fmt = fmt

    def __missing__(self, vpn: int) -> memoryview | None:
        page = self._base.get(vpn)
        if page is None:
            return None
        if len(self) >= TLB_CAPACITY:
            del self[next(iter(self))]
        view: memoryview = memoryview(page).cast(self._fmt)  # type: ignore[call-overload]
        self[vpn] = view
        return view


class AddressSpace:
    """A paged guest address space with permissions and a software TLB (the program break and
    the mmap allocator are the kernel's: ``linux._layout.ProcessMemory``)."""

    def __init__(
        self, limits: GuestLimits = DEFAULT_LIMITS, counters: LimitCounters | None = None
    ) -> None:
        #: What this guest may map in total, and where refusals are counted.
        self.limits = limits
        self.limit_counters = counters if counters is not None else LimitCounters()
        self._perms: dict[int, int] = {}
        #: The same pages as ``_perms``, as runs: what the allocator searches (see _ranges).
        self._runs = PageRuns()
        self._pages: dict[int, bytearray] = {}
        #: Fast-path caches: page number -> page bytes, present only when the access is allowed.
        #: bumped whenever a TLB entry stops being valid (unmap, re-protect, a page becoming
        #: watched, a flush): a cache of TLB entries outside these dicts (the native tier's) is
        #: valid only while the epoch it was filled in is current. Eviction for capacity does
        #: not bump it: an evicted entry is still a correct translation.
        self.tlb_epoch = 0
        self.tlb_read: dict[int, bytearray] = {}
        self.tlb_write: dict[int, bytearray] = {}
        self.tlb_fetch: dict[int, bytearray] = {}
        #: Typed views of readable (``vr``) and writable (``vw``) pages, by struct format.
        self.vrH = ViewTLB(self.tlb_read, "H")
        self.vrh = ViewTLB(self.tlb_read, "h")
        self.vrI = ViewTLB(self.tlb_read, "I")
        self.vri = ViewTLB(self.tlb_read, "i")
        self.vrQ = ViewTLB(self.tlb_read, "Q")
        self.vwH = ViewTLB(self.tlb_write, "H")
        self.vwI = ViewTLB(self.tlb_write, "I")
        self.vwQ = ViewTLB(self.tlb_write, "Q")
        self._write_views = (self.vwH, self.vwI, self.vwQ)
        self._views = (self.vrH, self.vrh, self.vrI, self.vri, self.vrQ, *self._write_views)
        #: Memory accesses executors performed (they add them in bulk).
        self.tlb_accesses = 0
        #: Slow-path page-table walks.
        self.tlb_misses = 0
        self._watched: set[int] = set()
        self._listeners: list[CodeWriteListener] = []
        #: Hooks (``machine._hooks``): pages whose reads / writes a memory hook watches (kept
        #: out of the TLB so every such access takes the slow path), the hook the slow path
        #: calls for them (``access_hook(access, addr, size, value)``; None: no memory hooks,
        #: one attribute test per slow-path access), and which pcs a code hook covers (read by
        #: the block builders; None: none).
        self.hooked_read: Container[int] = frozenset()
        self.hooked_write: Container[int] = frozenset()
        self.access_hook: Callable[[str, int, int, int], None] | None = None
        self.code_hooked: Callable[[int], bool] | None = None

    # ------------------------------------------------------------------ inspection

    @property
    def tlb_hit_rate(self) -> float:
        """1 - misses / accesses (1.0 before any access was counted)."""
        if self.tlb_accesses <= 0:
            return 1.0
        return max(0.0, 1.0 - self.tlb_misses / self.tlb_accesses)

    def is_mapped(self, addr: int) -> bool:
        """Whether the page holding ``addr`` is mapped (with any permissions)."""
        return (addr >> PAGE_SHIFT) in self._perms

    def perms_at(self, addr: int) -> int | None:
        """Permission bits of the page holding ``addr``, or None when it is unmapped."""
        return self._perms.get(addr >> PAGE_SHIFT)

    def is_range_free(self, addr: int, length: int) -> bool:
        """Whether no page of ``[addr, addr + length)`` is mapped."""
        pages = _page_range(addr, length)
        return not self._runs.overlaps(pages.start, pages.stop)

    @property
    def mapped_runs(self) -> int:
        """Number of maximal runs of mapped pages (what the allocator's searches step over)."""
        return len(self._runs)

    @property
    def mapped_pages(self) -> int:
        """Number of mapped pages."""
        return len(self._perms)

    # ------------------------------------------------------------------ TLB

    def tlb_flush(self) -> None:
        """Drop every TLB entry (the dicts stay the same objects)."""
        self.tlb_epoch += 1
        self.tlb_read.clear()
        self.tlb_write.clear()
        self.tlb_fetch.clear()
        for views in self._views:
            views.clear()

    def _tlb_drop(self, vpn: int) -> None:
        self.tlb_epoch += 1
        self.tlb_read.pop(vpn, None)
        self.tlb_write.pop(vpn, None)
        self.tlb_fetch.pop(vpn, None)
        for views in self._views:
            views.pop(vpn, None)

    @staticmethod
    def _tlb_fill(tlb: dict[int, bytearray], vpn: int, page: bytearray) -> None:
        if len(tlb) >= TLB_CAPACITY:
            del tlb[next(iter(tlb))]
        tlb[vpn] = page

    def _page(self, vpn: int) -> bytearray:
        page = self._pages.get(vpn)
        if page is None:
            page = self._pages[vpn] = bytearray(PAGE_SIZE)
        return page

    def _walk(self, addr: int, access: str) -> bytearray:
        """Page-table walk for one page: check, fill the TLB, count a miss."""
        self.tlb_misses += 1
        vpn = addr >> PAGE_SHIFT
        perms = self._perms.get(vpn)
        if perms is None:
            raise GuestMemoryFault(addr, access, "unmapped")
        if not perms & _ACCESS_PERM[access]:
            raise GuestMemoryFault(addr, access, "permission denied")
        page = self._page(vpn)
        if access == "read":
            if vpn not in self.hooked_read:
                self._tlb_fill(self.tlb_read, vpn, page)
        elif access == "fetch":
            self._tlb_fill(self.tlb_fetch, vpn, page)
        elif vpn not in self._watched and vpn not in self.hooked_write:
            self._tlb_fill(self.tlb_write, vpn, page)
        return page

    def page_for(self, addr: int, access: str) -> bytearray | None:
        """The page holding ``addr`` if an ``access`` (``"read"`` or ``"write"``) of it is
        allowed without the slow path, filling the TLB as a slow-path access would; else None
        (unmapped, not permitted, or, for a write, a watched code page)."""
        tlb = self.tlb_write if access == "write" else self.tlb_read
        page = tlb.get(addr >> PAGE_SHIFT)
        if page is not None:
            return page
        try:
            self._walk(addr, access)
        except GuestMemoryFault:
            return None
        return tlb.get(addr >> PAGE_SHIFT)

    # ------------------------------------------------------------------ slow paths

    def load(self, addr: int, size: int) -> int:
        """Read ``size`` bytes at ``addr`` as an unsigned little-endian integer (any alignment):
        a guest load (memory hooks see it; the kernel uses :meth:`read_word`)."""
        value = self.read_word(addr, size)
        if self.access_hook is not None:
            self.access_hook("read", addr, size, value)
        return value

    def read_word(self, addr: int, size: int) -> int:
        """:meth:`load` for the kernel's own accesses (system call arguments): checked the same,
        not a guest instruction, so memory hooks do not see it."""
        off = addr & PAGE_MASK
        if off + size <= PAGE_SIZE:
            page = self._walk(addr, "read")
            return int.from_bytes(page[off : off + size], "little")
        return int.from_bytes(self._read(addr, size, "read"), "little")

    def fetch(self, addr: int, size: int) -> int:
        """Read ``size`` instruction bytes at ``addr``; needs execute permission."""
        off = addr & PAGE_MASK
        if off + size <= PAGE_SIZE:
            page = self._walk(addr, "fetch")
            return int.from_bytes(page[off : off + size], "little")
        return int.from_bytes(self._read(addr, size, "fetch"), "little")

    def store(self, addr: int, size: int, value: int) -> None:
        """Write the low ``size`` bytes of ``value`` at ``addr``, little-endian (any alignment):
        a guest store (memory hooks see it; the kernel uses :meth:`write_word`)."""
        value &= (1 << (8 * size)) - 1
        if self.access_hook is not None:
            self.access_hook("write", addr, size, value)
        self.write_word(addr, size, value)

    def write_word(self, addr: int, size: int, value: int) -> None:
        """:meth:`store` for the kernel's own accesses (not seen by memory hooks)."""
        data = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        off = addr & PAGE_MASK
        if off + size <= PAGE_SIZE:
            page = self._walk(addr, "write")
            page[off : off + size] = data
            vpn = addr >> PAGE_SHIFT
            if vpn in self._watched:
                self._code_changed(vpn)
            return
        self._write(addr, data)

    def _read(self, addr: int, n: int, access: str) -> bytes:
        # Check every page first so a fault leaves nothing half done.
        chunks = []
        pos, end = addr, addr + n
        while pos < end:
            page = self._walk(pos, access)
            off = pos & PAGE_MASK
            take = min(PAGE_SIZE - off, end - pos)
            chunks.append(bytes(page[off : off + take]))
            pos += take
        return b"".join(chunks)

    def _write(self, addr: int, data: bytes | bytearray | memoryview) -> None:
        n = len(data)
        end = addr + n
        pages = [self._walk(pos, "write") for pos in range(addr & ~PAGE_MASK, end, PAGE_SIZE)]
        if n == 0:
            return
        pos = addr
        src = 0
        for page in pages:
            off = pos & PAGE_MASK
            take = min(PAGE_SIZE - off, end - pos)
            page[off : off + take] = data[src : src + take]
            vpn = pos >> PAGE_SHIFT
            if vpn in self._watched:
                self._code_changed(vpn)
            pos += take
            src += take

    # ------------------------------------------------------------------ bytes for syscalls

    def read_bytes(self, addr: int, n: int) -> bytes:
        """``n`` bytes at ``addr`` (needs read permission); raises GuestMemoryFault."""
        if n <= 0:
            return b""
        return self._read(addr, n, "read")

    def write_bytes(self, addr: int, data: bytes | bytearray | memoryview) -> None:
        """Store ``data`` at ``addr`` (needs write permission); raises GuestMemoryFault."""
        self._write(addr, data)

    def read_cstring(self, addr: int, limit: int = 4096) -> bytes:
        """The NUL-terminated string at ``addr`` without its NUL.

        At most ``limit`` bytes are read; a result of exactly ``limit`` bytes means no NUL was
        found within the limit (callers report ENAMETOOLONG or truncate).
        """
        out = bytearray()
        pos = addr
        while len(out) < limit:
            page = self._walk(pos, "read")
            off = pos & PAGE_MASK
            take = min(PAGE_SIZE - off, limit - len(out))
            nul = page.find(0, off, off + take)
            if nul >= 0:
                out += page[off:nul]
                return bytes(out)
            out += page[off : off + take]
            pos += take
        return bytes(out)

    def poke(self, addr: int, data: bytes | bytearray | memoryview) -> None:
        """Write ``data`` ignoring permissions (the loader fills read-only segments with this).

        The pages must be mapped. Watched code pages are still reported to the listeners.
        """
        pos, src, end = addr, 0, addr + len(data)
        while pos < end:
            vpn = pos >> PAGE_SHIFT
            if vpn not in self._perms:
                raise GuestMemoryFault(pos, "write", "unmapped")
            off = pos & PAGE_MASK
            take = min(PAGE_SIZE - off, end - pos)
            self._page(vpn)[off : off + take] = data[src : src + take]
            if vpn in self._watched:
                self._code_changed(vpn)
            pos += take
            src += take

    def peek(self, addr: int, n: int) -> bytes:
        """Read ``n`` bytes ignoring permissions; unmapped pages raise GuestMemoryFault."""
        out = bytearray()
        pos, end = addr, addr + n
        while pos < end:
            vpn = pos >> PAGE_SHIFT
            if vpn not in self._perms:
                raise GuestMemoryFault(pos, "read", "unmapped")
            off = pos & PAGE_MASK
            take = min(PAGE_SIZE - off, end - pos)
            out += self._page(vpn)[off : off + take]
            pos += take
        return bytes(out)

    # ------------------------------------------------------------------ code watching

    def hook_pages(self, read: Container[int], write: Container[int]) -> None:
        """Memory hooks now watch reads of the pages in ``read`` and writes of those in
        ``write``: the TLB is emptied (the native tier's too, through the epoch) and refills
        without them, so their accesses reach the slow path."""
        self.hooked_read, self.hooked_write = read, write
        self.tlb_flush()

    def code_changed_in(self, start: int, end: int) -> None:
        """Tell the code-write listeners that the code of every page in ``[start, end)`` holding
        pre-decoded or translated code changed (code hooks were added or removed there, so
        blocks must be built again around them)."""
        first, last = start >> PAGE_SHIFT, (end - 1) >> PAGE_SHIFT
        for vpn in sorted(v for v in self._watched if first <= v <= last):
            self._code_changed(vpn)

    def watch_code_page(self, vpn: int) -> None:
        """Mark page ``vpn`` as holding decoded code: stores to it now take the slow path."""
        if vpn in self._watched:
            # Nothing to do, and nothing goes stale: while a page is watched no write TLB entry
            # or write view of it is ever made. Not moving the epoch matters: every LR and every
            # block built watches its page, and each move empties the native TLB.
            return
        self._watched.add(vpn)
        self.tlb_epoch += 1
        self.tlb_write.pop(vpn, None)
        for views in self._write_views:
            views.pop(vpn, None)

    def is_watched(self, vpn: int) -> bool:
        """Whether page ``vpn`` is currently watched."""
        return vpn in self._watched

    def add_code_write_listener(self, callback: CodeWriteListener) -> None:
        """Call ``callback(vpn)`` whenever a watched page is written, unmapped or re-protected."""
        self._listeners.append(callback)

    def remove_code_write_listener(self, callback: CodeWriteListener) -> None:
        """Stop calling ``callback``; unknown callbacks are ignored."""
        if callback in self._listeners:
            self._listeners.remove(callback)

    def _code_changed(self, vpn: int) -> None:
        self._watched.discard(vpn)
        for callback in list(self._listeners):
            callback(vpn)

    # ------------------------------------------------------------------ mappings

    def map(self, addr: int, length: int, perms: int, data: bytes | bytearray = b"") -> None:
        """Map fresh zeroed pages over ``[addr, addr + length)`` (replacing what was there).

        ``addr`` must be page aligned; ``length`` is rounded up to whole pages. ``data`` is
        copied to ``addr`` regardless of ``perms``. The range must lie in user space,
        ``[MIN_MAP_ADDR, USER_TOP)`` (see :meth:`fits`).
        """
        if addr & PAGE_MASK:
            raise ValueError(f"map address {addr:#x} is not page aligned")
        if not self.fits(addr, length):
            raise ValueError(
                f"map range {addr:#x}+{length:#x} is outside user space "
                f"[{MIN_MAP_ADDR:#x}, {USER_TOP:#x})"
            )
        pages = _page_range(addr, length)
        for vpn in pages:
            if vpn in self._perms:
                self._drop_page(vpn)
            self._perms[vpn] = perms & 7
        self._runs.add(pages.start, pages.stop)
        if data:
            self.poke(addr, data)

    @staticmethod
    def fits(addr: int, length: int) -> bool:
        """Whether ``[addr, addr + length)`` lies in user space, ``[MIN_MAP_ADDR, USER_TOP)``."""
        return addr >= MIN_MAP_ADDR and addr + length <= USER_TOP

    def _drop_page(self, vpn: int) -> None:
        self._perms.pop(vpn, None)
        self._pages.pop(vpn, None)
        self._tlb_drop(vpn)
        if vpn in self._watched:
            self._code_changed(vpn)

    def unmap(self, addr: int, length: int) -> None:
        """Remove every page of ``[addr, addr + length)``; unmapped holes are fine (as munmap)."""
        pages = _page_range(addr, length)
        victims = [
            vpn
            for lo, hi in self._runs.runs_within(pages.start, pages.stop)
            for vpn in range(lo, hi)
        ]
        for vpn in victims:
            self._drop_page(vpn)
        self._runs.remove(pages.start, pages.stop)

    def protect(self, addr: int, length: int, perms: int) -> None:
        """Change the permissions of ``[addr, addr + length)``; every page must be mapped.

        Raises GuestMemoryFault (reason ``"unmapped"``) when a page is not, as mprotect's ENOMEM.
        """
        pages = _page_range(addr, length)
        for vpn in pages:
            if vpn not in self._perms:
                raise GuestMemoryFault(vpn << PAGE_SHIFT, "protect", "unmapped")
        for vpn in pages:
            self._perms[vpn] = perms & 7
            self._tlb_drop(vpn)
            if vpn in self._watched:
                self._code_changed(vpn)

    # ------------------------------------------------------------------ room and moves

    def affordable(self, addr: int | None, length: int) -> bool:
        """Whether mapping ``length`` bytes (at ``addr``, replacing what is mapped there; None:
        somewhere free) keeps the total within ``limits.memory_bytes``; a refusal is counted."""
        if length > self.limits.memory_bytes:
            fits = False
        else:
            pages = _page_range(addr or 0, length)
            replaced = 0 if addr is None else self._runs.count(pages.start, pages.stop)
            mapped = len(self._perms) + len(pages) - replaced
            fits = mapped << PAGE_SHIFT <= self.limits.memory_bytes
        if not fits:
            self.limit_counters.memory_refused += 1
        return fits

    @property
    def mapped_bytes(self) -> int:
        """Bytes mapped in total, as the memory limit counts them."""
        return len(self._perms) << PAGE_SHIFT

    def first_gap(self, start: int, length: int) -> int | None:
        """The lowest page-aligned address at or above ``start`` where ``length`` bytes are free
        below ``USER_TOP``, or None (a walk over mapped runs, not pages)."""
        vpn = self._runs.first_gap(
            start >> PAGE_SHIFT, (length + PAGE_MASK) >> PAGE_SHIFT, USER_TOP >> PAGE_SHIFT
        )
        return None if vpn is None else vpn << PAGE_SHIFT

    def is_fully_mapped(self, addr: int, length: int) -> bool:
        """Whether every page of ``[addr, addr + length)`` is mapped."""
        return all(vpn in self._perms for vpn in _page_range(addr, length))

    def move(self, old: int, new: int, length: int) -> None:
        """Move the mapped pages of ``[old, old + length)`` to the free range at ``new``, with
        their permissions and contents (the page objects move: nothing is copied); the old range
        ends unmapped (mremap's move)."""
        delta = (new - old) >> PAGE_SHIFT
        for vpn in _page_range(old, length):
            self._perms[vpn + delta] = self._perms[vpn]
            page = self._pages.get(vpn)
            if page is not None:
                self._pages[vpn + delta] = page
                del self._pages[vpn]
        moved = _page_range(new, length)
        self._runs.add(moved.start, moved.stop)
        self.unmap(old, length)
