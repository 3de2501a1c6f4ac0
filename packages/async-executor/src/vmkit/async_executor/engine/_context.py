"""The shared translation cache and JIT statistics (:class:`AsyncExecutionContext`).

Design note
-----------
* Namespaces keep programs apart. Blocks are cached per *code identity*: by default each
  AddressSpace is its own identity, so two guests never see each other's code. Callers that know
  several address spaces hold the same code (the same ELF loaded twice) may pass the same
  ``code_key`` to share translations.
* Hot path without locks: an executor looks blocks up with ``namespace.blocks.get(pc)``, a plain
  dict read (atomic under the GIL, and the dict is only ever mutated in place, never rebound).
  Every mutation (insert, invalidate, evict, flush) takes the context's lock.
* Invalidation: each block records the guest pages its bytes lie on. When a block is inserted the
  context watches those pages in every attached AddressSpace (``watch_code_page``) and registers
  itself once per AddressSpace as a code-write listener; when a watched page is written, unmapped
  or re-protected, every block on that page is dropped. A shared namespace stays correct: the
  writer is moved to a private copy of the namespace (its code now differs from the others'), and
  the page's blocks are dropped from the shared one too (conservative for the other sharers, who
  simply translate again). The writer stays attached to the shared namespace for watching, so it
  is notified if it writes any page the shared namespace later translates from its sharers.
* Eviction: a cap on cached blocks across the whole context. Inserting at the cap evicts the
  oldest inserted eighth of the inserting namespace (FIFO by dict insertion order, so it costs
  nothing to track; a batch so that a full cache does not evict on every insert), falling back to
  the largest other namespace when the inserting one is empty. FIFO rather than LRU because
  recording use on every dispatch would put a write on the hot path; a hot block that is evicted is
  simply translated again.
* Compiled code is also cached by its generated source, context-wide: the source determines
  the function, so the same program in another address space (or after a flush) skips
  ``compile()``, by far the largest part of translation.
* Ready-made blocks: :meth:`set_prebuilt` lets an AOT code cache (``_jit_aot``) answer a miss
  before the translator is asked; :meth:`install` is how such blocks enter the cache.
* Statistics: executors count in locals and call :meth:`record_run` once per run slice; the
  context only aggregates, under the lock. Compile times are kept in a bounded window for the
  median.
"""

from __future__ import annotations

import itertools
import threading
import types
import weakref
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from typing import Final

from vmkit.async_executor._logging import get_logger
from vmkit.async_executor._record import FrozenRecord, init_field
from vmkit.async_executor.engine._translate import (
    MAX_BLOCK_INSNS,
    BlockFunction,
    PreparedBlock,
    TranslatedBlock,
    finish_block,
    prepare_block,
    translate_block,
)
from vmkit.async_executor.isa._decode import FULL_DECODER, Decoder
from vmkit.async_executor.machine._hooks import EnterHookedCode
from vmkit.async_executor.machine._memory import AddressSpace

__all__ = ["DEFAULT_MAX_BLOCKS", "AsyncExecutionContext", "BlockCache", "JitStats"]

_log = get_logger(__name__)

#: Default cap on cached blocks: a large static program has a few thousand hot blocks; each
#: compiled block costs a few KiB of host memory.
DEFAULT_MAX_BLOCKS: Final = 16384
#: How many recent compile times are kept for the median.
_COMPILE_WINDOW: Final = 8192


