"""The process layout (linux._layout.ProcessMemory): the program break, the bottom-up mmap
allocator as qemu-user places things, mremap, and the guest memory limit on all of them."""

from __future__ import annotations

from vmkit.async_executor.limits import GuestLimits
from vmkit.async_executor.linux._layout import MMAP_BASE, ProcessMemory
from vmkit.async_executor.machine import PAGE_SIZE, PERM_R, PERM_W, AddressSpace
from vmkit.async_executor.machine._memory import MIN_MAP_ADDR, USER_TOP

RW = PERM_R | PERM_W
BASE = 0x10000


class TestProcessMemory:
    def test_brk_grows_and_shrinks(self) -> None:
        """brk maps pages as it grows, unmaps them as it shrinks, and ignores too-low requests."""
        mem = AddressSpace()
        vm = ProcessMemory(mem)
        vm.brk_start = vm.brk = 0x100000
        assert vm.set_brk(0) == 0x100000
        assert vm.set_brk(0x102010) == 0x102010
        mem.store(0x102000, 8, 5)
        assert vm.set_brk(0x101000) == 0x101000
        assert not mem.is_mapped(0x101000)
        assert mem.is_mapped(0x100000)
        assert vm.set_brk(0x0FF000) == 0x101000

    def test_brk_refuses_collision(self) -> None:
        """A break that would run into another mapping is refused."""
        mem = AddressSpace()
        vm = ProcessMemory(mem)
        vm.brk_start = vm.brk = 0x100000
        mem.map(0x103000, PAGE_SIZE, PERM_R)
        assert vm.set_brk(0x104000) == 0x100000

    def test_mmap_bottom_up_without_reuse(self) -> None:
        """Hint-less mmap allocates bottom-up from MMAP_BASE and does not go back into holes."""
        mem = AddressSpace()
        vm = ProcessMemory(mem)
        a = vm.mmap(0, 3 * PAGE_SIZE, RW)
        b = vm.mmap(0, PAGE_SIZE, RW)
        assert a == MMAP_BASE
        assert b == a + 3 * PAGE_SIZE
        mem.unmap(a, 3 * PAGE_SIZE)
        assert vm.mmap(0, PAGE_SIZE, RW) == b + PAGE_SIZE

    def test_mmap_skips_fixed_mappings(self) -> None:
        """The bottom-up search steps over pages mapped with MAP_FIXED above the cursor."""
        mem = AddressSpace()
        vm = ProcessMemory(mem)
        vm.mmap(MMAP_BASE + PAGE_SIZE, PAGE_SIZE, RW, fixed=True)
        assert vm.mmap(0, 2 * PAGE_SIZE, RW) == MMAP_BASE + 2 * PAGE_SIZE

    def test_mmap_hint_and_fixed(self) -> None:
        """A free hint is honoured; MAP_FIXED replaces existing pages with zeroes."""
        mem = AddressSpace()
        mem.map(BASE, 4 * PAGE_SIZE, RW)
        vm = ProcessMemory(mem)
        assert vm.mmap(0x200000, PAGE_SIZE, RW) == 0x200000
        mem.store(BASE, 8, 99)
        assert vm.mmap(BASE, PAGE_SIZE, RW, fixed=True) == BASE
        assert mem.load(BASE, 8) == 0
        hinted = vm.mmap(BASE, PAGE_SIZE, RW)
        assert hinted is not None
        assert hinted != BASE

    def test_large_mmap_is_lazy(self) -> None:
        """A 256 MiB mapping is usable without materialising every page."""
        mem = AddressSpace()
        vm = ProcessMemory(mem)
        addr = vm.mmap(0, 256 << 20, RW)
        assert addr is not None
        mem.store(addr + (200 << 20), 8, 1)
        assert mem.load(addr + (200 << 20), 8) == 1
        assert len(mem._pages) == 1

    def test_remap_grow_in_place_and_move(self) -> None:
        """mremap grows in place when the next pages are free and otherwise moves the contents."""
        mem = AddressSpace()
        vm = ProcessMemory(mem)
        a = vm.mmap(0, PAGE_SIZE, RW)
        b = vm.mmap(0, PAGE_SIZE, RW)
        assert a is not None
        assert b == a + PAGE_SIZE
        mem.store(b, 8, 0xABC)
        assert vm.remap(b, PAGE_SIZE, 2 * PAGE_SIZE, may_move=False) == b
        mem.store(a, 8, 0xDEF)
        assert vm.remap(a, PAGE_SIZE, 2 * PAGE_SIZE, may_move=False) is None
        c = vm.remap(a, PAGE_SIZE, 3 * PAGE_SIZE, may_move=True)
        assert c is not None
        assert c >= b + 2 * PAGE_SIZE
        assert mem.load(c, 8) == 0xDEF
        assert mem.load(c + 2 * PAGE_SIZE, 8) == 0
        assert not mem.is_mapped(a)
        assert mem.load(b, 8) == 0xABC

    def test_memory_limit_refuses_and_counts(self) -> None:
        """mmap, mremap and brk past ``limits.memory_bytes`` fail and count a refusal."""
        limit = 128 * PAGE_SIZE
        mem = AddressSpace(GuestLimits(memory_bytes=limit))
        vm = ProcessMemory(mem)
        assert vm.mmap(0, limit + PAGE_SIZE, RW) is None
        assert vm.mmap(0, 1 << 62, RW) is None
        assert vm.mmap(0, 1 << 40, RW, fixed=True) is None
        first = vm.mmap(0, 64 * PAGE_SIZE, RW)
        assert first is not None
        assert vm.mmap(0, 64 * PAGE_SIZE, RW) is not None
        assert mem.mapped_bytes == limit
        assert vm.mmap(0, PAGE_SIZE, RW) is None
        assert vm.remap(first, PAGE_SIZE, 65 * PAGE_SIZE, may_move=True) is None
        vm.brk_start = vm.brk = 0x100000
        assert vm.set_brk(0x200000) == 0x100000
        assert mem.limit_counters.memory_refused == 6

    def test_fixed_mapping_over_a_reservation_costs_nothing_more(self) -> None:
        """MAP_FIXED over pages already mapped (a runtime committing its own PROT_NONE
        reservation, as Go does) replaces them without counting them twice."""
        limit = 64 * PAGE_SIZE
        mem = AddressSpace(GuestLimits(memory_bytes=limit))
        vm = ProcessMemory(mem)
        base = vm.mmap(0, limit, 0)
        assert base is not None
        assert vm.mmap(base, 16 * PAGE_SIZE, RW, fixed=True) == base
        assert mem.mapped_bytes == limit
        assert mem.limit_counters.memory_refused == 0

    def test_search_steps_over_mappings_not_pages(self) -> None:
        """A hint-less mmap past many one-page mappings spread far apart looks at each mapping
        once: its cost grows with the number of mappings, not with the request's size."""
        mem = AddressSpace(GuestLimits(memory_bytes=1 << 40))
        vm = ProcessMemory(mem)
        spread = 8 << 30
        for k in range(200):
            assert vm.mmap(MMAP_BASE + k * spread, PAGE_SIZE, RW, fixed=True) is not None
        assert mem.mapped_runs == 200
        big = vm.mmap(0, spread, RW)
        # The first hole of 8 GiB lies past the last obstacle (each gap is a page short).
        assert big == MMAP_BASE + 199 * spread + PAGE_SIZE
        assert mem.mapped_runs == 200  # the new mapping touches the last obstacle: one run

    def test_limits_do_not_depend_on_module_state(self) -> None:
        """Two address spaces in one process may have different limits."""
        small = AddressSpace(GuestLimits(memory_bytes=4 * PAGE_SIZE))
        large = AddressSpace(GuestLimits(memory_bytes=8 * PAGE_SIZE))
        assert ProcessMemory(small).mmap(0, 8 * PAGE_SIZE, RW) is None
        assert ProcessMemory(large).mmap(0, 8 * PAGE_SIZE, RW) is not None

    def test_remap_shrink(self) -> None:
        """Shrinking unmaps the tail."""
        mem = AddressSpace()
        mem.map(BASE, 4 * PAGE_SIZE, RW)
        vm = ProcessMemory(mem)
        assert vm.remap(BASE, 4 * PAGE_SIZE, PAGE_SIZE, may_move=False) == BASE
        assert not mem.is_mapped(BASE + PAGE_SIZE)

    def test_fixed_mmap_outside_fails(self) -> None:
        """A fixed mmap outside user space fails (the kernel answers ENOMEM) and maps nothing."""
        mem = AddressSpace()
        vm = ProcessMemory(mem)
        assert vm.mmap(0, PAGE_SIZE, PERM_R, fixed=True) is None
        assert vm.mmap(USER_TOP, PAGE_SIZE, PERM_R, fixed=True) is None
        assert vm.mmap(MIN_MAP_ADDR, PAGE_SIZE, PERM_R, fixed=True) == MIN_MAP_ADDR

    def test_remap_cannot_grow_past_the_top(self) -> None:
        """Growing a mapping in place across USER_TOP fails instead of mapping beyond it."""
        mem = AddressSpace()
        vm = ProcessMemory(mem)
        top = USER_TOP - PAGE_SIZE
        assert vm.mmap(top, PAGE_SIZE, PERM_R | PERM_W, fixed=True) == top
        assert vm.remap(top, PAGE_SIZE, 2 * PAGE_SIZE, may_move=False) is None
        assert mem.mapped_pages == 1
