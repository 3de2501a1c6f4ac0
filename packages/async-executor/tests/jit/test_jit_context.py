"""AsyncExecutionContext: namespaces, invalidation, flush, eviction, statistics, threads."""

from __future__ import annotations

import threading

import pytest
from jit_support import CODE_BASE, EXIT, enc, li, machine_with_code, run_jit, words

from vmkit.async_executor.engine._context import AsyncExecutionContext
from vmkit.async_executor.engine._jit import JitExecutor


def _counting_loop(n: int, result_reg: int = 10) -> bytes:
    """a0 = sum of 1..n in a self-looping block, then exit(a0)."""
    return words(
        *li(5, n),  # t0 = n
        enc("add", result_reg, result_reg, 5),  # 8: a0 += t0
        enc("addi", 5, 5, imm=-1),
        enc("bne", 0, 5, 0, imm=-8),
        *EXIT,
    )


def _many_blocks(count: int) -> bytes:
    """``count`` one-instruction blocks chained by jumps, then exit(a0 = count)."""
    body = [w for _ in range(count) for w in (enc("addi", 10, 10, imm=1), enc("jal", 0, imm=4))]
    return words(*body, *EXIT)


class TestNamespaces:
    """Blocks of different address spaces are kept apart unless a code key joins them."""

    def test_two_programs_same_pc(self) -> None:
        """Two machines with different code at the same pc each run their own code."""
        ctx = AsyncExecutionContext()
        a, _m, _e = run_jit(words(enc("addi", 10, 0, imm=1), *EXIT), context=ctx)
        b, _m, _e = run_jit(words(enc("addi", 10, 0, imm=2), *EXIT), context=ctx)
        assert (a.status, b.status) == (1, 2)
        assert ctx.stats().compilations == 2

    def test_shared_code_key_reuses_blocks(self) -> None:
        """Machines declared to hold the same code share translations."""
        ctx = AsyncExecutionContext(regions=False)
        code = _counting_loop(50)
        for _ in range(3):
            m = machine_with_code(code)
            assert JitExecutor(m, ctx, code_key="prog").run() == (50 * 51 // 2) & 0xFF
        stats = ctx.stats()
        assert stats.compilations == 3  # entry block (first pass), the loop, the exit
        assert stats.misses == 3
        assert stats.hits == stats.executions - 3 == 6

    def test_shared_namespace_writer_detaches(self) -> None:
        """A sharer that rewrites its code gets a private namespace; the others keep theirs."""
        ctx = AsyncExecutionContext()
        code = words(enc("addi", 10, 0, imm=1), *EXIT)
        m1, m2 = machine_with_code(code, writable_code=True), machine_with_code(code)
        e1, e2 = JitExecutor(m1, ctx, code_key="k"), JitExecutor(m2, ctx, code_key="k")
        assert e1.run() == 1
        m1.memory.write_bytes(CODE_BASE, words(enc("addi", 10, 0, imm=7)))
        m1.hart.pc = CODE_BASE
        assert e1.run() == 7
        assert e2.run() == 1
        assert ctx.namespace(m1.memory) is not ctx.namespace(m2.memory)


class TestCodeCache:
    """Compiled code is reused for identical generated source."""

    def test_same_program_twice_compiles_once(self) -> None:
        """A second machine with the same code gets its own blocks but no new compile()."""
        ctx = AsyncExecutionContext()
        code = _counting_loop(30)
        m1, m2 = machine_with_code(code), machine_with_code(code)
        assert JitExecutor(m1, ctx).run() == JitExecutor(m2, ctx).run()
        stats = ctx.stats()
        assert stats.compilations == 2 * stats.code_reuses
        assert ctx.namespace(m1.memory) is not ctx.namespace(m2.memory)
        f1 = ctx.namespace(m1.memory).blocks[CODE_BASE]
        f2 = ctx.namespace(m2.memory).blocks[CODE_BASE]
        assert f1.__code__ is f2.__code__

    def test_changed_code_is_compiled(self) -> None:
        """Different guest bytes give different source and are compiled, never reused."""
        ctx = AsyncExecutionContext()
        a = JitExecutor(machine_with_code(words(enc("addi", 10, 0, imm=1), *EXIT)), ctx).run()
        b = JitExecutor(machine_with_code(words(enc("addi", 10, 0, imm=2), *EXIT)), ctx).run()
        assert (a, b) == (1, 2)
        assert ctx.stats().code_reuses == 0


class TestInvalidation:
    """Code writes, unmapping and re-protection drop the affected blocks."""

    def test_poke_invalidates(self) -> None:
        """Writing a translated page (as a syscall or debugger would) drops its blocks."""
        m = machine_with_code(words(enc("addi", 10, 0, imm=4), *EXIT))
        ex = JitExecutor(m)
        assert ex.run() == 4
        assert ex.context.cached_blocks == 1
        m.memory.poke(CODE_BASE, words(enc("addi", 10, 0, imm=5)))
        assert ex.context.cached_blocks == 0
        m.hart.pc = CODE_BASE
        assert ex.run() == 5
        assert ex.context.stats().invalidations == 1

    def test_protect_and_unmap_invalidate(self) -> None:
        """mprotect and munmap of a translated page drop its blocks."""
        m = machine_with_code(words(enc("addi", 10, 0, imm=4), *EXIT))
        ex = JitExecutor(m)
        ex.run()
        m.memory.protect(CODE_BASE, 0x1000, 5)
        assert ex.context.cached_blocks == 0
        m.hart.pc = CODE_BASE
        ex.run()
        m.memory.unmap(CODE_BASE, 0x1000)
        assert ex.context.cached_blocks == 0

    def test_invalidate_range_api(self) -> None:
        """invalidate_range drops exactly the blocks on the named pages."""
        m = machine_with_code(_many_blocks(4))
        ex = JitExecutor(m, AsyncExecutionContext(regions=False))
        ex.run()
        assert ex.context.cached_blocks == 5
        assert ex.context.invalidate_range(m.memory, CODE_BASE + 0x1000, 16) == 0
        assert ex.context.invalidate_range(m.memory, CODE_BASE, 1) == 5


class TestRacingWrites:
    """A code write during translation never leaves a stale block in the cache."""

    def test_write_while_translating(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The first translation races a write of its page: it is redone from the new bytes."""
        from vmkit.async_executor.engine import _context

        m = machine_with_code(words(enc("addi", 10, 0, imm=1), *EXIT))
        ctx = AsyncExecutionContext()
        ctx.namespace(m.memory)
        m.memory.watch_code_page(CODE_BASE >> 12)
        real = _context.translate_block
        calls = []

        def racing(*args: object, **kwargs: object) -> object:
            block = real(*args, **kwargs)  # type: ignore[arg-type]
            if not calls:  # another thread rewrites the code right after it was decoded
                m.memory.poke(CODE_BASE, words(enc("addi", 10, 0, imm=2)))
            calls.append(block)
            return block

        monkeypatch.setattr(_context, "translate_block", racing)
        assert JitExecutor(m, ctx).run() == 2
        assert len(calls) == 2  # the stale first try is dropped, the second one is cached
        assert "x10 = 2" in ctx.source(m.memory, CODE_BASE)


class TestFlushAndEviction:
    """flush() empties the cache; the cap evicts the oldest blocks first."""

    def test_flush(self) -> None:
        """After a flush every block is translated again and results do not change."""
        m = machine_with_code(_many_blocks(6))
        ex = JitExecutor(m, AsyncExecutionContext(regions=False))
        assert ex.run() == 6
        ex.context.flush()
        assert ex.context.cached_blocks == 0
        m.hart.pc = CODE_BASE
        m.hart.x[10] = 0
        assert ex.run() == 6
        stats = ex.context.stats()
        assert stats.flushes == 1
        assert stats.compilations == 14

    def test_cap_evicts_oldest(self) -> None:
        """With a cap of 4 blocks the cache never holds more and the oldest go first."""
        ctx = AsyncExecutionContext(max_blocks=4, regions=False)
        m = machine_with_code(_many_blocks(10))
        ex = JitExecutor(m, ctx)
        assert ex.run() == 10
        assert ctx.cached_blocks <= 4
        assert ctx.stats().evictions >= 7
        cached = set(ctx.namespace(m.memory).blocks)
        assert CODE_BASE not in cached  # the first block was evicted first
        assert CODE_BASE + 8 * 10 in cached  # the exit block, translated last, remains

    def test_bad_arguments(self) -> None:
        """A cap below one block is refused with a clear error."""
        with pytest.raises(ValueError, match="max_blocks"):
            AsyncExecutionContext(max_blocks=0)


def _two_block_loop(n: int) -> bytes:
    """for t0 = n..1: a0 += 1, plus 100 when t0 is odd: a loop of three blocks."""
    return words(
        enc("andi", 6, 5, imm=1),  # 0: t1 = t0 & 1
        enc("beq", 0, 6, 0, imm=8),  # 4: even: skip
        enc("addi", 10, 10, imm=100),  # 8
        enc("addi", 10, 10, imm=1),  # 12
        enc("addi", 5, 5, imm=-1),  # 16
        enc("bne", 0, 5, 0, imm=-20),  # 20: loop
        *EXIT,
    )


class TestRegions:
    """A loop spanning several blocks on one page is translated as one function."""

    def test_loop_over_blocks_is_one_region(self) -> None:
        """The loop's entry holds all its blocks and runs the whole loop in one call."""
        m = machine_with_code(_two_block_loop(6))
        m.hart.x[5] = 6
        ex = JitExecutor(m)
        assert ex.run() == (6 + 3 * 100) & 0xFF
        info = ex.context.block_info(m.memory, CODE_BASE)
        assert info is not None
        assert "while True:" in info.source
        assert info.length == 9  # blocks at +0 (2 instructions), +12 (3) and +8 (4)
        assert ex.context.stats().executions == 2  # the region, then the exit block

    def test_straight_chain_stays_blocks(self) -> None:
        """Code without a loop is not worth a region: every block is its own function."""
        m = machine_with_code(_many_blocks(4))
        ex = JitExecutor(m)
        assert ex.run() == 4
        assert ex.context.stats().compilations == 5

    def test_regions_off(self) -> None:
        """With regions off the loop's blocks are translated one by one."""
        ctx = AsyncExecutionContext(regions=False)
        m = machine_with_code(_two_block_loop(6))
        m.hart.x[5] = 6
        assert JitExecutor(m, ctx).run() == (6 + 3 * 100) & 0xFF
        assert ctx.stats().compilations == 4


class TestStatistics:
    """The context aggregates what its executors count."""

    def test_counts(self) -> None:
        """Executions, instructions, hits and misses add up for a known program."""
        out, m, ex = run_jit(_counting_loop(100), context=AsyncExecutionContext(regions=False))
        stats = ex.context.stats()
        assert out.status == (100 * 101 // 2) & 0xFF
        assert stats.instructions == out.instret == 2 + 3 * 100 + 2
        assert stats.misses == stats.compilations == 3
        assert stats.executions == 3  # the whole loop ran inside one block call
        assert stats.hits == 0
        assert stats.cached_blocks == 3
        assert stats.median_compile_time > 0
        assert stats.mean_block_time > 0
        assert ex.stats.instructions == out.instret
        assert stats.as_dict()["hit_rate"] == 0.0
        assert m.memory.tlb_accesses == 0

    def test_tlb_accesses_counted_in_loops(self) -> None:
        """Each iteration of a loop with two memory accesses adds two TLB accesses."""
        code = words(
            enc("sd", 0, 2, 10, imm=-8),
            enc("ld", 11, 2, imm=-8),
            enc("addi", 5, 5, imm=-1),
            enc("bne", 0, 5, 0, imm=-12),
            *EXIT,
        )
        _out, m, _ex = run_jit(code, x={5: 7})
        assert m.memory.tlb_accesses == 14


class TestThreads:
    """Several executors in several threads share one context safely."""

    def test_hybrid_threads(self) -> None:
        """Hybrid executors in four threads, one context, the same program: same answers."""
        from vmkit.async_executor.engine._jit_hybrid import HybridExecutor

        ctx = AsyncExecutionContext()
        results: list[int] = []
        lock = threading.Lock()

        def work() -> None:
            status = HybridExecutor(machine_with_code(_counting_loop(40)), ctx, threshold=2).run()
            with lock:
                results.append(status)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [(40 * 41 // 2) & 0xFF] * 4

    def test_parallel_runs_agree(self) -> None:
        """Eight threads running four programs through one context all get the right answers."""
        ctx = AsyncExecutionContext(max_blocks=64)
        results: dict[int, int] = {}
        errors: list[BaseException] = []

        def work(i: int) -> None:
            try:
                n = 20 + i % 4
                m = machine_with_code(_counting_loop(n) + _many_blocks(8))
                results[i] = JitExecutor(m, ctx).run()
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert results == {i: ((20 + i % 4) * (21 + i % 4) // 2) & 0xFF for i in range(8)}
        assert ctx.stats().instructions == sum(2 + 3 * (20 + i % 4) + 2 for i in range(8))