class JitStats(FrozenRecord):
    """A snapshot of the context's statistics (all counters since creation or :meth:`reset`)."""

    __slots__ = (
        "executions",
        "instructions",
        "cached_blocks",
        "compilations",
        "code_reuses",
        "prebuilt",
        "compile_time",
        "median_compile_time",
        "max_compile_time",
        "hits",
        "misses",
        "invalidations",
        "evictions",
        "flushes",
        "run_time",
    )
    executions: int
    instructions: int
    cached_blocks: int
    compilations: int
    #: translations whose compiled code came from the context's code cache (no ``compile()``).
    code_reuses: int
    #: blocks installed ready-made from an AOT code cache (not counted as compilations).
    prebuilt: int
    compile_time: float
    median_compile_time: float
    max_compile_time: float
    hits: int
    misses: int
    invalidations: int
    evictions: int
    flushes: int
    run_time: float

    def __init__(
        self,
        executions: int,
        instructions: int,
        cached_blocks: int,
        compilations: int,
        code_reuses: int,
        prebuilt: int,
        compile_time: float,
        median_compile_time: float,
        max_compile_time: float,
        hits: int,
        misses: int,
        invalidations: int,
        evictions: int,
        flushes: int,
        run_time: float,
    ) -> None:
        init_field(self, "executions", executions)
        init_field(self, "instructions", instructions)
        init_field(self, "cached_blocks", cached_blocks)
        init_field(self, "compilations", compilations)
        init_field(self, "code_reuses", code_reuses)
        init_field(self, "prebuilt", prebuilt)
        init_field(self, "compile_time", compile_time)
        init_field(self, "median_compile_time", median_compile_time)
        init_field(self, "max_compile_time", max_compile_time)
        init_field(self, "hits", hits)
        init_field(self, "misses", misses)
        init_field(self, "invalidations", invalidations)
        init_field(self, "evictions", evictions)
        init_field(self, "flushes", flushes)
        init_field(self, "run_time", run_time)

    @property
    def hit_rate(self) -> float:
        """Share of block dispatches that found their block cached (1.0 before any)."""
        total = self.hits + self.misses
        return self.hits / total if total else 1.0

    @property
    def mean_compile_time(self) -> float:
        """Average seconds to translate and compile one block."""
        return self.compile_time / self.compilations if self.compilations else 0.0

    @property
    def mean_block_time(self) -> float:
        """Average seconds per block execution (dispatch loop wall time / executions)."""
        return self.run_time / self.executions if self.executions else 0.0

    @property
    def mips(self) -> float:
        """Guest instructions per second of dispatch-loop wall time, in millions."""
        return self.instructions / self.run_time / 1e6 if self.run_time > 0 else 0.0

    def as_dict(self) -> dict[str, float]:
        """Counters and derived values as a plain dict (for JSON)."""
        return {
            "executions": self.executions,
            "instructions": self.instructions,
            "cached_blocks": self.cached_blocks,
            "compilations": self.compilations,
            "code_reuses": self.code_reuses,
            "prebuilt_blocks": self.prebuilt,
            "compile_time_seconds": self.compile_time,
            "mean_compile_time_seconds": self.mean_compile_time,
            "median_compile_time_seconds": self.median_compile_time,
            "max_compile_time_seconds": self.max_compile_time,
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": self.hit_rate,
            "invalidations": self.invalidations,
            "evictions": self.evictions,
            "flushes": self.flushes,
            "run_time_seconds": self.run_time,
            "mean_block_time_seconds": self.mean_block_time,
            "mips": self.mips,
        }


class BlockCache:
    """One namespace of the translation cache: guest pc -> compiled block function.

    ``blocks`` is read without locking by executors; everything else is the context's business.
    """

    __slots__ = ("__weakref__", "blocks", "key", "memories", "meta", "pages")

    def __init__(self, key: Hashable) -> None:
        self.key = key
        #: pc -> block function: the dict executors read on every dispatch.
        self.blocks: dict[int, BlockFunction] = {}
        #: pc -> the translated block (source, pages, timings).
        self.meta: dict[int, TranslatedBlock] = {}
        #: guest page -> pcs of blocks whose bytes lie on it.
        self.pages: dict[int, set[int]] = {}
        #: address spaces attached to this namespace (their pages are watched for it).
        self.memories: weakref.WeakSet[AddressSpace] = weakref.WeakSet()

    def __len__(self) -> int:
        return len(self.blocks)


