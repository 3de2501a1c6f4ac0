"""The AOT code cache: build, save, load; stale, corrupt and foreign caches are never run."""

from __future__ import annotations

import pathlib
import tempfile

from jit_support import CODE_BASE, enc, li, machine_with_code, words

from vmkit.async_executor._logging import capture_events
from vmkit.async_executor.engine import _jit_aot
from vmkit.async_executor.engine._context import AsyncExecutionContext
from vmkit.async_executor.engine._jit import JitExecutor
from vmkit.async_executor.engine._jit_aot import (
    build_code_cache,
    discover_blocks,
    load_code_cache,
    profiled_code_cache,
    save_code_cache,
)
from vmkit.async_executor.loader import load_program
from vmkit.async_executor.samples import path as sample_path


def _program() -> bytes:
    """main calls a subroutine that loops; exit status 10 * 3 + 1 = 31."""
    return words(
        *li(5, 3),  # 0
        enc("jal", 1, imm=16),  # 8: call sub at 24
        enc("addi", 10, 10, imm=1),  # 12
        enc("addi", 17, 0, imm=93),  # 16
        enc("ecall"),  # 20
        enc("addi", 10, 10, imm=10),  # 24: sub
        enc("addi", 5, 5, imm=-1),  # 28
        enc("bne", 0, 5, 0, imm=-8),  # 32
        enc("jalr", 0, 1, imm=0),  # 36: ret
    )


def _built(tmp: pathlib.Path) -> pathlib.Path:
    m = machine_with_code(_program())
    info = build_code_cache(AsyncExecutionContext(), m.memory, [CODE_BASE])
    path = tmp / "cache.bin"
    assert save_code_cache(info, m.memory, path) > 0
    return path


class TestDiscovery:
    """Static discovery follows branches, jumps, calls and return points."""

    def test_reaches_subroutine_and_return_point(self) -> None:
        """From the entry, the call target, the loop and the code after the call are found."""
        m = machine_with_code(_program())
        found = set(discover_blocks(m.memory, [CODE_BASE]))
        assert {CODE_BASE, CODE_BASE + 12, CODE_BASE + 24} <= found


class TestRoundTrip:
    """A saved cache makes a fresh machine run without compiling."""

    def test_warm_start_compiles_nothing(self, tmp_path: pathlib.Path) -> None:
        """Every block the run needs comes from the cache; the result is unchanged."""
        path = _built(tmp_path)
        ctx = AsyncExecutionContext()
        m = machine_with_code(_program())
        assert load_code_cache(ctx, m.memory, path) >= 3
        assert JitExecutor(m, ctx).run() == 31
        assert ctx.stats().compilations == 0
        assert ctx.stats().prebuilt >= 3

    def test_real_program(self, tmp_path: pathlib.Path) -> None:
        """hello, with 300 blocks cached from its ELF entry point, prints the same and
        compiles fewer blocks at run time."""
        outputs = []
        compiles = []
        for use_cache in (False, True):
            with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
                m = load_program(
                    sample_path("hello"),
                    ["hello"],
                    root=str(tmp_path),
                    stdio=(0, out.fileno(), err.fileno()),
                )
                ctx = AsyncExecutionContext()
                if use_cache:
                    build_ctx = AsyncExecutionContext()
                    info = build_code_cache(build_ctx, m.memory, [m.hart.pc], max_blocks=300)
                    save_code_cache(info, m.memory, tmp_path / "hello.cache")
                    assert load_code_cache(ctx, m.memory, tmp_path / "hello.cache") > 50
                status = JitExecutor(m, ctx).run()
                m.linux.close()
                out.seek(0)
                outputs.append((status, out.read()))
                compiles.append(ctx.stats().compilations)
        assert outputs[0] == outputs[1]
        assert compiles[1] < compiles[0]


class TestProfiled:
    """A profiled cache holds exactly the blocks a run translated."""

    def test_run_then_warm_start(self, tmp_path: pathlib.Path) -> None:
        """The blocks of one run, saved and loaded for a fresh machine: nothing is compiled."""
        m = machine_with_code(_program())
        ctx = AsyncExecutionContext()
        assert JitExecutor(m, ctx).run() == 31
        info = profiled_code_cache(ctx, m.memory)
        assert sorted(b.pc for b in info.blocks) == sorted(ctx.namespace(m.memory).meta)
        assert save_code_cache(info, m.memory, tmp_path / "p.cache") > 0
        warm_ctx = AsyncExecutionContext()
        fresh = machine_with_code(_program())
        assert load_code_cache(warm_ctx, fresh.memory, tmp_path / "p.cache") == len(info)
        assert JitExecutor(fresh, warm_ctx).run() == 31
        assert warm_ctx.stats().compilations == 0
        assert warm_ctx.stats().prebuilt == len(info)


class TestRejection:
    """Caches that do not match are ignored (with a warning) and never executed."""

    def test_changed_code_is_skipped(self, tmp_path: pathlib.Path) -> None:
        """A block whose guest bytes changed is not installed; the new code runs."""
        path = _built(tmp_path)
        code = bytearray(_program())
        code[24:28] = words(enc("addi", 10, 10, imm=20))  # sub now adds 20
        ctx = AsyncExecutionContext()
        m = machine_with_code(bytes(code))
        load_code_cache(ctx, m.memory, path)
        with capture_events() as logs:
            assert JitExecutor(m, ctx).run() == (20 * 3 + 1) & 0xFF
        assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
            "jit_code_cache_stale_blocks"
        ]
        assert ctx.stats().prebuilt >= 1  # the unchanged blocks still came from the cache

    def test_corrupt_truncated_foreign(self, tmp_path: pathlib.Path) -> None:
        """Flipped bytes, truncation, garbage and another translator version load nothing."""
        path = _built(tmp_path)
        good = path.read_bytes()
        variants = {
            "flipped": good[:-5] + bytes([good[-5] ^ 0xFF]) + good[-4:],
            "truncated": good[: len(good) // 2],
            "garbage": b"hello world" * 10,
        }
        m = machine_with_code(_program())
        for name, data in variants.items():
            bad = tmp_path / f"{name}.bin"
            bad.write_bytes(data)
            with capture_events() as logs:
                assert load_code_cache(AsyncExecutionContext(), m.memory, bad) == 0, name
            assert [e["event"] for e in logs] == ["jit_code_cache_ignored"], name
        original = _jit_aot.TRANSLATOR_VERSION
        try:
            _jit_aot.TRANSLATOR_VERSION = original + 1  # type: ignore[misc]
            (tmp_path / "old").mkdir()
            old = _built(tmp_path / "old")
        finally:
            _jit_aot.TRANSLATOR_VERSION = original  # type: ignore[misc]
        with capture_events() as logs:
            assert load_code_cache(AsyncExecutionContext(), m.memory, old) == 0
        assert logs[0]["reason"] == "other translator version"
        assert load_code_cache(AsyncExecutionContext(), m.memory, tmp_path / "missing") == 0
