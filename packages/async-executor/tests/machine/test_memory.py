from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmkit.async_executor.errors import SegmentationFault
from vmkit.async_executor.machine import (
    PAGE_SIZE,
    PERM_R,
    PERM_W,
    PERM_X,
    AddressSpace,
    GuestMemoryFault,
)
from vmkit.async_executor.machine._memory import TLB_CAPACITY, USER_TOP

RW = PERM_R | PERM_W
BASE = 0x10000


def space(pages: int = 4, perms: int = RW) -> AddressSpace:
    mem = AddressSpace()
    mem.map(BASE, pages * PAGE_SIZE, perms)
    return mem


class TestSlowPaths:
    def test_store_then_load_round_trips_little_endian(self) -> None:
        """A stored value reads back unsigned and little-endian at every width."""
        mem = space()
        for size in (1, 2, 4, 8):
            mem.store(BASE + 8, size, -2)
            assert mem.load(BASE + 8, size) == (1 << (8 * size)) - 2
        assert mem.read_bytes(BASE + 8, 2) == b"\xfe\xff"

    def test_misaligned_access_crossing_pages(self) -> None:
        """An 8-byte access straddling two pages reads and writes both pages."""
        mem = space()
        addr = BASE + PAGE_SIZE - 3
        mem.store(addr, 8, 0x1122334455667788)
        assert mem.load(addr, 8) == 0x1122334455667788
        assert mem.read_bytes(BASE + PAGE_SIZE, 5) == bytes([0x55, 0x44, 0x33, 0x22, 0x11])

    def test_unmapped_read_faults(self) -> None:
        """Reading an unmapped page raises GuestMemoryFault naming address, access and reason."""
        mem = space()
        with pytest.raises(GuestMemoryFault) as info:
            mem.load(0x5000, 4)
        assert (info.value.addr, info.value.access, info.value.reason) == (
            0x5000,
            "read",
            "unmapped",
        )

    def test_write_to_read_only_page_faults(self) -> None:
        """A store to a read-only page is a permission fault and changes nothing."""
        mem = space(perms=PERM_R)
        with pytest.raises(GuestMemoryFault) as info:
            mem.store(BASE, 4, 7)
        assert info.value.reason == "permission denied"
        assert info.value.access == "write"
        assert mem.load(BASE, 4) == 0

    def test_fetch_needs_execute(self) -> None:
        """Instruction fetch from a non-executable page faults; from an executable one it works."""
        mem = space()
        with pytest.raises(GuestMemoryFault):
            mem.fetch(BASE, 4)
        mem.protect(BASE, PAGE_SIZE, PERM_R | PERM_X)
        assert mem.fetch(BASE, 4) == 0

    def test_crossing_store_into_unmapped_page_changes_nothing(self) -> None:
        """A page-crossing store whose second page is unmapped faults before writing anything."""
        mem = space(pages=1)
        with pytest.raises(GuestMemoryFault):
            mem.store(BASE + PAGE_SIZE - 2, 4, 0xFFFFFFFF)
        assert mem.load(BASE + PAGE_SIZE - 2, 2) == 0

    def test_fault_converts_to_segfault(self) -> None:
        """to_segfault carries the address, access and pc into a SIGSEGV fault."""
        fault = GuestMemoryFault(0x10, "write", "unmapped")
        seg = fault.to_segfault(pc=0x1000)
        assert isinstance(seg, SegmentationFault)
        assert seg.exit_status == 139
        assert "0x10" in str(seg)
        assert "0x1000" in str(seg)

    @settings(max_examples=50)
    @given(st.integers(0, 3 * PAGE_SIZE), st.binary(min_size=0, max_size=PAGE_SIZE + 10))
    def test_bytes_round_trip(self, offset: int, data: bytes) -> None:
        """write_bytes then read_bytes returns the same bytes anywhere in the mapping."""
        mem = space(pages=5)
        mem.write_bytes(BASE + offset, data)
        assert mem.read_bytes(BASE + offset, len(data)) == data