class AsyncExecutionContext:
    """Translation cache and statistics shared by JIT executors, possibly in several threads.

    Args:
        max_blocks: cap on cached blocks over all namespaces (FIFO eviction beyond it).
        max_block_insns: longest block the translator builds.
        regions: translate multi-block regions (a guest loop spanning several blocks runs inside
            one Python function); False translates single basic blocks only.
        on_translate: called with each newly translated block (outside the lock), e.g. to dump
            its source (``--dump-jit``); it must not raise.
    """

    def __init__(
        self,
        *,
        max_blocks: int = DEFAULT_MAX_BLOCKS,
        max_block_insns: int = MAX_BLOCK_INSNS,
        regions: bool = True,
        on_translate: Callable[[TranslatedBlock], None] | None = None,
    ) -> None:
        if max_blocks < 1:
            raise ValueError(f"max_blocks must be at least 1, got {max_blocks}")
        if max_block_insns < 1:
            raise ValueError(f"max_block_insns must be at least 1, got {max_block_insns}")
        self.max_blocks = max_blocks
        self.max_block_insns = max_block_insns
        self.regions = regions
        self.on_translate = on_translate
        self._lock = threading.RLock()
        self._namespaces: dict[Hashable, BlockCache] = {}
        # id(AddressSpace) -> the namespace it translates into; weak so machines can die.
        self._binding: weakref.WeakKeyDictionary[AddressSpace, BlockCache] = (
            weakref.WeakKeyDictionary()
        )
        self._listening: weakref.WeakSet[AddressSpace] = weakref.WeakSet()
        #: address spaces whose hart decodes a reduced ISA (absent: RV64GC).
        self._decoders: weakref.WeakKeyDictionary[AddressSpace, Decoder] = (
            weakref.WeakKeyDictionary()
        )
        self._prebuilt: weakref.WeakKeyDictionary[
            AddressSpace, Callable[[int], TranslatedBlock | None]
        ] = weakref.WeakKeyDictionary()
        self._count = 0
        #: bumped by every code write the context hears of (see :meth:`translate`).
        self._write_serial = 0
        #: generated source -> compiled code, shared by every namespace of this context.
        self._code_cache: dict[str, types.CodeType] = {}
        self._serial = itertools.count()
        self._compile_times: deque[float] = deque(maxlen=_COMPILE_WINDOW)
        self.reset_stats()

    # ------------------------------------------------------------------ namespaces

    def namespace(
        self,
        memory: AddressSpace,
        code_key: Hashable | None = None,
        decoder: Decoder | None = None,
    ) -> BlockCache:
        """The namespace ``memory`` translates into, attaching it on first use.

        ``code_key`` names the code identity; None means "this address space alone".
        ``decoder`` is the hart's (its ISA decides which encodings are legal; default RV64GC):
        machines of different ISAs never share translations. Once attached, later calls return
        the current binding (``code_key`` and ``decoder`` are then ignored).
        """
        cache = self._binding.get(memory)
        if cache is not None:
            return cache
        with self._lock:
            cache = self._binding.get(memory)
            if cache is not None:
                return cache
            if decoder is not None and decoder is not FULL_DECODER:
                self._decoders[memory] = decoder
                if code_key is not None:
                    code_key = (code_key, decoder.isa.name)
            key: Hashable = code_key if code_key is not None else self._private_key(memory)
            cache = self._namespaces.get(key)
            if cache is None:
                cache = self._namespaces[key] = BlockCache(key)
            self._attach(memory, cache)
            self._binding[memory] = cache
            return cache

    def _private_key(self, memory: AddressSpace) -> Hashable:
        """A fresh key for a namespace of ``memory`` alone, forgotten when ``memory`` dies."""
        key = ("memory", next(self._serial))
        weakref.finalize(memory, self._forget, key)
        return key

    def _forget(self, key: Hashable) -> None:
        with self._lock:
            cache = self._namespaces.pop(key, None)
            if cache is not None:
                self._count -= len(cache.blocks)

    def _attach(self, memory: AddressSpace, cache: BlockCache) -> None:
        cache.memories.add(memory)
        for vpn in cache.pages:
            memory.watch_code_page(vpn)
        if memory not in self._listening:
            self._listening.add(memory)
            ref = weakref.ref(memory)
            me = weakref.ref(self)

            def listener(vpn: int) -> None:
                ctx, mem = me(), ref()
                if ctx is not None and mem is not None:
                    ctx._code_written(mem, vpn)

            memory.add_code_write_listener(listener)

    def namespaces(self) -> Iterator[BlockCache]:
        """Every namespace (a snapshot list's iterator)."""
        with self._lock:
            return iter(list(self._namespaces.values()))

    # ------------------------------------------------------------------ translation

    def translate(self, memory: AddressSpace, pc: int) -> BlockFunction:
        """Translate the block at ``pc`` for ``memory``, install it and return its function.

        A code write that lands while the block is being translated (another thread, or a
        background compiler racing the guest) may have changed the bytes it was decoded from:
        such a translation is done again, and if writes keep racing it is returned for one
        execution without being cached.

        Raises GuestMemoryFault when ``pc`` cannot be fetched, EnterHookedCode when a code
        hook covers it (the hook stepper runs that code).
        """
        _refuse_hooked(memory, pc)
        decoder = self._decoders.get(memory, FULL_DECODER)
        # A code cache is made for RV64GC: a hart without some extension translates afresh;
        # its blocks know nothing of code hooks, so none is used while one is registered.
        prebuilt = (
            self._prebuilt.get(memory)
            if decoder is FULL_DECODER and memory.code_hooked is None
            else None
        )
        block = prebuilt(pc) if prebuilt is not None else None
        prebuilt_hit = block is not None
        for _attempt in range(3):
            serial = self._write_serial
            if block is None:
                block = translate_block(
                    memory,
                    pc,
                    self.max_block_insns,
                    region=self.regions,
                    code_cache=self._code_cache,
                    decoder=decoder,
                )
            with self._lock:
                if not prebuilt_hit:
                    self._code_reuses += block.reused_code
                    self._compilations += 1
                    self._compile_total += block.compile_time
                    self._compile_times.append(block.compile_time)
                if self._write_serial != serial and not prebuilt_hit:
                    block = None
                    continue
                if len(self._code_cache) > self.max_blocks:
                    # FIFO, like the block cache: the oldest sources go first.
                    for source in list(self._code_cache)[: len(self._code_cache) // 8]:
                        self._code_cache.pop(source, None)
                if prebuilt_hit:
                    self._prebuilt_hits += 1
                self.install(memory, block)
            if self.on_translate is not None and not prebuilt_hit:
                self.on_translate(block)
            return block.fn
        # Code keeps changing under the translator: run this translation once, uncached.
        return translate_block(memory, pc, self.max_block_insns, region=False, decoder=decoder).fn

    def prepare(self, memory: AddressSpace, pc: int) -> tuple[PreparedBlock, int]:
        """The first half of :meth:`translate` for a background compiler: decode and generate
        the block at ``pc``, watch its pages, and return it with the write serial to hand back
        to :meth:`install_compiled`.

        Call it on the thread that runs the guest: once the pages are watched, any later store
        to them bumps the serial, so a compilation that finishes after a code write is refused.
        Raises GuestMemoryFault when ``pc`` cannot be fetched, EnterHookedCode when a code hook
        covers it.
        """
        _refuse_hooked(memory, pc)
        self.namespace(memory)  # attach: this context must hear of code writes from now on
        prepared = prepare_block(
            memory,
            pc,
            self.max_block_insns,
            region=self.regions,
            decoder=self._decoders.get(memory, FULL_DECODER),
        )
        for vpn in prepared.pages:
            memory.watch_code_page(vpn)
        return prepared, self._write_serial

    def cached_code(self, source: str) -> types.CodeType | None:
        """Compiled code for ``source`` from an earlier translation, if this context has it."""
        return self._code_cache.get(source)

    def install_compiled(
        self,
        memory: AddressSpace,
        prepared: PreparedBlock,
        code: types.CodeType,
        compile_seconds: float,
        serial: int,
        *,
        reused: bool = False,
    ) -> TranslatedBlock | None:
        """The second half: install ``prepared`` compiled elsewhere as ``code`` (the block
        function's code, see :func:`function_code`), unless guest code was written since
        :meth:`prepare` returned ``serial`` (then None: translate again)."""
        block = finish_block(prepared, code, compile_seconds, reused=reused)
        with self._lock:
            self._code_reuses += reused
            self._compilations += 1
            self._compile_total += block.compile_time
            self._compile_times.append(block.compile_time)
            if self._write_serial != serial:
                return None
            self._code_cache.setdefault(prepared.source, code)
            self.install(memory, block)
        if self.on_translate is not None and not reused:
            self.on_translate(block)
        return block

    def set_prebuilt(
        self, memory: AddressSpace, lookup: Callable[[int], TranslatedBlock | None]
    ) -> None:
        """Consult ``lookup(pc)`` for ready-made blocks (an AOT code cache) before translating
        for ``memory``; it returns None for pcs it cannot serve."""
        with self._lock:
            self._prebuilt[memory] = lookup

    def install(self, memory: AddressSpace, block: TranslatedBlock) -> None:
        """Cache ``block`` (translated from ``memory``'s bytes) in ``memory``'s namespace and
        watch its pages; a block already cached at its pc is replaced."""
        if memory.code_hooked is not None and memory.code_hooked(block.pc):
            return  # translated before a code hook came: the stepper runs that code now
        with self._lock:
            cache = self.namespace(memory)
            pc = block.pc
            if pc in cache.blocks:  # another thread won the race; keep one copy
                self._drop(cache, pc)
            if self._count >= self.max_blocks:
                self._evict(cache)
            cache.blocks[pc] = block.fn
            cache.meta[pc] = block
            self._count += 1
            for vpn in block.pages:
                cache.pages.setdefault(vpn, set()).add(pc)
                for mem in cache.memories:
                    mem.watch_code_page(vpn)

    def translate_uncached(self, memory: AddressSpace, pc: int, max_insns: int) -> TranslatedBlock:
        """Translate a block without installing it (budget-truncated blocks, inspection)."""
        _refuse_hooked(memory, pc)
        decoder = self._decoders.get(memory, FULL_DECODER)
        block = translate_block(memory, pc, max_insns, region=False, decoder=decoder)
        with self._lock:
            self._compilations += 1
            self._compile_total += block.compile_time
            self._compile_times.append(block.compile_time)
        return block

    def block_info(self, memory: AddressSpace, pc: int) -> TranslatedBlock | None:
        """The cached block at ``pc`` for ``memory`` (None when not cached)."""
        return self.namespace(memory).meta.get(pc)

    def source(self, memory: AddressSpace, pc: int) -> str:
        """Python source of the block at ``pc`` (translating it, uncached, if needed)."""
        info = self.block_info(memory, pc)
        if info is None:
            info = translate_block(memory, pc, self.max_block_insns, region=self.regions)
        return info.source

    # ------------------------------------------------------------------ invalidation

    def _drop(self, cache: BlockCache, pc: int) -> None:
        """Remove one block (lock held)."""
        if cache.blocks.pop(pc, None) is None:
            return
        block = cache.meta.pop(pc)
        self._count -= 1
        for vpn in block.pages:
            pcs = cache.pages.get(vpn)
            if pcs is not None:
                pcs.discard(pc)
                if not pcs:
                    del cache.pages[vpn]

    def _drop_page(self, cache: BlockCache, vpn: int) -> int:
        pcs = cache.pages.pop(vpn, None)
        if not pcs:
            return 0
        for pc in list(pcs):
            self._drop(cache, pc)
        return len(pcs)

    def _code_written(self, memory: AddressSpace, vpn: int) -> None:
        with self._lock:
            self._write_serial += 1
            cache = self._binding.get(memory)
            dropped = 0
            for ns in list(self._namespaces.values()):
                if memory in ns.memories:
                    dropped += self._drop_page(ns, vpn)
            if cache is not None and len(cache.memories) > 1:
                self._detach(memory, cache)
            self._invalidations += dropped
        if dropped:
            _log.debug("jit_blocks_invalidated", page=hex(vpn << 12), blocks=dropped)

    def _detach(self, memory: AddressSpace, shared: BlockCache) -> None:
        """Give ``memory`` a private copy of ``shared`` (lock held)."""
        private = BlockCache(self._private_key(memory))
        self._namespaces[private.key] = private
        for pc, block in shared.meta.items():
            private.blocks[pc] = shared.blocks[pc]
            private.meta[pc] = block
            self._count += 1
            for page in block.pages:
                private.pages.setdefault(page, set()).add(pc)
        private.memories.add(memory)
        self._binding[memory] = private

    def invalidate_page(self, memory: AddressSpace, vpn: int) -> int:
        """Drop every block of ``memory``'s namespace on guest page ``vpn``; returns how many."""
        with self._lock:
            dropped = self._drop_page(self.namespace(memory), vpn)
            self._invalidations += dropped
            return dropped

    def invalidate_range(self, memory: AddressSpace, addr: int, length: int) -> int:
        """Drop every block on the pages of ``[addr, addr + length)``; returns how many."""
        total = 0
        for vpn in range(addr >> 12, (addr + max(length, 1) + 0xFFF) >> 12):
            total += self.invalidate_page(memory, vpn)
        return total

    def _evict(self, inserting: BlockCache) -> None:
        """Make room for one block (lock held): FIFO within a namespace."""
        victim = inserting
        if not victim.blocks:
            victim = max(self._namespaces.values(), key=len)
        # Evict an eighth of the victim at once so a full cache does not evict on every insert.
        quota = max(1, len(victim.blocks) // 8)
        for pc in list(victim.blocks)[:quota]:
            self._drop(victim, pc)
            self._evictions += 1

    def flush(self) -> None:
        """Drop every cached block of every namespace (statistics are kept)."""
        with self._lock:
            for cache in self._namespaces.values():
                cache.blocks.clear()
                cache.meta.clear()
                cache.pages.clear()
            self._count = 0
            self._flushes += 1
        _log.debug("jit_cache_flushed")

    @property
    def cached_blocks(self) -> int:
        """Number of blocks cached over all namespaces."""
        return self._count

    # ------------------------------------------------------------------ statistics

    def record_run(
        self, *, executions: int, instructions: int, misses: int, run_time: float
    ) -> None:
        """Add one executor run slice's counters (called once per slice, not per block)."""
        with self._lock:
            self._executions += executions
            self._instructions += instructions
            self._misses += misses
            self._hits += max(0, executions - misses)
            self._run_time += run_time

    def reset_stats(self) -> None:
        """Zero every counter (the cache itself is kept)."""
        with self._lock:
            self._executions = 0
            self._instructions = 0
            self._hits = 0
            self._misses = 0
            self._compilations = 0
            self._code_reuses = 0
            self._prebuilt_hits = 0
            self._compile_total = 0.0
            self._compile_times.clear()
            self._invalidations = 0
            self._evictions = 0
            self._flushes = 0
            self._run_time = 0.0

    def stats(self) -> JitStats:
        """A consistent snapshot of the statistics."""
        with self._lock:
            times = list(self._compile_times)
            return JitStats(
                executions=self._executions,
                instructions=self._instructions,
                cached_blocks=self._count,
                compilations=self._compilations,
                code_reuses=self._code_reuses,
                prebuilt=self._prebuilt_hits,
                compile_time=self._compile_total,
                median_compile_time=_median(times),
                max_compile_time=max(times) if times else 0.0,
                hits=self._hits,
                misses=self._misses,
                invalidations=self._invalidations,
                evictions=self._evictions,
                flushes=self._flushes,
                run_time=self._run_time,
            )


def _median(values: list[float]) -> float:
    """The median (0.0 of nothing); ``statistics`` would cost every run its import."""
    if not values:
        return 0.0
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def _refuse_hooked(memory: AddressSpace, pc: int) -> None:
    """Raise EnterHookedCode when a code hook covers ``pc``: no translation runs hooked code."""
    hooked = memory.code_hooked
    if hooked is not None and hooked(pc):
        raise EnterHookedCode(pc)
