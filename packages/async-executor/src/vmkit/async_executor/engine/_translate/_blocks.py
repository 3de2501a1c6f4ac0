"""Block and region discovery: guest code decoded into blocks (memoised per instruction word,
a pure function of the word, so it cannot go stale when the guest rewrites code), and the loops a
region compiles (the blocks on cycles back to its entry, innermost first, fusable cycles)."""

from __future__ import annotations

from typing import Any, Final

from vmkit.async_executor._record import Record
from vmkit.async_executor.isa._decode import FULL_DECODER, Decoder, Instr
from vmkit.async_executor.isa._table import (
    M64,
)
from vmkit.async_executor.machine._memory import PAGE_SHIFT, AddressSpace, GuestMemoryFault

#: Longest block in instructions: long enough for unrolled loop bodies, short enough that the
#: median compile stays cheap.
MAX_BLOCK_INSNS: Final = 48


_PAGE: Final = 1 << PAGE_SHIFT


class DecodedBlock(Record):
    """The instructions of one block: ``(pc, instr or None, raw)``; None means undecodable."""

    __slots__ = ("start", "instrs", "end", "pages")
    start: int
    instrs: list[tuple[int, Instr | None, int]]
    #: pc after the last instruction (the fall-through successor).
    end: int
    #: guest pages the block's bytes lie on.
    pages: tuple[int, ...]

    def __init__(
        self,
        start: int,
        instrs: list[tuple[int, Instr | None, int]],
        end: int,
        pages: tuple[int, ...],
    ) -> None:
        self.start = start
        self.instrs = instrs
        self.end = end
        self.pages = pages


def _fetch_page(mem: AddressSpace, pc: int) -> bytearray:
    page = mem.tlb_fetch.get(pc >> PAGE_SHIFT)
    if page is None:
        mem.fetch(pc, 2)  # page-table walk: fills the fetch TLB or raises GuestMemoryFault
        page = mem.tlb_fetch.get(pc >> PAGE_SHIFT)
        if page is None:  # pragma: no cover - the TLB was filled a moment ago
            raise GuestMemoryFault(pc, "fetch", "unmapped")
    return page


#: Each instruction word decoded so far: ``raw -> (instr or None, length, ends the block)``.
#: Decoding is a pure function of the raw word (a compressed half-word's low two bits are never
#: 11, so both forms share the key space without clashing), so an entry cannot go stale when the
#: guest rewrites its code: new bytes are a new key. Cleared when full, so a guest that generates
#: endless distinct words cannot grow it without bound. Shared by translating threads: any
#: interleaving of their reads and writes still yields only correct entries.
_DECODED: dict[int, tuple[Instr | None, int, bool]] = {}


_DECODED_MAX: Final = 1 << 16


#: The same for the decoders of reduced ISAs (a hart without some extensions), by decoder.
_DECODED_REDUCED: dict[Decoder, dict[int, tuple[Instr | None, int, bool]]] = {}


def _decode_raw(
    raw: int, decoder: Decoder = FULL_DECODER, memo: dict[int, Any] = _DECODED
) -> tuple[Instr | None, int, bool]:
    """Decode ``raw`` (16 or 32 bits, by its low two bits) into :data:`_DECODED`'s form."""
    instr = decoder.decode32(raw) if raw & 3 == 3 else decoder.decode16(raw)
    if instr is None:
        entry: tuple[Instr | None, int, bool] = (None, 4 if raw & 3 == 3 else 2, True)
    else:
        entry = (instr, instr.length, instr.spec.ends_block)
    if len(memo) >= _DECODED_MAX:
        memo.clear()
    memo[raw] = entry
    return entry