class TestTlb:
    def test_fill_on_miss_and_count(self) -> None:
        """A slow-path read fills tlb_read with the page buffer and counts one miss."""
        mem = space()
        mem.store(BASE + 4, 4, 0xDEADBEEF)
        misses = mem.tlb_misses
        assert mem.load(BASE + 4, 4) == 0xDEADBEEF
        assert mem.tlb_misses == misses + 1
        buf = mem.tlb_read[BASE >> 12]
        assert struct.unpack_from("<I", buf, 4)[0] == 0xDEADBEEF

    def test_entries_only_when_allowed(self) -> None:
        """A read-only page never enters tlb_write or tlb_fetch."""
        mem = space(perms=PERM_R)
        mem.load(BASE, 1)
        with pytest.raises(GuestMemoryFault):
            mem.store(BASE, 1, 0)
        vpn = BASE >> 12
        assert vpn in mem.tlb_read
        assert vpn not in mem.tlb_write
        assert vpn not in mem.tlb_fetch

    def test_protect_drops_entries(self) -> None:
        """Changing permissions removes the page from every TLB dict."""
        mem = space()
        mem.store(BASE, 4, 1)
        mem.load(BASE, 4)
        mem.protect(BASE, PAGE_SIZE, PERM_R)
        assert (BASE >> 12) not in mem.tlb_write
        assert (BASE >> 12) not in mem.tlb_read
        with pytest.raises(GuestMemoryFault):
            mem.store(BASE, 4, 2)

    def test_unmap_drops_entries(self) -> None:
        """An unmapped page leaves the TLB and faults afterwards."""
        mem = space()
        mem.load(BASE, 4)
        mem.unmap(BASE, PAGE_SIZE)
        assert (BASE >> 12) not in mem.tlb_read
        with pytest.raises(GuestMemoryFault):
            mem.load(BASE, 4)

    def test_bounded(self) -> None:
        """The TLB never holds more than TLB_CAPACITY entries per dict."""
        pages = TLB_CAPACITY + 10
        mem = space(pages=pages)
        for i in range(pages):
            mem.load(BASE + i * PAGE_SIZE, 1)
        assert len(mem.tlb_read) == TLB_CAPACITY
        assert (BASE >> 12) not in mem.tlb_read
        assert ((BASE >> 12) + pages - 1) in mem.tlb_read

    def test_flush_keeps_dict_identity(self) -> None:
        """tlb_flush empties the dicts in place so executors' references stay valid."""
        mem = space()
        tlb = mem.tlb_read
        mem.load(BASE, 1)
        mem.tlb_flush()
        assert tlb is mem.tlb_read
        assert not tlb

    def test_hit_rate(self) -> None:
        """The hit rate is 1 - misses/accesses."""
        mem = space()
        mem.load(BASE, 1)
        mem.tlb_accesses += 10
        assert mem.tlb_hit_rate == pytest.approx(0.9)


class TestCodeWatching:
    def test_store_to_watched_page_notifies_once(self) -> None:
        """A store to a watched page reaches the listener and unwatches the page."""
        mem = space(perms=RW | PERM_X)
        seen: list[int] = []
        mem.add_code_write_listener(seen.append)
        vpn = BASE >> 12
        mem.store(BASE, 4, 1)
        assert vpn in mem.tlb_write
        mem.watch_code_page(vpn)
        assert vpn not in mem.tlb_write
        mem.store(BASE, 4, 2)
        assert seen == [vpn]
        assert not mem.is_watched(vpn)
        assert mem.load(BASE, 4) == 2
        mem.store(BASE, 4, 3)
        assert seen == [vpn]

    def test_write_bytes_protect_and_unmap_notify(self) -> None:
        """Syscall writes, mprotect and munmap of watched pages reach the listener."""
        mem = space(perms=RW | PERM_X)
        seen: list[int] = []
        mem.add_code_write_listener(seen.append)
        vpn = BASE >> 12
        mem.watch_code_page(vpn)
        mem.write_bytes(BASE + 10, b"x")
        mem.watch_code_page(vpn)
        mem.protect(BASE, PAGE_SIZE, PERM_R | PERM_X)
        mem.watch_code_page(vpn)
        mem.unmap(BASE, PAGE_SIZE)
        assert seen == [vpn, vpn, vpn]

    def test_watched_page_stays_out_of_write_tlb(self) -> None:
        """A slow-path store to a watched page does not put it in tlb_write."""
        mem = space()
        vpn = BASE >> 12
        mem.watch_code_page(vpn)
        mem.add_code_write_listener(mem.watch_code_page)
        mem.store(BASE, 1, 1)
        assert vpn not in mem.tlb_write

    def test_watching_a_watched_page_again_moves_no_epoch(self) -> None:
        """The first watch moves the TLB epoch (the native TLB must drop its write entry); a
        second one changes nothing, so it leaves the epoch (and the native TLB) alone."""
        mem = space(perms=RW | PERM_X)
        vpn = BASE >> 12
        mem.store(BASE, 4, 1)
        first = mem.tlb_epoch
        mem.watch_code_page(vpn)
        assert mem.tlb_epoch > first
        watched = mem.tlb_epoch
        mem.load(BASE, 4)
        mem.store(BASE, 4, 2)  # the slow path: unwatches, so the next watch is a first one again
        mem.watch_code_page(vpn)
        again = mem.tlb_epoch
        assert again > watched
        mem.watch_code_page(vpn)
        mem.watch_code_page(vpn)
        assert mem.tlb_epoch == again
        assert vpn not in mem.tlb_write


class TestStrings:
    def test_read_cstring_across_pages(self) -> None:
        """read_cstring finds the NUL on a later page."""
        mem = space()
        addr = BASE + PAGE_SIZE - 3
        mem.write_bytes(addr, b"hello\0world")
        assert mem.read_cstring(addr) == b"hello"

    def test_read_cstring_limit(self) -> None:
        """Without a NUL within the limit the result has exactly limit bytes."""
        mem = space()
        mem.write_bytes(BASE, b"a" * 100)
        assert mem.read_cstring(BASE, 10) == b"a" * 10

    def test_read_cstring_unmapped_faults(self) -> None:
        """A string running into an unmapped page faults."""
        mem = space(pages=1)
        mem.write_bytes(BASE, b"a" * PAGE_SIZE)
        with pytest.raises(GuestMemoryFault):
            mem.read_cstring(BASE, 2 * PAGE_SIZE)


class TestRegions:
    def test_protect_unmapped_raises(self) -> None:
        """mprotect over a hole raises GuestMemoryFault (the syscall's ENOMEM)."""
        mem = space(pages=1)
        with pytest.raises(GuestMemoryFault):
            mem.protect(BASE, 2 * PAGE_SIZE, PERM_R)

    def test_poke_ignores_permissions(self) -> None:
        """poke writes into read-only pages (the loader's way to fill text)."""
        mem = space(perms=PERM_R | PERM_X)
        mem.poke(BASE, b"\x13\x00\x00\x00")
        assert mem.fetch(BASE, 4) == 0x13
        assert mem.peek(BASE, 2) == b"\x13\x00"


_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("map"), st.integers(0, 7), st.integers(1, 3), st.integers(0, 7)),
        st.tuples(st.just("unmap"), st.integers(0, 7), st.integers(1, 3), st.just(0)),
        st.tuples(st.just("protect"), st.integers(0, 7), st.integers(1, 3), st.integers(0, 7)),
        st.tuples(
            st.just("store"),
            st.integers(0, 8 * PAGE_SIZE - 1),
            st.sampled_from([1, 2, 4, 8]),
            st.integers(0, 2**64 - 1),
        ),
        st.tuples(
            st.just("load"),
            st.integers(0, 8 * PAGE_SIZE - 1),
            st.sampled_from([1, 2, 4, 8]),
            st.just(0),
        ),
        st.tuples(
            st.just("fetch"), st.integers(0, 8 * PAGE_SIZE - 1), st.sampled_from([2, 4]), st.just(0)
        ),
    ),
    max_size=40,
)