def decode_block(
    mem: AddressSpace,
    pc: int,
    max_insns: int = MAX_BLOCK_INSNS,
    decoder: Decoder = FULL_DECODER,
) -> DecodedBlock:
    """Decode the block starting at ``pc`` (at most ``max_insns`` instructions) with
    ``decoder`` (the hart's ISA).

    Raises GuestMemoryFault when the first instruction cannot be fetched; a later fetch fault or
    an undecodable later instruction just ends the block before it (its own block reports it).
    """
    start = pc
    vpn = pc >> PAGE_SHIFT
    page_end = (vpn + 1) << PAGE_SHIFT
    page = _fetch_page(mem, pc)
    instrs: list[tuple[int, Instr | None, int]] = []
    pages = [vpn]
    limit = max(1, max_insns)
    decoded = _DECODED if decoder is FULL_DECODER else _DECODED_REDUCED.setdefault(decoder, {})
    hooked = mem.code_hooked
    while True:
        if hooked is not None and instrs and hooked(pc):
            break  # a code hook covers pc: the hook stepper runs it, the block ends before
        off = pc & (_PAGE - 1)
        if off <= _PAGE - 4:
            raw = page[off] | page[off + 1] << 8
            if raw & 3 == 3:
                raw |= page[off + 2] << 16 | page[off + 3] << 24
        else:
            try:
                raw = mem.fetch(pc, 2)
                if raw & 3 == 3:
                    raw = mem.fetch(pc, 4)
                    if (pc + 3) >> PAGE_SHIFT != vpn:
                        pages.append((pc + 3) >> PAGE_SHIFT)
            except GuestMemoryFault:
                if not instrs:
                    raise
                break
        instr, length, ends = decoded.get(raw) or _decode_raw(raw, decoder, decoded)
        if instr is None:
            if not instrs:
                instrs.append((pc, None, raw))
                pc += length
            break
        instrs.append((pc, instr, raw))
        pc += length
        if ends or pc >= page_end or len(instrs) >= limit:
            break
    return DecodedBlock(start, instrs, pc, tuple(pages))


#: Most blocks one region (one Python function) holds, and most instructions.
MAX_REGION_BLOCKS: Final = 6


MAX_REGION_INSNS: Final = 96


def _ender(block: DecodedBlock) -> Instr | None:
    last = block.instrs[-1][1]
    return last if last is not None and last.spec.ends_block else None


def _links(block: DecodedBlock) -> list[int] | None:
    """The successors of a block that can join a region (its branch target and fall-through,
    its jump target, or its fall-through), else None: blocks that end in a direct jump, a branch
    or a plain fall-through can; every block inside a region is such a block."""
    last_pc, last, _raw = block.instrs[-1]
    if last is None:
        return None
    spec = last.spec
    if not spec.ends_block:
        return [block.end]
    if spec.kind == "branch":
        return [(last_pc + last.imm) & M64, block.end]
    if spec.kind == "jal":
        return [(last_pc + last.imm) & M64]
    return None


def decode_region(
    mem: AddressSpace,
    pc: int,
    max_insns: int = MAX_BLOCK_INSNS,
    max_blocks: int = MAX_REGION_BLOCKS,
    decoder: Decoder = FULL_DECODER,
) -> list[DecodedBlock]:
    """The blocks of the region entered at ``pc``: the entry block first, then the blocks it
    reaches by direct branches and jumps on the same page (breadth first, within the caps).

    Only the loop through the entry block is kept (see :func:`_loop_through_entry`); without
    one the entry block alone is returned.
    """
    first = decode_block(mem, pc, max_insns, decoder)
    links = _links(first)
    if links is None:
        return [first]
    vpn = pc >> PAGE_SHIFT
    found = {pc}
    # Targets turned away stay turned away within one call (memory does not change meanwhile,
    # and the instruction total only grows), so they are not decoded again.
    refused: set[int] = set()
    order = [first]
    succ = [links]
    total = len(first.instrs)
    head = 0
    while head < len(order):
        targets = succ[head]
        head += 1
        for target in targets:
            if target in found or target >> PAGE_SHIFT != vpn:
                continue
            if len(order) >= max_blocks:  # full: keep what loops back to the entry
                return _loop_through_entry(order, succ)
            if target in refused:
                continue
            if mem.code_hooked is not None and mem.code_hooked(target):
                refused.add(target)  # hooked code is the stepper's
                continue
            try:
                block = decode_block(mem, target, max_insns, decoder)
            except GuestMemoryFault:
                refused.add(target)
                continue
            links = _links(block)
            if links is None or total + len(block.instrs) > MAX_REGION_INSNS:
                refused.add(target)
                continue
            found.add(target)
            order.append(block)
            succ.append(links)
            total += len(block.instrs)
    return _loop_through_entry(order, succ)


def _loop_through_entry(blocks: list[DecodedBlock], succ: list[list[int]]) -> list[DecodedBlock]:
    """The entry block and the blocks of ``blocks`` on a cycle back to it (``succ``: each
    block's successors).

    Only loops headed by the entry repay a region: entering it then usually means iterating,
    while the cost of entering and leaving (every register the region touches is loaded and
    stored back) is paid once. Blocks that merely branch away are left to their own functions.
    """
    entry = blocks[0].start
    # The kept blocks after the entry must include one that goes back to it.
    for targets in succ[1:]:
        if entry in targets:
            break
    else:
        return [blocks[0]]
    # Blocks from which the entry can be reached inside the region: backwards from the entry.
    preds: dict[int, list[int]] = {}
    for k, targets in enumerate(succ):
        for t in targets:
            preds.setdefault(t, []).append(k)
    reaches = {entry}
    todo = [entry]
    while todo:
        for k in preds.get(todo.pop(), ()):
            start = blocks[k].start
            if start not in reaches:
                reaches.add(start)
                todo.append(start)
    kept = [k for k, b in enumerate(blocks) if b.start in reaches]
    if len(kept) > 1 and any(t == entry for k in kept[1:] for t in succ[k]):
        return [blocks[k] for k in kept]
    return [blocks[0]]