class TestAgainstModel:
    @settings(max_examples=150, deadline=None)
    @given(_OPS)
    def test_random_operations(self, ops: list[tuple[str, int, int, int]]) -> None:  # noqa: PLR0912 - one branch per operation of the model
        """Any sequence of map/unmap/protect/store/load/fetch agrees with a byte-per-address model.

        The model keeps one dict entry per byte and per page permission, with no TLB at all, so
        a stale TLB entry or a wrong permission check shows up as a disagreement.
        """
        mem = AddressSpace()
        perms: dict[int, int] = {}
        data: dict[int, int] = {}
        for op, a, b, c in ops:
            if op == "map":
                mem.map(BASE + a * PAGE_SIZE, b * PAGE_SIZE, c)
                for vpn in range(a, a + b):
                    perms[vpn] = c
                    for i in range(vpn * PAGE_SIZE, (vpn + 1) * PAGE_SIZE):
                        data.pop(i, None)
            elif op == "unmap":
                mem.unmap(BASE + a * PAGE_SIZE, b * PAGE_SIZE)
                for vpn in range(a, a + b):
                    perms.pop(vpn, None)
            elif op == "protect":
                ok = all(vpn in perms for vpn in range(a, a + b))
                if ok:
                    mem.protect(BASE + a * PAGE_SIZE, b * PAGE_SIZE, c)
                    for vpn in range(a, a + b):
                        perms[vpn] = c
                else:
                    with pytest.raises(GuestMemoryFault):
                        mem.protect(BASE + a * PAGE_SIZE, b * PAGE_SIZE, c)
            else:
                need = {"store": PERM_W, "load": PERM_R, "fetch": PERM_X}[op]
                pages = {(a + i) // PAGE_SIZE for i in range(b)}
                allowed = all(perms.get(vpn, 0) & need for vpn in pages)
                if op == "store":
                    if allowed:
                        mem.store(BASE + a, b, c)
                        for i in range(b):
                            data[a + i] = (c >> (8 * i)) & 0xFF
                    else:
                        with pytest.raises(GuestMemoryFault):
                            mem.store(BASE + a, b, c)
                else:
                    access = mem.load if op == "load" else mem.fetch
                    if allowed:
                        expected = sum(data.get(a + i, 0) << (8 * i) for i in range(b))
                        assert access(BASE + a, b) == expected
                    else:
                        with pytest.raises(GuestMemoryFault):
                            access(BASE + a, b)
            # The fast path must agree too: every TLB entry is for an allowed page.
            for tlb, need in (
                (mem.tlb_read, PERM_R),
                (mem.tlb_write, PERM_W),
                (mem.tlb_fetch, PERM_X),
            ):
                for vpn, page in tlb.items():
                    assert perms.get(vpn - (BASE >> 12), 0) & need
                    assert page is mem._pages[vpn]


class TestViewTlb:
    """Typed page views are cached per page and dropped whenever their base TLB entry is."""

    def _space(self) -> AddressSpace:
        mem = AddressSpace()
        mem.map(0x10000, 2 * PAGE_SIZE, PERM_R | PERM_W)
        mem.store(0x10008, 8, 0x1122334455667788)
        mem.load(0x10000, 8)  # fill tlb_read and tlb_write for the first page
        return mem

    def test_view_reads_the_page(self) -> None:
        """A view of a page in the TLB indexes its words; the same view serves later lookups."""
        mem = self._space()
        view = mem.vrQ[0x10]
        assert view is not None
        assert view[1] == 0x1122334455667788
        assert mem.vrQ[0x10] is view
        assert mem.vri[0x10] is not None
        assert mem.vri[0x10][2] == 0x55667788

    def test_no_view_without_tlb_entry(self) -> None:
        """A page the base TLB lacks (never touched, or unmapped) gives None and caches nothing."""
        mem = self._space()
        assert mem.vrQ[0x11] is None
        assert 0x11 not in mem.vrQ
        assert mem.vrQ[0x99] is None

    def test_dropped_with_the_mapping(self) -> None:
        """Unmapping, re-protecting and flushing drop the cached views with the TLB entries."""
        mem = self._space()
        assert mem.vwQ[0x10] is not None
        mem.protect(0x10000, PAGE_SIZE, PERM_R)
        assert mem.vwQ[0x10] is None
        mem.load(0x10000, 8)
        assert mem.vrQ[0x10] is not None
        mem.unmap(0x10000, PAGE_SIZE)
        assert mem.vrQ[0x10] is None
        mem.map(0x10000, PAGE_SIZE, PERM_R | PERM_W)
        mem.load(0x10000, 8)
        fresh = mem.vrQ[0x10]
        assert fresh is not None
        assert fresh[1] == 0
        mem.tlb_flush()
        assert len(mem.vrQ) == 0

    def test_watched_page_has_no_write_view(self) -> None:
        """Watching a page for code drops its write views, so stores reach the slow path."""
        mem = self._space()
        assert mem.vwI[0x10] is not None
        mem.watch_code_page(0x10)
        assert mem.vwI[0x10] is None
        assert mem.vrI[0x10] is not None  # reads are unaffected

    def test_bounded(self) -> None:
        """A view TLB holds at most TLB_CAPACITY pages, evicting the oldest first."""
        mem = AddressSpace()
        pages = TLB_CAPACITY + 8
        mem.map(0x10000, pages * PAGE_SIZE, PERM_R)
        for i in range(pages):
            vpn = 0x10 + i
            mem.load(vpn << 12, 1)
            assert mem.vrH[vpn] is not None
        assert len(mem.vrH) <= TLB_CAPACITY
        assert 0x10 not in mem.vrH


class TestUserSpaceBounds:
    """Nothing is mapped at page 0 or at or above USER_TOP (the JIT's address bound rests on it)."""

    @pytest.mark.parametrize("addr", [0, USER_TOP - PAGE_SIZE, USER_TOP, 1 << 63])
    def test_map_outside_refused(self, addr: int) -> None:
        """map() outside [MIN_MAP_ADDR, USER_TOP) raises a ValueError naming the range."""
        mem = AddressSpace()
        with pytest.raises(ValueError, match="outside user space"):
            mem.map(addr, 2 * PAGE_SIZE, PERM_R)
        assert mem.mapped_pages == 0