def _has_atomics(blocks: list[DecodedBlock]) -> bool:
    """LR watches a page in the middle of a block, so remembered pages would go stale."""
    for b in blocks:
        for _pc, ins, _raw in b.instrs:
            if ins is not None and ins.spec.kind in {"lr", "sc", "amo"}:
                return True
    return False


def _innermost_first(blocks: list[DecodedBlock]) -> list[DecodedBlock]:
    """``blocks`` ordered by the length of the shortest cycle through each (stable): the
    ``if``/``elif`` chain that selects the next block then finds the blocks of inner loops,
    which run most, after the fewest comparisons."""
    n = len(blocks)
    index = {b.start: i for i, b in enumerate(blocks)}
    succ = [_links(b) or [b.end] for b in blocks]

    def cycle(i: int) -> int:
        start = blocks[i].start
        frontier, seen, depth = [i], {start}, 0
        while frontier:
            depth += 1
            nxt = []
            for f in frontier:
                for t in succ[f]:
                    if t == start:
                        return depth
                    if t in index and t not in seen:
                        seen.add(t)
                        nxt.append(index[t])
            frontier = nxt
        return n + 1

    keys = [cycle(i) for i in range(n)]
    return [blocks[i] for i in sorted(range(n), key=keys.__getitem__)]


#: Most blocks a fused cycle (see :func:`_fusable_cycles`) holds.
MAX_CYCLE_BLOCKS: Final = 4


def _self_loop(block: DecodedBlock) -> bool:
    """Whether the block ends in a branch or jump back to its own start (the one place this is
    decided: the block generator and the region generator both ask here)."""
    ender = _ender(block)
    return (
        ender is not None
        and ender.spec.kind in ("branch", "jal")
        and (block.instrs[-1][0] + ender.imm) & M64 == block.start
    )


def _fusable_cycles(blocks: list[DecodedBlock]) -> list[list[DecodedBlock]]:
    """Disjoint short cycles of a region's blocks (each block's successor on the cycle is one of
    its branch targets), innermost first, to run as one loop (see :func:`_emit_cycle`).

    A loop whose body spans several blocks (``for`` with an ``if`` inside, a loop whose test is
    at the top) otherwise pays the region's dispatch (the ``if p ==`` chain, a budget check, a
    pc assignment) once per block; fused, the blocks run back to back in one ``for`` loop with
    side exits, as a self-loop does. Self-loops stay as they are.
    """
    starts = {b.start: b for b in blocks}
    taken: set[int] = {b.start for b in blocks if _self_loop(b)}
    cycles: list[list[DecodedBlock]] = []
    for head in _innermost_first(blocks):
        if head.start in taken:
            continue
        # Breadth-first search for the shortest way back to the head.
        parent: dict[int, int] = {}
        frontier = [head.start]
        found = False
        for _depth in range(MAX_CYCLE_BLOCKS):
            nxt: list[int] = []
            for pc in frontier:
                for t in _links(starts[pc]) or [starts[pc].end]:
                    if t == head.start:
                        parent[t] = pc
                        found = True
                        break
                    if t in starts and t not in taken and t not in parent:
                        parent[t] = pc
                        nxt.append(t)
                if found:
                    break
            if found or not nxt:
                break
            frontier = nxt
        if not found:
            continue
        path = [head.start]
        pc = parent[head.start]
        while pc != head.start:
            path.append(pc)
            pc = parent[pc]
        path = [path[0], *reversed(path[1:])]
        cycle = [starts[pc] for pc in path]
        if len(cycle) < 2 or sum(len(b.instrs) for b in cycle) > MAX_REGION_INSNS:
            continue
        cycles.append(cycle)
        taken.update(path)
    return cycles


def _mem_ops(block: DecodedBlock) -> int:
    """Memory accesses one run of ``block`` counts (as the generator's ``mem_ops``)."""
    return sum(
        1
        for _pc, ins, _raw in block.instrs
        if ins is not None and ins.spec.kind in ("load", "store", "lr", "sc", "amo")
    )
